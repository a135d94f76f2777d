"""The response cache of public reads: answers served only while the catalogue version they
were computed at is current, so a read after an acknowledged write sees it from any process;
never mutations, answers with errors or non-public reads; bounded by bytes; ETags of GET
queries revalidated without running them."""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from asgi_lifespan import LifespanManager
from sqlalchemy import event
from starlette.applications import Starlette

from gateway.app import create_app
from gateway.graphql_http import etag
from gateway.settings import Settings
from storage.sql import migrate
from storage.sql.database import Database
from storage.sql.tables import product_table
from support.api import Api
from support.server_process import gateway_env, running_gateway

pytestmark = pytest.mark.anyio

PRODUCTS = "{ products(first: 10) { edges { node { sku name } } } }"
JSON = "application/json"


def sample(app: Starlette, name: str, labels: dict[str, str] | None = None) -> float:
    value = app.state.metrics.registry.get_sample_value(name, labels or {})
    return float(value or 0.0)


def hits(app: Starlette) -> float:
    return sample(app, "response_cache_hits_total")


def executed_queries(app: Starlette) -> float:
    """Queries that Strawberry ran (a cached answer or a 304 runs none)."""
    return sample(app, "graphql_request_seconds_count", {"type": "query"})


async def read(client: httpx.AsyncClient, query: str = PRODUCTS, **headers: str) -> dict[str, Any]:
    response = await client.post("/graphql", json={"query": query}, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def skus(body: dict[str, Any]) -> list[str]:
    return [edge["node"]["sku"] for edge in body["data"]["products"]["edges"]]


@asynccontextmanager
async def served(settings: Settings) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    """Another gateway over the same database, with its own engines and cache."""
    application = create_app(settings)
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield application, c


async def test_a_repeated_public_read_is_served_without_running(
    app: Starlette, client: httpx.AsyncClient, api: Api
) -> None:
    await api.create_product("RC-1")
    first = await read(client)
    ran = executed_queries(app)
    assert await read(client) == first
    assert hits(app) == 1
    assert executed_queries(app) == ran
    labels = {"operation": "anonymous", "type": "query", "outcome": "ok"}
    assert sample(app, "graphql_requests_total", labels) == 2


async def test_a_read_after_a_write_sees_it(
    app: Starlette, client: httpx.AsyncClient, api: Api
) -> None:
    await api.create_product("RC-1")
    assert skus(await read(client)) == ["RC-1"]
    assert skus(await read(client)) == ["RC-1"]
    await api.create_product("RC-2")
    assert sorted(skus(await read(client))) == ["RC-1", "RC-2"]


async def test_a_write_through_another_gateway_is_seen(
    app: Starlette, client: httpx.AsyncClient, api: Api, settings: Settings, write_token: str
) -> None:
    await api.create_product("RC-1")
    assert skus(await read(client)) == ["RC-1"]
    assert skus(await read(client)) == ["RC-1"]
    assert hits(app) == 1
    async with served(settings) as (_, other):
        other_api = Api(other, write_token, api.backend, api.media_root)
        await other_api.create_product("RC-2")
    assert sorted(skus(await read(client))) == ["RC-1", "RC-2"]
    assert hits(app) == 1


def process_hits(metrics: str) -> float:
    """``response_cache_hits_total`` in another process's /metrics text."""
    for line in metrics.splitlines():
        if line.startswith("response_cache_hits_total "):
            return float(line.split()[1])
    raise AssertionError(f"no response_cache_hits_total in:\n{metrics}")


async def test_writes_in_another_process_are_seen_both_ways(
    app: Starlette, client: httpx.AsyncClient, api: Api, settings: Settings, tmp_path: Path
) -> None:
    """A second ``media-gateway serve`` process over the same database (the SQLite file, or
    PostgreSQL under MEDIA_GATEWAY_TEST_POSTGRES): each one's cached answers give way to the
    other's acknowledged writes."""
    await api.create_product("RC-1")
    env = gateway_env(
        tmp_path / "second",
        DATABASE_URL=settings.database_url,
        MEDIA_ROOT=str(settings.media_root),
        PUBLIC_URL="http://testserver",
    )
    with running_gateway(tmp_path / "second", env=env) as second:
        auth = {"authorization": f"Bearer {api.token}"}
        async with httpx.AsyncClient(base_url=second.base, timeout=30) as remote:
            remote_api = Api(remote, api.token, api.backend, api.media_root)
            # This process caches, the other writes.
            assert skus(await read(client)) == ["RC-1"]
            assert skus(await read(client)) == ["RC-1"]
            assert hits(app) == 1
            await remote_api.create_product("RC-2")
            assert sorted(skus(await read(client))) == ["RC-1", "RC-2"]
            # The other process caches, this one writes.
            assert sorted(skus(await read(remote))) == ["RC-1", "RC-2"]
            assert sorted(skus(await read(remote))) == ["RC-1", "RC-2"]
            assert process_hits((await remote.get("/metrics")).text) == 1
            await api.create_product("RC-3")
            assert sorted(skus(await read(remote))) == ["RC-1", "RC-2", "RC-3"]
            # A write's own reader, through the other process, with a token: never cached.
            assert sorted(skus(await read(remote, **auth))) == ["RC-1", "RC-2", "RC-3"]
            assert process_hits((await remote.get("/metrics")).text) == 1


async def test_a_write_still_open_is_seen_once_committed(
    app: Starlette, client: httpx.AsyncClient, api: Api
) -> None:
    await api.create_product("RC-1", name="old")
    async with api.backend.db.write() as session:
        await session.execute(sa.update(product_table).values(name="new"))
        before = await read(client)
        assert before == await read(client)  # the uncommitted change is not visible, cached
    after = await read(client)
    assert after["data"]["products"]["edges"][0]["node"]["name"] == "new"


class HeldWrite:
    """A write transaction held open on a connection of its own, outside the gateway: a
    second sqlite3 connection to the file, or a psql session on PostgreSQL."""

    CHANGE = (
        "UPDATE product SET name = 'new'",
        "UPDATE catalogue_version SET version = version + 1",
    )

    def __init__(self, database_url: str) -> None:
        self.open = False
        self.sqlite: sqlite3.Connection | None = None
        self.psql: subprocess.Popen[str] | None = None
        if database_url.startswith("sqlite"):
            path = database_url.removeprefix("sqlite+aiosqlite:///")
            self.sqlite = sqlite3.connect(path, isolation_level=None)
        else:
            dsn = database_url.replace("postgresql+asyncpg://", "postgresql://")
            command = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", dsn]
            self.psql = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
            )

    def begin(self) -> None:
        self._run("BEGIN" if self.psql else "BEGIN IMMEDIATE", *self.CHANGE)
        self.open = True

    def commit(self) -> None:
        self._run("COMMIT")
        self.open = False

    def close(self) -> None:
        if self.sqlite is not None:
            self.sqlite.close()
        if self.psql is not None and self.psql.stdin is not None:
            self.psql.stdin.close()
            self.psql.wait(10)

    def _run(self, *statements: str) -> None:
        if self.sqlite is not None:
            for statement in statements:
                self.sqlite.execute(statement)
            return
        assert self.psql is not None and self.psql.stdin and self.psql.stdout
        self.psql.stdin.write("".join(f"{s};\n" for s in statements) + "\\echo done\n")
        self.psql.stdin.flush()
        assert self.psql.stdout.readline().strip() == "done"


async def test_a_write_committed_while_a_read_runs_is_never_hidden(
    app: Starlette, client: httpx.AsyncClient, api: Api, settings: Settings
) -> None:
    """The write commits after the read loaded the old row: that answer must never be
    served once the commit is acknowledged."""
    await api.create_product("RC-1", name="old")
    writer = HeldWrite(settings.database_url)
    writer.begin()
    engine = api.backend.db.read_engine.sync_engine

    def commit_after_product_read(*args: Any) -> None:
        statement = str(args[2])
        if writer.open and "product" in statement and "catalogue" not in statement:
            writer.commit()

    event.listen(engine, "after_cursor_execute", commit_after_product_read)
    try:
        raced = await read(client)
    finally:
        event.remove(engine, "after_cursor_execute", commit_after_product_read)
        writer.close()
    assert not writer.open, "the write never committed during the read"
    assert raced["data"]["products"]["edges"][0]["node"]["name"] == "old"
    after = await read(client)
    assert after["data"]["products"]["edges"][0]["node"]["name"] == "new"


async def test_mutations_errors_and_token_reads_are_never_cached(
    app: Starlette, client: httpx.AsyncClient, api: Api, read_token: str
) -> None:
    for sku in ("RC-1", "RC-2"):
        await api.create_product(sku)
    delete = 'mutation { productDelete(id: "UHJvZHVjdDo5OTk=") { deletedIds } }'
    for _ in range(2):
        await read(client, delete, authorization=f"Bearer {api.token}")
        await read(client, "{ products(first: 1) { edges { node { noSuchField } } } }")
        await read(client, PRODUCTS, authorization=f"Bearer {read_token}")
        await read(client, PRODUCTS, authorization="Bearer not-a-token")
    assert hits(app) == 0


async def test_reads_are_never_cached_when_not_public(
    api: Api, settings: Settings, read_token: str
) -> None:
    private = settings.model_copy(update={"public_read": False})
    async with served(private) as (application, other):
        for _ in range(2):
            await read(other, PRODUCTS)
            await read(other, PRODUCTS, authorization=f"Bearer {read_token}")
        assert hits(application) == 0


async def test_untrusted_hosts_are_never_cached(api: Api, settings: Settings) -> None:
    by_host = settings.model_copy(update={"public_url": None})
    async with served(by_host) as (application, other):
        for _ in range(2):
            await read(other, PRODUCTS)
        assert hits(application) == 0


async def test_memory_stays_within_its_bound(api: Api, settings: Settings) -> None:
    bound = 4000
    small = settings.model_copy(update={"response_cache_bytes": bound})
    async with served(small) as (application, other):
        for n in range(1, 60):
            await read(other, f"{{ products(first: {n}) {{ edges {{ node {{ sku }} }} }} }}")
            assert sample(application, "response_cache_bytes") <= bound
        assert sample(application, "response_cache_evictions_total") > 0
        metrics = await other.get("/metrics")
        assert "response_cache_evictions_total" in metrics.text
        assert "response_cache_misses_total 59.0" in metrics.text


async def test_the_cache_can_be_turned_off(api: Api, settings: Settings) -> None:
    off = settings.model_copy(update={"response_cache": False})
    async with served(off) as (application, other):
        await read(other)
        await read(other)
        response = await other.get("/graphql", params={"query": PRODUCTS})
        assert response.headers["etag"] == etag(JSON, response.content)
        assert hits(application) == 0
        assert executed_queries(application) == 3


async def test_get_revalidates_without_running(
    app: Starlette, client: httpx.AsyncClient, api: Api
) -> None:
    await api.create_product("RC-1")
    first = await client.get("/graphql", params={"query": PRODUCTS})
    tag = first.headers["etag"]
    ran = executed_queries(app)
    again = await client.get("/graphql", params={"query": PRODUCTS}, headers={"If-None-Match": tag})
    assert again.status_code == 304
    assert again.headers["cache-control"] == "public, max-age=60"
    assert executed_queries(app) == ran
    await api.create_product("RC-2")
    changed = await client.get(
        "/graphql", params={"query": PRODUCTS}, headers={"If-None-Match": tag}
    )
    assert changed.status_code == 200
    assert sorted(skus(changed.json())) == ["RC-1", "RC-2"]
    assert changed.headers["etag"] != tag


async def test_answers_with_errors_keep_the_tag_of_their_body(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", params={"query": "{ noSuchField }"})
    assert response.headers["etag"] == etag(JSON, response.content)


async def test_the_migration_adds_the_version_to_an_existing_database(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    migrate.upgrade(url, "0001")
    migrate.upgrade(url)
    db = Database(url)
    try:
        before = await db.version()
        async with db.write():
            pass
        assert await db.version() == before + 1
    finally:
        await db.dispose()
