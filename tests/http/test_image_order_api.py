"""Changing stored images over HTTP: updateImage, reorderImages, setMainImage and
deleteImages. Galleries keep positions 0..n-1, a product has exactly one main image, blobs
go when nothing refers to them, and every refused request changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from schema.ids import to_global_id
from support.api import ERRORS, IMAGE_FIELDS, Api
from support.media_factory import image_bytes

pytestmark = pytest.mark.anyio

UPDATE = (
    "mutation($id: ID!, $input: UpdateImageInput!) { updateImage(id: $id, input: $input) { "
    f"image {{ {IMAGE_FIELDS} }} {ERRORS} }} }}"
)
REORDER = (
    "mutation($ids: [ID!]!) { reorderImages(imageIds: $ids) { "
    f"images {{ id position option }} {ERRORS} }} }}"
)
SET_MAIN = (
    f"mutation($id: ID!) {{ setMainImage(imageId: $id) {{ image {{ id isMain }} {ERRORS} }} }}"
)
DELETE = f"mutation($ids: [ID!]!) {{ deleteImages(ids: $ids) {{ deletedIds {ERRORS} }} }}"
MAIN = (
    "query($id: ID!) { node(id: $id) { ... on Product { mainImage { id position option } "
    "images { id isMain } } } }"
)
MISSING = to_global_id("Image", 999_999)


# Helpers -------------------------------------------------------------------


def png(seed: int) -> bytes:
    return image_bytes("PNG", (32, 24), seed=seed)


def errors(payload: dict[str, Any]) -> list[tuple[str, list[str] | None]]:
    return [(error["code"], error["field"]) for error in payload["userErrors"]]


def order(gallery: list[dict[str, Any]]) -> dict[str | None, list[str]]:
    """Each gallery's image ids in position order, after checking positions are 0..n-1."""
    galleries: dict[str | None, list[dict[str, Any]]] = {}
    for image in gallery:
        galleries.setdefault(image["option"], []).append(image)
    result = {}
    for option, members in galleries.items():
        members.sort(key=lambda image: image["position"])
        assert [m["position"] for m in members] == list(range(len(members))), (option, members)
        result[option] = [m["id"] for m in members]
    return result


async def stored(api: Api, pid: str, seed: int, **fields: Any) -> str:
    payload = await api.upload_image(pid, png(seed), **fields)
    assert payload["userErrors"] == [], payload
    image_id: str = payload["image"]["id"]
    return image_id


async def main_of(api: Api, pid: str) -> str | None:
    """The id of Product.mainImage, after checking isMain is true on exactly that image."""
    product = (await api.data(MAIN, {"id": pid}))["node"]
    marked = [image["id"] for image in product["images"] if image["isMain"]]
    if product["mainImage"] is None:
        assert marked == [] and product["images"] == []
        return None
    assert marked == [product["mainImage"]["id"]]
    main: str = product["mainImage"]["id"]
    return main


async def update(api: Api, image_id: str, **input: Any) -> dict[str, Any]:
    payload: dict[str, Any] = (await api.data(UPDATE, {"id": image_id, "input": input}))[
        "updateImage"
    ]
    return payload


async def reorder(api: Api, ids: list[str]) -> dict[str, Any]:
    payload: dict[str, Any] = (await api.data(REORDER, {"ids": ids}))["reorderImages"]
    return payload


async def set_main(api: Api, image_id: str) -> dict[str, Any]:
    payload: dict[str, Any] = (await api.data(SET_MAIN, {"id": image_id}))["setMainImage"]
    return payload


async def delete(api: Api, ids: list[str]) -> dict[str, Any]:
    payload: dict[str, Any] = (await api.data(DELETE, {"ids": ids}))["deleteImages"]
    return payload


class Shop:
    """A product with a default gallery [a, b, c, d] and a "red" gallery [r0, r1], and another
    product with one image."""

    def __init__(self, pid: str, default: list[str], red: list[str], other: str, oid: str):
        self.pid = pid
        self.a, self.b, self.c, self.d = default
        self.r0, self.r1 = red
        self.other = other
        self.other_pid = oid

    @property
    def default(self) -> list[str]:
        return [self.a, self.b, self.c, self.d]

    @property
    def red(self) -> list[str]:
        return [self.r0, self.r1]


@pytest.fixture
async def shop(api: Api) -> Shop:
    pid = (await api.create_product("SKU-SHOP"))["id"]
    default = [await stored(api, pid, seed) for seed in (1, 2, 3, 4)]
    red = [await stored(api, pid, seed, option="red") for seed in (5, 6)]
    oid = (await api.create_product("SKU-OTHER"))["id"]
    other = await stored(api, oid, 7)
    return Shop(pid, default, red, other, oid)


# 5. updateImage ------------------------------------------------------------


async def test_move_forward_and_backward(api: Api, shop: Shop) -> None:
    a, b, c, d = shop.default
    payload = await update(api, a, position=2)
    assert payload["userErrors"] == [] and payload["image"]["position"] == 2
    assert order(await api.gallery(shop.pid)) == {None: [b, c, a, d], "red": shop.red}
    payload = await update(api, d, position=0)
    assert payload["image"]["position"] == 0
    assert order(await api.gallery(shop.pid)) == {None: [d, b, c, a], "red": shop.red}
    payload = await update(api, c, position=99)  # past the end: last
    assert payload["image"]["position"] == 3
    assert order(await api.gallery(shop.pid)) == {None: [d, b, a, c], "red": shop.red}
    payload = await update(api, b, position=1)  # where it is already
    assert payload["image"]["position"] == 1
    assert order(await api.gallery(shop.pid)) == {None: [d, b, a, c], "red": shop.red}
    await api.assert_consistent()


async def test_update_image_type_and_alt(api: Api, shop: Shop) -> None:
    payload = await update(api, shop.b, imageType="SWATCH", alt="Front view")
    image = payload["image"]
    assert payload["userErrors"] == []
    assert (image["imageType"], image["alt"], image["position"]) == ("SWATCH", "Front view", 1)
    image = (await update(api, shop.b, imageType="PICTO"))["image"]
    assert (image["imageType"], image["alt"]) == ("PICTO", "Front view")  # alt kept
    image = (await update(api, shop.b, alt=None))["image"]
    assert (image["imageType"], image["alt"]) == ("PICTO", None)  # cleared, type kept
    gallery = {i["id"]: i for i in await api.gallery(shop.pid)}
    assert (gallery[shop.b]["imageType"], gallery[shop.b]["alt"]) == ("PICTO", None)
    assert order(list(gallery.values())) == {None: shop.default, "red": shop.red}


async def test_option_change_moves_to_the_end_of_the_other_gallery(api: Api, shop: Shop) -> None:
    a, b, c, d = shop.default
    payload = await update(api, b, option="red")
    assert payload["userErrors"] == []
    assert (payload["image"]["option"], payload["image"]["position"]) == ("red", 2)
    assert order(await api.gallery(shop.pid)) == {None: [a, c, d], "red": [*shop.red, b]}

    payload = await update(api, a, option="red", position=0)
    assert (payload["image"]["option"], payload["image"]["position"]) == ("red", 0)
    assert order(await api.gallery(shop.pid)) == {None: [c, d], "red": [a, *shop.red, b]}

    payload = await update(api, shop.r1, option=None, position=1)
    assert (payload["image"]["option"], payload["image"]["position"]) == (None, 1)
    assert order(await api.gallery(shop.pid)) == {None: [c, shop.r1, d], "red": [a, shop.r0, b]}

    payload = await update(api, d, option="blue", position=5)  # a new gallery
    assert (payload["image"]["option"], payload["image"]["position"]) == ("blue", 0)
    assert order(await api.gallery(shop.pid)) == {
        None: [c, shop.r1],
        "red": [a, shop.r0, b],
        "blue": [d],
    }
    await api.assert_consistent()


async def test_option_unchanged_with_position_is_a_move(api: Api, shop: Shop) -> None:
    payload = await update(api, shop.r1, option="red", position=0)
    assert (payload["image"]["option"], payload["image"]["position"]) == ("red", 0)
    assert order(await api.gallery(shop.pid)) == {None: shop.default, "red": [shop.r1, shop.r0]}


@pytest.mark.parametrize(
    ("image_id", "input", "expected"),
    [
        pytest.param(MISSING, {"position": 0}, [("NOT_FOUND", ["id"])], id="unknown"),
        pytest.param("not-an-id", {"position": 0}, [("INVALID", ["id"])], id="malformed"),
        pytest.param(
            to_global_id("Product", 1), {"alt": "x"}, [("INVALID", ["id"])], id="product-id"
        ),
        pytest.param("B", {"position": -1}, [("INVALID", ["position"])], id="negative"),
        pytest.param("B", {"option": "   "}, [("INVALID", ["option"])], id="blank-option"),
        pytest.param("B", {"alt": "x" * 1001}, [("INVALID", ["alt"])], id="long-alt"),
    ],
)
async def test_update_errors_change_nothing(
    api: Api, shop: Shop, image_id: str, input: dict[str, Any], expected: list[Any]
) -> None:
    image_id = shop.b if image_id == "B" else image_id
    before = await api.snapshot(shop.pid, shop.other_pid)
    payload = await update(api, image_id, **input)
    assert payload["image"] is None
    assert errors(payload) == expected
    await api.assert_unchanged(before, shop.pid, shop.other_pid)


# 6. reorderImages ----------------------------------------------------------


async def test_reorder_a_gallery(api: Api, shop: Shop) -> None:
    a, b, c, d = shop.default
    payload = await reorder(api, [c, a, d, b])
    assert payload["userErrors"] == []
    assert [(i["id"], i["position"]) for i in payload["images"]] == [
        (c, 0),
        (a, 1),
        (d, 2),
        (b, 3),
    ]
    assert order(await api.gallery(shop.pid)) == {None: [c, a, d, b], "red": shop.red}
    payload = await reorder(api, [shop.r1, shop.r0])
    assert [(i["id"], i["position"], i["option"]) for i in payload["images"]] == [
        (shop.r1, 0, "red"),
        (shop.r0, 1, "red"),
    ]
    assert order(await api.gallery(shop.pid)) == {None: [c, a, d, b], "red": [shop.r1, shop.r0]}
    payload = await reorder(api, [shop.other])  # a gallery of one
    assert payload["userErrors"] == []
    await api.assert_consistent()


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("repeated", [("REPEATED_ID", ["imageIds", "2"])]),
        ("incomplete", [("INCOMPLETE_ORDER", ["imageIds"])]),
        ("not-found", [("NOT_FOUND", ["imageIds", "2"])]),
        ("not-same-product", [("NOT_SAME_PRODUCT", ["imageIds"])]),
        ("two-galleries", [("INVALID", ["imageIds"])]),
        ("empty", [("REQUIRED", ["imageIds"])]),
        ("too-many", [("TOO_MANY", ["imageIds"])]),
        ("malformed", [("INVALID", ["imageIds", "1"])]),
        ("video-id", [("INVALID", ["imageIds", "0"])]),
    ],
)
async def test_reorder_errors_change_nothing(
    api: Api, shop: Shop, case: str, expected: list[Any]
) -> None:
    a, b, c, d = shop.default
    ids = {
        "repeated": [d, c, d, b, a],
        "incomplete": [d, c, b],
        "not-found": [d, c, MISSING, b, a],
        "not-same-product": [d, c, b, a, shop.other],
        "two-galleries": [d, c, b, a, shop.r0],
        "empty": [],
        "too-many": [to_global_id("Image", n) for n in range(1, 102)],
        "malformed": [d, "nope", b, a],
        "video-id": [to_global_id("Video", 1), c, b, a],
    }[case]
    before = await api.snapshot(shop.pid, shop.other_pid)
    payload = await reorder(api, ids)
    assert payload["images"] is None
    assert errors(payload) == expected
    await api.assert_unchanged(before, shop.pid, shop.other_pid)


async def test_reorder_of_a_whole_option_gallery_with_100_ids_is_allowed(api: Api) -> None:
    """The limit is 100 ids: exactly 100 are checked as usual (here, none exists)."""
    payload = await reorder(api, [to_global_id("Image", n) for n in range(1, 101)])
    assert [code for code, _ in errors(payload)] == ["NOT_FOUND"] * 100


# 7. setMainImage -----------------------------------------------------------


async def test_set_main_image_marks_exactly_one(api: Api, shop: Shop) -> None:
    assert await main_of(api, shop.pid) == shop.a  # fallback: position 0 of the default
    payload = await set_main(api, shop.c)
    assert payload["userErrors"] == []
    assert payload["image"] == {"id": shop.c, "isMain": True}
    assert await main_of(api, shop.pid) == shop.c
    payload = await set_main(api, shop.r1)  # in an option gallery
    assert payload["image"] == {"id": shop.r1, "isMain": True}
    assert await main_of(api, shop.pid) == shop.r1
    # Moving images around keeps the marked one.
    await reorder(api, [shop.d, shop.c, shop.b, shop.a])
    await reorder(api, [shop.r1, shop.r0])
    assert await main_of(api, shop.pid) == shop.r1
    payload = await set_main(api, shop.r1)  # again: still exactly one
    assert payload["image"]["isMain"] is True
    assert await main_of(api, shop.pid) == shop.r1
    assert await main_of(api, shop.other_pid) == shop.other  # the other product untouched
    gallery = {i["id"]: i for i in await api.gallery(shop.pid)}
    assert [i for i, image in gallery.items() if image["isMain"]] == [shop.r1]


async def test_fallback_main_follows_the_order(api: Api, shop: Shop) -> None:
    await reorder(api, [shop.c, shop.a, shop.b, shop.d])
    assert await main_of(api, shop.pid) == shop.c
    await update(api, shop.c, position=3)
    assert await main_of(api, shop.pid) == shop.a


async def test_fallback_main_without_a_default_gallery(api: Api) -> None:
    pid = (await api.create_product("SKU-OPTIONS"))["id"]
    red = [await stored(api, pid, seed, option="red") for seed in (1, 2)]
    blue = [await stored(api, pid, seed, option="blue") for seed in (3, 4)]
    main = await main_of(api, pid)
    assert main in (red[0], blue[0])
    assert await main_of(api, pid) == main
    # Once the default gallery has an image, it is the fallback.
    first_default = await stored(api, pid, 5)
    assert await main_of(api, pid) == first_default


@pytest.mark.parametrize(
    ("image_id", "expected"),
    [
        (MISSING, [("NOT_FOUND", ["imageId"])]),
        ("nope", [("INVALID", ["imageId"])]),
        (to_global_id("Product", 1), [("INVALID", ["imageId"])]),
    ],
)
async def test_set_main_errors_change_nothing(
    api: Api, shop: Shop, image_id: str, expected: list[Any]
) -> None:
    await set_main(api, shop.c)
    before = await api.snapshot(shop.pid, shop.other_pid)
    payload = await set_main(api, image_id)
    assert payload["image"] is None
    assert errors(payload) == expected
    await api.assert_unchanged(before, shop.pid, shop.other_pid)
    assert await main_of(api, shop.pid) == shop.c


# 8. deleteImages -----------------------------------------------------------


async def test_delete_closes_up_each_gallery(api: Api, shop: Shop) -> None:
    a, b, c, d = shop.default
    payload = await delete(api, [b, shop.r0])
    assert payload == {"deletedIds": [b, shop.r0], "userErrors": []}
    assert order(await api.gallery(shop.pid)) == {None: [a, c, d], "red": [shop.r1]}
    assert await api.count_rows("image") == 5
    data = await api.data("query($id: ID!) { image(id: $id) { id } }", {"id": b})
    assert data["image"] is None
    payload = await delete(api, [a, d])
    assert payload["userErrors"] == []
    assert order(await api.gallery(shop.pid)) == {None: [c], "red": [shop.r1]}
    await api.assert_consistent()


async def test_deleting_the_main_image_makes_the_fallback_main(api: Api, shop: Shop) -> None:
    await set_main(api, shop.c)
    await delete(api, [shop.c])
    assert await main_of(api, shop.pid) == shop.a
    await delete(api, [shop.a])  # the fallback itself
    assert await main_of(api, shop.pid) == shop.b
    await delete(api, [shop.b, shop.d])
    assert await main_of(api, shop.pid) == shop.r0
    await delete(api, shop.red)
    assert await main_of(api, shop.pid) is None
    assert await api.gallery(shop.pid) == []
    await api.assert_consistent()


async def test_blob_is_deleted_with_its_last_row(api: Api) -> None:
    first = (await api.create_product("SKU-1"))["id"]
    second = (await api.create_product("SKU-2"))["id"]
    shared = png(42)
    one = await api.upload_image(first, shared)
    two = await api.upload_image(second, shared)
    alone = await api.upload_image(first, png(43))
    key = f"{one['image']['checksum'][:2]}/{one['image']['checksum']}.png"
    alone_key = f"{alone['image']['checksum'][:2]}/{alone['image']['checksum']}.png"
    assert api.blob_files() == {key, alone_key}

    await delete(api, [alone["image"]["id"]])  # nothing else refers to it
    assert api.blob_files() == {key}
    await delete(api, [one["image"]["id"]])  # the second product still refers to it
    assert api.blob_files() == {key}
    response = await api.client.get(two["image"]["url"].removeprefix("http://testserver"))
    assert response.status_code == 200 and response.content == shared
    await api.assert_consistent()
    await delete(api, [two["image"]["id"]])  # the last row
    assert api.blob_files() == set()
    response = await api.client.get(two["image"]["url"].removeprefix("http://testserver"))
    assert response.status_code == 404
    await api.assert_consistent()


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("not-same-product", [("NOT_SAME_PRODUCT", ["ids"])]),
        ("not-found", [("NOT_FOUND", ["ids", "1"])]),
        ("repeated", [("REPEATED_ID", ["ids", "2"])]),
        ("too-many", [("TOO_MANY", ["ids"])]),
        ("empty", [("REQUIRED", ["ids"])]),
        ("malformed", [("INVALID", ["ids", "0"])]),
    ],
)
async def test_delete_errors_change_nothing(
    api: Api, shop: Shop, case: str, expected: list[Any]
) -> None:
    ids = {
        "not-same-product": [shop.a, shop.other],
        "not-found": [shop.a, MISSING],
        "repeated": [shop.a, shop.b, shop.a],
        "too-many": [shop.a, *(to_global_id("Image", n) for n in range(1000, 1100))],
        "empty": [],
        "malformed": ["nope", shop.a],
    }[case]
    before = await api.snapshot(shop.pid, shop.other_pid)
    payload = await delete(api, ids)
    assert payload == {"deletedIds": [], "userErrors": payload["userErrors"]}
    assert errors(payload) == expected
    await api.assert_unchanged(before, shop.pid, shop.other_pid)
