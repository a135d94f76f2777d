// Media manager (/manage): one page over the gateway's GraphQL API, no build step.
//
// The token lives in sessionStorage (this tab only) and is sent only in the Authorization
// header, never in a cookie or a URL. Uploads are GraphQL multipart requests sent with
// XMLHttpRequest for its upload progress; everything else is a JSON POST with fetch.
// Everything the API returns is written with textContent, never parsed as HTML.

const TOKEN_KEY = "media-gateway.token";
const ENDPOINT = new URL("graphql", document.baseURI).toString();
const ACCEPT = "application/graphql-response+json, application/json;q=0.9";
const IMAGE_MIME = "application/x-media-gateway-image";

const ERRORS = "userErrors { field code message }";
const PRODUCT_QUERY = `query ManageProduct($sku: String!) {
  product(sku: $sku) {
    id sku name
    images {
      id position isMain option alt width height mimeType fileSize
      renditions(sizes: [THUMBNAIL]) { url url2x width height }
    }
  }
}`;
const SIGN_IN_QUERY = "query ManageSignIn { __typename }";
const UPLOAD_MUTATION = `mutation ManageUpload($input: UploadImageInput!) {
  uploadImage(input: $input) { image { id } ${ERRORS} }
}`;
const REORDER_MUTATION = `mutation ManageReorder($ids: [ID!]!) {
  reorderImages(imageIds: $ids) { images { id position } ${ERRORS} }
}`;
const SET_MAIN_MUTATION = `mutation ManageSetMain($id: ID!) {
  setMainImage(imageId: $id) { image { id isMain } ${ERRORS} }
}`;
const DELETE_MUTATION = `mutation ManageDelete($ids: [ID!]!) {
  deleteImages(ids: $ids) { deletedIds ${ERRORS} }
}`;

const HINTS = {
  UNAUTHENTICATED: "The token is missing, unknown or revoked: sign in again.",
  FORBIDDEN: "This token may only read: sign in with a write token.",
};

const $ = (id) => document.getElementById(id);

/** Top-level GraphQL errors (or a transport failure): nothing ran. */
class GatewayError extends Error {
  constructor(errors) {
    super(errors.map((e) => e.message).join("; "));
    this.errors = errors;
  }
}

let product = null; // the product shown: {id, sku, name, images}
let dragging = null; // {id, option} of the picture being dragged
let busy = false;

// ---- Talking to the gateway -------------------------------------------------------------

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

function authHeaders(value = token()) {
  const headers = { Accept: ACCEPT };
  if (value) headers.Authorization = `Bearer ${value}`;
  return headers;
}

function unwrap(status, text) {
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    throw new GatewayError([{ message: `HTTP ${status}: ${text.slice(0, 200) || "no body"}` }]);
  }
  if (body.errors && body.errors.length) throw new GatewayError(body.errors);
  if (!body.data) throw new GatewayError([{ message: `HTTP ${status} without data` }]);
  return body.data;
}

async function graphql(query, variables = {}, tokenValue = token()) {
  let response;
  try {
    response = await fetch(ENDPOINT, {
      method: "POST",
      headers: { ...authHeaders(tokenValue), "Content-Type": "application/json" },
      body: JSON.stringify({ query, variables }),
    });
  } catch (error) {
    throw new GatewayError([{ message: `The gateway cannot be reached (${error.message}).` }]);
  }
  return unwrap(response.status, await response.text());
}

/** A GraphQL multipart request (one file at ``path``), reporting upload progress. */
function uploadFile(query, variables, path, file, onProgress) {
  const form = new FormData();
  form.append("operations", JSON.stringify({ query, variables }));
  form.append("map", JSON.stringify({ 0: [path] }));
  form.append("0", file, file.name);
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", ENDPOINT);
    for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener("load", () => {
      try {
        resolve(unwrap(xhr.status, xhr.responseText));
      } catch (error) {
        reject(error);
      }
    });
    xhr.addEventListener("error", () =>
      reject(new GatewayError([{ message: "The upload failed: the gateway cannot be reached." }])),
    );
    xhr.send(form);
  });
}

// ---- Messages -----------------------------------------------------------------------------

function clearMessages() {
  $("messages").replaceChildren();
}

function say(kind, title, lines = []) {
  const box = document.createElement("div");
  box.className = `message ${kind}`;
  const heading = document.createElement("p");
  heading.className = "title";
  heading.textContent = title;
  box.append(heading);
  if (lines.length) {
    const list = document.createElement("ul");
    for (const line of lines) {
      const item = document.createElement("li");
      item.textContent = line;
      list.append(item);
    }
    box.append(list);
  }
  $("messages").append(box);
}

function describeUserError(error, prefix = "") {
  const field = error.field && error.field.length ? ` (${error.field.join(".")})` : "";
  return `${prefix}${error.code}${field}: ${error.message}`;
}

function reportFailure(what, error) {
  if (error instanceof GatewayError) {
    const lines = error.errors.map((e) => {
      const code = e.extensions && e.extensions.code;
      const hint = code && HINTS[code] ? ` ${HINTS[code]}` : "";
      return code ? `${code}: ${e.message}${hint}` : e.message;
    });
    say("error", `${what} failed.`, lines);
  } else {
    say("error", `${what} failed.`, [String(error)]);
  }
}

/** Shows a payload's userErrors; true when there were none. */
function checkPayload(what, payload, prefix = "") {
  if (!payload.userErrors.length) return true;
  say(
    "error",
    `${what}: nothing was changed.`,
    payload.userErrors.map((e) => describeUserError(e, prefix)),
  );
  return false;
}

// ---- Signing in -----------------------------------------------------------------------------

function showSignedIn() {
  const signedIn = Boolean(token());
  $("signin").hidden = signedIn;
  $("signed-in").hidden = !signedIn;
  $("picker").hidden = !signedIn;
  if (!signedIn) {
    $("product").hidden = true;
    product = null;
  }
}

async function signIn(event) {
  event.preventDefault();
  clearMessages();
  const value = $("token").value.trim();
  if (!value) return;
  try {
    await graphql(SIGN_IN_QUERY, {}, value);
  } catch (error) {
    reportFailure("Signing in", error);
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, value);
  $("token").value = "";
  showSignedIn();
  $("sku").focus();
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  clearMessages();
  showSignedIn();
  $("token").focus();
}

// ---- The product and its galleries --------------------------------------------------------

async function openProduct(sku) {
  let data;
  try {
    data = await graphql(PRODUCT_QUERY, { sku });
  } catch (error) {
    reportFailure("Loading the product", error);
    return false;
  }
  if (!data.product) {
    product = null;
    $("product").hidden = true;
    say("error", `No product has the SKU “${sku}”.`);
    return false;
  }
  product = data.product;
  history.replaceState(null, "", `#sku=${encodeURIComponent(product.sku)}`);
  render();
  return true;
}

async function reload() {
  if (product) await openProduct(product.sku);
}

function galleries(images) {
  const groups = new Map();
  for (const image of images) {
    const key = image.option ?? "";
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(image);
  }
  for (const list of groups.values()) list.sort((a, b) => a.position - b.position);
  return [...groups.entries()].sort(([a], [b]) => (a === "" ? -1 : b === "" ? 1 : a < b ? -1 : 1));
}

function render() {
  $("product").hidden = false;
  $("product-title").textContent = `${product.name} (${product.sku})`;
  const count = product.images.length;
  $("product-summary").textContent =
    count === 0 ? "No images yet." : `${count} image${count === 1 ? "" : "s"}.`;
  const container = $("galleries");
  container.replaceChildren();
  for (const [option, images] of galleries(product.images)) {
    const section = document.createElement("section");
    section.className = "gallery";
    const heading = document.createElement("h3");
    heading.textContent = option === "" ? "Main gallery" : `Option “${option}”`;
    const list = document.createElement("ol");
    list.className = "thumbs";
    list.setAttribute("aria-label", heading.textContent);
    images.forEach((image, index) => list.append(thumbnail(image, index, images)));
    section.append(heading, list);
    container.append(section);
  }
}

function button(label, text, onClick, className = "") {
  const element = document.createElement("button");
  element.type = "button";
  element.className = className;
  element.textContent = text;
  element.setAttribute("aria-label", label);
  element.title = label;
  element.addEventListener("click", onClick);
  return element;
}

function thumbnail(image, index, gallery) {
  const item = document.createElement("li");
  item.className = image.isMain ? "thumb main" : "thumb";
  item.draggable = true;
  item.dataset.id = image.id;
  item.dataset.position = String(image.position);

  const rendition = image.renditions[0];
  const picture = document.createElement("img");
  picture.src = rendition ? rendition.url : image.url;
  if (rendition && rendition.url2x) picture.srcset = `${rendition.url} 1x, ${rendition.url2x} 2x`;
  if (rendition) {
    picture.width = rendition.width;
    picture.height = rendition.height;
  }
  picture.alt = image.alt || `${product.name}, image ${index + 1}`;
  picture.draggable = false;
  picture.title = image.isMain ? "Main image" : "Click to make this the main image";
  picture.addEventListener("click", () => setMain(image));

  const caption = document.createElement("div");
  caption.className = "caption";
  const position = document.createElement("span");
  position.className = "position";
  position.textContent = `#${index + 1}`;
  caption.append(position);
  if (image.isMain) {
    const badge = document.createElement("span");
    badge.className = "badge";
    badge.textContent = "Main";
    caption.append(badge);
  }
  const size = document.createElement("span");
  size.className = "size";
  size.textContent = `${image.width}×${image.height}`;
  caption.append(size);

  const actions = document.createElement("div");
  actions.className = "actions";
  const n = index + 1;
  const main = button(`Make image ${n} the main image`, "★ Main", () => setMain(image), "main");
  main.disabled = image.isMain;
  main.setAttribute("aria-pressed", String(image.isMain));
  const earlier = button(`Move image ${n} earlier`, "◀", () => move(image, gallery, -1));
  earlier.disabled = index === 0;
  const later = button(`Move image ${n} later`, "▶", () => move(image, gallery, 1));
  later.disabled = index === gallery.length - 1;
  const remove = button(`Delete image ${n}`, "Delete", () => deleteImage(image, n), "delete");
  actions.append(main, earlier, later, remove);

  item.append(picture, caption, actions);

  item.addEventListener("dragstart", (event) => {
    dragging = { id: image.id, option: image.option ?? "" };
    event.dataTransfer.setData(IMAGE_MIME, image.id);
    event.dataTransfer.effectAllowed = "move";
    item.classList.add("dragging");
  });
  item.addEventListener("dragend", () => {
    dragging = null;
    item.classList.remove("dragging");
    for (const el of document.querySelectorAll(".drop-target")) el.classList.remove("drop-target");
  });
  item.addEventListener("dragover", (event) => {
    if (dragging && dragging.option === (image.option ?? "") && dragging.id !== image.id) {
      event.preventDefault();
      event.dataTransfer.dropEffect = "move";
      item.classList.add("drop-target");
    }
  });
  item.addEventListener("dragleave", () => item.classList.remove("drop-target"));
  item.addEventListener("drop", (event) => {
    item.classList.remove("drop-target");
    if (!dragging || dragging.option !== (image.option ?? "")) return;
    event.preventDefault();
    event.stopPropagation();
    const ids = gallery.map((i) => i.id).filter((id) => id !== dragging.id);
    ids.splice(gallery.findIndex((i) => i.id === image.id), 0, dragging.id);
    dragging = null;
    reorder(ids);
  });
  return item;
}

// ---- Changes ----------------------------------------------------------------------------

async function mutate(what, query, variables, field) {
  if (busy) return false;
  busy = true;
  clearMessages();
  try {
    const data = await graphql(query, variables);
    const ok = checkPayload(what, data[field]);
    await reload();
    if (ok) say("info", `${what}: done.`);
    return ok;
  } catch (error) {
    reportFailure(what, error);
    return false;
  } finally {
    busy = false;
  }
}

function reorder(ids) {
  return mutate("Reordering", REORDER_MUTATION, { ids }, "reorderImages");
}

function move(image, gallery, step) {
  const ids = gallery.map((i) => i.id);
  const from = ids.indexOf(image.id);
  const to = from + step;
  if (to < 0 || to >= ids.length) return;
  [ids[from], ids[to]] = [ids[to], ids[from]];
  reorder(ids);
}

function setMain(image) {
  if (image.isMain) return;
  mutate("Making the main image", SET_MAIN_MUTATION, { id: image.id }, "setMainImage");
}

function deleteImage(image, n) {
  if (!window.confirm(`Delete image ${n} of ${product.sku}? This cannot be undone.`)) return;
  mutate("Deleting", DELETE_MUTATION, { ids: [image.id] }, "deleteImages");
}

async function uploadFiles(files) {
  if (!product || !files.length || busy) return;
  busy = true;
  clearMessages();
  const total = files.reduce((sum, file) => sum + Math.max(file.size, 1), 0);
  let done = 0;
  const progress = $("upload-progress");
  const label = $("upload-label");
  $("upload").hidden = false;
  progress.value = 0;
  const problems = [];
  let stored = 0;
  for (const [index, file] of files.entries()) {
    label.textContent = `Uploading ${index + 1} of ${files.length}: ${file.name}`;
    const weight = Math.max(file.size, 1);
    try {
      const data = await uploadFile(
        UPLOAD_MUTATION,
        { input: { productId: product.id, file: null } },
        "variables.input.file",
        file,
        (fraction) => {
          progress.value = Math.round(((done + fraction * weight) / total) * 100);
        },
      );
      const payload = data.uploadImage;
      if (payload.userErrors.length) {
        problems.push(...payload.userErrors.map((e) => describeUserError(e, `${file.name}: `)));
      } else {
        stored += 1;
      }
    } catch (error) {
      const messages = error instanceof GatewayError ? error.errors : [{ message: String(error) }];
      for (const e of messages) {
        const code = e.extensions && e.extensions.code;
        problems.push(`${file.name}: ${code ? `${code}: ` : ""}${e.message}`);
      }
    }
    done += weight;
    progress.value = Math.round((done / total) * 100);
  }
  label.textContent = `Uploaded ${stored} of ${files.length}.`;
  busy = false;
  await reload();
  if (problems.length) say("error", `${files.length - stored} file(s) were not stored.`, problems);
  if (stored) say("info", `${stored} image${stored === 1 ? "" : "s"} uploaded.`);
}

// ---- Wiring -------------------------------------------------------------------------------

function setUpDropzone() {
  const zone = $("dropzone");
  const hasFiles = (event) => event.dataTransfer && [...event.dataTransfer.types].includes("Files");
  zone.addEventListener("dragover", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    zone.classList.remove("over");
    if (!hasFiles(event)) return;
    event.preventDefault();
    uploadFiles([...event.dataTransfer.files]);
  });
  // A file dropped beside the zone must not make the browser leave the page.
  window.addEventListener("dragover", (event) => {
    if (hasFiles(event)) event.preventDefault();
  });
  window.addEventListener("drop", (event) => {
    if (hasFiles(event)) event.preventDefault();
  });
  $("files").addEventListener("change", async (event) => {
    const files = [...event.target.files];
    await uploadFiles(files);
    event.target.value = "";
  });
}

function start() {
  $("signin").addEventListener("submit", signIn);
  $("signout").addEventListener("click", signOut);
  $("pick").addEventListener("submit", async (event) => {
    event.preventDefault();
    clearMessages();
    const sku = $("sku").value.trim();
    if (sku) await openProduct(sku);
  });
  setUpDropzone();
  showSignedIn();
  const sku = new URLSearchParams(location.hash.slice(1)).get("sku");
  if (token() && sku) {
    $("sku").value = sku;
    openProduct(sku);
  }
  document.body.dataset.ready = "true";
}

start();
