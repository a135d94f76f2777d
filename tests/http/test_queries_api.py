"""The Query root through HTTP: product lookups, keyset pages of products, images and videos,
node(id:), mainImage fallback, and the DataLoaders' constant statement count."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from storage.backend import Backend
from support.api import ERRORS, IMAGE_FIELDS, PRODUCT_FIELDS, VIDEO_FIELDS, Api
from support.media_factory import image_bytes, mp4_bytes

pytestmark = pytest.mark.anyio

TABLES = ("product", "image", "video", "downloadable_image")

PAGE_INFO = "pageInfo { hasNextPage hasPreviousPage startCursor endCursor }"
PRODUCTS = (
    "query($first: Int, $after: String, $filter: ProductFilter, $sortBy: ProductSort, "
    "$direction: SortDirection) { products(first: $first, after: $after, filter: $filter, "
    "sortBy: $sortBy, direction: $direction) { "
    f"edges {{ cursor node {{ {PRODUCT_FIELDS} }} }} {PAGE_INFO} totalCount }} }}"
)
IMAGES = (
    "query($first: Int, $after: String, $filter: ImageFilter) { "
    "images(first: $first, after: $after, filter: $filter) { "
    f"edges {{ cursor node {{ {IMAGE_FIELDS} product {{ id sku }} }} }} "
    f"{PAGE_INFO} totalCount }} }}"
)
VIDEOS = (
    "query($productIds: [ID!]) { videos(productIds: $productIds) { "
    f"edges {{ cursor node {{ {VIDEO_FIELDS} product {{ id }} }} }} {PAGE_INFO} totalCount }} }}"
)
NODE = (
    "query($id: ID!) { node(id: $id) { __typename id "
    f"... on Product {{ {PRODUCT_FIELDS} }} "
    "... on Image { url position isMain product { id } } "
    "... on Video { url position mimeType fileSize durationSeconds product { id } } } }"
)
MAIN = (
    "query($id: ID!) { product(id: $id) { mainImage { id position option isMain } "
    "images { id position option isMain } } }"
)
UPLOAD_VIDEO = (
    "mutation($input: UploadVideoInput!) { uploadVideo(input: $input) { "
    f"video {{ {VIDEO_FIELDS} }} {ERRORS} }} }}"
)
UPLOAD_BASE64 = (
    "mutation($input: UploadImageInput!) { uploadImage(input: $input) { "
    f"image {{ id }} {ERRORS} }} }}"
)


def gid(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


async def counts(api: Api) -> dict[str, int]:
    return {table: await api.count_rows(table) for table in TABLES}


async def uploaded(api: Api, product_id: str, content: bytes, **fields: Any) -> dict[str, Any]:
    payload = await api.upload_image(product_id, content, **fields)
    assert payload["userErrors"] == [], payload
    image: dict[str, Any] = payload["image"]
    return image


async def upload_video(api: Api, product_id: str) -> dict[str, Any]:
    response = await api.upload(
        UPLOAD_VIDEO,
        {"input": {"productId": product_id, "file": None}},
        {"variables.input.file": ("clip.mp4", mp4_bytes(), "video/mp4")},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    payload = body["data"]["uploadVideo"]
    assert payload["userErrors"] == [], payload
    video: dict[str, Any] = payload["video"]
    return video


async def products(api: Api, **variables: Any) -> dict[str, Any]:
    connection: dict[str, Any] = (await api.data(PRODUCTS, variables, token=None))["products"]
    return connection


def skus(connection: dict[str, Any]) -> list[str]:
    return [edge["node"]["sku"] for edge in connection["edges"]]


async def query_error(api: Api, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    """A GraphQL error (HTTP 200, "errors" present) with no data for the field."""
    body = await api.post(query, variables, token=None)
    assert body.get("errors"), body
    assert body["data"] is None, body
    return body


# ---- product(id:) and product(sku:) ------------------------------------------------------


async def test_product_by_id_and_by_sku(api: Api) -> None:
    product = await api.create_product("LOOKUP-1", "Lookup")
    await api.create_product("LOOKUP-2", "Other")
    query = f"query($id: ID, $sku: String) {{ product(id: $id, sku: $sku) {{ {PRODUCT_FIELDS} }} }}"
    assert (await api.data(query, {"id": product["id"]}, token=None))["product"] == product
    assert (await api.data(query, {"sku": "LOOKUP-1"}, token=None))["product"] == product
    assert (await api.data(query, {"sku": "NOPE"}, token=None))["product"] is None
    assert (await api.data(query, {"id": gid("Product", 9999)}, token=None))["product"] is None
    assert (await api.data(query, {"id": "garbage"}, token=None))["product"] is None


@pytest.mark.parametrize("case", ["neither", "both null", "both"])
async def test_product_with_both_or_neither_is_an_error(api: Api, case: str) -> None:
    product = await api.create_product("LOOKUP-1", "Lookup")
    variables = {
        "neither": {},
        "both null": {"id": None, "sku": None},
        "both": {"id": product["id"], "sku": "LOOKUP-1"},
    }[case]
    query = "query($id: ID, $sku: String) { product(id: $id, sku: $sku) { id } }"
    body = await api.post(query, variables, token=None)
    assert body.get("errors"), body
    assert body["errors"][0]["path"] == ["product"]
    assert body["data"] == {"product": None}


# ---- products: pages, sorting, filters ---------------------------------------------------


async def test_products_pages_through_everything(api: Api) -> None:
    created = [await api.create_product(f"SKU-{n:02d}", f"Name {n:02d}") for n in range(25)]
    expected = [p["sku"] for p in created]

    seen: list[str] = []
    after = None
    pages = []
    while True:
        page = await products(api, first=10, after=after)
        pages.append(page)
        assert page["totalCount"] == 25
        seen += skus(page)
        info = page["pageInfo"]
        assert info["startCursor"] == page["edges"][0]["cursor"]
        assert info["endCursor"] == page["edges"][-1]["cursor"]
        if not info["hasNextPage"]:
            break
        after = info["endCursor"]
    assert seen == expected
    assert [len(p["edges"]) for p in pages] == [10, 10, 5]
    assert [p["pageInfo"]["hasNextPage"] for p in pages] == [True, True, False]
    assert [p["pageInfo"]["hasPreviousPage"] for p in pages] == [False, True, True]
    assert pages[0]["edges"][0]["node"] == created[0]

    # Past the end: an empty page.
    last = await products(api, first=10, after=pages[-1]["pageInfo"]["endCursor"])
    assert last["edges"] == [] and last["totalCount"] == 25
    assert last["pageInfo"]["hasNextPage"] is False
    assert last["pageInfo"]["startCursor"] is None and last["pageInfo"]["endCursor"] is None

    default = await products(api)
    assert skus(default) == expected[:20]


async def test_products_sort_orders_and_directions(api: Api) -> None:
    # Names run against the SKUs, creation order is neither.
    order = [3, 0, 4, 1, 2]
    created = {}
    for n in order:
        created[n] = await api.create_product(f"SORT-{n}", f"{chr(ord('e') - n)} product")
    by_sku = [f"SORT-{n}" for n in range(5)]

    assert skus(await products(api)) == by_sku
    assert skus(await products(api, direction="DESC")) == by_sku[::-1]
    assert skus(await products(api, sortBy="NAME")) == by_sku[::-1]
    assert skus(await products(api, sortBy="NAME", direction="DESC")) == by_sku
    creation = [f"SORT-{n}" for n in order]
    assert skus(await products(api, sortBy="CREATED_AT")) == creation
    assert skus(await products(api, sortBy="CREATED_AT", direction="DESC")) == creation[::-1]

    # Touch one: it becomes the most recently updated.
    touch = f'mutation($id: ID!) {{ productUpdate(id: $id, input: {{name: "a"}}) {{ {ERRORS} }} }}'
    assert (await api.data(touch, {"id": created[3]["id"]}))["productUpdate"]["userErrors"] == []
    by_updated = await products(api, sortBy="UPDATED_AT", direction="DESC")
    assert skus(by_updated)[0] == "SORT-3"
    assert skus(by_updated)[1:] == creation[1:][::-1]
    assert skus(await products(api, sortBy="NAME"))[0] == "SORT-3"


@pytest.mark.parametrize(
    ("sort_by", "direction"),
    [("NAME", "DESC"), ("CREATED_AT", "DESC"), ("UPDATED_AT", "ASC"), ("SKU", "DESC")],
)
async def test_products_sorted_pages_follow_cursors(api: Api, sort_by: str, direction: str) -> None:
    for n in range(7):
        # Two products share each name so the id breaks ties across pages.
        await api.create_product(f"TIE-{n}", f"name {n // 2}")
    whole = skus(await products(api, first=100, sortBy=sort_by, direction=direction))
    assert len(whole) == 7
    seen: list[str] = []
    after = None
    while True:
        page = await products(api, first=2, after=after, sortBy=sort_by, direction=direction)
        seen += skus(page)
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == whole


async def test_products_filters(api: Api) -> None:
    await api.create_product("A%B", "percent")
    await api.create_product("A_B", "underscore")
    await api.create_product("AXB", "plain")
    await api.create_product("shoe-1", "Red WIDGET")
    await api.create_product("shoe-2", "50% off")
    await api.create_product("back\\slash", "Plum")
    with_image = await api.create_product("PIC-1", "Pictured")
    await uploaded(api, with_image["id"], image_bytes(seed=1))

    async def filtered(**filter: Any) -> list[str]:
        return skus(await products(api, first=100, filter=filter))

    assert await filtered(skus=["AXB", "shoe-1", "missing"]) == ["AXB", "shoe-1"]
    assert await filtered(skus=[]) == []
    assert await filtered(search="%") == ["A%B", "shoe-2"]
    assert await filtered(search="_") == ["A_B"]
    assert await filtered(search="a_b") == ["A_B"]
    assert await filtered(search="widget") == ["shoe-1"]
    assert await filtered(search="SHOE") == ["shoe-1", "shoe-2"]
    assert await filtered(search="nothing like it") == []
    assert await filtered(search="\\") == ["back\\slash"]
    assert await filtered(hasImages=True) == ["PIC-1"]
    assert await filtered(hasImages=False) == [
        "A%B",
        "AXB",
        "A_B",
        "back\\slash",
        "shoe-1",
        "shoe-2",
    ]
    assert await filtered(search="p", hasImages=False) == ["A%B", "AXB", "back\\slash"]
    assert await filtered(search="p", hasImages=True) == ["PIC-1"]
    page = await products(api, first=1, filter={"search": "shoe"})
    assert page["totalCount"] == 2 and page["pageInfo"]["hasNextPage"] is True


async def test_products_search_folds_non_ascii_case(api: Api) -> None:
    await api.create_product("APPLE-1", "Grüne ÄPFEL")
    await api.create_product("PEAR-1", "Birne")

    async def filtered(search: str) -> list[str]:
        return skus(await products(api, first=100, filter={"search": search}))

    assert await filtered("äpfel") == ["APPLE-1"]
    assert await filtered("GRÜNE äPFEL") == ["APPLE-1"]
    assert await filtered("ä") == ["APPLE-1"]


@pytest.mark.parametrize("first", [0, -1, 101])
async def test_products_first_out_of_range_is_an_error(api: Api, first: int) -> None:
    await api.create_product("ANY", "Any")
    body = await query_error(api, PRODUCTS, {"first": first})
    assert "first" in body["errors"][0]["message"]


@pytest.mark.parametrize("after", ["garbage!", "bm90IGpzb24", "WyJpbWFnZXMiLFsxXV0"])
async def test_products_garbage_cursor_is_an_error(api: Api, after: str) -> None:
    await api.create_product("ANY", "Any")
    await query_error(api, PRODUCTS, {"after": after})


async def test_products_cursor_of_another_sort_is_an_error(api: Api) -> None:
    for n in range(3):
        await api.create_product(f"C-{n}", f"C {n}")
    cursor = (await products(api, first=1))["pageInfo"]["endCursor"]
    await query_error(api, PRODUCTS, {"after": cursor, "sortBy": "CREATED_AT"})


# ---- node(id:) ---------------------------------------------------------------------------


async def test_node_resolves_every_type(api: Api) -> None:
    product = await api.create_product("NODE-1", "Node")
    image = await uploaded(api, product["id"], image_bytes(seed=3))
    video = await upload_video(api, product["id"])

    node = (await api.data(NODE, {"id": product["id"]}, token=None))["node"]
    assert node == {"__typename": "Product", **product}

    node = (await api.data(NODE, {"id": image["id"]}, token=None))["node"]
    assert node == {
        "__typename": "Image",
        "id": image["id"],
        "url": image["url"],
        "position": 0,
        "isMain": True,
        "product": {"id": product["id"]},
    }

    node = (await api.data(NODE, {"id": video["id"]}, token=None))["node"]
    assert node["__typename"] == "Video"
    assert node["id"] == video["id"] and node["url"] == video["url"]
    assert node["mimeType"] == "video/mp4" and node["fileSize"] == video["fileSize"] > 0
    assert node["product"] == {"id": product["id"]}
    assert video["durationSeconds"] == pytest.approx(1.0, abs=0.2)
    response = await api.client.get(video["url"].removeprefix("http://testserver"))
    assert response.status_code == 200 and response.content == mp4_bytes()


@pytest.mark.parametrize(
    "bad_id",
    [
        "garbage",
        "",
        "!!!",
        gid("Product", 12345),
        gid("Image", 12345),
        gid("Nope", 1),
        "UHJvZHVjdDow",
    ],
)
async def test_node_unknown_id_is_null(api: Api, bad_id: str) -> None:
    await api.create_product("NODE-1", "Node")
    body = await api.post(NODE, {"id": bad_id}, token=None)
    assert body == {"data": {"node": None}}


# ---- images and videos connections -------------------------------------------------------


async def test_images_connection_order_and_filters(api: Api) -> None:
    second = await api.create_product("IMG-B", "B")
    first = await api.create_product("IMG-A", "A")
    # Created first, but the later product id; uploads interleave products and galleries.
    b0 = await uploaded(api, second["id"], image_bytes(seed=10))
    a_red0 = await uploaded(api, first["id"], image_bytes(seed=11), option="red")
    a0 = await uploaded(api, first["id"], image_bytes(seed=12))
    a_blue0 = await uploaded(api, first["id"], image_bytes(seed=13), option="blue")
    a_front = await uploaded(api, first["id"], image_bytes(seed=14), position=0)
    a_swatch = await uploaded(api, first["id"], image_bytes(seed=15), imageType="SWATCH")
    b_red0 = await uploaded(api, second["id"], image_bytes(seed=16), option="red")

    expected = [
        b0["id"],
        b_red0["id"],
        a_front["id"],
        a0["id"],
        a_swatch["id"],
        a_blue0["id"],
        a_red0["id"],
    ]

    async def ids(**variables: Any) -> list[str]:
        connection = (await api.data(IMAGES, variables, token=None))["images"]
        return [edge["node"]["id"] for edge in connection["edges"]]

    everything = (await api.data(IMAGES, {}, token=None))["images"]
    assert everything["totalCount"] == 7
    assert [e["node"]["id"] for e in everything["edges"]] == expected
    node = everything["edges"][2]["node"]
    assert node["product"] == {"id": first["id"], "sku": "IMG-A"}
    assert node["position"] == 0 and node["option"] is None and node["isMain"] is True
    assert [e["node"]["isMain"] for e in everything["edges"]].count(True) == 2

    # Pages of two follow the same order.
    seen: list[str] = []
    after = None
    while True:
        page = (await api.data(IMAGES, {"first": 2, "after": after}, token=None))["images"]
        assert page["totalCount"] == 7
        seen += [e["node"]["id"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == expected

    assert await ids(filter={"productIds": [first["id"]]}) == expected[2:]
    assert await ids(filter={"productSkus": ["IMG-B"]}) == expected[:2]
    assert await ids(filter={"productSkus": ["IMG-B", "IMG-A"]}) == expected
    assert await ids(filter={"option": "red"}) == [b_red0["id"], a_red0["id"]]
    assert await ids(filter={"imageType": "SWATCH"}) == [a_swatch["id"]]
    assert await ids(filter={"productIds": [first["id"]], "option": "blue"}) == [a_blue0["id"]]
    assert await ids(filter={"productSkus": ["NOPE"]}) == []
    assert await ids(filter={"productIds": [gid("Product", 999)]}) == []

    body = await api.post(IMAGES, {"filter": {"productIds": ["garbage"]}}, token=None)
    assert body.get("errors") and body["data"] is None
    await query_error(api, IMAGES, {"first": 0})
    await query_error(api, IMAGES, {"first": 1001})
    await query_error(api, IMAGES, {"after": "garbage"})


async def test_videos_connection_by_product(api: Api) -> None:
    one = await api.create_product("VID-1", "One")
    two = await api.create_product("VID-2", "Two")
    video_two = await upload_video(api, two["id"])
    video_one = await upload_video(api, one["id"])

    everything = (await api.data(VIDEOS, {}, token=None))["videos"]
    assert everything["totalCount"] == 2
    assert [e["node"]["id"] for e in everything["edges"]] == [video_one["id"], video_two["id"]]

    only = (await api.data(VIDEOS, {"productIds": [two["id"]]}, token=None))["videos"]
    assert only["totalCount"] == 1
    assert only["edges"][0]["node"]["id"] == video_two["id"]
    assert only["edges"][0]["node"]["product"] == {"id": two["id"]}
    assert only["pageInfo"]["hasNextPage"] is False

    none = (await api.data(VIDEOS, {"productIds": []}, token=None))["videos"]
    assert none["edges"] == [] and none["totalCount"] == 0


async def test_downloadable_images_is_empty(api: Api) -> None:
    await api.create_product("DL-1", "Downloadable")
    query = (
        "{ downloadableImages { edges { cursor node { productSku images { id } } } "
        f"{PAGE_INFO} totalCount }} }}"
    )
    connection = (await api.data(query, token=None))["downloadableImages"]
    assert connection == {
        "edges": [],
        "pageInfo": {
            "hasNextPage": False,
            "hasPreviousPage": False,
            "startCursor": None,
            "endCursor": None,
        },
        "totalCount": 0,
    }
    product = (
        await api.data('{ product(sku: "DL-1") { downloadableImages { id } } }', token=None)
    )["product"]
    assert product == {"downloadableImages": []}


# ---- mainImage and isMain ----------------------------------------------------------------


def main_of(product: dict[str, Any]) -> str | None:
    main = product["mainImage"]
    marked = [image["id"] for image in product["images"] if image["isMain"]]
    assert marked == ([main["id"]] if main else []), product
    if main is not None:
        assert main["isMain"] is True
    return main["id"] if main else None


async def main_image(api: Api, product_id: str) -> str | None:
    return main_of((await api.data(MAIN, {"id": product_id}, token=None))["product"])


async def test_main_image_is_null_without_images(api: Api) -> None:
    product = await api.create_product("MAIN-0", "None")
    assert await main_image(api, product["id"]) is None


async def test_main_image_falls_back_to_default_gallery_position_0(api: Api) -> None:
    product = await api.create_product("MAIN-1", "Default")
    pid = product["id"]
    await uploaded(api, pid, image_bytes(seed=1), option="alpha")
    default_first = await uploaded(api, pid, image_bytes(seed=2))
    assert await main_image(api, pid) == default_first["id"]
    front = await uploaded(api, pid, image_bytes(seed=3), position=0)
    assert await main_image(api, pid) == front["id"]


async def test_main_image_falls_back_to_first_option_gallery(api: Api) -> None:
    product = await api.create_product("MAIN-2", "Options")
    pid = product["id"]
    await uploaded(api, pid, image_bytes(seed=1), option="red")
    blue = await uploaded(api, pid, image_bytes(seed=2), option="blue")
    await uploaded(api, pid, image_bytes(seed=3), option="blue")
    assert await main_image(api, pid) == blue["id"]
    blue_front = await uploaded(api, pid, image_bytes(seed=4), option="blue", position=0)
    assert await main_image(api, pid) == blue_front["id"]


async def test_marked_main_image_wins(api: Api) -> None:
    product = await api.create_product("MAIN-3", "Marked")
    pid = product["id"]
    await uploaded(api, pid, image_bytes(seed=1))
    chosen = await uploaded(api, pid, image_bytes(seed=2), option="red")
    mutation = (
        f"mutation($id: ID!) {{ setMainImage(imageId: $id) {{ image {{ id isMain }} {ERRORS} }} }}"
    )
    payload = (await api.data(mutation, {"id": chosen["id"]}))["setMainImage"]
    assert payload == {"image": {"id": chosen["id"], "isMain": True}, "userErrors": []}
    assert await main_image(api, pid) == chosen["id"]


async def test_image_product_resolves(api: Api) -> None:
    product = await api.create_product("IMG-PROD", "Owner")
    image = await uploaded(api, product["id"], image_bytes(seed=5))
    query = f"query($id: ID!) {{ image(id: $id) {{ id product {{ {PRODUCT_FIELDS} }} }} }}"
    data = await api.data(query, {"id": image["id"]}, token=None)
    assert data["image"] == {"id": image["id"], "product": product}
    assert (await api.data(query, {"id": gid("Image", 999)}, token=None))["image"] is None


# ---- DataLoaders: a constant number of statements ----------------------------------------

STOREFRONT = (
    "query($first: Int!) { products(first: $first) { totalCount "
    f"{PAGE_INFO} edges {{ cursor node {{ {PRODUCT_FIELDS} "
    f"mainImage {{ {IMAGE_FIELDS} }} "
    f"images {{ {IMAGE_FIELDS} }} "
    f"videos {{ {VIDEO_FIELDS} }} "
    "downloadableImages { id productSku url position imageType status error "
    "image { id } createdAt updatedAt } } } } }"
)
IGNORED = ("PRAGMA", "BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


@contextmanager
def statements(backend: Backend) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not statement.lstrip().upper().startswith(IGNORED):
            seen.append(statement)

    engines = [engine.sync_engine for engine in backend.db.engines]
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)


async def test_storefront_query_costs_the_same_for_5_and_50_products(
    api: Api, backend: Backend
) -> None:
    for n in range(50):
        product = await api.create_product(f"BULK-{n:02d}", f"Bulk {n}")
        for k in range(2):
            content = image_bytes("PNG", (8, 8), seed=n * 2 + k + 1)
            variables = {
                "input": {
                    "productId": product["id"],
                    "base64": base64.b64encode(content).decode(),
                    "filename": f"bulk-{n}-{k}.png",
                }
            }
            payload = (await api.data(UPLOAD_BASE64, variables))["uploadImage"]
            assert payload["userErrors"] == [], payload
    assert await api.count_rows("image") == 100

    cost = {}
    for first in (5, 50):
        with statements(backend) as seen:
            data = await api.data(STOREFRONT, {"first": first}, token=None)
        edges = data["products"]["edges"]
        assert len(edges) == first
        for edge in edges:
            node = edge["node"]
            assert len(node["images"]) == 2
            assert node["mainImage"]["id"] == node["images"][0]["id"]
            assert node["videos"] == [] and node["downloadableImages"] == []
        cost[first] = seen[:]
    assert len(cost[5]) == len(cost[50]), cost
    assert 1 <= len(cost[50]) <= 8, cost[50]
    # One query per kind of media, however many products are on the page.
    for table in ("image", "video", "downloadable_image"):
        reads = [s for s in cost[50] if re.search(rf"\bFROM {table}\b", s)]
        assert len(reads) == 1, reads
