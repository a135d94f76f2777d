"""Schema-driven fuzzing: for every root field of the exported schema (schema.graphql),
hypothesis-graphql writes valid queries and mutations with arbitrary arguments and
selections, sent with the admin token to a real ``media-gateway serve`` over TCP.

The arguments mix what a client could send by mistake with what makes the server do real
work: global ids of the objects the data set holds (products, images, a video, synced
images), ids of the wrong type, out of range or malformed; the data set's SKUs, cursors and
URLs (served by a loopback image server the gateway may fetch from); and files, as GraphQL
multipart uploads, real or damaged (media_factory's PNG, JPEG, GIF, MP4; truncated; random
bytes). Mutations change the data set; when it runs thin it is seeded again.

Whatever the operation: the status is below 500, no error is the masked "Internal server
error.", every error from a resolver (an error with a path) carries ``extensions.code``, every
request answers within a generous timeout (a hang fails instead of stalling the run), and
/healthz keeps answering while the fuzzing runs (a probe in a thread of its own) and after.
The examples are derandomized (the suite's ``ci`` profile), so a failure reproduces."""

from __future__ import annotations

import base64
import itertools
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import anyio
import httpx
import pytest
from graphql import ValueNode, build_schema
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from hypothesis_graphql import nodes
from property_support import fresh_database

from schema.ids import to_global_id
from support.image_server import ImageServer, running_server
from support.media_factory import image_bytes, mp4_bytes
from support.schema_fuzz import FilePart, Operation, multipart, operations
from support.server_process import GatewayProcess, running_gateway

pytestmark = pytest.mark.live

SDL = (Path(__file__).parents[2] / "schema.graphql").read_text()
SCHEMA = build_schema(SDL)
QUERY_FIELDS = sorted(SCHEMA.query_type.fields) if SCHEMA.query_type else []
MUTATION_FIELDS = sorted(SCHEMA.mutation_type.fields) if SCHEMA.mutation_type else []

REQUEST_TIMEOUT = httpx.Timeout(30.0)
"""Per request: generous for a loaded CI machine, and still a failure instead of a hang."""
HEALTH_TIMEOUT = httpx.Timeout(10.0)
HEALTH_EVERY = 0.5
MASKED = "Internal server error."

QUERY_EXAMPLES = 150
MUTATION_EXAMPLES = 150
"""Per root field; together about two minutes on a two-core machine."""

FUZZ = settings(
    max_examples=QUERY_EXAMPLES,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

PNG = image_bytes("PNG", (40, 30), seed=1)
JPEG = image_bytes("JPEG", (48, 32), orientation=6, seed=2)
GIF = image_bytes("GIF", (24, 24), seed=3)
MP4 = mp4_bytes(32, 24, seconds=0.3)
REAL_FILES = {"image.png": PNG, "photo.jpg": JPEG, "anim.gif": GIF, "clip.mp4": MP4}

# The data set -------------------------------------------------------------------------

POOL_QUERY = """
query Pool {
  products(first: 100, sortBy: CREATED_AT) {
    pageInfo { endCursor }
    edges {
      cursor
      node {
        id sku
        images { id }
        videos { id }
        downloadableImages { id }
      }
    }
  }
}
"""


@dataclass
class Pool:
    """What the data set holds now, as the arguments a client would send about it."""

    ids: list[str] = field(default_factory=list)
    skus: list[str] = field(default_factory=list)
    cursors: list[str] = field(default_factory=list)
    images: int = 0
    videos: int = 0
    downloadables: int = 0

    @property
    def thin(self) -> bool:
        return len(self.skus) < 3 or self.images < 3 or not self.videos or not self.downloadables


class Fuzzed:
    """The running gateway, its client and data set, and the strategies over them (a plain
    class: a failure's report shows its repr, not its fields)."""

    def __init__(
        self, gateway: GatewayProcess, client: httpx.Client, images: ImageServer, probe: HealthProbe
    ) -> None:
        self.gateway = gateway
        self.client = client
        self.images = images
        self.probe = probe
        self.urls = [images.url("/synced.png"), images.url("/synced.jpg")]
        self.pool = Pool()
        self.batches = itertools.count()
        self.strategies: dict[str, st.SearchStrategy[Operation]] = {}

    def operations(
        self, kind: Literal["query", "mutation"], root_field: str
    ) -> st.SearchStrategy[Operation]:
        """Built once per root field (hypothesis-graphql walks the schema for each)."""
        if root_field not in self.strategies:
            self.strategies[root_field] = operations(SDL, kind, root_field, scalars(self))
        return self.strategies[root_field]

    def __repr__(self) -> str:  # what a failure's report shows of the fixture
        return f"Fuzzed({self.gateway.base})"

    def post(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self.client.post("/graphql", json=body)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        assert "errors" not in answer, answer
        data: dict[str, Any] = answer["data"]
        return data

    def upload(self, document: str, variables: dict[str, Any], path: str, name: str) -> None:
        form = {
            "operations": json.dumps({"query": document, "variables": variables}),
            "map": json.dumps({"0": [f"variables.{path}"]}),
        }
        response = self.client.post(
            "/graphql", data=form, files={"0": (name, REAL_FILES[name], "application/octet-stream")}
        )
        assert response.status_code == 200, response.text
        assert "errors" not in response.json(), response.text

    def seed(self) -> None:
        """Three products: one with three images (two galleries) and a video, one with an
        image, one with two synced images downloaded from the image server."""
        batch = next(self.batches)
        ids = []
        for letter in "ABC":
            data = self.post(
                {
                    "query": "mutation($i: ProductCreateInput!) { productCreate(input: $i) "
                    "{ product { id } userErrors { code } } }",
                    "variables": {"i": {"sku": f"FUZZ-{batch}-{letter}", "name": f"Fuzz {letter}"}},
                }
            )
            ids.append(data["productCreate"]["product"]["id"])
        upload = (
            "mutation($input: UploadImageInput!) { uploadImage(input: $input) "
            "{ image { id } userErrors { code } } }"
        )
        for product, name, option in [
            (ids[0], "image.png", None),
            (ids[0], "photo.jpg", None),
            (ids[0], "anim.gif", "red"),
            (ids[1], "image.png", None),
        ]:
            variables = {"input": {"productId": product, "file": None, "option": option}}
            self.upload(upload, variables, "input.file", name)
        self.upload(
            "mutation($input: UploadVideoInput!) { uploadVideo(input: $input) "
            "{ video { id } userErrors { code } } }",
            {"input": {"productId": ids[0], "file": None}},
            "input.file",
            "clip.mp4",
        )
        data = self.post(
            {
                "query": "mutation($i: SyncImagesInput!) { syncImages(input: $i) "
                "{ images { status } userErrors { code } } }",
                "variables": {
                    "i": {
                        "productSku": f"FUZZ-{batch}-C",
                        "images": [{"url": url, "position": n} for n, url in enumerate(self.urls)],
                    }
                },
            }
        )
        assert data["syncImages"]["userErrors"] == [], data

    def refresh(self) -> None:
        """Read the data set again (mutations change it), and seed it again when thin."""
        for _ in range(2):
            data = self.post({"query": POOL_QUERY})["products"]
            nodes_ = [edge["node"] for edge in data["edges"]]
            pool = Pool(
                ids=[node["id"] for node in nodes_]
                + [
                    item["id"]
                    for node in nodes_
                    for kind in ("images", "videos")
                    for item in node[kind]
                ]
                + [item["id"] for node in nodes_ for item in node["downloadableImages"]],
                skus=[node["sku"] for node in nodes_],
                cursors=[edge["cursor"] for edge in data["edges"]],
                images=sum(len(node["images"]) for node in nodes_),
                videos=sum(len(node["videos"]) for node in nodes_),
                downloadables=sum(len(node["downloadableImages"]) for node in nodes_),
            )
            self.pool = pool
            if not pool.thin:
                return
            self.seed()


class HealthProbe:
    """GET /healthz every HEALTH_EVERY seconds from a thread of its own while fuzzing; every
    answer that is not a 200 within HEALTH_TIMEOUT is kept."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.failures: list[str] = []
        self.probes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="healthz-probe", daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.base_url, timeout=HEALTH_TIMEOUT) as client:
            while not self._stop.wait(HEALTH_EVERY):
                self.probes += 1
                try:
                    response = client.get("/healthz")
                except httpx.HTTPError as exc:
                    self.failures.append(f"/healthz: {exc!r}")
                    continue
                if response.status_code != 200:
                    self.failures.append(f"/healthz: {response.status_code} {response.text}")

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.fixture(scope="module")
def image_server() -> Iterator[ImageServer]:
    yield from running_server()


@pytest.fixture(scope="module")
def fuzzed(
    migrated_database: str, image_server: ImageServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Fuzzed]:
    root = tmp_path_factory.mktemp("schema-fuzz")
    database_url = anyio.run(fresh_database, migrated_database, root)
    image_server.serve("/synced.png", PNG)
    image_server.serve("/synced.jpg", JPEG)
    image_server.serve("/video.mp4", MP4)
    image_server.serve("/junk.png", b"not an image at all")
    with running_gateway(
        root, DATABASE_URL=database_url, FETCH_ALLOW_HOSTS="127.0.0.1", FETCH_TIMEOUT="5"
    ) as gateway:
        headers = {"Authorization": f"Bearer {gateway.admin_token()}"}
        with (
            httpx.Client(base_url=gateway.base, headers=headers, timeout=REQUEST_TIMEOUT) as client,
            HealthProbe(gateway.base) as probe,
        ):
            state = Fuzzed(gateway, client, image_server, probe)
            state.refresh()
            yield state
        assert probe.probes > 0
        assert probe.failures == [], probe.failures
        assert httpx.get(f"{gateway.base}/healthz", timeout=HEALTH_TIMEOUT).status_code == 200


# Strategies ---------------------------------------------------------------------------

TYPE_NAMES = ("Product", "Image", "Video", "DownloadableImage", "Gallery")
BASE64_NOISE = st.binary(min_size=1, max_size=24).map(lambda b: base64.b64encode(b).decode())


def global_ids(fuzzed: Fuzzed) -> st.SearchStrategy[str]:
    """Ids of the data set's objects (most of the time), then wrong, odd and malformed ones."""
    existing = st.integers(0, 10_000).map(lambda i: fuzzed.pool.ids[i % len(fuzzed.pool.ids)])
    decoded = st.tuples(st.sampled_from(TYPE_NAMES), st.integers(-5, 2**70))
    odd = st.one_of(
        decoded.map(lambda t: to_global_id(t[0], t[1]) if t[1] > 0 else _encode(f"{t[0]}:{t[1]}")),
        st.sampled_from(
            ["Product:0", "Product:01", "Product: 1", "Image:1:2", ":1", "Product:"]
        ).map(_encode),
        BASE64_NOISE,
        st.text(max_size=12),
    )
    return st.one_of(existing, existing, odd)


def _encode(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def strings(fuzzed: Fuzzed) -> st.SearchStrategy[str]:
    """Any text, and text the data set gives meaning to: its SKUs, cursors, URLs, base64 of
    real images, filenames."""
    pool = fuzzed.pool
    server = fuzzed.images
    meaningful = st.one_of(
        st.integers(0, 10_000).map(lambda i: pool.skus[i % len(pool.skus)]),
        st.integers(0, 10_000).map(lambda i: pool.cursors[i % len(pool.cursors)]),
        st.sampled_from(
            [
                *fuzzed.urls,
                server.url("/video.mp4"),
                server.url("/junk.png"),
                server.url("/missing.png"),
                "http://127.0.0.2:9/refused.png",
                "ftp://example.invalid/a.png",
                "not a url",
            ]
        ),
        st.sampled_from([PNG, JPEG, b"\x89PNG\r\n", b""]).map(
            lambda b: base64.b64encode(b).decode()
        ),
        st.sampled_from(["red", "image.png", "../etc/passwd", "a b.jpg", "x" * 300]),
    )
    text = st.text(max_size=40)
    repeated = st.tuples(st.text(min_size=1, max_size=4), st.integers(64, 3000)).map(
        lambda t: t[0] * t[1]
    )
    return st.one_of(meaningful, meaningful, text, repeated)


def scalars(fuzzed: Fuzzed) -> dict[str, st.SearchStrategy[ValueNode]]:
    return {
        "ID": global_ids(fuzzed).map(nodes.String),
        "String": strings(fuzzed).map(nodes.String),
        "DateTime": st.just(nodes.String("2024-01-01T00:00:00+00:00")),
    }


def file_parts() -> st.SearchStrategy[FilePart]:
    """Small real files, damaged ones, random bytes, nothing at all."""
    real = st.sampled_from(sorted(REAL_FILES))
    intact = real.map(lambda name: (name, REAL_FILES[name]))
    truncated = st.tuples(real, st.floats(0, 1)).map(
        lambda t: (t[0], REAL_FILES[t[0]][: int(len(REAL_FILES[t[0]]) * t[1])])
    )
    noise = st.tuples(st.sampled_from(["noise.png", "noise", "x.mp4"]), st.binary(max_size=512))
    content_types = st.sampled_from(["application/octet-stream", "image/png", "video/mp4", ""])
    return st.builds(
        lambda named, content_type: FilePart(named[0], named[1], content_type),
        st.one_of(intact, intact, truncated, noise),
        content_types,
    )


@st.composite
def file_map(draw: st.DrawFn, operation: Operation) -> list[tuple[FilePart, tuple[str, ...]]]:
    """One part per upload variable; now and then one part for two variables (the spec
    allows a file to fill several)."""
    names = list(operation.uploads)
    entries: list[tuple[FilePart, tuple[str, ...]]] = []
    while names:
        share = len(names) > 1 and draw(st.integers(0, 9)) == 0
        taken, names = (names[:2], names[2:]) if share else (names[:1], names[1:])
        entries.append((draw(file_parts()), tuple(taken)))
    return entries


# Checks -------------------------------------------------------------------------------


def problems_of(response: httpx.Response) -> list[str]:
    """What the response does wrong: a 5xx, a masked internal error, a resolver's error
    without a code."""
    problems = []
    if response.status_code >= 500:
        problems.append(f"status {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        body = None
    errors = body.get("errors") if isinstance(body, dict) else None
    for error in errors or []:
        if error.get("message") == MASKED:
            problems.append(f"masked error at {error.get('path')}")
        elif error.get("path") and not (error.get("extensions") or {}).get("code"):
            problems.append(f"no code: {error.get('message')!r} at {error.get('path')}")
    return problems


def outcome_of(response: httpx.Response) -> str:
    """A label for the statistics (``--hypothesis-show-statistics``): how far requests get."""
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} not JSON"
    errors = body.get("errors") if isinstance(body, dict) else None
    if errors:
        return f"{response.status_code} error: {str(errors[0].get('message'))[:50]}"
    data = body.get("data") if isinstance(body, dict) else None
    payload = next(iter(data.values()), None) if isinstance(data, dict) else None
    if isinstance(payload, list):  # syncImagesBulk
        payload = payload[0] if payload else None
    if not isinstance(payload, dict):
        return f"{response.status_code} data: {type(payload).__name__}"
    refused = payload.get("userErrors")
    if refused:
        return f"{response.status_code} refused: {sorted({str(e.get('code')) for e in refused})}"
    done = any(value not in (None, []) for key, value in payload.items() if key != "userErrors")
    return f"{response.status_code} {'done' if done else 'nothing to show'}"


def send(
    fuzzed: Fuzzed, operation: Operation, files: list[tuple[FilePart, tuple[str, ...]]]
) -> None:
    note(operation.document)
    if operation.uploads:
        note(repr(files))
        form, parts = multipart(operation, files)
        request = {"data": form, "files": parts}
    else:
        request = {"json": {"query": operation.document}}
    try:
        response = fuzzed.client.post("/graphql", **request)
    except httpx.TimeoutException as exc:
        pytest.fail(f"no answer within {REQUEST_TIMEOUT.read} s: {exc!r}")
    event(outcome_of(response))
    problems = problems_of(response)
    assert problems == [], (problems, response.status_code, response.text[:3000])
    assert fuzzed.probe.failures == [], fuzzed.probe.failures


# Tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("root_field", QUERY_FIELDS)
@FUZZ
@given(data=st.data())
def test_query_fields_answer_without_internal_errors(
    fuzzed: Fuzzed, root_field: str, data: st.DataObject
) -> None:
    operation = data.draw(fuzzed.operations("query", root_field), "operation")
    send(fuzzed, operation, [])


@pytest.mark.parametrize("root_field", MUTATION_FIELDS)
@settings(FUZZ, max_examples=MUTATION_EXAMPLES)
@given(data=st.data())
def test_mutation_fields_answer_without_internal_errors(
    fuzzed: Fuzzed, root_field: str, data: st.DataObject
) -> None:
    operation = data.draw(fuzzed.operations("mutation", root_field), "operation")
    files = data.draw(file_map(operation), "files")
    try:
        send(fuzzed, operation, files)
    finally:
        fuzzed.refresh()
