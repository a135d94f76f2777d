"""Per-example resources for hypothesis tests, which cannot use function-scoped fixtures: a
fresh database (a copy of the session's migrated SQLite template, or the PostgreSQL test
database emptied), a fresh app through its lifespan, and an ``Api`` with a write token."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from asgi_lifespan import LifespanManager
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.app import create_app
from gateway.settings import Settings
from storage import tokens
from storage.backend import Backend
from storage.enums import TokenScope
from support.api import Api

USE_POSTGRES = os.environ.get("MEDIA_GATEWAY_TEST_POSTGRES") == "1"
TABLES = ("downloadable_image", "image", "video", "product", "api_token")


async def fresh_database(migrated_database: str, root: Path) -> str:
    """What tests/conftest.py's ``database_url`` fixture gives one test, for one example."""
    if not USE_POSTGRES:
        target = root / "media.db"
        shutil.copyfile(migrated_database, target)
        return f"sqlite+aiosqlite:///{target}"
    engine = create_async_engine(migrated_database)
    async with engine.begin() as connection:
        await connection.execute(sa.text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
    await engine.dispose()
    return migrated_database


def settings_for(database_url: str, root: Path, **overrides: Any) -> Settings:
    return Settings(
        database_url=database_url,
        media_root=root / "media",
        admin_token_file=root / "admin-token",
        public_url="http://testserver",
        **overrides,
    )


@asynccontextmanager
async def fresh_api(migrated_database: str, root: Path, **overrides: Any) -> AsyncIterator[Api]:
    """A new database, app and client under ``root`` (a new, empty folder), with a write
    token."""
    settings = settings_for(await fresh_database(migrated_database, root), root, **overrides)
    app = create_app(settings)
    async with LifespanManager(app):
        backend: Backend = app.state.backend
        token, _ = await tokens.create_token(backend.db, "properties", TokenScope.WRITE)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Api(client, token, backend, settings.media_root)
