"""Global ids and cursors holding values the database cannot take (integers past its INTEGER
range, negative, empty, of the wrong kind) are refused where they are decoded: queries answer
null or BAD_USER_INPUT, mutations INVALID at the id's field, never "Internal server error"."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from schema.errors import BAD_USER_INPUT
from storage.sql.pages import encode_cursor
from support.api import ERRORS, Api
from support.media_factory import image_bytes, mp4_bytes

NUMBERS = ["99999999999999999999999", str(2**63), str(2**31), "-1", "", "0", "01", "+5", " 7"]
TYPES = ["Product", "Image", "Video", "DownloadableImage"]


def gid(type_name: str, pk: str) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


BAD = [gid(t, n) for t in TYPES for n in NUMBERS]


@pytest.fixture
async def media(api: Api) -> dict[str, str]:
    """A product with an image and a video, so that a bad id could only be matched by a bug."""
    product = await api.create_product("IDS-1")
    image = await api.upload_image(product["id"], image_bytes("PNG", (32, 24), seed=2))
    response = await api.upload(
        "mutation($input: UploadVideoInput!) { uploadVideo(input: $input) { video { id } } }",
        {"input": {"productId": product["id"], "file": None}},
        {"variables.input.file": ("clip.mp4", mp4_bytes(), "video/mp4")},
    )
    video = response.json()["data"]["uploadVideo"]["video"]
    return {"product": product["id"], "image": image["image"]["id"], "video": video["id"]}


async def test_queries_by_an_out_of_range_id_answer_null(api: Api, media: dict[str, str]) -> None:
    query = (
        "query($id: ID!) { node(id: $id) { id } product(id: $id) { id } "
        "image(id: $id) { id } video(id: $id) { id } }"
    )
    for value in BAD:
        body = await api.post(query, {"id": value})
        assert body == {"data": {"node": None, "product": None, "image": None, "video": None}}, (
            value
        )
    # The largest id PostgreSQL's INTEGER holds is an id like any other.
    body = await api.post(query, {"id": gid("Product", str(2**31 - 1))})
    assert "errors" not in body, body


@pytest.mark.parametrize(
    "query",
    [
        "query($p: [ID!]) { images(filter: {productIds: $p}) { totalCount } }",
        "query($p: [ID!]) { videos(productIds: $p) { totalCount } }",
    ],
)
async def test_filters_by_an_out_of_range_id_are_bad_user_input(
    api: Api, media: dict[str, str], query: str
) -> None:
    for value in BAD:
        body = await api.post(query, {"p": [media["product"], value]})
        assert body["data"] is None, body
        (error,) = body["errors"]
        assert error["extensions"] == {"code": BAD_USER_INPUT}, error
        assert error["message"] == "productIds holds a value that is not a Product id.", error


def _mutations(media: dict[str, str], bad: str) -> list[tuple[str, dict[str, Any], list[str]]]:
    """(mutation, variables, the field path of its error) for every mutation taking an id."""
    ids = f"deletedIds {ERRORS}"
    return [
        (
            f'mutation($id: ID!) {{ productUpdate(id: $id, input: {{name: "x"}}) {{ {ERRORS} }} }}',
            {"id": bad},
            ["id"],
        ),
        (f"mutation($id: ID!) {{ productDelete(id: $id) {{ {ids} }} }}", {"id": bad}, ["id"]),
        (
            f"mutation($i: UploadImageInput!) {{ uploadImage(input: $i) {{ {ERRORS} }} }}",
            {"i": {"productId": bad, "base64": "AAAA", "filename": "a.png"}},
            ["productId"],
        ),
        (
            f"mutation($i: UploadImagesInput!) {{ uploadImages(input: $i) {{ {ERRORS} }} }}",
            {"i": {"productId": bad, "files": []}},
            ["productId"],
        ),
        (
            f'mutation($id: ID!) {{ updateImage(id: $id, input: {{alt: "a"}}) {{ {ERRORS} }} }}',
            {"id": bad},
            ["id"],
        ),
        (
            f"mutation($id: ID!) {{ updateVideo(id: $id, position: 0) {{ {ERRORS} }} }}",
            {"id": bad},
            ["id"],
        ),
        (
            f"mutation($ids: [ID!]!) {{ reorderImages(imageIds: $ids) {{ {ERRORS} }} }}",
            {"ids": [media["image"], bad]},
            ["imageIds", "1"],
        ),
        (
            f"mutation($ids: [ID!]!) {{ reorderVideos(videoIds: $ids) {{ {ERRORS} }} }}",
            {"ids": [media["video"], bad]},
            ["videoIds", "1"],
        ),
        (
            f"mutation($id: ID!) {{ setMainImage(imageId: $id) {{ {ERRORS} }} }}",
            {"id": bad},
            ["imageId"],
        ),
        (
            f"mutation($ids: [ID!]!) {{ deleteImages(ids: $ids) {{ {ids} }} }}",
            {"ids": [media["image"], bad]},
            ["ids", "1"],
        ),
        (
            f"mutation($ids: [ID!]!) {{ deleteVideos(ids: $ids) {{ {ids} }} }}",
            {"ids": [media["video"], bad]},
            ["ids", "1"],
        ),
        (
            f"mutation($ids: [ID!]!) {{ regenerateRenditions(imageIds: $ids) {{ {ERRORS} }} }}",
            {"ids": [media["image"], bad]},
            ["imageIds", "1"],
        ),
    ]


async def test_mutations_given_an_out_of_range_id_are_invalid_at_its_field(
    api: Api, media: dict[str, str]
) -> None:
    before = await api.snapshot(media["product"])
    for number in NUMBERS:
        for query, variables, field in _mutations(media, gid("Product", number)):
            data = await api.data(query, variables)
            (payload,) = data.values()
            assert payload["userErrors"] == [
                {"field": field, "code": "INVALID", "message": payload["userErrors"][0]["message"]}
            ], (query, number)
    await api.assert_unchanged(before, media["product"])
    response = await api.upload(
        f"mutation($input: UploadVideoInput!) {{ uploadVideo(input: $input) {{ {ERRORS} }} }}",
        {"input": {"productId": gid("Product", str(2**63)), "file": None}},
        {"variables.input.file": ("clip.mp4", mp4_bytes(), "video/mp4")},
    )
    errors = response.json()["data"]["uploadVideo"]["userErrors"]
    assert [(e["field"], e["code"]) for e in errors] == [(["productId"], "INVALID")]


def cursor(name: str, values: list[object]) -> str:
    return encode_cursor(name, values)


def raw_cursor(payload: object) -> str:
    raw = json.dumps(payload).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


PRODUCTS = "query($a: String, $s: ProductSort) { products(after: $a, sortBy: $s) { totalCount } }"
IMAGES = "query($a: String) { images(after: $a) { totalCount } }"
VIDEOS = "query($a: String) { videos(after: $a) { totalCount } }"
GROUPS = "query($a: String) { downloadableImages(after: $a) { totalCount } }"

BAD_CURSORS: list[tuple[str, dict[str, Any]]] = [
    (PRODUCTS, {"a": cursor("products:SKU:asc", ["A", 2**63])}),
    (PRODUCTS, {"a": cursor("products:SKU:asc", ["A", 2**31])}),
    (PRODUCTS, {"a": cursor("products:SKU:asc", ["A", -(2**31) - 1])}),
    (PRODUCTS, {"a": cursor("products:SKU:asc", ["A", 10**40])}),
    (PRODUCTS, {"a": cursor("products:SKU:asc", ["A", 1.5])}),
    (PRODUCTS, {"a": cursor("products:SKU:asc", ["A", True])}),
    (PRODUCTS, {"a": cursor("products:SKU:asc", ["A\x00B", 1])}),
    (PRODUCTS, {"a": cursor("products:SKU:asc", [7, 1])}),
    (PRODUCTS, {"a": cursor("products:SKU:asc", [None, 1])}),
    (PRODUCTS, {"a": cursor("products:NAME:asc", [["x"], 1]), "s": "NAME"}),
    (
        PRODUCTS,
        {
            "a": cursor("products:CREATED_AT:asc", ["9999-12-31T23:59:59-23:59", 1]),
            "s": "CREATED_AT",
        },
    ),
    (
        PRODUCTS,
        {
            "a": cursor("products:CREATED_AT:asc", ["0001-01-01T00:00:00+23:59", 1]),
            "s": "CREATED_AT",
        },
    ),
    (PRODUCTS, {"a": cursor("products:CREATED_AT:asc", [12, 1]), "s": "CREATED_AT"}),
    (PRODUCTS, {"a": cursor("products:UPDATED_AT:asc", ["yesterday", 1]), "s": "UPDATED_AT"}),
    (IMAGES, {"a": cursor("images", [2**40, 0, "", 0, 1])}),
    (IMAGES, {"a": cursor("images", [1, 0, "", 0, -(2**63)])}),
    (IMAGES, {"a": cursor("images", [1, 0, "\x00", 0, 1])}),
    (VIDEOS, {"a": cursor("videos", [1, 10**30, 1])}),
    (VIDEOS, {"a": cursor("videos", [1, 1])}),
    (GROUPS, {"a": cursor("downloadable-groups", ["A\x00"])}),
    (GROUPS, {"a": raw_cursor({"downloadable-groups": ["A"]})}),
    (GROUPS, {"a": raw_cursor(["downloadable-groups", "A"])}),
    (VIDEOS, {"a": cursor("images", [1, 0, "", 0, 1])}),
]


@pytest.mark.parametrize(("query", "variables"), BAD_CURSORS)
async def test_cursors_with_values_out_of_range_or_of_the_wrong_kind_are_invalid(
    api: Api, media: dict[str, str], query: str, variables: dict[str, Any]
) -> None:
    body = await api.post(query, variables)
    assert body["data"] is None, body
    (error,) = body["errors"]
    assert error["extensions"] == {"code": BAD_USER_INPUT}, error
    assert error["message"] in (
        "The cursor is not valid.",
        "The cursor does not belong to this list.",
    ), error


async def test_cursors_the_gateway_made_still_page(
    api: Api, media: dict[str, str], client: httpx.AsyncClient
) -> None:
    await api.create_product("IDS-2")
    for sort in ("SKU", "NAME", "CREATED_AT", "UPDATED_AT"):
        query = (
            "query($a: String, $s: ProductSort) { products(first: 1, after: $a, sortBy: $s) "
            "{ edges { node { sku } } pageInfo { endCursor } } }"
        )
        first = await api.data(query, {"s": sort})
        end = first["products"]["pageInfo"]["endCursor"]
        second = await api.data(query, {"s": sort, "a": end})
        skus = [e["node"]["sku"] for e in first["products"]["edges"] + second["products"]["edges"]]
        assert sorted(skus) == ["IDS-1", "IDS-2"], sort
    # A cursor written without a UTC offset (as SQLite's naive timestamps were) still pages.
    naive = cursor("products:CREATED_AT:asc", ["2000-01-01T00:00:00", 1])
    data = await api.data(
        "query($a: String) { products(after: $a, sortBy: CREATED_AT) { totalCount } }",
        {"a": naive},
    )
    assert data["products"]["totalCount"] == 2
