"""Shared fixtures: a migrated database per test (SQLite by default, PostgreSQL when
MEDIA_GATEWAY_TEST_POSTGRES=1), the app through its lifespan, an HTTP client and tokens."""

from __future__ import annotations

import inspect
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from asgi_lifespan import LifespanManager
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.applications import Starlette

from gateway.app import create_app
from gateway.settings import Settings
from storage import tokens
from storage.backend import Backend
from storage.enums import TokenScope
from storage.sql import migrate
from support.api import Api

USE_POSTGRES = os.environ.get("MEDIA_GATEWAY_TEST_POSTGRES") == "1"

# Hypothesis: the ``ci`` profile (the default) is derandomized and keeps no example database,
# so every run tries the same examples and a failure reproduces on the next run.
# ``HYPOTHESIS_PROFILE=explore`` searches with fresh random seeds when hunting for bugs.
hypothesis_settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
hypothesis_settings.register_profile("explore", deadline=None, print_blob=True)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
TABLES = ("downloadable_image", "image", "video", "product", "api_token")


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> None:
    """Run every ``async def`` test under anyio (marked before parametrisation happens)."""
    if name.startswith("test") and inspect.iscoroutinefunction(obj):
        pytest.mark.anyio(obj)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database migrated once per session: a SQLite file to copy, or a PostgreSQL URL."""
    if USE_POSTGRES:
        from support.postgres import start_cluster

        cluster = start_cluster(tmp_path_factory.mktemp("pg"))
        try:
            url = cluster.create_database("gateway_test")
            migrate.upgrade(url)
            yield url
        finally:
            cluster.stop()
    else:
        path = tmp_path_factory.mktemp("template") / "template.db"
        migrate.upgrade(f"sqlite+aiosqlite:///{path}")
        yield str(path)


@pytest.fixture
async def database_url(migrated_database: str, tmp_path: Path) -> AsyncIterator[str]:
    if not USE_POSTGRES:
        target = tmp_path / "media.db"
        shutil.copyfile(migrated_database, target)
        yield f"sqlite+aiosqlite:///{target}"
        return
    engine = create_async_engine(migrated_database)
    async with engine.begin() as connection:
        await connection.execute(sa.text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    await engine.dispose()
    yield migrated_database


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        media_root=tmp_path / "media",
        admin_token_file=tmp_path / "admin-token",
        public_url="http://testserver",
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    application = create_app(settings)
    async with LifespanManager(application):
        yield application


@pytest.fixture
def backend(app: Starlette) -> Backend:
    backend: Backend = app.state.backend
    return backend


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@pytest.fixture
async def write_token(backend: Backend) -> str:
    token, _ = await tokens.create_token(backend.db, "tests-write", TokenScope.WRITE)
    return token


@pytest.fixture
async def read_token(backend: Backend) -> str:
    token, _ = await tokens.create_token(backend.db, "tests-read", TokenScope.READ)
    return token


@pytest.fixture
def api(client: httpx.AsyncClient, write_token: str, backend: Backend, settings: Settings) -> Api:
    return Api(client, write_token, backend, settings.media_root)
