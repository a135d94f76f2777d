"""``media-gateway gc [--dry-run] [--force]`` as a subprocess: it removes the blobs and the
rendition folders that no row refers to (what a crash between moving a blob and committing
its row leaves), prints what it removed, and never removes one that a row refers to, also
while uploads and deletions run beside it (storage/gc.py in-process, many times)."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from gateway.app import create_app
from gateway.settings import Settings
from storage import tokens
from storage.backend import Backend
from storage.enums import TokenScope
from storage.errors import format_size
from storage.gc import collect_garbage
from storage.sql import migrate
from support.api import Api
from support.media_factory import image_bytes, mp4_bytes
from support.server_process import console_script, gateway_env

pytestmark = pytest.mark.live


def gc(folder: Path, *args: str, database: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = gateway_env(folder)
    if database is not None:
        env["MEDIA_GATEWAY_DATABASE_URL"] = f"sqlite+aiosqlite:///{database}"
    return subprocess.run(
        [console_script(), "gc", *args],
        env=env,
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=60,
    )


@dataclass
class Gateway:
    api: Api
    folder: Path


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    """An app in-process on the files the CLI sees (``gateway_env(tmp_path)``)."""
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'db' / 'media.db'}",
        media_root=tmp_path / "media",
        admin_token_file=tmp_path / "admin-token",
        public_url="http://testserver",
    )
    (tmp_path / "db").mkdir()
    migrate.upgrade(settings.database_url)
    application = create_app(settings)
    async with LifespanManager(application):
        backend: Backend = application.state.backend
        token, _ = await tokens.create_token(backend.db, "gc", TokenScope.WRITE)
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield Gateway(Api(c, token, backend, settings.media_root), tmp_path)


def plant_orphan(root: Path, content: bytes, extension: str = "png") -> tuple[str, str]:
    """A blob at its content-addressed key with a rendition, as a crash between the move of
    the blob and the commit of its row leaves it; returns (key, rendition folder)."""
    digest = hashlib.sha256(content).hexdigest()
    key = f"{digest[:2]}/{digest}.{extension}"
    (root / key).parent.mkdir(parents=True, exist_ok=True)
    (root / key).write_bytes(content)
    folder = f"r/{digest[:2]}/{digest}"
    (root / folder).mkdir(parents=True, exist_ok=True)
    (root / folder / "250.png").write_bytes(b"rendition bytes")
    return key, folder


def rendition_folders(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.glob("r/??/*") if p.is_dir()}


async def stocked(api: Api) -> dict[str, Any]:
    """Two products sharing one image's bytes, another image, a video; renditions made."""
    first = await api.create_product("GC-1")
    second = await api.create_product("GC-2")
    shared = image_bytes("PNG", (300, 200), seed=1)
    for product in (first, second):
        assert (await api.upload_image(product["id"], shared))["userErrors"] == []
    own = await api.upload_image(first["id"], image_bytes("JPEG", (300, 200), seed=2))
    assert own["userErrors"] == []
    response = await api.upload(
        "mutation($input: UploadVideoInput!) { uploadVideo(input: $input) { "
        "userErrors { code } } }",
        {"input": {"productId": first["id"], "file": None}},
        {"variables.input.file": ("clip.mp4", mp4_bytes(), "video/mp4")},
    )
    assert response.json()["data"]["uploadVideo"]["userErrors"] == [], response.text
    await api.backend.renditions.drain()
    return first


async def test_gc_removes_only_what_nothing_refers_to(gateway: Gateway) -> None:
    api, folder = gateway.api, gateway.folder
    root = api.media_root
    await stocked(api)
    kept_blobs = api.blob_files()
    kept_renditions = rendition_folders(root)
    assert len(kept_blobs) == 3 and len(kept_renditions) == 2
    orphan, orphan_renditions = plant_orphan(root, image_bytes("PNG", (64, 64), seed=9))
    stray_digest = hashlib.sha256(b"no blob").hexdigest()
    stray = f"r/{stray_digest[:2]}/{stray_digest}"
    (root / stray).mkdir(parents=True)
    (root / stray / "100.jpg").write_bytes(b"x")
    not_a_key = root / "notes.txt"
    not_a_key.write_text("not a blob, not ours to judge")

    dry = gc(folder, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [orphan, f"{stray}/"]
    assert "would remove 1 blob(s) and 1 rendition folder(s)" in dry.stderr
    assert orphan in api.blob_files() and (root / stray).is_dir()

    done = gc(folder)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [orphan, f"{stray}/"]
    assert "removed 1 blob(s) and 1 rendition folder(s)" in done.stderr
    assert api.blob_files() == kept_blobs
    assert rendition_folders(root) == kept_renditions
    assert not (root / orphan_renditions).exists()
    assert not_a_key.exists()
    await api.assert_consistent()

    again = gc(folder)
    assert again.returncode == 0 and again.stdout == ""
    assert "removed 0 blob(s) and 0 rendition folder(s)" in again.stderr


async def test_gc_reports_the_bytes_it_frees(gateway: Gateway) -> None:
    api, folder = gateway.api, gateway.folder
    root = api.media_root
    await stocked(api)  # kept blobs and renditions: not counted
    content = image_bytes("PNG", (64, 64), seed=11)
    orphan, orphan_renditions = plant_orphan(root, content)
    (root / orphan_renditions / "500.png").write_bytes(b"a larger rendition")
    stray_digest = hashlib.sha256(b"no blob either").hexdigest()
    stray = root / f"r/{stray_digest[:2]}/{stray_digest}"
    stray.mkdir(parents=True)
    (stray / "100.jpg").write_bytes(b"xyz")
    expected = len(content) + len(b"rendition bytes") + len(b"a larger rendition") + 3

    dry = await collect_garbage(api.backend, dry_run=True)
    assert dry.freed_bytes == expected
    done = gc(folder)
    assert done.returncode == 0, done.stderr
    assert done.stderr.rstrip().endswith(f"folder(s), {format_size(expected)}")
    assert not (root / orphan).exists() and not stray.exists()
    assert (await collect_garbage(api.backend)).freed_bytes == 0


async def test_gc_reports_rows_whose_blob_is_missing(gateway: Gateway) -> None:
    api, folder = gateway.api, gateway.folder
    await stocked(api)
    lost = sorted(api.blob_files())[0]
    (api.media_root / lost).unlink()
    result = gc(folder)
    assert result.returncode == 0 and result.stdout == ""
    assert f"missing: {lost} is referred to but not stored" in result.stderr


async def test_gc_refuses_a_database_that_refers_to_nothing(gateway: Gateway) -> None:
    api, folder = gateway.api, gateway.folder
    await stocked(api)
    blobs = api.blob_files()
    empty = folder / "other.db"
    migrate.upgrade(f"sqlite+aiosqlite:///{empty}")
    refused = gc(folder, database=empty)
    assert refused.returncode == 2
    assert "is MEDIA_GATEWAY_DATABASE_URL the gateway's database?" in refused.stderr
    assert api.blob_files() == blobs
    forced = gc(folder, "--force", database=empty)
    assert forced.returncode == 0, forced.stderr
    assert set(forced.stdout.split()) >= blobs
    assert api.blob_files() == set()


async def test_gc_never_removes_a_blob_that_is_being_committed(gateway: Gateway) -> None:
    """Uploads, deletions and collections at the same time: every row keeps its blob."""
    api = gateway.api
    product = await api.create_product("GC-RACE")
    delete = "mutation($ids: [ID!]!) { deleteImages(ids: $ids) { deletedIds } }"
    stop = asyncio.Event()
    collections = 0

    async def collect() -> None:
        nonlocal collections
        while not stop.is_set():
            # Forced: also when no row is committed yet, the lock protects a blob in flight.
            await collect_garbage(api.backend, force=True)
            collections += 1
            await asyncio.sleep(0)

    async def churn(worker: int) -> None:
        for round_ in range(6):
            content = image_bytes("PNG", (32, 32), seed=1000 + worker * 100 + round_)
            payload = await api.upload_image(product["id"], content)
            assert payload["userErrors"] == [], payload
            if round_ % 2:
                await api.data(delete, {"ids": [payload["image"]["id"]]})
            digest = hashlib.sha256(content).hexdigest()
            if round_ % 2 == 0:
                assert (api.media_root / f"{digest[:2]}/{digest}.png").exists()

    collector = asyncio.create_task(collect())
    await asyncio.gather(*(churn(worker) for worker in range(4)))
    stop.set()
    await collector
    assert collections > 3
    await api.backend.renditions.drain()
    assert len(await api.gallery(product["id"])) == 12
    await api.assert_consistent()
