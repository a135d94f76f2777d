"""productCreate, productUpdate and productDelete through HTTP: results, user errors, and that a
mutation reporting userErrors changed nothing."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from support.api import ERRORS, PRODUCT_FIELDS, VIDEO_FIELDS, Api
from support.media_factory import image_bytes, mp4_bytes

pytestmark = pytest.mark.anyio

TABLES = ("product", "image", "video", "downloadable_image")

CREATE = (
    "mutation($i: ProductCreateInput!) { productCreate(input: $i) { "
    f"product {{ {PRODUCT_FIELDS} }} {ERRORS} }} }}"
)
UPDATE = (
    "mutation($id: ID!, $i: ProductUpdateInput!) { productUpdate(id: $id, input: $i) { "
    f"product {{ {PRODUCT_FIELDS} }} {ERRORS} }} }}"
)
DELETE = f"mutation($id: ID!) {{ productDelete(id: $id) {{ deletedIds {ERRORS} }} }}"
BY_ID = f"query($id: ID!) {{ product(id: $id) {{ {PRODUCT_FIELDS} }} }}"
BY_SKU = f"query($sku: String!) {{ product(sku: $sku) {{ {PRODUCT_FIELDS} }} }}"
UPLOAD_VIDEO = (
    "mutation($input: UploadVideoInput!) { uploadVideo(input: $input) { "
    f"video {{ {VIDEO_FIELDS} }} {ERRORS} }} }}"
)


def gid(type_name: str, pk: int) -> str:
    return base64.b64encode(f"{type_name}:{pk}".encode()).decode()


async def counts(api: Api) -> dict[str, int]:
    return {table: await api.count_rows(table) for table in TABLES}


async def by_id(api: Api, product_id: str) -> dict[str, Any] | None:
    product: dict[str, Any] | None = (await api.data(BY_ID, {"id": product_id}))["product"]
    return product


async def create(api: Api, sku: str, name: str) -> dict[str, Any]:
    payload: dict[str, Any] = (await api.data(CREATE, {"i": {"sku": sku, "name": name}}))[
        "productCreate"
    ]
    return payload


async def update(api: Api, product_id: str, **fields: str) -> dict[str, Any]:
    payload: dict[str, Any] = (await api.data(UPDATE, {"id": product_id, "i": fields}))[
        "productUpdate"
    ]
    return payload


async def delete(api: Api, product_id: str) -> dict[str, Any]:
    payload: dict[str, Any] = (await api.data(DELETE, {"id": product_id}))["productDelete"]
    return payload


async def upload_video(api: Api, product_id: str, content: bytes) -> dict[str, Any]:
    response = await api.upload(
        UPLOAD_VIDEO,
        {"input": {"productId": product_id, "file": None}},
        {"variables.input.file": ("clip.mp4", content, "video/mp4")},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["uploadVideo"]
    assert payload["userErrors"] == [], payload
    return payload


async def uploaded(api: Api, product_id: str, content: bytes, **fields: Any) -> dict[str, Any]:
    payload = await api.upload_image(product_id, content, **fields)
    assert payload["userErrors"] == [], payload
    image: dict[str, Any] = payload["image"]
    return image


def parse_time(value: str) -> datetime:
    assert value.endswith("+00:00"), value
    moment = datetime.fromisoformat(value)
    assert moment.utcoffset() == timedelta(0)
    return moment


# ---- productCreate ----------------------------------------------------------------------


async def test_create_returns_the_product(api: Api) -> None:
    before = datetime.now(UTC)
    payload = await create(api, "SKU-CREATE-1", "Blue chair")
    after = datetime.now(UTC)

    assert payload["userErrors"] == []
    product = payload["product"]
    assert product["sku"] == "SKU-CREATE-1"
    assert product["name"] == "Blue chair"
    decoded = base64.b64decode(product["id"]).decode()
    type_name, _, pk = decoded.partition(":")
    assert type_name == "Product" and pk.isdigit()
    created = parse_time(product["createdAt"])
    updated = parse_time(product["updatedAt"])
    slack = timedelta(seconds=2)
    assert before - slack <= created <= after + slack
    assert created <= updated <= after + slack

    assert await by_id(api, product["id"]) == product
    assert (await api.data(BY_SKU, {"sku": "SKU-CREATE-1"}))["product"] == product
    assert await counts(api) == {"product": 1, "image": 0, "video": 0, "downloadable_image": 0}


async def test_create_accepts_a_sku_of_255_characters(api: Api) -> None:
    sku = "S" * 255
    payload = await create(api, sku, "Long")
    assert payload["userErrors"] == []
    assert payload["product"]["sku"] == sku


@pytest.mark.parametrize(
    ("sku", "name", "fields"),
    [
        ("", "A name", [["sku"]]),
        ("   ", "A name", [["sku"]]),
        ("SKU-1", "", [["name"]]),
        ("SKU-1", " \t\n ", [["name"]]),
        (" ", " ", [["sku"], ["name"]]),
    ],
)
async def test_create_blank_values_are_required(
    api: Api, sku: str, name: str, fields: list[list[str]]
) -> None:
    payload = await create(api, sku, name)
    assert payload["product"] is None
    assert [e["field"] for e in payload["userErrors"]] == fields
    assert {e["code"] for e in payload["userErrors"]} == {"REQUIRED"}
    assert all(e["message"] for e in payload["userErrors"])
    assert await api.count_rows("product") == 0


async def test_create_over_long_sku_is_invalid(api: Api) -> None:
    payload = await create(api, "S" * 256, "Long")
    assert payload["product"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(["sku"], "INVALID")]
    assert await api.count_rows("product") == 0


async def test_create_over_long_name_is_invalid(api: Api) -> None:
    payload = await create(api, "SKU-1", "n" * 1001)
    assert payload["product"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(["name"], "INVALID")]
    assert await api.count_rows("product") == 0


async def test_create_duplicate_sku_already_exists(api: Api) -> None:
    original = await api.create_product("DUP-1", "First")
    payload = await create(api, "DUP-1", "Second")
    assert payload["product"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(["sku"], "ALREADY_EXISTS")]
    assert await api.count_rows("product") == 1
    assert await by_id(api, original["id"]) == original


# ---- productUpdate ----------------------------------------------------------------------


async def test_update_changes_sku_and_name(api: Api) -> None:
    original = await api.create_product("OLD-SKU", "Old name")
    await asyncio.sleep(0.01)
    payload = await update(api, original["id"], sku="NEW-SKU", name="New name")

    assert payload["userErrors"] == []
    product = payload["product"]
    assert product["id"] == original["id"]
    assert product["sku"] == "NEW-SKU"
    assert product["name"] == "New name"
    assert product["createdAt"] == original["createdAt"]
    assert parse_time(product["updatedAt"]) > parse_time(original["updatedAt"])

    assert await by_id(api, original["id"]) == product
    assert (await api.data(BY_SKU, {"sku": "NEW-SKU"}))["product"] == product
    assert (await api.data(BY_SKU, {"sku": "OLD-SKU"}))["product"] is None
    assert await api.count_rows("product") == 1


async def test_update_only_the_name_keeps_the_sku(api: Api) -> None:
    original = await api.create_product("KEEP-SKU", "Before")
    payload = await update(api, original["id"], name="After")
    assert payload["userErrors"] == []
    assert payload["product"]["sku"] == "KEEP-SKU"
    assert payload["product"]["name"] == "After"


async def test_update_unknown_product_is_not_found(api: Api) -> None:
    existing = await api.create_product("EXISTS", "Exists")
    payload = await update(api, gid("Product", 987654), name="Nope")
    assert payload["product"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(["id"], "NOT_FOUND")]
    assert await api.count_rows("product") == 1
    assert await by_id(api, existing["id"]) == existing


@pytest.mark.parametrize("bad_id", ["not-an-id", "", gid("Image", 1), "UHJvZHVjdDp4"])
async def test_update_malformed_id_is_invalid(api: Api, bad_id: str) -> None:
    existing = await api.create_product("EXISTS", "Exists")
    payload = await update(api, bad_id, name="Nope")
    assert payload["product"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(["id"], "INVALID")]
    assert await by_id(api, existing["id"]) == existing


async def test_update_onto_another_products_sku_already_exists(api: Api) -> None:
    first = await api.create_product("TAKEN", "First")
    second = await api.create_product("FREE", "Second")
    payload = await update(api, second["id"], sku="TAKEN", name="Renamed")
    assert payload["product"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(["sku"], "ALREADY_EXISTS")]
    assert await by_id(api, first["id"]) == first
    assert await by_id(api, second["id"]) == second
    assert await api.count_rows("product") == 2


async def test_update_to_its_own_sku_is_fine(api: Api) -> None:
    product = await api.create_product("SAME", "Same")
    payload = await update(api, product["id"], sku="SAME")
    assert payload["userErrors"] == []
    assert payload["product"]["sku"] == "SAME"


async def test_update_blank_sku_is_required(api: Api) -> None:
    product = await api.create_product("BLANK-TEST", "Name")
    payload = await update(api, product["id"], sku="  ")
    assert payload["product"] is None
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(["sku"], "REQUIRED")]
    assert await by_id(api, product["id"]) == product


# ---- productDelete ----------------------------------------------------------------------


async def test_delete_returns_ids_and_removes_rows_and_blobs(api: Api) -> None:
    other = await api.create_product("OTHER", "Other")
    other_image = await uploaded(api, other["id"], image_bytes(seed=99))
    product = await api.create_product("GONE", "Gone")
    pid = product["id"]

    first = await uploaded(api, pid, image_bytes(seed=1))
    second = await uploaded(api, pid, image_bytes(seed=2))
    front = await uploaded(api, pid, image_bytes(seed=3), position=0)
    red = await uploaded(api, pid, image_bytes(seed=4), option="red")
    video = (await upload_video(api, pid, mp4_bytes()))["video"]
    gallery = [image["id"] for image in await api.gallery(pid)]
    assert gallery == [front["id"], first["id"], second["id"], red["id"]]
    assert len(api.blob_files()) == 6

    payload = await delete(api, pid)
    assert payload["userErrors"] == []
    assert payload["deletedIds"] == [pid, *gallery, video["id"]]

    assert await by_id(api, pid) is None
    assert await counts(api) == {"product": 1, "image": 1, "video": 0, "downloadable_image": 0}
    for media_id in [*gallery, video["id"]]:
        assert (await api.data("query($id: ID!) { node(id: $id) { id } }", {"id": media_id}))[
            "node"
        ] is None
    assert api.blob_files() == {other_image["url"].removeprefix("http://testserver/media/")}
    await api.assert_consistent()


async def test_delete_keeps_a_blob_shared_with_another_product(api: Api) -> None:
    shared = image_bytes(seed=7)
    one = await api.create_product("ONE", "One")
    two = await api.create_product("TWO", "Two")
    image_one = await uploaded(api, one["id"], shared)
    image_two = await uploaded(api, two["id"], shared)
    assert image_one["url"] == image_two["url"]
    assert image_one["checksum"] == image_two["checksum"]
    assert len(api.blob_files()) == 1

    payload = await delete(api, one["id"])
    assert payload["deletedIds"] == [one["id"], image_one["id"]]
    assert len(api.blob_files()) == 1
    response = await api.client.get(image_two["url"].removeprefix("http://testserver"))
    assert response.status_code == 200
    assert response.content == shared
    await api.assert_consistent()

    payload = await delete(api, two["id"])
    assert payload["deletedIds"] == [two["id"], image_two["id"]]
    assert api.blob_files() == set()
    assert await counts(api) == {"product": 0, "image": 0, "video": 0, "downloadable_image": 0}
    await api.assert_consistent()


async def test_delete_product_without_media(api: Api) -> None:
    product = await api.create_product("BARE", "Bare")
    payload = await delete(api, product["id"])
    assert payload == {"deletedIds": [product["id"]], "userErrors": []}
    assert await api.count_rows("product") == 0


async def test_delete_unknown_product_is_not_found(api: Api) -> None:
    product = await api.create_product("STAYS", "Stays")
    image = await uploaded(api, product["id"], image_bytes(seed=5))
    blobs = api.blob_files()

    payload = await delete(api, gid("Product", 424242))
    assert payload["deletedIds"] == []
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(["id"], "NOT_FOUND")]

    payload = await delete(api, "garbage")
    assert payload["deletedIds"] == []
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(["id"], "INVALID")]

    assert await by_id(api, product["id"]) == product
    assert [i["id"] for i in await api.gallery(product["id"])] == [image["id"]]
    assert await counts(api) == {"product": 1, "image": 1, "video": 0, "downloadable_image": 0}
    assert api.blob_files() == blobs


async def test_deleted_sku_can_be_created_again(api: Api) -> None:
    product = await api.create_product("REUSE", "First")
    await delete(api, product["id"])
    again = await api.create_product("REUSE", "Second")
    assert again["id"] != product["id"]
    assert again["name"] == "Second"
