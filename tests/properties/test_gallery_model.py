"""A stateful property test of image galleries: random sequences of uploadImage, updateImage,
reorderImages, setMainImage, deleteImages and productDelete (then productCreate again) on three
products, run through the HTTP API against a fresh app per example and checked after EVERY step
against a simple in-memory model:

- each gallery's order of image ids, with positions exactly 0..n-1;
- the main image (the marked one, else position 0 of the default gallery, else of "red"), and
  ``isMain`` true on exactly that image;
- a userError exactly when the model predicts one, with the predicted code, and then no change;
- every blob the model's images need is on disk, and no other one (blobs are shared across
  products and go with the last image that uses them).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from property_support import fresh_api

from storage.blobs import blob_key
from support.api import ERRORS, Api
from support.media_factory import image_bytes

pytestmark = pytest.mark.anyio

OPTIONS: tuple[str | None, ...] = (None, "red")
"""The galleries of a product, in the order the API lists them (default gallery first)."""

SKUS = ("P0", "P1", "P2")
FORMATS = {"PNG": "png", "JPEG": "jpg", "GIF": "gif", "WEBP": "webp"}
POOL_SPECS = tuple((fmt, seed) for seed in range(1, 4) for fmt in FORMATS)
"""A small pool, so that the same bytes come twice (DUPLICATE on one product, shared blobs
across products)."""

POOL = [image_bytes(fmt, (24, 16), seed=seed) for fmt, seed in POOL_SPECS]
POOL_SHA = [hashlib.sha256(content).hexdigest() for content in POOL]
POOL_KEYS = [
    blob_key(sha, FORMATS[fmt]) for sha, (fmt, _) in zip(POOL_SHA, POOL_SPECS, strict=True)
]

KEEP = "<keep>"
"""An updateImage option that is not sent at all (as opposed to sent as null)."""

IMAGE = "id position option imageType isMain checksum"
PRODUCT_CREATE = (
    "mutation($i: ProductCreateInput!) { productCreate(input: $i) { "
    f"product {{ id sku }} {ERRORS} }} }}"
)
UPLOAD = (
    "mutation($input: UploadImageInput!) { uploadImage(input: $input) { "
    f"image {{ {IMAGE} }} {ERRORS} }} }}"
)
UPDATE = (
    "mutation($id: ID!, $input: UpdateImageInput!) { updateImage(id: $id, input: $input) { "
    f"image {{ {IMAGE} }} {ERRORS} }} }}"
)
REORDER = (
    "mutation($ids: [ID!]!) { reorderImages(imageIds: $ids) { "
    f"images {{ {IMAGE} }} {ERRORS} }} }}"
)
SET_MAIN = f"mutation($id: ID!) {{ setMainImage(imageId: $id) {{ image {{ {IMAGE} }} {ERRORS} }} }}"
DELETE = f"mutation($ids: [ID!]!) {{ deleteImages(ids: $ids) {{ deletedIds {ERRORS} }} }}"
PRODUCT_DELETE = f"mutation($id: ID!) {{ productDelete(id: $id) {{ deletedIds {ERRORS} }} }}"
STATE = (
    "{ products(first: 10) { edges { node { id sku mainImage { id } "
    f"images {{ {IMAGE} }} }} }} }} }}"
)


# The model -----------------------------------------------------------------


@dataclass
class ModelProduct:
    sku: str
    id: str
    galleries: dict[str | None, list[str]] = field(
        default_factory=lambda: {option: [] for option in OPTIONS}
    )
    marked: str | None = None
    pool_of: dict[str, int] = field(default_factory=dict)
    """Image id -> index of its bytes in POOL."""
    image_type: dict[str, str] = field(default_factory=dict)

    def images(self) -> list[str]:
        """Every image, in the order the API lists them and productDelete returns them."""
        return [image for option in OPTIONS for image in self.galleries[option]]

    def option_of(self, image: str) -> str | None:
        return next(option for option in OPTIONS if image in self.galleries[option])

    def main(self) -> str | None:
        if self.marked is not None:
            return self.marked
        images = self.images()
        return images[0] if images else None


@dataclass
class Model:
    products: list[ModelProduct]
    stale_products: list[str] = field(default_factory=list)
    stale_images: list[str] = field(default_factory=list)

    def live_images(self) -> list[str]:
        return [image for product in self.products for image in product.images()]

    def owner(self, image: str) -> ModelProduct:
        return next(p for p in self.products if image in p.pool_of)


def codes(payload: dict[str, Any]) -> set[str]:
    return {error["code"] for error in payload["userErrors"]}


def expect_refused(payload: dict[str, Any], expected: set[str], result: str) -> None:
    assert codes(payload) == expected, payload
    assert payload[result] in (None, []), payload


def expect_done(payload: dict[str, Any]) -> None:
    assert payload["userErrors"] == [], payload


def insert_at(gallery: list[str], position: int | None, image: str) -> int:
    at = len(gallery) if position is None else min(position, len(gallery))
    gallery.insert(at, image)
    return at


positions = st.one_of(st.none(), st.integers(-1, 6))
"""A position: null (append), one past the end or far past it (= last), or negative (INVALID)."""


# The steps -----------------------------------------------------------------


async def create(api: Api, sku: str) -> ModelProduct:
    payload = (await api.data(PRODUCT_CREATE, {"i": {"sku": sku, "name": f"Product {sku}"}}))[
        "productCreate"
    ]
    expect_done(payload)
    return ModelProduct(sku=sku, id=payload["product"]["id"])


async def upload(api: Api, model: Model, data: st.DataObject) -> str:
    # P0 gets most uploads, so that its galleries grow long enough to reorder.
    product = model.products[data.draw(st.sampled_from((0, 0, 0, 1, 2)), "product")]
    stale = bool(model.stale_products) and data.draw(st.integers(0, 9), "stale?") == 0
    product_id = data.draw(st.sampled_from(model.stale_products)) if stale else product.id
    # Mostly the first bytes that this product lacks (galleries grow), else any (DUPLICATE).
    unused = [i for i in range(len(POOL)) if i not in product.pool_of.values()]
    any_bytes = not unused or data.draw(st.sampled_from((False, False, False, True)), "any?")
    pool = data.draw(st.integers(0, len(POOL) - 1), "pool") if any_bytes else unused[0]
    option = data.draw(st.sampled_from((None, None, "red")), "option")
    position = data.draw(positions, "position")
    note(f"upload pool={pool} to {'stale ' if stale else ''}{product.sku} {option=} {position=}")

    fields: dict[str, Any] = {"productId": product_id, "file": None, "option": option}
    if position is not None:
        fields["position"] = position
    response = await api.upload(
        UPLOAD,
        {"input": fields},
        {"variables.input.file": ("image.bin", POOL[pool], "application/octet-stream")},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    payload = body["data"]["uploadImage"]

    expected = set()
    if position is not None and position < 0:
        expected.add("INVALID")
    if stale:
        expected.add("NOT_FOUND")
    if not expected and pool in product.pool_of.values():
        expected.add("DUPLICATE")
    if expected:
        expect_refused(payload, expected, "image")
        return "/".join(sorted(expected))
    expect_done(payload)
    image = payload["image"]
    at = insert_at(product.galleries[option], position, image["id"])
    product.pool_of[image["id"]] = pool
    product.image_type[image["id"]] = "DEFAULT"
    assert (image["position"], image["option"]) == (at, option), image
    assert image["checksum"] == POOL_SHA[pool]
    assert image["isMain"] == (product.main() == image["id"]), image
    return "ok"


async def update(api: Api, model: Model, data: st.DataObject) -> str:
    image_id = data.draw(st.sampled_from(model.live_images() + model.stale_images), "image")
    position = data.draw(positions, "position")
    option = data.draw(st.sampled_from((KEEP, *OPTIONS)), "option")
    image_type = data.draw(st.sampled_from((None, "DEFAULT", "SWATCH", "PICTO")), "imageType")
    note(f"update {image_id} {position=} {option=} {image_type=}")

    changes: dict[str, Any] = {}
    if position is not None:
        changes["position"] = position
    if option != KEEP:
        changes["option"] = option
    if image_type is not None:
        changes["imageType"] = image_type
    payload = (await api.data(UPDATE, {"id": image_id, "input": changes}))["updateImage"]

    if position is not None and position < 0:
        expect_refused(payload, {"INVALID"}, "image")
        return "INVALID"
    if image_id in model.stale_images:
        expect_refused(payload, {"NOT_FOUND"}, "image")
        return "NOT_FOUND"
    expect_done(payload)
    product = model.owner(image_id)
    current = product.option_of(image_id)
    if option != KEEP and option != current:
        product.galleries[current].remove(image_id)
        insert_at(product.galleries[option], position, image_id)
    elif position is not None:
        gallery = product.galleries[current]
        gallery.remove(image_id)
        insert_at(gallery, position, image_id)
    if image_type is not None:
        product.image_type[image_id] = image_type
    image = payload["image"]
    now = product.option_of(image_id)
    assert (image["option"], image["position"]) == (now, product.galleries[now].index(image_id))
    assert image["imageType"] == product.image_type[image_id]
    return "ok"


async def reorder(api: Api, model: Model, data: st.DataObject) -> str:
    # Largest first: sampled_from favours (and shrinks to) its first element.
    candidates = sorted((p for p in model.products if p.pool_of), key=lambda p: -len(p.pool_of))
    product = data.draw(st.sampled_from(candidates), "product")
    filled = sorted(
        (o for o in OPTIONS if product.galleries[o]), key=lambda o: -len(product.galleries[o])
    )
    option = data.draw(st.sampled_from(filled), "option")
    gallery = product.galleries[option]
    others = [p for p in model.products if p is not product and p.pool_of]
    other_gallery = product.galleries[OPTIONS[1 - OPTIONS.index(option)]]
    kinds = ["whole", "repeat"]
    if len(gallery) >= 2:
        kinds.append("incomplete")
    if model.stale_images:
        kinds.append("stale")
    if other_gallery:
        kinds.append("two galleries")
    if others:
        kinds.append("two products")
    kind = data.draw(st.sampled_from([*kinds, "whole"]), "kind")
    ids = list(data.draw(st.permutations(gallery), "order"))
    expected: str | None = None
    if kind == "incomplete":
        del ids[data.draw(st.integers(0, len(ids) - 1), "left out")]
        expected = "INCOMPLETE_ORDER"
    elif kind != "whole":
        extra = {
            "repeat": ids,
            "stale": model.stale_images,
            "two galleries": other_gallery,
            "two products": [i for p in others for i in p.images()],
        }[kind]
        ids.insert(data.draw(st.integers(0, len(ids)), "at"), data.draw(st.sampled_from(extra)))
        expected = {
            "repeat": "REPEATED_ID",
            "stale": "NOT_FOUND",
            "two galleries": "INVALID",
            "two products": "NOT_SAME_PRODUCT",
        }[kind]
    note(f"reorder {product.sku}/{option} ({kind}): {ids}")

    payload = (await api.data(REORDER, {"ids": ids}))["reorderImages"]
    if expected is not None:
        expect_refused(payload, {expected}, "images")
        return expected
    expect_done(payload)
    product.galleries[option] = ids
    assert [(i["id"], i["position"]) for i in payload["images"]] == [
        (image, position) for position, image in enumerate(ids)
    ]
    return "ok"


async def set_main(api: Api, model: Model, data: st.DataObject) -> str:
    image_id = data.draw(st.sampled_from(model.live_images() + model.stale_images), "image")
    note(f"setMain {image_id}")
    payload = (await api.data(SET_MAIN, {"id": image_id}))["setMainImage"]
    if image_id in model.stale_images:
        expect_refused(payload, {"NOT_FOUND"}, "image")
        return "NOT_FOUND"
    expect_done(payload)
    model.owner(image_id).marked = image_id
    assert payload["image"]["isMain"] is True, payload
    return "ok"


async def delete(api: Api, model: Model, data: st.DataObject) -> str:
    product = data.draw(st.sampled_from([p for p in model.products if p.pool_of]), "product")
    ids = data.draw(
        st.lists(st.sampled_from(product.images()), min_size=1, max_size=3, unique=True), "ids"
    )
    others = [i for p in model.products if p is not product for i in p.images()]
    kinds = ["plain", "repeat"]
    if model.stale_images:
        kinds.append("stale")
    if others:
        kinds.append("two products")
    kind = data.draw(st.sampled_from([*kinds, "plain"]), "kind")
    expected: str | None = None
    if kind != "plain":
        extra = {"repeat": ids, "stale": model.stale_images, "two products": others}[kind]
        ids = [*ids]
        ids.insert(data.draw(st.integers(0, len(ids)), "at"), data.draw(st.sampled_from(extra)))
        expected = {"repeat": "REPEATED_ID", "stale": "NOT_FOUND"}.get(kind, "NOT_SAME_PRODUCT")
    note(f"delete from {product.sku} ({kind}): {ids}")

    payload = (await api.data(DELETE, {"ids": ids}))["deleteImages"]
    if expected is not None:
        expect_refused(payload, {expected}, "deletedIds")
        return expected
    expect_done(payload)
    assert payload["deletedIds"] == ids
    for image_id in ids:
        product.galleries[product.option_of(image_id)].remove(image_id)
        del product.pool_of[image_id], product.image_type[image_id]
    if product.marked in ids:
        product.marked = None
    model.stale_images += ids
    return "ok"


async def delete_product(api: Api, model: Model, data: st.DataObject) -> str:
    slot = data.draw(st.integers(0, len(model.products) - 1), "product")
    stale = bool(model.stale_products) and data.draw(st.integers(0, 4), "stale?") == 0
    product = model.products[slot]
    product_id = data.draw(st.sampled_from(model.stale_products)) if stale else product.id
    note(f"productDelete {'stale ' if stale else ''}{product.sku}")

    payload = (await api.data(PRODUCT_DELETE, {"id": product_id}))["productDelete"]
    if stale:
        expect_refused(payload, {"NOT_FOUND"}, "deletedIds")
        return "NOT_FOUND"
    expect_done(payload)
    assert payload["deletedIds"] == [product.id, *product.images()]
    model.stale_products.append(product.id)
    model.stale_images += product.images()
    model.products[slot] = await create(api, product.sku)
    return "ok"


STEPS = {
    "upload": upload,
    "update": update,
    "reorder": reorder,
    "setMain": set_main,
    "delete": delete,
    "productDelete": delete_product,
}


def feasible(model: Model) -> list[str]:
    """Step names that can run on this state, weighted: uploads and reorders most (galleries
    fill up and get reordered), productDelete least (it empties a whole product)."""
    names = ["upload"] * 5 + ["productDelete"]
    if model.live_images() or model.stale_images:
        names += ["update", "setMain", "update"]
    if model.live_images():
        names += ["reorder", "delete", "reorder", "reorder"]
    return names


# The check after every step --------------------------------------------------


async def check(api: Api, model: Model) -> None:
    edges = (await api.data(STATE))["products"]["edges"]
    nodes = {edge["node"]["sku"]: edge["node"] for edge in edges}
    assert sorted(nodes) == sorted(p.sku for p in model.products)
    for product in model.products:
        node = nodes[product.sku]
        assert node["id"] == product.id
        actual = [
            (i["id"], i["option"], i["position"], i["imageType"], i["checksum"])
            for i in node["images"]
        ]
        expected = [
            (image, option, position, product.image_type[image], POOL_SHA[product.pool_of[image]])
            for option in OPTIONS
            for position, image in enumerate(product.galleries[option])
        ]
        assert actual == expected, product.sku
        main = product.main()
        assert (node["mainImage"] or {}).get("id") == main, product.sku
        assert [i["id"] for i in node["images"] if i["isMain"]] == ([main] if main else [])
    assert await api.count_rows("image") == len(model.live_images())
    await api.assert_consistent()
    in_use = {POOL_KEYS[pool] for p in model.products for pool in p.pool_of.values()}
    assert api.blob_files() == in_use


# The test ------------------------------------------------------------------

FIRST_UPLOADS = 5
MIN_STEPS = 10
MAX_STEPS = 15


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_galleries_follow_the_model(
    data: st.DataObject, migrated_database: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    async with fresh_api(migrated_database, tmp_path_factory.mktemp("example")) as api:
        model = Model(products=[await create(api, sku) for sku in SKUS])
        for step in range(MAX_STEPS):
            # At least MIN_STEPS steps, so that galleries fill up; "stop?" shrinks to 0, so a
            # failing example shrinks to its shortest sequence beyond that.
            if step >= MIN_STEPS and data.draw(st.integers(0, 9), "stop?") == 0:
                break
            # The first steps upload (with random parameters), so later ones find images.
            choices = ["upload"] if step < FIRST_UPLOADS else feasible(model)
            name = data.draw(st.sampled_from(choices), "step")
            event(f"{name}: {await STEPS[name](api, model, data)}")
            await check(api, model)
        longest = max(len(g) for p in model.products for g in p.galleries.values())
        event(f"longest gallery at the end: {longest}")
