"""The throwaway PostgreSQL cluster that `make test-postgres` runs the suite on."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from .postgres import start_cluster

pytestmark = pytest.mark.skipif(
    os.environ.get("MEDIA_GATEWAY_TEST_POSTGRES") != "1",
    reason="set MEDIA_GATEWAY_TEST_POSTGRES=1 to run against PostgreSQL",
)


async def _select_one(url: str) -> int:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            value: int = (await connection.execute(text("SELECT 1"))).scalar_one()
            return value
    finally:
        await engine.dispose()


def test_cluster_serves_a_new_database_and_stops(tmp_path: Path) -> None:
    cluster = start_cluster(tmp_path)
    try:
        assert cluster.url.startswith("postgresql+asyncpg://")
        url = cluster.create_database("support_check")
        assert url.endswith("/support_check")
        assert asyncio.run(_select_one(url)) == 1
        assert asyncio.run(_select_one(cluster.url)) == 1
        cluster.drop_database("support_check")
    finally:
        cluster.stop()
    cluster.stop()
    assert not cluster.work_dir.exists()
