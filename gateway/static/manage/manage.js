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
    id sku name options
    images {
      id url position isMain option alt imageType sourceUrl width height mimeType fileSize
      renditions(sizes: [THUMBNAIL]) { url url2x width height }
    }
    videos { id url position mimeType fileSize durationSeconds }
    downloadableImages { id url position imageType status error updatedAt image { id } }
  }
}`;
const SEARCH_QUERY = `query ManageSearch($search: String!) {
  products(first: 20, filter: { search: $search }) { totalCount edges { node { sku name } } }
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
const UPDATE_IMAGE_MUTATION = `mutation ManageUpdateImage($id: ID!, $input: UpdateImageInput!) {
  updateImage(id: $id, input: $input) { image { id option position alt imageType } ${ERRORS} }
}`;
const OPTIONS_MUTATION = `mutation ManageOptions($id: ID!, $options: [String!]!) {
  productUpdate(id: $id, input: { options: $options }) { product { id options } ${ERRORS} }
}`;
const UPLOAD_VIDEO_MUTATION = `mutation ManageUploadVideo($input: UploadVideoInput!) {
  uploadVideo(input: $input) { video { id } ${ERRORS} }
}`;
const REORDER_VIDEOS_MUTATION = `mutation ManageReorderVideos($ids: [ID!]!) {
  reorderVideos(videoIds: $ids) { product { id } ${ERRORS} }
}`;
const DELETE_VIDEOS_MUTATION = `mutation ManageDeleteVideos($ids: [ID!]!) {
  deleteVideos(ids: $ids) { deletedIds ${ERRORS} }
}`;
const SYNC_MUTATION = `mutation ManageSync($input: SyncImagesInput!) {
  syncImages(input: $input) { images { url status error } ${ERRORS} }
}`;
const IMAGE_TYPES = ["DEFAULT", "SWATCH", "PICTO"];

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

let product = null; // the product shown: {id, sku, name, options, images, videos, ...}
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

/** A new action starts: earlier messages and the last upload's status go. */
function clearMessages() {
  $("messages").replaceChildren();
  $("sync-outcome").replaceChildren();
  $("upload").hidden = true;
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

// ---- Finding and opening a product ---------------------------------------------------------

async function findProduct(text) {
  const results = $("results");
  results.hidden = true;
  results.replaceChildren();
  let data;
  try {
    data = await graphql(SEARCH_QUERY, { search: text });
  } catch (error) {
    reportFailure("Searching", error);
    return;
  }
  const found = data.products.edges.map((edge) => edge.node);
  const exact = found.find((node) => node.sku === text);
  if (exact || found.length === 1) {
    await openProduct((exact || found[0]).sku);
    return;
  }
  if (!found.length) {
    product = null;
    $("product").hidden = true;
    say("error", `No product has the SKU “${text}”.`, ["No product name contains it either."]);
    return;
  }
  for (const node of found) {
    const item = document.createElement("li");
    const open = button(`Open ${node.sku}`, `${node.sku} — ${node.name}`, () => {
      results.hidden = true;
      openProduct(node.sku);
    });
    item.append(open);
    results.append(item);
  }
  results.hidden = false;
  const more = data.products.totalCount - found.length;
  say("info", `${data.products.totalCount} products match “${text}”.`, more > 0 ? [`${more} more not shown: refine the search.`] : []);
  results.querySelector("button").focus();
}

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

/** Load the product again and draw it, keeping the keyboard focus on the same control. */
async function reload() {
  if (!product) return;
  const focused = document.activeElement && document.activeElement.dataset.focus;
  await openProduct(product.sku);
  if (focused) {
    const again = document.querySelector(`[data-focus="${CSS.escape(focused)}"]`);
    if (again && !again.disabled) again.focus();
    else if (again) again.closest("li")?.querySelector("button:not(:disabled)")?.focus();
  }
}

// ---- The galleries ------------------------------------------------------------------------

/** Every gallery: the main one (""), the declared options in order, then any other option in
 * use; each with its images in position order. */
function galleries() {
  const names = ["", ...product.options];
  for (const image of product.images) {
    const key = image.option ?? "";
    if (!names.includes(key)) names.push(key);
  }
  return names.map((name) => [
    name,
    product.images
      .filter((image) => (image.option ?? "") === name)
      .sort((a, b) => a.position - b.position),
  ]);
}

function galleryName(option) {
  return option === "" ? "Main gallery" : `Option “${option}”`;
}

function render() {
  $("product").hidden = false;
  $("product-title").textContent = `${product.name} (${product.sku})`;
  const count = product.images.length;
  const videos = product.videos.length;
  $("product-summary").textContent =
    (count === 0 ? "No images yet." : `${count} image${count === 1 ? "" : "s"}.`) +
    (videos ? ` ${videos} video${videos === 1 ? "" : "s"}.` : "");
  const all = galleries();
  const container = $("galleries");
  container.replaceChildren();
  for (const [option, images] of all) container.append(gallerySection(option, images, all));
  renderVideos();
  renderErp();
}

function gallerySection(option, images, all) {
  const section = document.createElement("section");
  section.className = "gallery";
  section.dataset.option = option;
  const head = document.createElement("div");
  head.className = "gallery-head";
  const heading = document.createElement("h3");
  heading.textContent = galleryName(option);
  head.append(heading);
  const inputId = `upload-${all.findIndex(([name]) => name === option)}`;
  const choose = document.createElement("label");
  choose.className = "button";
  choose.htmlFor = inputId;
  choose.textContent = "Upload here";
  const input = document.createElement("input");
  input.type = "file";
  input.id = inputId;
  input.multiple = true;
  input.accept = "image/png,image/jpeg,image/gif,image/webp";
  input.setAttribute("aria-label", `Upload images into ${galleryName(option)}`);
  input.addEventListener("change", async () => {
    await uploadImages([...input.files], option);
    input.value = "";
  });
  head.append(choose, input);
  if (option !== "" && product.options.includes(option) && !images.length) {
    head.append(
      button(`Remove the gallery ${galleryName(option)}`, "Remove gallery", () =>
        setOptions(product.options.filter((name) => name !== option), "Removing the gallery"),
      ),
    );
  }
  const list = document.createElement("ol");
  list.className = "thumbs";
  list.setAttribute("aria-label", galleryName(option));
  images.forEach((image, index) => list.append(thumbnail(image, index, images, all)));
  section.append(head, list);
  if (!images.length) {
    const empty = document.createElement("p");
    empty.className = "empty";
    empty.textContent = "No images in this gallery yet: upload or drag some here.";
    section.append(empty);
  }
  // A picture dropped on another gallery moves there (at the end, or before the picture
  // it is dropped on).
  section.addEventListener("dragover", (event) => {
    if (dragging && dragging.option !== option) {
      event.preventDefault();
      event.dataTransfer.dropEffect = "move";
      section.classList.add("over");
    }
  });
  section.addEventListener("dragleave", () => section.classList.remove("over"));
  section.addEventListener("drop", (event) => {
    section.classList.remove("over");
    if (!dragging || dragging.option === option) return;
    event.preventDefault();
    const target = event.target.closest("li.thumb");
    const position = target ? Number(target.dataset.position) : null;
    const id = dragging.id;
    dragging = null;
    moveToGallery(id, option, position);
  });
  return section;
}

function labelled(text, control, id) {
  const label = document.createElement("label");
  label.htmlFor = id;
  label.textContent = text;
  control.id = id;
  return [label, control];
}

function thumbnail(image, index, gallery, all) {
  const n = index + 1;
  const where = `image ${n} of ${galleryName(image.option ?? "")}`;
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
  picture.alt = image.alt || `${product.name}, ${where}`;
  picture.draggable = false;
  picture.title = image.isMain ? "Main image" : "Click to make this the main image";
  picture.addEventListener("click", () => setMain(image));

  const caption = document.createElement("div");
  caption.className = "caption";
  const position = document.createElement("span");
  position.className = "position";
  position.textContent = `#${n}`;
  caption.append(position);
  if (image.isMain) caption.append(badge("Main"));
  if (image.sourceUrl) caption.append(badge("ERP", "erp", `Downloaded from ${image.sourceUrl}`));
  const size = document.createElement("span");
  size.className = "size";
  size.textContent = `${image.width}×${image.height}`;
  caption.append(size);
  item.append(picture, caption);
  if (image.sourceUrl) {
    const source = document.createElement("p");
    source.className = "source";
    source.textContent = image.sourceUrl;
    item.append(source);
  }

  const fields = document.createElement("div");
  fields.className = "fields";
  const alt = document.createElement("input");
  alt.value = image.alt ?? "";
  alt.maxLength = 1000;
  alt.dataset.focus = `${image.id}:alt`;
  alt.setAttribute("aria-label", `Alt text of ${where}`);
  alt.addEventListener("change", () =>
    updateImage("Saving the alt text", image, { alt: alt.value.trim() || null }),
  );
  alt.addEventListener("keydown", (event) => {
    if (event.key === "Enter") alt.blur();
  });
  const type = document.createElement("select");
  type.dataset.focus = `${image.id}:type`;
  type.setAttribute("aria-label", `Type of ${where}`);
  for (const value of IMAGE_TYPES) type.add(new Option(value.toLowerCase(), value));
  type.value = image.imageType;
  type.addEventListener("change", () =>
    updateImage("Saving the image type", image, { imageType: type.value }),
  );
  const move = document.createElement("select");
  move.dataset.focus = `${image.id}:gallery`;
  move.setAttribute("aria-label", `Gallery of ${where}`);
  for (const [name] of all) move.add(new Option(galleryName(name), name));
  move.value = image.option ?? "";
  move.addEventListener("change", () => moveToGallery(image.id, move.value, null));
  fields.append(
    ...labelled("Alt", alt, `alt-${image.id}`),
    ...labelled("Type", type, `type-${image.id}`),
    ...labelled("Gallery", move, `gallery-${image.id}`),
  );

  const actions = document.createElement("div");
  actions.className = "actions";
  const main = button(`Make ${where} the main image`, "★ Main", () => setMain(image), "main");
  main.disabled = image.isMain;
  main.setAttribute("aria-pressed", String(image.isMain));
  const earlier = button(`Move ${where} earlier`, "◀", () => moveWithin(image, gallery, -1));
  earlier.disabled = index === 0;
  earlier.dataset.focus = `${image.id}:earlier`;
  const later = button(`Move ${where} later`, "▶", () => moveWithin(image, gallery, 1));
  later.disabled = index === gallery.length - 1;
  later.dataset.focus = `${image.id}:later`;
  const remove = button(`Delete ${where}`, "Delete", () => deleteImage(image, where), "delete");
  actions.append(main, earlier, later, remove);
  item.append(fields, actions);
  // Alt+arrow keys on a picture's controls move it within its gallery.
  item.addEventListener("keydown", (event) => {
    if (!event.altKey || !["ArrowLeft", "ArrowRight"].includes(event.key)) return;
    event.preventDefault();
    (event.key === "ArrowLeft" ? earlier : later).focus();
    moveWithin(image, gallery, event.key === "ArrowLeft" ? -1 : 1);
  });

  item.addEventListener("dragstart", (event) => {
    dragging = { id: image.id, option: image.option ?? "" };
    event.dataTransfer.setData(IMAGE_MIME, image.id);
    event.dataTransfer.effectAllowed = "move";
    item.classList.add("dragging");
  });
  item.addEventListener("dragend", () => {
    dragging = null;
    item.classList.remove("dragging");
    for (const el of document.querySelectorAll(".drop-target, .over")) {
      el.classList.remove("drop-target", "over");
    }
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

function badge(text, className = "", title = "") {
  const element = document.createElement("span");
  element.className = `badge ${className}`.trim();
  element.textContent = text;
  if (title) element.title = title;
  return element;
}

// ---- Videos and ERP images ---------------------------------------------------------------

function renderVideos() {
  const list = $("videos");
  list.replaceChildren();
  const videos = [...product.videos].sort((a, b) => a.position - b.position);
  if (!videos.length) {
    const empty = document.createElement("li");
    empty.className = "help";
    empty.textContent = "No videos yet.";
    list.append(empty);
  }
  videos.forEach((video, index) => {
    const n = index + 1;
    const item = document.createElement("li");
    item.className = "video";
    item.dataset.id = video.id;
    const player = document.createElement("video");
    player.src = video.url;
    player.controls = true;
    player.preload = "metadata";
    player.setAttribute("aria-label", `Video ${n}`);
    const caption = document.createElement("div");
    caption.className = "caption";
    const position = document.createElement("span");
    position.textContent = `#${n}`;
    const size = document.createElement("span");
    size.className = "size";
    const seconds = video.durationSeconds ? `${video.durationSeconds.toFixed(1)} s, ` : "";
    size.textContent = `${seconds}${Math.round(video.fileSize / 1024)} KiB`;
    caption.append(position, size);
    const ids = videos.map((v) => v.id);
    const actions = document.createElement("div");
    actions.className = "actions";
    const swap = (step) => {
      const order = [...ids];
      [order[index], order[index + step]] = [order[index + step], order[index]];
      mutate("Reordering the videos", REORDER_VIDEOS_MUTATION, { ids: order }, "reorderVideos");
    };
    const earlier = button(`Move video ${n} earlier`, "◀", () => swap(-1));
    earlier.disabled = index === 0;
    earlier.dataset.focus = `${video.id}:earlier`;
    const later = button(`Move video ${n} later`, "▶", () => swap(1));
    later.disabled = index === videos.length - 1;
    later.dataset.focus = `${video.id}:later`;
    const remove = button(
      `Delete video ${n}`,
      "Delete",
      () => {
        if (!window.confirm(`Delete video ${n} of ${product.sku}? This cannot be undone.`)) return;
        mutate("Deleting the video", DELETE_VIDEOS_MUTATION, { ids: [video.id] }, "deleteVideos");
      },
      "delete",
    );
    actions.append(earlier, later, remove);
    item.append(player, caption, actions);
    list.append(item);
  });
}

function erpItems() {
  return [...product.downloadableImages].sort((a, b) => a.position - b.position);
}

function renderErp() {
  const items = erpItems();
  const failed = items.filter((item) => item.status === "FAILED").length;
  const last = items.map((item) => item.updatedAt).sort().at(-1);
  $("erp-summary").textContent = items.length
    ? `${items.length} URL${items.length === 1 ? "" : "s"} from the ERP` +
      `${failed ? `, ${failed} failed` : ""}; last synced ${new Date(last).toLocaleString()}.`
    : "The ERP has sent no image for this product.";
  $("resync").disabled = !items.length;
  const list = $("erp-list");
  list.replaceChildren();
  for (const item of items) {
    const row = document.createElement("li");
    const status = document.createElement("span");
    status.className = item.status;
    status.textContent = item.status;
    row.append(status, ` #${item.position + 1} ${item.url}`);
    if (item.error) row.append(` — ${item.error}`);
    list.append(row);
  }
}

async function resync() {
  const items = erpItems().map((item) => ({
    url: item.url,
    position: item.position,
    imageType: item.imageType,
  }));
  if (!items.length || busy) return;
  busy = true;
  clearMessages();
  const outcome = $("sync-outcome");
  try {
    const data = await graphql(SYNC_MUTATION, { input: { productSku: product.sku, images: items } });
    const payload = data.syncImages;
    await reload();
    if (checkPayload("Re-sync", payload)) {
      const stored = payload.images.filter((image) => image.status === "DOWNLOADED").length;
      say("info", `Re-sync: done. ${stored} of ${payload.images.length} images are downloaded.`);
    } else {
      const lines = payload.userErrors.map((e) => describeUserError(e));
      say("error", "Re-sync failed: the ERP list was left as it was.", lines);
    }
    outcome.replaceChildren(...[...$("messages").children].map((node) => node.cloneNode(true)));
  } catch (error) {
    reportFailure("Re-sync", error);
  } finally {
    busy = false;
  }
}

// ---- Changes ----------------------------------------------------------------------------

async function mutate(what, query, variables, field) {
  if (busy) return false;
  busy = true;
  clearMessages();
  try {
    const data = await graphql(query, variables);
    const ok = checkPayload(what, data[field]);
    busy = false;
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

function moveWithin(image, gallery, step) {
  const ids = gallery.map((i) => i.id);
  const from = ids.indexOf(image.id);
  const to = from + step;
  if (to < 0 || to >= ids.length) return;
  [ids[from], ids[to]] = [ids[to], ids[from]];
  reorder(ids);
}

function updateImage(what, image, input) {
  return mutate(what, UPDATE_IMAGE_MUTATION, { id: image.id, input }, "updateImage");
}

function moveToGallery(id, option, position) {
  const input = { option: option === "" ? null : option };
  if (position !== null) input.position = position;
  return mutate(`Moving to ${galleryName(option)}`, UPDATE_IMAGE_MUTATION, { id, input }, "updateImage");
}

function setOptions(options, what) {
  return mutate(what, OPTIONS_MUTATION, { id: product.id, options }, "productUpdate");
}

async function addOption(event) {
  event.preventDefault();
  const name = $("new-option").value.trim();
  if (!product || !name) return;
  // Options already used by images are declared with it, so that declaring one refuses none.
  const used = product.images.map((image) => image.option).filter((option) => option !== null);
  const options = [...new Set([...product.options, ...used, name])];
  if (await setOptions(options, `Adding the gallery “${name}”`)) $("new-option").value = "";
}

function setMain(image) {
  if (image.isMain) return;
  mutate("Making the main image", SET_MAIN_MUTATION, { id: image.id }, "setMainImage");
}

function deleteImage(image, where) {
  if (!window.confirm(`Delete ${where} of ${product.sku}? This cannot be undone.`)) return;
  mutate("Deleting", DELETE_MUTATION, { ids: [image.id] }, "deleteImages");
}

/** Upload files one multipart request each, with one progress bar for all of them. */
async function uploadAll(files, { query, field, input, noun }) {
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
        query,
        { input: { ...input, productId: product.id, file: null } },
        "variables.input.file",
        file,
        (fraction) => {
          progress.value = Math.round(((done + fraction * weight) / total) * 100);
        },
      );
      const payload = data[field];
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
  if (stored) say("info", `${stored} ${noun}${stored === 1 ? "" : "s"} uploaded.`);
}

function uploadImages(files, option = "") {
  const input = option === "" ? {} : { option };
  return uploadAll(files, { query: UPLOAD_MUTATION, field: "uploadImage", input, noun: "image" });
}

function uploadVideos(files) {
  return uploadAll(files, {
    query: UPLOAD_VIDEO_MUTATION,
    field: "uploadVideo",
    input: {},
    noun: "video",
  });
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
    uploadImages([...event.dataTransfer.files]);
  });
  // A file dropped beside the zone must not make the browser leave the page.
  window.addEventListener("dragover", (event) => {
    if (hasFiles(event)) event.preventDefault();
  });
  window.addEventListener("drop", (event) => {
    if (hasFiles(event)) event.preventDefault();
  });
  for (const [id, upload] of [
    ["files", uploadImages],
    ["video-files", uploadVideos],
  ]) {
    $(id).addEventListener("change", async (event) => {
      const files = [...event.target.files];
      await upload(files);
      event.target.value = "";
    });
  }
}

function start() {
  $("signin").addEventListener("submit", signIn);
  $("signout").addEventListener("click", signOut);
  $("pick").addEventListener("submit", async (event) => {
    event.preventDefault();
    clearMessages();
    const text = $("sku").value.trim();
    if (text) await findProduct(text);
  });
  $("add-option").addEventListener("submit", addOption);
  $("resync").addEventListener("click", resync);
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
