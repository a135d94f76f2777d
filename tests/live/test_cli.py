"""The ``media-gateway`` command, run as a subprocess against a fresh SQLite file: migrate,
tokens create / list / revoke, and export-schema (the drift test of the committed SDL)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from storage import tokens
from storage.enums import TokenScope
from storage.sql.database import Database

ROOT = Path(__file__).resolve().parents[2]
COMMITTED_SCHEMA = ROOT / "schema.graphql"
TABLES = {"product", "image", "video", "downloadable_image", "api_token", "alembic_version"}


def gateway_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIA_GATEWAY_")}
    env.update(
        MEDIA_GATEWAY_DATABASE_URL=database_url(tmp_path),
        MEDIA_GATEWAY_MEDIA_ROOT=str(tmp_path / "media"),
        MEDIA_GATEWAY_ADMIN_TOKEN_FILE=str(tmp_path / "admin-token"),
    )
    return env


def database_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'db' / 'media.db'}"


def script() -> str:
    path = Path(sys.executable).parent / "media-gateway"
    assert path.exists(), f"the console script is not installed beside {sys.executable}"
    return str(path)


def cli(tmp_path: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [script(), *args],
        env=gateway_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check:
        assert result.returncode == 0, (args, result.stdout, result.stderr)
    return result


def tables(tmp_path: Path) -> set[str]:
    with sqlite3.connect(tmp_path / "db" / "media.db") as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {row[0] for row in rows}


def verify(tmp_path: Path, token: str) -> TokenScope | None:
    async def run() -> TokenScope | None:
        db = Database(database_url(tmp_path))
        try:
            return await tokens.verify_token(db, token)
        finally:
            await db.dispose()

    return asyncio.run(run())


@pytest.fixture
def migrated(tmp_path: Path) -> Path:
    result = cli(tmp_path, "migrate")
    assert result.stdout == ""
    assert "up to date" in result.stderr
    return tmp_path


def test_migrate_creates_the_tables(migrated: Path) -> None:
    assert tables(migrated) >= TABLES
    # Migrating again is a no-op.
    cli(migrated, "migrate")
    assert tables(migrated) >= TABLES


def test_tokens_create_list_revoke(migrated: Path) -> None:
    created = cli(migrated, "tokens", "create", "erp-sync", "--scope", "write")
    lines = created.stdout.splitlines()
    assert len(lines) == 1 and created.stdout == lines[0] + "\n", created.stdout
    token = lines[0]
    assert token.startswith(tokens.TOKEN_PREFIX) and " " not in token
    assert token not in created.stderr and "erp-sync" in created.stderr
    assert verify(migrated, token) == TokenScope.WRITE

    listed = cli(migrated, "tokens", "list")
    assert token not in listed.stdout and token not in listed.stderr
    (row,) = [line.split("\t") for line in listed.stdout.splitlines() if "erp-sync" in line]
    token_id, name, scope = row[:3]
    assert (name, scope) == ("erp-sync", "write")
    assert row[-1] == "active"

    revoked = cli(migrated, "tokens", "revoke", token_id)
    assert revoked.stdout == ""
    assert verify(migrated, token) is None
    listed = cli(migrated, "tokens", "list")
    (row,) = [line.split("\t") for line in listed.stdout.splitlines() if "erp-sync" in line]
    assert row[-1].startswith("revoked")

    again = cli(migrated, "tokens", "revoke", token_id, check=False)
    assert again.returncode != 0
    assert f"no active token with id {token_id}" in again.stderr


def test_exported_schema_matches_the_committed_sdl(tmp_path: Path) -> None:
    result = subprocess.run(
        [script(), "export-schema"],
        env=gateway_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    exported, committed = result.stdout, COMMITTED_SCHEMA.read_bytes()
    assert exported == committed, (
        "schema.graphql is out of date with the code: run `make schema` and commit the result"
    )
