"""Lock order and retried transactions, through the ASGI app.

Writers that share blobs take the blobs' locks in one order: two syncs (or bulk syncs, or
uploads) that bring the same new bytes in opposite orders, at the same moment, both apply and
store each content once. A deadlock that still happens (here: forced by a second connection
that holds the product row and then asks for the blob's lock) is retried as a whole
transaction; when it keeps happening the request answers 503 with ``Retry-After`` and leaves
nothing behind.

Run on SQLite (BEGIN IMMEDIATE serialises writers) and on PostgreSQL (advisory blob locks, the
product row FOR UPDATE): ``MEDIA_GATEWAY_TEST_POSTGRES=1 pytest tests/http/test_lock_order.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from gateway.settings import Settings
from storage.blobs import blob_key
from support.api import ERRORS, Api, api_with
from support.image_server import ImageServer, running_server
from support.media_factory import image_bytes

ROUNDS = 50
FILES = 6
GATHER_TIMEOUT = 60  # seconds; writers that wait for each other must fail, not hang

SYNC = (
    "mutation($input: SyncImagesInput!) { syncImages(input: $input) { "
    f"productSku images {{ url image {{ checksum }} }} {ERRORS} }} }}"
)
SYNC_BULK = (
    "mutation($inputs: [SyncImagesInput!]!) { syncImagesBulk(inputs: $inputs) { "
    f"productSku images {{ url image {{ checksum }} }} {ERRORS} }} }}"
)
UPLOAD_IMAGES = (
    "mutation($input: UploadImagesInput!) { uploadImages(input: $input) { "
    f"images {{ checksum }} {ERRORS} }} }}"
)
UPLOAD_IMAGE = (
    "mutation($input: UploadImageInput!) { uploadImage(input: $input) { "
    f"image {{ checksum }} {ERRORS} }} }}"
)

postgres_only = pytest.mark.skipif(
    os.environ.get("MEDIA_GATEWAY_TEST_POSTGRES") != "1",
    reason="SQLite serialises write transactions: nothing can deadlock",
)


@pytest.fixture
def server() -> Iterator[ImageServer]:
    yield from running_server()


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    """An app that may fetch from 127.0.0.1 and renders nothing in the background."""
    async with api_with(
        settings, "locks", fetch_allow_hosts="127.0.0.1", warm_renditions=False
    ) as api:
        yield api


def contents(round_: int, count: int = FILES) -> list[bytes]:
    return [image_bytes("PNG", (24, 16), seed=1000 * round_ + n) for n in range(count)]


def key_of(content: bytes) -> str:
    return blob_key(hashlib.sha256(content).hexdigest(), "png")


def checksums(content: list[bytes]) -> list[str]:
    return [hashlib.sha256(c).hexdigest() for c in content]


def sync_input(sku: str, urls: list[str]) -> dict[str, Any]:
    return {"productSku": sku, "images": [{"url": url} for url in urls]}


async def together(*calls: Any) -> list[Any]:
    return list(await asyncio.wait_for(asyncio.gather(*calls), GATHER_TIMEOUT))


def assert_synced(payload: dict[str, Any], urls: list[str], served: dict[str, bytes]) -> None:
    assert payload["userErrors"] == [], payload
    assert [d["url"] for d in payload["images"]] == urls
    assert [d["image"]["checksum"] for d in payload["images"]] == checksums(
        [served[url] for url in urls]
    )


# ---- the same new bytes in opposite orders, at the same moment --------------------------------


async def test_two_syncs_with_the_same_urls_in_opposite_orders(
    api: Api, server: ImageServer
) -> None:
    for sku in ("LOCK-A", "LOCK-B"):
        await api.create_product(sku)
    for round_ in range(ROUNDS):
        content = contents(round_)
        urls = [server.serve(f"/r{round_}/{n}.png", c) for n, c in enumerate(content)]
        served = dict(zip(urls, content, strict=True))
        forward, backward = urls, urls[::-1]
        first, second = await together(
            api.data(SYNC, {"input": sync_input("LOCK-A", forward)}),
            api.data(SYNC, {"input": sync_input("LOCK-B", backward)}),
        )
        assert_synced(first["syncImages"], forward, served)
        assert_synced(second["syncImages"], backward, served)
        # Both products dropped the previous round's images: only this round's blobs stay.
        assert api.blob_files() == {key_of(c) for c in content}
    await api.assert_consistent()


async def test_two_bulk_syncs_with_the_same_urls_in_opposite_orders(
    api: Api, server: ImageServer
) -> None:
    skus = ("BULK-A", "BULK-B", "BULK-C", "BULK-D")
    for sku in skus:
        await api.create_product(sku)
    for round_ in range(ROUNDS):
        content = contents(round_)
        urls = [server.serve(f"/b{round_}/{n}.png", c) for n, c in enumerate(content)]
        served = dict(zip(urls, content, strict=True))
        forward, backward = urls, urls[::-1]
        orders = {"BULK-A": forward, "BULK-B": backward, "BULK-C": backward, "BULK-D": forward}
        first, second = await together(
            api.data(SYNC_BULK, {"inputs": [sync_input(s, orders[s]) for s in skus[:2]]}),
            api.data(SYNC_BULK, {"inputs": [sync_input(s, orders[s]) for s in skus[2:]]}),
        )
        for payload in first["syncImagesBulk"] + second["syncImagesBulk"]:
            assert_synced(payload, orders[payload["productSku"]], served)
        assert api.blob_files() == {key_of(c) for c in content}
    await api.assert_consistent()


async def upload_files(api: Api, product_id: str, files: list[bytes]) -> dict[str, Any]:
    paths = {
        f"variables.input.files.{n}": (f"{n}.png", c, "image/png") for n, c in enumerate(files)
    }
    variables = {"input": {"productId": product_id, "files": [None] * len(files)}}
    response = await api.upload(UPLOAD_IMAGES, variables, paths)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["uploadImages"]
    return payload


async def test_uploads_of_the_same_files_to_two_products_in_opposite_orders(api: Api) -> None:
    stored: set[str] = set()
    for round_ in range(ROUNDS):
        content = contents(round_)
        first_product = await api.create_product(f"UP-{round_}-A")
        second_product = await api.create_product(f"UP-{round_}-B")
        first, second = await together(
            upload_files(api, first_product["id"], content),
            upload_files(api, second_product["id"], content[::-1]),
        )
        assert first["userErrors"] == [], first
        assert second["userErrors"] == [], second
        assert [i["checksum"] for i in first["images"]] == checksums(content)
        assert [i["checksum"] for i in second["images"]] == checksums(content[::-1])
        stored |= {key_of(c) for c in content}
        assert api.blob_files() == stored
    assert await api.count_rows("image") == 2 * FILES * ROUNDS
    await api.assert_consistent()


# ---- a deadlock that still happens ------------------------------------------------------------


class RowHolder:
    """A second connection that holds a product's row lock and, whenever the gateway holds a
    blob's lock while it waits for that row, asks for the blob's lock too: a real deadlock,
    which PostgreSQL resolves by aborting the gateway's transaction (this connection checks
    for deadlocks only after a minute, so the gateway's check, after a second, comes first)."""

    def __init__(self, holder: AsyncConnection, watcher: AsyncConnection, key: str) -> None:
        self.holder = holder
        self.watcher = watcher
        self.key = key
        self.deadlocks = 0

    async def hold(self, product_id: int) -> None:
        await self.holder.execute(sa.text("SET deadlock_timeout = '60s'"))
        await self.holder.execute(
            sa.text("SELECT id FROM product WHERE id = :id FOR UPDATE"), {"id": product_id}
        )

    async def gateway_waits_holding_the_blob(self) -> bool:
        """Whether a backend waits for this connection while it holds the blob's lock."""
        query = sa.text(
            "SELECT count(*) FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid "
            "WHERE :me = ANY(pg_blocking_pids(a.pid)) AND l.locktype = 'advisory' "
            "AND l.granted AND l.objid = (hashtextextended(:key, 0) & 4294967295)"
        )
        me = (await self.holder.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()
        found = await self.watcher.execute(query, {"me": me, "key": self.key})
        return bool(found.scalar_one())

    async def deadlock_while(self, request: asyncio.Task[Any], times: int | None = None) -> None:
        """Deadlock the gateway's transaction each time it waits (at most ``times`` times)
        until ``request`` is done."""
        lock = "SELECT pg_advisory_lock(hashtextextended(:key, 0))"
        unlock = "SELECT pg_advisory_unlock(hashtextextended(:key, 0))"
        while not request.done() and (times is None or self.deadlocks < times):
            if not await self.gateway_waits_holding_the_blob():
                await asyncio.sleep(0.02)
                continue
            await self.holder.execute(sa.text(lock), {"key": self.key})  # granted once aborted
            await self.holder.execute(sa.text(unlock), {"key": self.key})
            self.deadlocks += 1


@pytest.fixture
async def connections(settings: Settings) -> AsyncIterator[tuple[AsyncConnection, ...]]:
    engine = create_async_engine(settings.database_url)
    try:
        async with engine.connect() as holder, engine.connect() as watcher:
            await watcher.execution_options(isolation_level="AUTOCOMMIT")
            yield holder, watcher
    finally:
        await engine.dispose()


async def upload_one(api: Api, product_id: str, content: bytes) -> httpx.Response:
    return await api.upload(
        UPLOAD_IMAGE,
        {"input": {"productId": product_id, "file": None}},
        {"variables.input.file": ("image.png", content, "image/png")},
    )


async def product_pk(api: Api, sku: str) -> int:
    async with api.backend.db.read() as connection:
        found = await connection.execute(
            sa.text("SELECT id FROM product WHERE sku = :sku"), {"sku": sku}
        )
        return int(found.scalar_one())


@postgres_only
async def test_a_deadlocked_upload_is_retried_whole(
    api: Api, connections: tuple[AsyncConnection, AsyncConnection]
) -> None:
    product = await api.create_product("DEADLOCK-1")
    content = image_bytes("PNG", (24, 16), seed=7)
    rows = RowHolder(*connections, key_of(content))
    async with rows.holder.begin():
        await rows.hold(await product_pk(api, "DEADLOCK-1"))
        request = asyncio.ensure_future(upload_one(api, product["id"], content))
        await asyncio.wait_for(rows.deadlock_while(request, times=1), GATHER_TIMEOUT)
        assert rows.deadlocks == 1
    response = await asyncio.wait_for(request, GATHER_TIMEOUT)  # the retry, once the row is free
    assert response.status_code == 200, response.text
    payload = response.json()["data"]["uploadImage"]
    assert payload["userErrors"] == [], payload
    assert payload["image"]["checksum"] == hashlib.sha256(content).hexdigest()
    assert api.blob_files() == {key_of(content)}
    await api.assert_consistent()


@postgres_only
async def test_an_upload_that_keeps_deadlocking_answers_503_and_changes_nothing(
    api: Api, connections: tuple[AsyncConnection, AsyncConnection]
) -> None:
    product = await api.create_product("DEADLOCK-2")
    content = image_bytes("PNG", (24, 16), seed=8)
    rows = RowHolder(*connections, key_of(content))
    async with rows.holder.begin():
        await rows.hold(await product_pk(api, "DEADLOCK-2"))
        request = asyncio.ensure_future(upload_one(api, product["id"], content))
        await asyncio.wait_for(rows.deadlock_while(request), GATHER_TIMEOUT)
        response = await request
    assert rows.deadlocks == api.backend.db.attempts
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) >= 1
    body = json.loads(response.text)
    assert body["errors"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE", body
    assert await api.count_rows("image") == 0
    assert api.blob_files() == set()
    await api.assert_consistent()


@postgres_only
async def test_a_sync_that_keeps_deadlocking_answers_a_user_error_and_changes_nothing(
    api: Api, server: ImageServer, connections: tuple[AsyncConnection, AsyncConnection]
) -> None:
    await api.create_product("DEADLOCK-3")
    content = image_bytes("PNG", (24, 16), seed=9)
    url = server.serve("/deadlock.png", content)
    rows = RowHolder(*connections, key_of(content))
    async with rows.holder.begin():
        await rows.hold(await product_pk(api, "DEADLOCK-3"))
        request = asyncio.ensure_future(api.data(SYNC, {"input": sync_input("DEADLOCK-3", [url])}))
        await asyncio.wait_for(rows.deadlock_while(request), GATHER_TIMEOUT)
        data = await request
    assert rows.deadlocks == api.backend.db.attempts
    payload = data["syncImages"]
    assert payload["images"] is None, payload
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [(["productSku"], "INVALID")]
    assert await api.count_rows("image") == 0
    assert await api.count_rows("downloadable_image") == 0
    assert api.blob_files() == set()
    await api.assert_consistent()
