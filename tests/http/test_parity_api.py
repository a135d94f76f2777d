"""What a client migrating from each seed platform needs (issue "Every seed's API"), over HTTP:
declared product options, sync items with alt and option that a re-sync never undoes, what a
sync owns, productCreate with images, uploadVideoFromUrl, Image.sourceUrl and the image filters
(inDefaultGallery, sinceId, position, sourceUrls), videos by SKU, and backward pagination.

Every refusal is checked to have changed nothing. Run on SQLite and on PostgreSQL:
``MEDIA_GATEWAY_TEST_POSTGRES=1 .venv/bin/pytest tests/http/test_parity_api.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from gateway.settings import Settings
from schema.ids import to_global_id
from support.api import ERRORS, IMAGE_FIELDS, PRODUCT_FIELDS, VIDEO_FIELDS, Api, api_with
from support.image_server import ImageServer, running_server
from support.media_factory import image_bytes, mp4_bytes

pytestmark = pytest.mark.anyio

PRODUCT = f"{PRODUCT_FIELDS} options images {{ {IMAGE_FIELDS} sourceUrl }}"
CREATE = (
    "mutation($i: ProductCreateInput!) { productCreate(input: $i) { "
    f"product {{ {PRODUCT} }} {ERRORS} }} }}"
)
UPDATE = (
    "mutation($id: ID!, $i: ProductUpdateInput!) { productUpdate(id: $id, input: $i) { "
    f"product {{ {PRODUCT} }} {ERRORS} }} }}"
)
UPDATE_IMAGE = (
    "mutation($id: ID!, $i: UpdateImageInput!) { updateImage(id: $id, input: $i) { "
    f"image {{ {IMAGE_FIELDS} sourceUrl }} {ERRORS} }} }}"
)
UPLOAD_IMAGE = (
    "mutation($i: UploadImageInput!) { uploadImage(input: $i) { "
    f"image {{ {IMAGE_FIELDS} sourceUrl }} {ERRORS} }} }}"
)
UPLOAD_VIDEO = (
    "mutation($i: UploadVideoInput!) { uploadVideo(input: $i) { "
    f"video {{ {VIDEO_FIELDS} }} {ERRORS} }} }}"
)
UPLOAD_VIDEO_FROM_URL = (
    "mutation($i: UploadVideoFromUrlInput!) { uploadVideoFromUrl(input: $i) { "
    f"video {{ {VIDEO_FIELDS} }} {ERRORS} }} }}"
)
SYNC = (
    "mutation($i: SyncImagesInput!) { syncImages(input: $i) { productSku "
    "images { url image { id option alt position sourceUrl } } "
    f"{ERRORS} }} }}"
)
STATE = f"query($sku: String!) {{ product(sku: $sku) {{ {PRODUCT} }} }}"
IMAGES = (
    "query($f: ImageFilter, $first: Int, $after: String, $last: Int, $before: String) { "
    "images(filter: $f, first: $first, after: $after, last: $last, before: $before) { "
    "totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } "
    "edges { cursor node { id position option sourceUrl } } } }"
)


def png(seed: int) -> bytes:
    return image_bytes("PNG", (40, 30), seed=seed)


@pytest.fixture
def server() -> Iterator[ImageServer]:
    yield from running_server()


@pytest.fixture
async def papi(settings: Settings) -> AsyncIterator[Api]:
    async with api_with(settings, "parity", fetch_allow_hosts="127.0.0.1") as api:
        yield api


async def create(api: Api, **fields: Any) -> dict[str, Any]:
    data = await api.data(CREATE, {"i": {"name": "Shirt", **fields}})
    payload: dict[str, Any] = data["productCreate"]
    return payload


async def state(api: Api, sku: str) -> dict[str, Any] | None:
    product: dict[str, Any] | None = (await api.data(STATE, {"sku": sku}))["product"]
    return product


async def snapshot(api: Api, sku: str) -> tuple[Any, ...]:
    await api.backend.renditions.drain()
    return (
        await state(api, sku),
        await api.count_rows("image"),
        await api.count_rows("downloadable_image"),
        await api.count_rows("video"),
        api.blob_files(),
    )


async def assert_unchanged(api: Api, sku: str, before: tuple[Any, ...]) -> None:
    assert await snapshot(api, sku) == before
    await api.assert_consistent()


def errors(payload: dict[str, Any]) -> list[tuple[list[str], str]]:
    return [(e["field"], e["code"]) for e in payload["userErrors"]]


async def graphql_error(api: Api, query: str, variables: dict[str, Any]) -> str:
    body = await api.post(query, variables)
    assert body.get("data") is None or all(v is None for v in body["data"].values()), body
    (error,) = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT", error
    message: str = error["message"]
    return message


# Declared options ------------------------------------------------------------------


async def test_declared_options_are_trimmed_and_checked(papi: Api) -> None:
    created = await create(papi, sku="OPT-1", options=[" red ", "blue"])
    assert created["userErrors"] == []
    product = created["product"]
    assert product["options"] == ["red", "blue"]

    red = await papi.upload_image(product["id"], png(1), option=" red ")
    assert red["userErrors"] == [] and red["image"]["option"] == "red"
    before = await snapshot(papi, "OPT-1")
    green = await papi.upload_image(product["id"], png(2), option="green")
    assert errors(green) == [(["option"], "INVALID")] and green["image"] is None
    assert "red, blue" in green["userErrors"][0]["message"]
    await assert_unchanged(papi, "OPT-1", before)

    moved = (await papi.data(UPDATE_IMAGE, {"id": red["image"]["id"], "i": {"option": "green"}}))[
        "updateImage"
    ]
    assert errors(moved) == [(["option"], "INVALID")]
    await assert_unchanged(papi, "OPT-1", before)

    # Removing an option whose gallery holds images is refused; another one may go.
    refused = (await papi.data(UPDATE, {"id": product["id"], "i": {"options": ["blue"]}}))[
        "productUpdate"
    ]
    assert errors(refused) == [(["options"], "INVALID")]
    assert "'red'" in refused["userErrors"][0]["message"]
    await assert_unchanged(papi, "OPT-1", before)
    kept = (await papi.data(UPDATE, {"id": product["id"], "i": {"options": ["red", " green"]}}))[
        "productUpdate"
    ]
    assert kept["userErrors"] == [] and kept["product"]["options"] == ["red", "green"]
    moved = (await papi.data(UPDATE_IMAGE, {"id": red["image"]["id"], "i": {"option": "green"}}))[
        "updateImage"
    ]
    assert moved["userErrors"] == [] and moved["image"]["option"] == "green"

    # No options declared: any option name is accepted, as before.
    cleared = (await papi.data(UPDATE, {"id": product["id"], "i": {"options": []}}))[
        "productUpdate"
    ]
    assert cleared["product"]["options"] == []
    free = await papi.upload_image(product["id"], png(3), option="anything")
    assert free["userErrors"] == []
    await papi.assert_consistent()


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["a", " a "], [(["options", "1"], "INVALID")]),
        (["a", "  "], [(["options", "1"], "INVALID")]),
        (["x" * 256], [(["options", "0"], "INVALID")]),
        (["a\nb"], [(["options", "0"], "INVALID")]),
        ([f"o{i}" for i in range(101)], [(["options"], "TOO_MANY")]),
    ],
)
async def test_bad_option_lists_are_refused(
    papi: Api, options: list[str], expected: list[tuple[list[str], str]]
) -> None:
    refused = await create(papi, sku="OPT-2", options=options)
    assert errors(refused) == expected and refused["product"] is None
    assert await papi.count_rows("product") == 0
    product = await papi.create_product("OPT-3")
    refused = (await papi.data(UPDATE, {"id": product["id"], "i": {"options": options}}))[
        "productUpdate"
    ]
    assert errors(refused) == expected
    assert (await state(papi, "OPT-3") or {})["options"] == []


# Sync items: alt, option, and what a sync owns ---------------------------------------


async def sync(api: Api, sku: str, images: list[dict[str, Any]]) -> dict[str, Any]:
    payload: dict[str, Any] = (await api.data(SYNC, {"i": {"productSku": sku, "images": images}}))[
        "syncImages"
    ]
    return payload


async def test_resync_keeps_what_a_merchant_set(papi: Api, server: ImageServer) -> None:
    await create(papi, sku="ERP-1", options=["red", "blue"])
    url = server.serve("/a.png", png(10))
    other = server.serve("/b.png", png(11))
    first = await sync(
        papi, "ERP-1", [{"url": url, "alt": "From the ERP"}, {"url": other, "option": "blue"}]
    )
    assert first["userErrors"] == []
    a, b = (item["image"] for item in first["images"])
    assert (a["alt"], a["option"], a["sourceUrl"]) == ("From the ERP", None, url)
    assert (b["alt"], b["option"], b["sourceUrl"]) == (None, "blue", other)

    edited = await papi.data(
        UPDATE_IMAGE, {"id": a["id"], "i": {"alt": "The merchant's", "option": "red"}}
    )
    assert edited["updateImage"]["userErrors"] == []
    again = await sync(papi, "ERP-1", [{"url": url}, {"url": other}])
    a2, b2 = (item["image"] for item in again["images"])
    assert (a2["id"], a2["alt"], a2["option"]) == (a["id"], "The merchant's", "red")
    assert (b2["id"], b2["option"]) == (b["id"], "blue")

    carried = await sync(papi, "ERP-1", [{"url": url, "alt": "New ERP alt", "option": "blue"}])
    (a3,) = (item["image"] for item in carried["images"])
    assert (a3["id"], a3["alt"], a3["option"], a3["position"]) == (
        a["id"],
        "New ERP alt",
        "blue",
        0,
    )
    product = await state(papi, "ERP-1")
    assert product is not None
    assert [i["id"] for i in product["images"]] == [a["id"]]  # b left the list: deleted
    await papi.assert_consistent()


async def test_sync_item_option_must_be_declared(papi: Api, server: ImageServer) -> None:
    await create(papi, sku="ERP-2", options=["red"])
    urls = [server.serve(f"/{i}.png", png(20 + i)) for i in range(3)]
    before = await snapshot(papi, "ERP-2")
    refused = await sync(
        papi,
        "ERP-2",
        [{"url": urls[0]}, {"url": urls[1], "option": "red"}, {"url": urls[2], "option": "pink"}],
    )
    assert errors(refused) == [(["images", "2", "option"], "INVALID")]
    assert refused["images"] is None
    await assert_unchanged(papi, "ERP-2", before)
    blank = await sync(papi, "ERP-2", [{"url": urls[0], "option": " "}])
    assert errors(blank) == [(["images", "0", "option"], "INVALID")]
    long_alt = await sync(papi, "ERP-2", [{"url": urls[0], "alt": "x" * 1001}])
    assert errors(long_alt) == [(["images", "0", "alt"], "INVALID")]
    await assert_unchanged(papi, "ERP-2", before)


async def test_an_adopted_upload_belongs_to_the_sync(papi: Api, server: ImageServer) -> None:
    """The rule the README states: a sync that downloads bytes the product already has adopts
    that image (it gets the URL as sourceUrl), and a later sync without the URL deletes it."""
    product = (await create(papi, sku="ERP-3"))["product"]
    upload = await papi.upload_image(product["id"], png(30), alt="Uploaded")
    assert [i["sourceUrl"] for i in (await state(papi, "ERP-3") or {})["images"]] == [None]
    url = server.serve("/same.png", png(30))
    adopted = await sync(papi, "ERP-3", [{"url": url}])
    (image,) = (item["image"] for item in adopted["images"])
    assert (image["id"], image["sourceUrl"], image["alt"]) == (
        upload["image"]["id"],
        url,
        "Uploaded",
    )
    emptied = await sync(papi, "ERP-3", [])
    assert emptied["userErrors"] == []
    assert (await state(papi, "ERP-3") or {})["images"] == []
    await papi.assert_consistent()


# productCreate with images --------------------------------------------------------


async def test_product_create_with_images(papi: Api, server: ImageServer) -> None:
    main, extra = server.serve("/main.png", png(40)), server.serve("/extra.png", png(41))
    created = await create(
        papi,
        sku="NEW-1",
        options=["red"],
        images=[
            {"url": extra, "position": 1, "option": "red", "alt": "Back"},
            {"url": main, "position": 0, "imageType": "SWATCH"},
        ],
    )
    assert created["userErrors"] == []
    images = created["product"]["images"]
    assert [(i["sourceUrl"], i["option"], i["position"], i["imageType"]) for i in images] == [
        (main, None, 0, "SWATCH"),
        (extra, "red", 0, "DEFAULT"),
    ]
    assert images[1]["alt"] == "Back"
    await papi.assert_consistent()


@pytest.mark.parametrize(
    ("bad", "field", "code"),
    [
        ({"url": "/missing.png"}, ["images", "1", "url"], "DOWNLOAD_FAILED"),
        ({"url": "/not-an-image.png"}, ["images", "1", "url"], "UNSUPPORTED_FORMAT"),
        ({"url": "ftp://example.com/a.png"}, ["images", "1", "url"], "URL_NOT_ALLOWED"),
        ({"url": "/ok.png", "option": "blue"}, ["images", "1", "option"], "INVALID"),
        ({"url": "/ok.png", "position": -1}, ["images", "1", "position"], "INVALID"),
        ({"url": "/first.png"}, ["images", "1", "url"], "INVALID"),
    ],
)
async def test_product_create_with_images_is_all_or_nothing(
    papi: Api, server: ImageServer, bad: dict[str, Any], field: list[str], code: str
) -> None:
    first = server.serve("/first.png", png(50))
    server.serve("/ok.png", png(51))
    server.serve("/not-an-image.png", b"plain text, not an image")
    url = bad["url"] if "://" in bad["url"] else server.url(bad["url"])
    refused = await create(
        papi, sku="NEW-2", options=["red"], images=[{"url": first}, {**bad, "url": url}]
    )
    assert refused["product"] is None
    assert errors(refused) == [(field, code)]
    assert await papi.count_rows("product") == 0
    assert await papi.count_rows("image") == 0
    await papi.assert_consistent()


async def test_product_create_with_images_refuses_a_taken_sku(
    papi: Api, server: ImageServer
) -> None:
    await papi.create_product("NEW-3")
    url = server.serve("/a.png", png(60))
    refused = await create(papi, sku=" NEW-3 ", images=[{"url": url}])
    assert errors(refused) == [(["sku"], "ALREADY_EXISTS")]
    assert await papi.count_rows("image") == 0
    await papi.assert_consistent()


# uploadVideoFromUrl ------------------------------------------------------------------


async def test_upload_video_by_url(papi: Api, server: ImageServer) -> None:
    product = (await create(papi, sku="VID-1"))["product"]
    url = server.serve("/clip.mp4", mp4_bytes())
    done = (await papi.data(UPLOAD_VIDEO_FROM_URL, {"i": {"productSku": "VID-1", "url": url}}))[
        "uploadVideoFromUrl"
    ]
    assert done["userErrors"] == []
    assert (done["video"]["source"], done["video"]["mimeType"]) == ("URL", "video/mp4")
    before = await snapshot(papi, "VID-1")
    server.serve("/text.mp4", b"not a video at all")
    for input, expected in [
        ({"url": server.url("/gone.mp4")}, (["url"], "DOWNLOAD_FAILED")),
        ({"url": server.url("/text.mp4")}, (["url"], "UNSUPPORTED_FORMAT")),
        ({"url": url}, (["url"], "DUPLICATE")),
        ({"url": "file:///etc/passwd"}, (["url"], "URL_NOT_ALLOWED")),
        ({"url": " "}, (["url"], "REQUIRED")),
        ({"url": "https://" + "x" * 2050}, (["url"], "INVALID")),
    ]:
        refused = (
            await papi.data(UPLOAD_VIDEO_FROM_URL, {"i": {"productId": product["id"], **input}})
        )["uploadVideoFromUrl"]
        assert errors(refused) == [expected], (input, refused)
        await assert_unchanged(papi, "VID-1", before)
    both = await papi.upload(
        UPLOAD_VIDEO,
        {"i": {"productId": product["id"], "file": None, "url": url}},
        {"variables.i.file": ("clip.mp4", mp4_bytes(seconds=2), "video/mp4")},
    )
    assert errors(both.json()["data"]["uploadVideo"]) == [(["url"], "INVALID")]
    await assert_unchanged(papi, "VID-1", before)
    no_file = await papi.post(UPLOAD_VIDEO, {"i": {"productId": product["id"], "url": url}})
    assert no_file["data"] is None and "required field 'file'" in no_file["errors"][0]["message"]
    await assert_unchanged(papi, "VID-1", before)


async def test_upload_video_by_url_keeps_the_video_limit(
    settings: Settings, server: ImageServer
) -> None:
    body = mp4_bytes(seconds=2)
    async with api_with(
        settings, "small", fetch_allow_hosts="127.0.0.1", max_video_bytes=len(body) - 1
    ) as api:
        await api.create_product("VID-2")
        url = server.serve("/big.mp4", body)
        refused = (
            await api.data(UPLOAD_VIDEO_FROM_URL, {"i": {"productSku": "VID-2", "url": url}})
        )["uploadVideoFromUrl"]
        assert errors(refused) == [(["url"], "FILE_TOO_LARGE")]
        assert await api.count_rows("video") == 0
        await api.assert_consistent()


async def test_upload_video_by_url_refuses_loopback_without_allow_list(
    settings: Settings, server: ImageServer
) -> None:
    async with api_with(settings, "strict") as api:
        await api.create_product("VID-3")
        url = server.serve("/clip.mp4", mp4_bytes())
        refused = (
            await api.data(UPLOAD_VIDEO_FROM_URL, {"i": {"productSku": "VID-3", "url": url}})
        )["uploadVideoFromUrl"]
        assert errors(refused) == [(["url"], "URL_NOT_ALLOWED")]
        assert server.total_hits == 0


# Reading: sourceUrl and the image filters ---------------------------------------------


async def test_image_filters(papi: Api, server: ImageServer) -> None:
    product = (await create(papi, sku="FIL-1"))["product"]
    url = server.serve("/by-url.png", png(70))
    by_url = (await papi.data(UPLOAD_IMAGE, {"i": {"productId": product["id"], "url": url}}))[
        "uploadImage"
    ]["image"]
    assert (by_url["sourceUrl"], by_url["source"]) == (url, "URL")
    plain = (await papi.upload_image(product["id"], png(71)))["image"]
    red0 = (await papi.upload_image(product["id"], png(72), option="red"))["image"]
    red1 = (await papi.upload_image(product["id"], png(73), option="red"))["image"]

    async def ids(**filter: Any) -> list[str]:
        data = await papi.data(IMAGES, {"f": {"productSkus": ["FIL-1"], **filter}})
        return [edge["node"]["id"] for edge in data["images"]["edges"]]

    assert await ids(inDefaultGallery=True) == [by_url["id"], plain["id"]]
    assert await ids(inDefaultGallery=False) == [red0["id"], red1["id"]]
    assert await ids(position=0) == [by_url["id"], red0["id"]]
    assert await ids(sinceId=plain["id"]) == [red0["id"], red1["id"]]
    assert await ids(sourceUrls=[url, "https://example.com/other.png"]) == [by_url["id"]]
    assert await ids(sourceUrls=[]) == []
    assert await ids(inDefaultGallery=False, position=1) == [red1["id"]]

    gallery = await papi.data(
        "query($sku: String!) { product(sku: $sku) { "
        "default: images(inDefaultGallery: true) { id } "
        "options: images(inDefaultGallery: false) { id } all: images { id } } }",
        {"sku": "FIL-1"},
    )
    assert [i["id"] for i in gallery["product"]["default"]] == [by_url["id"], plain["id"]]
    assert [i["id"] for i in gallery["product"]["options"]] == [red0["id"], red1["id"]]
    assert len(gallery["product"]["all"]) == 4


@pytest.mark.parametrize(
    "filter",
    [
        {"sinceId": "not an id"},
        {"sinceId": to_global_id("Product", 1)},
        {"sourceUrls": [f"https://example.com/{i}.png" for i in range(101)]},
        {"sourceUrls": ["https://example.com/a\nb.png"]},
    ],
)
async def test_bad_image_filters_are_refused(papi: Api, filter: dict[str, Any]) -> None:
    await graphql_error(papi, IMAGES, {"f": filter})


# Videos by SKU and backward pagination ------------------------------------------------


async def test_videos_by_sku(papi: Api) -> None:
    for sku in ("V-A", "V-B"):
        await papi.create_product(sku)
        payload = await papi.upload(
            UPLOAD_VIDEO,
            {"i": {"productSku": sku, "file": None}},
            {"variables.i.file": ("v.mp4", mp4_bytes(seconds=1 + len(sku) % 2), "video/mp4")},
        )
        assert payload.json()["data"]["uploadVideo"]["userErrors"] == []
    query = (
        "query($skus: [String!]) { videos(productSkus: $skus) { totalCount "
        "edges { node { product { sku } } } } }"
    )
    data = await papi.data(query, {"skus": [" V-B "]})
    assert data["videos"]["totalCount"] == 1
    assert data["videos"]["edges"][0]["node"]["product"]["sku"] == "V-B"
    await graphql_error(papi, query, {"skus": [f"S{i}" for i in range(101)]})


async def walk_back(api: Api, query: str, field: str, last: int) -> list[str]:
    """Every node's id, walked from the end with last/before, in list order."""
    ids: list[str] = []
    before = None
    while True:
        data = (await api.data(query, {"last": last, "before": before}))[field]
        assert data["pageInfo"]["hasNextPage"] == (before is not None)
        ids = [edge["node"]["id"] for edge in data["edges"]] + ids
        if not data["pageInfo"]["hasPreviousPage"]:
            return ids
        before = data["pageInfo"]["startCursor"]


async def test_backward_pagination(papi: Api) -> None:
    products = [await papi.create_product(f"P-{i:02d}") for i in range(7)]
    for product in products[:3]:
        for seed in range(3):
            await papi.upload_image(product["id"], png(100 + seed))
    page = "pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { node { id } }"
    queries = {
        "products": f"query($last: Int, $before: String) {{ products(last: $last, "
        f"before: $before, sortBy: NAME, direction: DESC) {{ {page} }} }}",
        "images": f"query($last: Int, $before: String) {{ images(last: $last, before: $before) "
        f"{{ {page} }} }}",
    }
    forward = {
        "products": [p["id"] for p in sorted(products, key=lambda p: p["name"], reverse=True)],
        "images": [
            i["id"] for p in products[:3] for i in sorted(await papi.gallery(p["id"]), key=pos)
        ],
    }
    for field, query in queries.items():
        for last in (1, 2, 3, 100):
            assert await walk_back(papi, query, field, last) == forward[field], (field, last)

    data = await papi.data(
        "query($c: String) { products(last: 2, before: $c) { edges { node { sku } } } }",
        {"c": None},
    )
    assert [e["node"]["sku"] for e in data["products"]["edges"]] == ["P-05", "P-06"]

    for args in (
        "first: 2, last: 2",
        'after: "x", last: 2',
        "last: 0",
        "last: 101",
        'before: "not a cursor"',
    ):
        await graphql_error(papi, f"{{ products({args}) {{ totalCount }} }}", {})
    for field in ("images", "videos", "downloadableImages"):
        message = await graphql_error(
            papi, f"{{ {field}(first: 1, last: 1) {{ totalCount }} }}", {}
        )
        assert "not both" in message
    variables = await papi.post(
        "query($f: Int, $l: Int) { products(first: $f, last: $l) { totalCount } }",
        {"f": None, "l": 3},
    )
    assert "errors" not in variables


def pos(image: dict[str, Any]) -> int:
    position: int = image["position"]
    return position
