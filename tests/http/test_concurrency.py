"""Concurrent writers on one product, through the ASGI app: mixed uploads, moves, main-image
choices and deletes fired together with asyncio.gather. Whatever order they run in, every
gallery's positions stay 0..n-1, at most one image is main, and rows and blobs agree.

Run on SQLite (BEGIN IMMEDIATE serialises writers) and on PostgreSQL (the product row is locked
FOR UPDATE): ``MEDIA_GATEWAY_TEST_POSTGRES=1 pytest tests/http/test_concurrency.py``."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from collections.abc import Awaitable
from typing import Any

import sqlalchemy as sa

from schema.ids import pk_of, to_global_id
from support.api import ERRORS, IMAGE_FIELDS, Api
from support.media_factory import image_bytes

UPLOAD_IMAGE = (
    "mutation($input: UploadImageInput!) { uploadImage(input: $input) { "
    f"image {{ {IMAGE_FIELDS} }} {ERRORS} }} }}"
)
UPDATE_IMAGE = (
    "mutation($id: ID!, $input: UpdateImageInput!) { updateImage(id: $id, input: $input) { "
    f"image {{ id position option }} {ERRORS} }} }}"
)
SET_MAIN = (
    f"mutation($id: ID!) {{ setMainImage(imageId: $id) {{ image {{ id isMain }} {ERRORS} }} }}"
)
PRODUCT_DELETE = f"mutation($id: ID!) {{ productDelete(id: $id) {{ deletedIds {ERRORS} }} }}"
DELETE_IMAGES = f"mutation($ids: [ID!]!) {{ deleteImages(ids: $ids) {{ deletedIds {ERRORS} }} }}"
PRODUCT_STATE = (
    "query($id: ID!) { node(id: $id) { ... on Product { "
    "mainImage { id isMain } images { id position isMain option checksum } } } }"
)

GATHER_TIMEOUT = 30  # seconds; a lost lock can deadlock writers, which must fail, not hang

# Under concurrency an operation may find its image already deleted; nothing else may fail.
ALLOWED_RACE_ERRORS = {"NOT_FOUND"}


async def upload(api: Api, product_id: str, content: bytes, **fields: Any) -> dict[str, Any]:
    response = await api.upload(
        UPLOAD_IMAGE,
        {"input": {"productId": product_id, "file": None, **fields}},
        {"variables.input.file": ("image.png", content, "application/octet-stream")},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["uploadImage"]
    return payload


async def mutate(api: Api, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    data = await api.data(query, variables)
    (payload,) = data.values()
    assert isinstance(payload, dict)
    return payload


def move(api: Api, image_id: str, position: int) -> Awaitable[dict[str, Any]]:
    return mutate(api, UPDATE_IMAGE, {"id": image_id, "input": {"position": position}})


def error_codes(payload: dict[str, Any]) -> set[str]:
    return {e["code"] for e in payload["userErrors"]}


async def seeded(api: Api, product_id: str, seeds: range, option: str | None = None) -> list[str]:
    ids = []
    for seed in seeds:
        payload = await upload(api, product_id, image_bytes(seed=seed), option=option)
        assert payload["userErrors"] == [], payload
        ids.append(payload["image"]["id"])
    return ids


async def assert_gallery_invariants(api: Api, product_id: str) -> dict[str | None, list[str]]:
    """Positions 0..n-1 per gallery, at most one marked main, isMain only on mainImage.
    Returns each gallery's ids in order."""
    data = await api.data(PRODUCT_STATE, {"id": product_id})
    product = data["node"]
    galleries: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for image in product["images"]:
        galleries[image["option"]].append(image)
    for option, members in galleries.items():
        assert [m["position"] for m in members] == list(range(len(members))), (option, members)
    flagged = [image["id"] for image in product["images"] if image["isMain"]]
    if product["images"]:
        assert product["mainImage"] is not None and product["mainImage"]["isMain"]
        assert flagged == [product["mainImage"]["id"]]
    else:
        assert product["mainImage"] is None and flagged == []
    pk = product_pk(product_id)
    async with api.backend.db.read() as connection:
        marked = (
            (
                await connection.execute(
                    sa.text("SELECT id FROM image WHERE is_main AND product_id = :p"), {"p": pk}
                )
            )
            .scalars()
            .all()
        )
        positions = (
            await connection.execute(
                sa.text(
                    "SELECT option, count(*), min(position), max(position), "
                    "count(DISTINCT position) FROM image WHERE product_id = :p GROUP BY option"
                ),
                {"p": pk},
            )
        ).all()
    assert len(marked) <= 1
    if marked:
        assert product["mainImage"]["id"] == to_global_id("Image", marked[0])
    elif product["images"]:
        # The fallback: position 0 of the default gallery, else of the first gallery.
        assert product["mainImage"]["id"] == product["images"][0]["id"]
        assert product["images"][0]["position"] == 0
    for option, count, low, high, distinct in positions:
        assert (low, high, distinct) == (0, count - 1, count), option
    return {option: [m["id"] for m in members] for option, members in galleries.items()}


def product_pk(product_id: str) -> int:
    pk = pk_of(product_id, "Product")
    assert pk is not None, product_id
    return pk


async def gather(operations: list[Awaitable[dict[str, Any]]]) -> list[dict[str, Any]]:
    async with asyncio.timeout(GATHER_TIMEOUT):
        return list(await asyncio.gather(*operations))


async def run_all(operations: list[Awaitable[dict[str, Any]]]) -> list[dict[str, Any]]:
    payloads = await gather(operations)
    for payload in payloads:
        assert error_codes(payload) <= ALLOWED_RACE_ERRORS, payload
    return payloads


async def test_mixed_writers_on_one_product_keep_the_gallery_whole(api: Api) -> None:
    product = await api.create_product("CONC-1")
    pid = product["id"]
    ids = await seeded(api, pid, range(1, 11))
    rng = random.Random(7)
    deleted = [ids[0], ids[3], ids[6], ids[9]]
    operations: list[Awaitable[dict[str, Any]]] = []
    operations += [upload(api, pid, image_bytes(seed=100 + i)) for i in range(10)]
    operations += [move(api, rng.choice(ids), rng.randint(0, 12)) for _ in range(8)]
    operations += [mutate(api, SET_MAIN, {"id": rng.choice(ids)}) for _ in range(6)]
    operations += [mutate(api, DELETE_IMAGES, {"ids": [image_id]}) for image_id in deleted[:3]]
    operations += [mutate(api, DELETE_IMAGES, {"ids": [deleted[3], ids[1]]})]
    operations += [mutate(api, DELETE_IMAGES, {"ids": [ids[1]]})]  # races the one above
    rng.shuffle(operations)
    assert len(operations) == 29
    payloads = await run_all(operations)

    uploads = [p for p in payloads if "image" in p and p["image"] and "checksum" in p["image"]]
    assert len(uploads) == 10
    deletes = [p for p in payloads if "deletedIds" in p]
    gone = {i for p in deletes for i in p["deletedIds"]}
    # The pair and the single delete of ids[1] race: exactly one of them wins (the other is
    # NOT_FOUND and, all or nothing, deletes none of its ids).
    pair_won = deleted[3] in gone
    assert gone == {*deleted[:3], ids[1], *([deleted[3]] if pair_won else [])}
    assert sum(ids[1] in p["deletedIds"] for p in deletes) == 1
    galleries = await assert_gallery_invariants(api, pid)
    assert len(galleries[None]) == 10 - len(gone) + 10
    assert not set(galleries[None]) & gone
    assert await api.count_rows("image") == 20 - len(gone)
    await api.assert_consistent()


async def test_two_option_galleries_at_once(api: Api) -> None:
    product = await api.create_product("CONC-2")
    pid = product["id"]
    red = await seeded(api, pid, range(1, 5), option="red")
    blue = await seeded(api, pid, range(11, 15), option="blue")
    default = await seeded(api, pid, range(21, 23))
    rng = random.Random(11)
    operations: list[Awaitable[dict[str, Any]]] = []
    for index in range(6):
        operations.append(upload(api, pid, image_bytes(seed=200 + index), option="red"))
        operations.append(
            upload(api, pid, image_bytes(seed=300 + index), option="blue", position=0)
        )
    operations += [move(api, image_id, rng.randint(0, 9)) for image_id in [*red, *blue]]
    # Move images between galleries while the others write to them.
    operations.append(mutate(api, UPDATE_IMAGE, {"id": default[0], "input": {"option": "red"}}))
    operations.append(
        mutate(api, UPDATE_IMAGE, {"id": default[1], "input": {"option": "blue", "position": 1}})
    )
    operations.append(mutate(api, SET_MAIN, {"id": red[0]}))
    operations.append(mutate(api, SET_MAIN, {"id": blue[0]}))
    operations.append(mutate(api, DELETE_IMAGES, {"ids": [red[1], blue[1]]}))
    rng.shuffle(operations)
    await run_all(operations)

    galleries = await assert_gallery_invariants(api, pid)
    assert set(galleries) == {"red", "blue"}
    assert len(galleries["red"]) == 4 - 1 + 6 + 1
    assert len(galleries["blue"]) == 4 - 1 + 6 + 1
    assert default[0] in galleries["red"] and default[1] in galleries["blue"]
    await api.assert_consistent()


async def test_same_bytes_in_parallel_to_one_product_stored_once(api: Api) -> None:
    product = await api.create_product("CONC-DUP")
    content = image_bytes(seed=42)
    payloads = await gather([upload(api, product["id"], content) for _ in range(12)])
    successes = [p for p in payloads if p["userErrors"] == []]
    assert len(successes) == 1
    for payload in payloads:
        if payload is not successes[0]:
            assert payload["image"] is None
            assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
                (["file"], "DUPLICATE")
            ]
    assert await api.count_rows("image") == 1
    assert len(api.blob_files()) == 1
    await assert_gallery_invariants(api, product["id"])
    await api.assert_consistent()


async def test_shared_blob_survives_parallel_delete_while_referenced(api: Api) -> None:
    content = image_bytes(seed=77)
    products = [await api.create_product(f"CONC-SHARE-{i}") for i in range(7)]
    first = await upload(api, products[0]["id"], content)
    assert first["userErrors"] == []
    key = first["image"]["url"].removeprefix("http://testserver/media/")
    operations: list[Awaitable[dict[str, Any]]] = [
        upload(api, p["id"], content) for p in products[1:]
    ]
    operations.insert(3, mutate(api, DELETE_IMAGES, {"ids": [first["image"]["id"]]}))
    payloads = await gather(operations)
    for payload in payloads:
        assert payload["userErrors"] == [], payload
    assert await api.count_rows("image") == 6
    assert api.blob_files() == {key}
    response = await api.client.get(f"/media/{key}")
    assert response.status_code == 200 and response.content == content
    await api.assert_consistent()

    # Now delete the remaining references in parallel (half by image, half with the product):
    # the blob goes with the last one.
    rest = payloads[:3] + payloads[4:]
    operations = [
        mutate(api, DELETE_IMAGES, {"ids": [payload["image"]["id"]]}) for payload in rest[:3]
    ]
    operations += [mutate(api, PRODUCT_DELETE, {"id": p["id"]}) for p in products[4:]]
    for payload in await gather(operations):
        assert payload["userErrors"] == [], payload
    assert await api.count_rows("image") == 0
    assert api.blob_files() == set()
    await api.assert_consistent()
