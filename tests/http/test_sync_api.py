"""ERP image sync over HTTP against a real image server on 127.0.0.1: syncImages,
syncImagesBulk, uploadImage(url), the downloadableImages query and the safe fetcher's refusals.

The gateway apps here allow 127.0.0.1 through ``fetch_allow_hosts`` (except where a test proves
that loopback addresses are refused without it). Every refused request is checked to have
changed nothing: the same downloadable list, the same gallery, rows and blobs in agreement.

Run on SQLite and on PostgreSQL:
``MEDIA_GATEWAY_TEST_POSTGRES=1 .venv/bin/pytest tests/http/test_sync_api.py``."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, ExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from gateway.settings import Settings
from schema.ids import to_global_id
from support.api import ERRORS, IMAGE_FIELDS, Api, api_with
from support.image_server import ImageServer, running_server
from support.media_factory import image_bytes
from support.threaded_server import serving

pytestmark = pytest.mark.anyio

DOWNLOADABLE_FIELDS = (
    "id productSku url position imageType status error createdAt updatedAt "
    "image { id position imageType source option checksum url }"
)
SYNC = (
    "mutation($input: SyncImagesInput!) { syncImages(input: $input) { "
    f"productSku images {{ {DOWNLOADABLE_FIELDS} }} {ERRORS} }} }}"
)
SYNC_BULK = (
    "mutation($inputs: [SyncImagesInput!]!) { syncImagesBulk(inputs: $inputs) { "
    f"productSku images {{ {DOWNLOADABLE_FIELDS} }} {ERRORS} }} }}"
)
UPLOAD_IMAGE = (
    "mutation($input: UploadImageInput!) { uploadImage(input: $input) { "
    f"image {{ {IMAGE_FIELDS} }} {ERRORS} }} }}"
)
PRODUCT_STATE = (
    "query($sku: String!) { product(sku: $sku) { id sku "
    "images { id position option imageType source checksum isMain updatedAt } "
    f"downloadableImages {{ {DOWNLOADABLE_FIELDS} }} }} }}"
)
DOWNLOADABLE_GROUPS = (
    "query($sku: String, $first: Int, $after: String) { "
    "downloadableImages(productSku: $sku, first: $first, after: $after) { totalCount "
    "pageInfo { hasNextPage hasPreviousPage startCursor endCursor } "
    "edges { cursor node { productSku images { id url position image { id } } } } } }"
)
NODE = (
    "query($id: ID!) { node(id: $id) { id ... on DownloadableImage { "
    f"{DOWNLOADABLE_FIELDS} }} }} }}"
)

ALLOW_LOCAL = {"fetch_allow_hosts": "127.0.0.1"}


# Servers -------------------------------------------------------------------


@dataclass
class EndlessServer:
    """Streams an image-looking body with no Content-Length, 64 KiB at a time, nearly forever;
    counts the bytes it produced."""

    produced: int = 0
    finished: bool = False
    chunk: bytes = field(default=b"\x89PNG\r\n\x1a\n" + b"\0" * (64 * 1024 - 8))
    url: str = ""

    async def handle(self, request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            for _ in range(16 * 1024):  # 1 GiB
                self.produced += len(self.chunk)
                yield self.chunk
                await asyncio.sleep(0)
            self.finished = True

        return StreamingResponse(body(), media_type="application/octet-stream")


@pytest.fixture
def server() -> Iterator[ImageServer]:
    yield from running_server()


@pytest.fixture
def endless() -> Iterator[EndlessServer]:
    state = EndlessServer()
    app = Starlette(routes=[Route("/{path:path}", state.handle)])
    with serving(app, "127.0.0.1") as port:
        state.url = f"http://127.0.0.1:{port}/endless.png"
        yield state


@pytest.fixture
def loopback_servers() -> Iterator[dict[str, ImageServer]]:
    """Image servers listening on 127.0.0.2 and on [::1], which a fetch could reach if it
    were allowed to (their counters prove that it never connected)."""
    servers: dict[str, ImageServer] = {}
    with ExitStack() as stack:
        for host in ("127.0.0.2", "::1"):
            state = ImageServer()
            app = Starlette(routes=[Route("/{path:path}", state.handle)])
            state.port = stack.enter_context(serving(app, host))
            servers[host] = state
        yield servers


# Gateways ------------------------------------------------------------------

MakeApi = Callable[..., Awaitable[Api]]


@pytest.fixture
async def gateway(settings: Settings) -> AsyncIterator[MakeApi]:
    """Start apps on the test's database with settings overridden (each its own fetcher)."""
    async with AsyncExitStack() as stack:

        async def make(**overrides: Any) -> Api:
            return await stack.enter_async_context(api_with(settings, "sync", **overrides))

        yield make


@pytest.fixture
async def sync_api(gateway: MakeApi) -> Api:
    return await gateway(**ALLOW_LOCAL)


# Helpers -------------------------------------------------------------------


def png(seed: int) -> bytes:
    return image_bytes("PNG", (40, 30), seed=seed)


def items(*urls: str, **fields: Any) -> list[dict[str, Any]]:
    return [{"url": url, "position": index, **fields} for index, url in enumerate(urls)]


async def sync(api: Api, sku: str, images: list[dict[str, Any]]) -> dict[str, Any]:
    data = await api.data(SYNC, {"input": {"productSku": sku, "images": images}})
    payload: dict[str, Any] = data["syncImages"]
    return payload


async def synced(api: Api, sku: str, images: list[dict[str, Any]]) -> list[dict[str, Any]]:
    payload = await sync(api, sku, images)
    assert payload["userErrors"] == [], payload
    assert payload["productSku"] == sku
    result: list[dict[str, Any]] = payload["images"]
    return result


async def bulk(api: Api, inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    data = await api.data(SYNC_BULK, {"inputs": inputs})
    payloads: list[dict[str, Any]] = data["syncImagesBulk"]
    return payloads


async def state(api: Api, sku: str) -> dict[str, Any]:
    data = await api.data(PRODUCT_STATE, {"sku": sku})
    product: dict[str, Any] = data["product"]
    return product


async def snapshot(api: Api, sku: str) -> dict[str, Any]:
    """Everything a refused request must leave as it was."""
    await api.backend.renditions.drain()  # background rendition warm-ups write files too
    return {
        "product": await state(api, sku),
        "rows": {table: await api.count_rows(table) for table in ("image", "downloadable_image")},
        "blobs": api.blob_files(),
    }


async def assert_unchanged(api: Api, sku: str, before: dict[str, Any]) -> None:
    assert await snapshot(api, sku) == before
    await api.assert_consistent()


def only_error(payload: dict[str, Any]) -> dict[str, Any]:
    assert payload["images"] is None, payload
    errors: list[dict[str, Any]] = payload["userErrors"]
    assert len(errors) == 1, errors
    return errors[0]


def default_gallery(product: dict[str, Any]) -> list[dict[str, Any]]:
    gallery = [image for image in product["images"] if image["option"] is None]
    return sorted(gallery, key=lambda image: image["position"])


def assert_positions(product: dict[str, Any]) -> None:
    """Downloadable positions 0..k-1, every gallery 0..n-1, synced images first in their
    galleries in downloadable order."""
    downloadables = product["downloadableImages"]
    assert [d["position"] for d in downloadables] == list(range(len(downloadables)))
    galleries: dict[str | None, list[dict[str, Any]]] = {}
    for image in product["images"]:
        galleries.setdefault(image["option"], []).append(image)
    for option, images in galleries.items():
        assert sorted(i["position"] for i in images) == list(range(len(images)))
        in_order = [i["id"] for i in sorted(images, key=lambda i: i["position"])]
        synced_ids = [d["image"]["id"] for d in downloadables if d["image"]["option"] == option]
        assert in_order[: len(synced_ids)] == synced_ids
    for d in downloadables:
        assert d["status"] == "DOWNLOADED"
        assert d["image"]["imageType"] == d["imageType"]


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


# Create, re-sync, update, remove --------------------------------------------


async def test_sync_creates_images_with_source_url(sync_api: Api, server: ImageServer) -> None:
    product = await sync_api.create_product("ERP-1")
    contents = [png(seed) for seed in (1, 2, 3)]
    urls = [server.serve(f"/a{i}.png", content) for i, content in enumerate(contents)]
    result = await synced(sync_api, "ERP-1", items(*urls))
    assert [d["url"] for d in result] == urls
    assert [d["position"] for d in result] == [0, 1, 2]
    assert all(d["productSku"] == "ERP-1" for d in result)
    assert all(d["status"] == "DOWNLOADED" and d["error"] is None for d in result)
    assert [d["image"]["checksum"] for d in result] == [sha256(c) for c in contents]
    assert all(d["image"]["source"] == "URL" for d in result)
    assert server.hits == {f"/a{i}.png": 1 for i in range(3)}

    current = await state(sync_api, "ERP-1")
    assert current["id"] == product["id"]
    assert current["downloadableImages"] == result
    assert [image["id"] for image in default_gallery(current)] == [d["image"]["id"] for d in result]
    assert_positions(current)
    for d, content in zip(result, contents, strict=True):
        fetched = await sync_api.client.get(d["image"]["url"])
        assert fetched.status_code == 200
        assert fetched.content == content
    assert await sync_api.count_rows("downloadable_image") == 3
    assert len(sync_api.blob_files()) == 3
    await sync_api.assert_consistent()


async def test_resync_unchanged_downloads_nothing_and_keeps_ids(
    sync_api: Api, server: ImageServer
) -> None:
    await sync_api.create_product("ERP-1")
    urls = [server.serve(f"/a{i}.png", png(i + 1)) for i in range(3)]
    first = await synced(sync_api, "ERP-1", items(*urls))
    assert server.total_hits == 3
    blobs = sync_api.blob_files()
    for _ in range(2):
        again = await synced(sync_api, "ERP-1", items(*urls))
        assert server.total_hits == 3
        assert [d["id"] for d in again] == [d["id"] for d in first]
        assert [d["image"]["id"] for d in again] == [d["image"]["id"] for d in first]
        assert [d["position"] for d in again] == [0, 1, 2]
    assert sync_api.blob_files() == blobs
    assert await sync_api.count_rows("image") == 3
    await sync_api.assert_consistent()


async def test_positions_and_image_types_update_without_downloads(
    sync_api: Api, server: ImageServer
) -> None:
    await sync_api.create_product("ERP-1")
    u0, u1, u2 = (server.serve(f"/u{i}.png", png(i + 1)) for i in range(3))
    first = {d["url"]: d for d in await synced(sync_api, "ERP-1", items(u0, u1, u2))}

    # Ordered by (position, list order), renumbered 0..k-1.
    result = await synced(
        sync_api,
        "ERP-1",
        [
            {"url": u0, "position": 5, "imageType": "PICTO"},
            {"url": u1, "position": 5},
            {"url": u2, "position": 0, "imageType": "SWATCH"},
        ],
    )
    assert server.total_hits == 3
    assert [(d["url"], d["position"], d["imageType"]) for d in result] == [
        (u2, 0, "SWATCH"),
        (u0, 1, "PICTO"),
        (u1, 2, "DEFAULT"),
    ]
    for d in result:
        assert d["id"] == first[d["url"]]["id"]
        assert d["image"]["id"] == first[d["url"]]["image"]["id"]
        assert d["image"]["position"] == d["position"]
        assert d["image"]["imageType"] == d["imageType"]
    current = await state(sync_api, "ERP-1")
    assert current["downloadableImages"] == result
    assert_positions(current)

    # Gaps and an omitted position (default 0) renumber the same way.
    result = await synced(sync_api, "ERP-1", [{"url": u1, "position": 20}, {"url": u0}])
    assert [(d["url"], d["position"]) for d in result] == [(u0, 0), (u1, 1)]
    assert [d["imageType"] for d in result] == ["DEFAULT", "DEFAULT"]
    assert_positions(await state(sync_api, "ERP-1"))
    assert server.total_hits == 3
    await sync_api.assert_consistent()


async def test_removal_deletes_rows_images_and_blobs(sync_api: Api, server: ImageServer) -> None:
    await sync_api.create_product("ERP-1")
    contents = [png(i + 1) for i in range(4)]
    urls = [server.serve(f"/r{i}.png", c) for i, c in enumerate(contents)]
    first = await synced(sync_api, "ERP-1", items(*urls))
    gone_keys = {d["image"]["url"].split("/media/", 1)[1] for d in first[1:3]}
    assert gone_keys <= sync_api.blob_files()

    result = await synced(sync_api, "ERP-1", items(urls[3], urls[0]))
    assert [d["url"] for d in result] == [urls[3], urls[0]]
    assert [d["id"] for d in result] == [first[3]["id"], first[0]["id"]]
    assert await sync_api.count_rows("downloadable_image") == 2
    assert await sync_api.count_rows("image") == 2
    assert not gone_keys & sync_api.blob_files()
    for d in first[1:3]:
        assert (await sync_api.data(NODE, {"id": d["id"]}))["node"] is None
        assert (await sync_api.client.get(d["image"]["url"])).status_code == 404
    assert_positions(await state(sync_api, "ERP-1"))
    assert server.total_hits == 4
    await sync_api.assert_consistent()


async def test_removal_keeps_a_blob_another_product_shares(
    sync_api: Api, server: ImageServer
) -> None:
    await sync_api.create_product("ERP-1")
    await sync_api.create_product("ERP-2")
    shared = server.serve("/shared.png", png(7))
    own = server.serve("/own.png", png(8))
    first = await synced(sync_api, "ERP-1", items(shared, own))
    second = await synced(sync_api, "ERP-2", items(shared))
    assert first[0]["image"]["id"] != second[0]["image"]["id"]
    assert first[0]["image"]["url"] == second[0]["image"]["url"]
    assert await sync_api.count_rows("image") == 3
    assert len(sync_api.blob_files()) == 2  # the shared bytes are stored once

    await synced(sync_api, "ERP-1", [])
    assert await sync_api.count_rows("image") == 1
    (kept,) = sync_api.blob_files()
    assert sha256(png(7)) in kept
    other = await state(sync_api, "ERP-2")
    content = await sync_api.client.get(other["downloadableImages"][0]["image"]["url"])
    assert content.content == png(7)

    await synced(sync_api, "ERP-2", [])
    assert sync_api.blob_files() == set()
    await sync_api.assert_consistent()


async def test_empty_list_deletes_all_downloadables_only(
    sync_api: Api, server: ImageServer
) -> None:
    product = await sync_api.create_product("ERP-1")
    uploaded = await sync_api.upload_image(product["id"], png(50))
    assert uploaded["userErrors"] == []
    urls = [server.serve(f"/e{i}.png", png(i + 1)) for i in range(3)]
    await synced(sync_api, "ERP-1", items(*urls))
    assert await sync_api.count_rows("image") == 4

    assert await synced(sync_api, "ERP-1", []) == []
    current = await state(sync_api, "ERP-1")
    assert current["downloadableImages"] == []
    assert [(i["id"], i["position"]) for i in current["images"]] == [(uploaded["image"]["id"], 0)]
    assert await sync_api.count_rows("downloadable_image") == 0
    assert sync_api.blob_files() == {uploaded["image"]["url"].split("/media/", 1)[1]}
    # An empty list on a product with nothing synced is fine too.
    assert await synced(sync_api, "ERP-1", []) == []
    await sync_api.assert_consistent()


async def test_redirects_to_allowed_addresses_are_followed(
    sync_api: Api, server: ImageServer
) -> None:
    await sync_api.create_product("ERP-1")
    target = server.serve("/real.png", png(3))
    server.redirects["/moved.png"] = target
    moved = server.url("/moved.png")
    (result,) = await synced(sync_api, "ERP-1", items(moved))
    assert result["url"] == moved
    assert result["image"]["checksum"] == sha256(png(3))
    assert server.hits == {"/moved.png": 1, "/real.png": 1}
    await sync_api.assert_consistent()


# Synced images in the default gallery -------------------------------------------


async def test_synced_images_come_first_and_others_keep_their_order(
    sync_api: Api, server: ImageServer
) -> None:
    product = await sync_api.create_product("ERP-1")
    uploads = []
    for seed in (61, 62):
        payload = await sync_api.upload_image(product["id"], png(seed))
        assert payload["userErrors"] == []
        uploads.append(payload["image"]["id"])
    red = await sync_api.upload_image(product["id"], png(63), option="red")
    assert red["userErrors"] == []
    s0, s1 = (server.serve(f"/s{i}.png", png(i + 1)) for i in range(2))

    result = await synced(sync_api, "ERP-1", items(s0, s1))
    synced_ids = [d["image"]["id"] for d in result]
    current = await state(sync_api, "ERP-1")
    assert [i["id"] for i in default_gallery(current)] == synced_ids + uploads
    assert_positions(current)

    # A new upload at the front, then a re-sync: synced first, the rest in their order.
    front = await sync_api.upload_image(product["id"], png(64), position=0)
    assert front["userErrors"] == []
    result = await synced(sync_api, "ERP-1", items(s1, s0))
    current = await state(sync_api, "ERP-1")
    assert [i["id"] for i in default_gallery(current)] == [
        synced_ids[1],
        synced_ids[0],
        front["image"]["id"],
        *uploads,
    ]
    # The option gallery is not touched.
    (red_now,) = [i for i in current["images"] if i["option"] == "red"]
    assert (red_now["id"], red_now["position"]) == (red["image"]["id"], 0)
    assert_positions(current)
    await sync_api.assert_consistent()


async def test_downloaded_bytes_the_product_has_are_adopted(
    sync_api: Api, server: ImageServer
) -> None:
    product = await sync_api.create_product("ERP-1")
    first = await sync_api.upload_image(product["id"], png(70))
    known = await sync_api.upload_image(product["id"], png(71))
    last = await sync_api.upload_image(product["id"], png(72))
    assert [p["userErrors"] for p in (first, known, last)] == [[], [], []]
    blobs = sync_api.blob_files()
    same = server.serve("/same.png", png(71))
    new = server.serve("/new.png", png(73))

    result = await synced(
        sync_api, "ERP-1", [{"url": new, "position": 0}, {"url": same, "position": 1}]
    )
    adopted = result[1]
    assert adopted["url"] == same
    assert adopted["image"]["id"] == known["image"]["id"]
    assert adopted["image"]["position"] == 1
    assert await sync_api.count_rows("image") == 4
    assert len(sync_api.blob_files()) == len(blobs) + 1
    current = await state(sync_api, "ERP-1")
    assert [i["id"] for i in default_gallery(current)] == [
        result[0]["image"]["id"],
        known["image"]["id"],
        first["image"]["id"],
        last["image"]["id"],
    ]
    assert_positions(current)
    await sync_api.assert_consistent()

    # From now on it belongs to the sync: dropping its URL deletes it.
    known_key = known["image"]["url"].split("/media/", 1)[1]
    await synced(sync_api, "ERP-1", items(new))
    current = await state(sync_api, "ERP-1")
    assert known["image"]["id"] not in {i["id"] for i in current["images"]}
    assert known_key not in sync_api.blob_files()
    assert [i["id"] for i in default_gallery(current)] == [
        result[0]["image"]["id"],
        first["image"]["id"],
        last["image"]["id"],
    ]
    assert_positions(current)
    await sync_api.assert_consistent()


async def test_adopted_image_keeps_its_option_gallery(sync_api: Api, server: ImageServer) -> None:
    """An item without an option leaves the adopted image in the merchant's gallery, first
    there (synced images lead their gallery); one with an option moves it."""
    product = await sync_api.create_product("ERP-1")
    red = [await sync_api.upload_image(product["id"], png(s), option="red") for s in (80, 81, 82)]
    assert all(p["userErrors"] == [] for p in red)
    url = server.serve("/red1.png", png(81))
    (result,) = await synced(sync_api, "ERP-1", [{"url": url, "imageType": "SWATCH"}])
    assert result["image"]["id"] == red[1]["image"]["id"]
    assert result["image"]["option"] == "red"
    assert result["image"]["imageType"] == "SWATCH"
    current = await state(sync_api, "ERP-1")
    in_red = sorted(
        (i for i in current["images"] if i["option"] == "red"), key=lambda i: i["position"]
    )
    assert [i["id"] for i in in_red] == [red[i]["image"]["id"] for i in (1, 0, 2)]
    assert_positions(current)

    (result,) = await synced(sync_api, "ERP-1", [{"url": url, "option": " blue "}])
    assert result["image"]["option"] == "blue"
    current = await state(sync_api, "ERP-1")
    assert [i["id"] for i in current["images"] if i["option"] == "red"] == [
        red[0]["image"]["id"],
        red[2]["image"]["id"],
    ]
    assert_positions(current)
    await sync_api.assert_consistent()


# Refusals: nothing changes -----------------------------------------------------------


@dataclass(frozen=True)
class BadItem:
    """An item that makes the whole sync fail, at index 2 of a list of four."""

    name: str
    make: Callable[[ImageServer], dict[str, Any]]
    field: str
    code: str
    message: str = ""
    hit_path: str | None = None  # a path the server must never have been asked for


def _duplicate(server: ImageServer) -> dict[str, Any]:
    return {"url": server.url("/good0.png"), "position": 2}


BAD_ITEMS = [
    BadItem("file", lambda s: {"url": "file:///etc/passwd"}, "url", "URL_NOT_ALLOWED", "file"),
    BadItem(
        "ftp",
        lambda s: {"url": f"ftp://127.0.0.1:{s.port}/a.png"},
        "url",
        "URL_NOT_ALLOWED",
        "ftp",
    ),
    BadItem("duplicate", _duplicate, "url", "INVALID"),
    BadItem(
        "negative position",
        lambda s: {"url": s.serve("/neg.png", png(90)), "position": -1},
        "position",
        "INVALID",
        hit_path="/neg.png",
    ),
    BadItem("404", lambda s: {"url": s.url("/missing.png")}, "url", "DOWNLOAD_FAILED", "404"),
    BadItem(
        "not an image",
        lambda s: {"url": s.serve("/text.png", b"hello, this is no image\n" * 20)},
        "url",
        "UNSUPPORTED_FORMAT",
    ),
    BadItem(
        "corrupt",
        lambda s: {"url": s.serve("/corrupt.png", png(91)[:60])},
        "url",
        "CORRUPT_FILE",
    ),
    BadItem(
        "redirect to 127.0.0.2",
        lambda s: {"url": _redirect(s, "/r1", f"http://127.0.0.2:{s.port}/x")},
        "url",
        "URL_NOT_ALLOWED",
        "127.0.0.2",
        hit_path="/x",
    ),
    BadItem(
        "redirect to [::1]",
        lambda s: {"url": _redirect(s, "/r2", f"http://[::1]:{s.port}/x")},
        "url",
        "URL_NOT_ALLOWED",
        "::1",
        hit_path="/x",
    ),
    BadItem(
        "redirect loop",
        lambda s: {"url": _redirect(s, "/loop", s.url("/loop"))},
        "url",
        "DOWNLOAD_FAILED",
        "redirected more than 5 times",
    ),
    BadItem(
        "redirect to file",
        lambda s: {"url": _redirect(s, "/r3", "file:///etc/passwd")},
        "url",
        "URL_NOT_ALLOWED",
    ),
]


def _redirect(server: ImageServer, path: str, target: str) -> str:
    server.redirects[path] = target
    return server.url(path)


@pytest.mark.parametrize("bad", BAD_ITEMS, ids=[b.name for b in BAD_ITEMS])
async def test_one_bad_item_leaves_the_earlier_list_intact(
    sync_api: Api, server: ImageServer, bad: BadItem
) -> None:
    await sync_api.create_product("ERP-1")
    old = [server.serve(f"/old{i}.png", png(i + 1)) for i in range(2)]
    await synced(sync_api, "ERP-1", items(*old))
    before = await snapshot(sync_api, "ERP-1")

    good = [server.serve(f"/good{i}.png", png(i + 11)) for i in range(2)]
    request = [
        {"url": good[0], "position": 0},
        {"url": old[1], "position": 1, "imageType": "SWATCH"},
        {"position": 2, **bad.make(server)},
        {"url": good[1], "position": 3},
    ]
    error = only_error(await sync(sync_api, "ERP-1", request))
    assert error["field"] == ["images", "2", bad.field]
    assert error["code"] == bad.code
    assert bad.message in error["message"]
    await assert_unchanged(sync_api, "ERP-1", before)
    if bad.hit_path is not None:
        assert server.hits[bad.hit_path] == 0


@pytest.mark.parametrize("host", ["127.0.0.2", "::1"])
async def test_redirect_to_a_listening_loopback_address_is_refused(
    sync_api: Api, server: ImageServer, loopback_servers: dict[str, ImageServer], host: str
) -> None:
    """The redirect target really serves (a plain client gets the image), yet the gateway,
    which allows only 127.0.0.1, refuses the hop before connecting to it."""
    target = loopback_servers[host]
    target.bodies["/x.png"] = png(1)
    forbidden = f"http://{f'[{host}]' if ':' in host else host}:{target.port}/x.png"
    async with httpx.AsyncClient(trust_env=False) as plain:
        assert (await plain.get(forbidden)).content == png(1)
    target.hits.clear()
    await sync_api.create_product("ERP-1")
    before = await snapshot(sync_api, "ERP-1")
    server.redirects["/hop1"] = server.url("/hop2")  # an allowed hop first
    server.redirects["/hop2"] = forbidden
    error = only_error(await sync(sync_api, "ERP-1", items(server.url("/hop1"))))
    assert (error["field"], error["code"]) == (["images", "0", "url"], "URL_NOT_ALLOWED")
    assert host in error["message"]
    assert server.hits == {"/hop1": 1, "/hop2": 1}
    assert target.total_hits == 0
    await assert_unchanged(sync_api, "ERP-1", before)


async def test_failing_download_reports_the_status(sync_api: Api, server: ImageServer) -> None:
    await sync_api.create_product("ERP-1")
    await synced(sync_api, "ERP-1", items(server.serve("/keep.png", png(1))))
    before = await snapshot(sync_api, "ERP-1")
    urls = [server.serve("/n0.png", png(2)), server.url("/gone.png"), server.serve("/n2", png(3))]
    error = only_error(await sync(sync_api, "ERP-1", items(*urls)))
    assert error == {
        "field": ["images", "1", "url"],
        "code": "DOWNLOAD_FAILED",
        "message": error["message"],
    }
    assert "HTTP 404" in error["message"]
    assert server.hits["/gone.png"] == 1
    await assert_unchanged(sync_api, "ERP-1", before)

    # The same list without the failing URL then goes through.
    result = await synced(sync_api, "ERP-1", items(urls[0], urls[2]))
    assert [d["url"] for d in result] == [urls[0], urls[2]]
    await sync_api.assert_consistent()


async def test_every_bad_item_is_reported(sync_api: Api, server: ImageServer) -> None:
    await sync_api.create_product("ERP-1")
    before = await snapshot(sync_api, "ERP-1")
    url = server.serve("/a.png", png(1))
    payload = await sync(
        sync_api,
        "ERP-1",
        [
            {"url": url},
            {"url": "ftp://example.invalid/x.png"},
            {"url": url},
            {"url": server.serve("/b.png", png(2)), "position": -3},
            {"url": "   "},
        ],
    )
    assert payload["images"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
        (["images", "1", "url"], "URL_NOT_ALLOWED"),
        (["images", "2", "url"], "INVALID"),
        (["images", "3", "position"], "INVALID"),
        (["images", "4", "url"], "REQUIRED"),
    ]
    assert server.total_hits == 0
    await assert_unchanged(sync_api, "ERP-1", before)


async def test_slow_server_times_out(gateway: MakeApi, server: ImageServer) -> None:
    api = await gateway(fetch_timeout=1.0, **ALLOW_LOCAL)
    await api.create_product("ERP-1")
    await synced(api, "ERP-1", items(server.serve("/fast.png", png(1))))
    before = await snapshot(api, "ERP-1")
    server.delay = 3.0
    started = time.monotonic()
    error = only_error(
        await sync(api, "ERP-1", items(server.serve("/slow.png", png(2)), server.url("/fast.png")))
    )
    assert time.monotonic() - started < 2.5
    assert error["field"] == ["images", "0", "url"]
    assert error["code"] == "DOWNLOAD_FAILED"
    assert "timed out" in error["message"]
    await assert_unchanged(api, "ERP-1", before)


async def test_oversized_body_is_refused(gateway: MakeApi, server: ImageServer) -> None:
    api = await gateway(max_image_bytes=4096, **ALLOW_LOCAL)
    await api.create_product("ERP-1")
    await synced(api, "ERP-1", items(server.serve("/small.png", png(1))))
    before = await snapshot(api, "ERP-1")
    big = image_bytes("BMP", (100, 100))
    assert len(big) > 4096
    error = only_error(await sync(api, "ERP-1", items(server.serve("/big.bmp", big))))
    assert error["field"] == ["images", "0", "url"]
    assert error["code"] == "FILE_TOO_LARGE"
    await assert_unchanged(api, "ERP-1", before)


async def test_endless_body_is_stopped_at_the_limit(
    gateway: MakeApi, endless: EndlessServer
) -> None:
    api = await gateway(max_image_bytes=256 * 1024, **ALLOW_LOCAL)
    await api.create_product("ERP-1")
    before = await snapshot(api, "ERP-1")
    error = only_error(await sync(api, "ERP-1", items(endless.url)))
    assert error["field"] == ["images", "0", "url"]
    assert error["code"] == "FILE_TOO_LARGE"
    assert not endless.finished
    assert endless.produced < 64 * 1024 * 1024  # stopped early, not read to the end
    await assert_unchanged(api, "ERP-1", before)


LOOPBACK_URLS = {
    "127.0.0.1": "http://127.0.0.1:{main}/a.png",
    "127.0.0.2": "http://127.0.0.2:{v4}/a.png",
    "[::1]": "http://[::1]:{v6}/a.png",
    "0.0.0.0": "http://0.0.0.0:{main}/a.png",
}


@pytest.mark.parametrize("name", list(LOOPBACK_URLS))
async def test_loopback_is_refused_without_the_allow_setting(
    api: Api,
    server: ImageServer,
    loopback_servers: dict[str, ImageServer],
    name: str,
) -> None:
    """The addresses are served on this machine (a plain client reaches them), yet the gateway
    refuses them before connecting: no server counts a request."""
    servers = [server, *loopback_servers.values()]
    for state_ in servers:
        state_.bodies["/a.png"] = png(1)
    url = LOOPBACK_URLS[name].format(
        main=server.port, v4=loopback_servers["127.0.0.2"].port, v6=loopback_servers["::1"].port
    )
    async with httpx.AsyncClient(trust_env=False) as plain:
        assert (await plain.get(url)).content == png(1)
    for state_ in servers:
        state_.hits.clear()

    product = await api.create_product("ERP-1")
    before = await snapshot(api, "ERP-1")
    error = only_error(await sync(api, "ERP-1", items(url)))
    assert (error["field"], error["code"]) == (["images", "0", "url"], "URL_NOT_ALLOWED")

    data = await api.data(UPLOAD_IMAGE, {"input": {"productId": product["id"], "url": url}})
    payload = data["uploadImage"]
    assert payload["image"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
        (["url"], "URL_NOT_ALLOWED")
    ]
    assert sum(state_.total_hits for state_ in servers) == 0
    await assert_unchanged(api, "ERP-1", before)


# Validation of the request -------------------------------------------------------------


async def test_too_many_items(sync_api: Api, server: ImageServer) -> None:
    await sync_api.create_product("ERP-1")
    before = await snapshot(sync_api, "ERP-1")
    urls = [server.serve(f"/m{i}.png", png(i + 1)) for i in range(101)]
    error = only_error(await sync(sync_api, "ERP-1", items(*urls)))
    assert (error["field"], error["code"]) == (["images"], "TOO_MANY")
    assert server.total_hits == 0
    await assert_unchanged(sync_api, "ERP-1", before)


async def test_a_hundred_items_are_fine(sync_api: Api, server: ImageServer) -> None:
    await sync_api.create_product("ERP-1")
    urls = [server.serve(f"/m{i}.png", png(i + 1)) for i in range(100)]
    result = await synced(sync_api, "ERP-1", items(*urls))
    assert [d["position"] for d in result] == list(range(100))
    assert server.total_hits == 100
    assert_positions(await state(sync_api, "ERP-1"))
    await sync_api.assert_consistent()


@pytest.mark.parametrize("sku", ["", "   "])
async def test_blank_sku_is_required(sync_api: Api, server: ImageServer, sku: str) -> None:
    await sync_api.create_product("ERP-1")
    before = await snapshot(sync_api, "ERP-1")
    payload = await sync(sync_api, sku, items(server.serve("/a.png", png(1))))
    error = only_error(payload)
    assert (error["field"], error["code"]) == (["productSku"], "REQUIRED")
    assert server.total_hits == 0
    await assert_unchanged(sync_api, "ERP-1", before)


async def test_unknown_sku_is_not_found(sync_api: Api, server: ImageServer) -> None:
    await sync_api.create_product("ERP-1")
    before = await snapshot(sync_api, "ERP-1")
    payload = await sync(sync_api, "NOPE", items(server.serve("/a.png", png(1))))
    assert payload["productSku"] == "NOPE"
    error = only_error(payload)
    assert (error["field"], error["code"]) == (["productSku"], "NOT_FOUND")
    assert server.total_hits == 0
    assert await sync_api.count_rows("product") == 1  # sync never creates products
    await assert_unchanged(sync_api, "ERP-1", before)


# Reads ---------------------------------------------------------------------------------


async def test_downloadable_images_query_groups_by_sku(sync_api: Api, server: ImageServer) -> None:
    for sku in ("C-3", "A-1", "D-4", "B-2"):
        await sync_api.create_product(sku)
    lists = {
        "A-1": [server.serve(f"/a{i}.png", png(i + 1)) for i in range(2)],
        "B-2": [server.serve("/b0.png", png(10))],
        "C-3": [server.serve(f"/c{i}.png", png(i + 20)) for i in range(3)],
    }
    for sku, urls in lists.items():
        await synced(sync_api, sku, items(*reversed(urls)))

    page = (await sync_api.data(DOWNLOADABLE_GROUPS, {"first": 2}))["downloadableImages"]
    assert page["totalCount"] == 3
    assert page["pageInfo"]["hasNextPage"] is True
    assert page["pageInfo"]["hasPreviousPage"] is False
    assert [e["node"]["productSku"] for e in page["edges"]] == ["A-1", "B-2"]
    assert page["pageInfo"]["endCursor"] == page["edges"][-1]["cursor"]
    rest = (
        await sync_api.data(
            DOWNLOADABLE_GROUPS, {"first": 2, "after": page["pageInfo"]["endCursor"]}
        )
    )["downloadableImages"]
    assert rest["totalCount"] == 3
    assert rest["pageInfo"]["hasNextPage"] is False
    assert [e["node"]["productSku"] for e in rest["edges"]] == ["C-3"]

    everything = (await sync_api.data(DOWNLOADABLE_GROUPS, {}))["downloadableImages"]
    groups = {e["node"]["productSku"]: e["node"]["images"] for e in everything["edges"]}
    assert list(groups) == ["A-1", "B-2", "C-3"]
    for sku, urls in lists.items():
        assert [d["url"] for d in groups[sku]] == list(reversed(urls))
        assert [d["position"] for d in groups[sku]] == list(range(len(urls)))
        assert all(d["image"] is not None for d in groups[sku])
        product = await state(sync_api, sku)
        assert [d["id"] for d in product["downloadableImages"]] == [d["id"] for d in groups[sku]]

    one = (await sync_api.data(DOWNLOADABLE_GROUPS, {"sku": "C-3"}))["downloadableImages"]
    assert one["totalCount"] == 1
    assert [e["node"]["productSku"] for e in one["edges"]] == ["C-3"]
    assert [d["url"] for d in one["edges"][0]["node"]["images"]] == list(reversed(lists["C-3"]))
    none = (await sync_api.data(DOWNLOADABLE_GROUPS, {"sku": "NOPE"}))["downloadableImages"]
    assert (none["totalCount"], none["edges"]) == (0, [])


async def test_downloadable_image_node_and_image(sync_api: Api, server: ImageServer) -> None:
    product = await sync_api.create_product("ERP-1")
    content = png(5)
    (result,) = await synced(sync_api, "ERP-1", items(server.serve("/n.png", content)))
    node = (await sync_api.data(NODE, {"id": result["id"]}))["node"]
    assert node == result
    image = (
        await sync_api.data(
            "query($id: ID!) { image(id: $id) { id source checksum fileSize mimeType width "
            "height product { id } } }",
            {"id": result["image"]["id"]},
        )
    )["image"]
    assert image == {
        "id": result["image"]["id"],
        "source": "URL",
        "checksum": sha256(content),
        "fileSize": len(content),
        "mimeType": "image/png",
        "width": 40,
        "height": 30,
        "product": {"id": product["id"]},
    }
    assert (await sync_api.data(NODE, {"id": to_global_id("DownloadableImage", 99_999)}))[
        "node"
    ] is None


# syncImagesBulk ----------------------------------------------------------------------


async def test_bulk_each_sku_is_all_or_nothing_and_downloads_are_shared(
    sync_api: Api, server: ImageServer
) -> None:
    for sku in ("B-1", "B-2", "B-3"):
        await sync_api.create_product(sku)
    await synced(sync_api, "B-2", items(server.serve("/b2-old.png", png(30))))
    before_b2 = await state(sync_api, "B-2")
    server.hits.clear()
    shared = server.serve("/shared.png", png(31))
    one = server.serve("/one.png", png(32))
    three = server.serve("/three.png", png(33))
    payloads = await bulk(
        sync_api,
        [
            {"productSku": "B-1", "images": items(shared, one)},
            {"productSku": "B-2", "images": items(shared, server.url("/missing.png"))},
            {"productSku": "NOPE", "images": items(shared)},
            {"productSku": "B-3", "images": items(three, shared)},
        ],
    )
    assert [p["productSku"] for p in payloads] == ["B-1", "B-2", "NOPE", "B-3"]
    assert [d["url"] for d in payloads[0]["images"]] == [shared, one]
    assert payloads[0]["userErrors"] == []
    error = only_error(payloads[1])
    assert (error["field"], error["code"]) == (
        ["inputs", "1", "images", "1", "url"],
        "DOWNLOAD_FAILED",
    )
    assert "404" in error["message"]
    assert only_error(payloads[2])["code"] == "NOT_FOUND"
    assert [d["url"] for d in payloads[3]["images"]] == [three, shared]
    assert payloads[3]["userErrors"] == []

    assert server.hits == {"/shared.png": 1, "/one.png": 1, "/three.png": 1, "/missing.png": 1}
    shared_images = {
        payloads[0]["images"][0]["image"]["id"],
        payloads[3]["images"][1]["image"]["id"],
    }
    assert len(shared_images) == 2  # one row per product, one blob for both
    assert sum(1 for key in sync_api.blob_files() if sha256(png(31)) in key) == 1
    assert await state(sync_api, "B-2") == before_b2
    for sku in ("B-1", "B-3"):
        assert_positions(await state(sync_api, sku))

    # A second bulk run with the same lists downloads nothing.
    server.hits.clear()
    again = await bulk(
        sync_api,
        [
            {"productSku": "B-1", "images": items(shared, one)},
            {"productSku": "B-3", "images": items(three, shared)},
        ],
    )
    assert [p["userErrors"] for p in again] == [[], []]
    assert server.total_hits == 0
    await sync_api.assert_consistent()


async def test_bulk_over_a_hundred_inputs_runs_none(sync_api: Api, server: ImageServer) -> None:
    await sync_api.create_product("ERP-1")
    before = await snapshot(sync_api, "ERP-1")
    url = server.serve("/a.png", png(1))
    inputs = [{"productSku": "ERP-1", "images": items(url)} for _ in range(101)]
    payloads = await bulk(sync_api, inputs)
    assert len(payloads) == 101
    for payload in payloads:
        assert payload["productSku"] == "ERP-1"
        assert payload["images"] is None
        assert [e["code"] for e in payload["userErrors"]] == ["TOO_MANY"]
    assert server.total_hits == 0
    await assert_unchanged(sync_api, "ERP-1", before)


async def test_bulk_of_a_hundred_inputs_runs(sync_api: Api, server: ImageServer) -> None:
    url = server.serve("/a.png", png(1))
    inputs = []
    for index in range(100):
        sku = f"S-{index:03d}"
        await sync_api.create_product(sku)
        inputs.append({"productSku": sku, "images": items(url)})
    payloads = await bulk(sync_api, inputs)
    assert all(p["userErrors"] == [] for p in payloads)
    assert server.hits == {"/a.png": 1}
    assert len(sync_api.blob_files()) == 1
    assert await sync_api.count_rows("image") == 100
    await sync_api.assert_consistent()


# uploadImage(url) ------------------------------------------------------------------


async def test_upload_image_by_url(sync_api: Api, server: ImageServer) -> None:
    product = await sync_api.create_product("ERP-1")
    content = image_bytes("JPEG", (50, 20), seed=4)
    url = server.serve("/photo", content)
    data = await sync_api.data(UPLOAD_IMAGE, {"input": {"productId": product["id"], "url": url}})
    payload = data["uploadImage"]
    assert payload["userErrors"] == []
    image = payload["image"]
    assert (image["source"], image["mimeType"], image["checksum"]) == (
        "URL",
        "image/jpeg",
        sha256(content),
    )
    assert (image["width"], image["height"], image["position"]) == (50, 20, 0)
    assert server.hits == {"/photo": 1}
    assert (await sync_api.client.get(image["url"])).content == content
    # It is an upload, not a downloadable image.
    assert (await state(sync_api, "ERP-1"))["downloadableImages"] == []

    by_sku = await sync_api.data(
        UPLOAD_IMAGE,
        {
            "input": {
                "productSku": "ERP-1",
                "url": server.serve("/other", png(9)),
                "source": "INTEGRATION",
                "position": 0,
            }
        },
    )
    assert by_sku["uploadImage"]["userErrors"] == []
    assert by_sku["uploadImage"]["image"]["source"] == "INTEGRATION"
    assert by_sku["uploadImage"]["image"]["position"] == 0
    await sync_api.assert_consistent()


@pytest.mark.parametrize(
    ("path", "code", "message"),
    [
        ("file:///etc/passwd", "URL_NOT_ALLOWED", "file"),
        ("ftp://127.0.0.1/a.png", "URL_NOT_ALLOWED", "ftp"),
        ("/missing.png", "DOWNLOAD_FAILED", "404"),
        ("/redirect", "URL_NOT_ALLOWED", "127.0.0.2"),
        ("/text", "UNSUPPORTED_FORMAT", ""),
    ],
)
async def test_upload_image_by_url_errors(
    sync_api: Api, server: ImageServer, path: str, code: str, message: str
) -> None:
    product = await sync_api.create_product("ERP-1")
    kept = await sync_api.upload_image(product["id"], png(1))
    assert kept["userErrors"] == []
    before = await snapshot(sync_api, "ERP-1")
    server.redirects["/redirect"] = f"http://127.0.0.2:{server.port}/x"
    server.serve("/text", b"plain text, not an image" * 10)
    url = path if "://" in path else server.url(path)
    data = await sync_api.data(UPLOAD_IMAGE, {"input": {"productId": product["id"], "url": url}})
    payload = data["uploadImage"]
    assert payload["image"] is None
    (error,) = payload["userErrors"]
    assert (error["field"], error["code"]) == (["url"], code)
    assert message in error["message"]
    assert server.hits["/x"] == 0
    await assert_unchanged(sync_api, "ERP-1", before)


async def test_upload_image_by_url_times_out(gateway: MakeApi, server: ImageServer) -> None:
    api = await gateway(fetch_timeout=1.0, **ALLOW_LOCAL)
    product = await api.create_product("ERP-1")
    before = await snapshot(api, "ERP-1")
    server.delay = 3.0
    url = server.serve("/slow.png", png(1))
    data = await api.data(UPLOAD_IMAGE, {"input": {"productId": product["id"], "url": url}})
    (error,) = data["uploadImage"]["userErrors"]
    assert (error["field"], error["code"]) == (["url"], "DOWNLOAD_FAILED")
    assert "timed out" in error["message"]
    await assert_unchanged(api, "ERP-1", before)


# Concurrency -------------------------------------------------------------------------


async def test_concurrent_syncs_of_one_sku_end_in_one_whole_list(
    sync_api: Api, server: ImageServer
) -> None:
    product = await sync_api.create_product("ERP-1")
    uploaded = await sync_api.upload_image(product["id"], png(99))
    assert uploaded["userErrors"] == []
    server.delay = 0.05
    shared = server.serve("/shared.png", png(1))
    list_a = [shared, *(server.serve(f"/a{i}.png", png(i + 10)) for i in range(3))]
    list_b = [*(server.serve(f"/b{i}.png", png(i + 20)) for i in range(4)), shared]
    rounds = [
        (list_a, list_b),
        (list_b, list_a),
        (list_a[:2], list_b[2:]),
        ([], list_a),  # the empty list deletes what the other one plans to keep
        (list_a, []),
        ([shared], list_b),
        (list_b[::-1], list_b),
    ]
    for first, second in rounds:
        payloads = await asyncio.wait_for(
            asyncio.gather(
                sync(sync_api, "ERP-1", items(*first)), sync(sync_api, "ERP-1", items(*second))
            ),
            timeout=60,
        )
        for payload in payloads:
            assert payload["userErrors"] == [], payload
            assert [d["url"] for d in payload["images"]] in (first, second)
        current = await state(sync_api, "ERP-1")
        final = [d["url"] for d in current["downloadableImages"]]
        assert final in (first, second)
        assert_positions(current)
        gallery = default_gallery(current)
        assert gallery[-1]["id"] == uploaded["image"]["id"]
        assert len(gallery) == len(final) + 1
        assert await sync_api.count_rows("downloadable_image") == len(final)
        await sync_api.assert_consistent()
