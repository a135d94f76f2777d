"""Fault injection: the disk fills up (ENOSPC) or fails (EIO) while a blob is written or moved
to its key, and the database fails to commit after the blob was moved. Each fault is injected
into uploadImage, uploadImages, uploadVideo and syncImages; the request answers a masked
GraphQL error (never a 500, never a stack trace), and afterwards there is no row without its
blob, no blob without its row and no temporary file (``Api.assert_consistent``), while what
was stored before the fault is untouched."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import io
import json
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import aiofiles
import aiofiles.os
import httpx
import pytest
import sqlalchemy as sa
from PIL import Image
from sqlalchemy import event
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.settings import Settings
from storage.blobs import local as blobs_module
from storage.blobs import writer as writer_module
from support.api import ERRORS, Api, api_with
from support.image_server import ImageServer, running_server
from support.media_factory import image_bytes, mp4_bytes
from support.threaded_server import serving

UPLOAD_IMAGE = (
    "mutation($input: UploadImageInput!) { uploadImage(input: $input) { "
    f"image {{ id }} {ERRORS} }} }}"
)
UPLOAD_IMAGES = (
    "mutation($input: UploadImagesInput!) { uploadImages(input: $input) { "
    f"images {{ id }} {ERRORS} }} }}"
)
UPLOAD_VIDEO = (
    "mutation($input: UploadVideoInput!) { uploadVideo(input: $input) { "
    f"video {{ id }} {ERRORS} }} }}"
)
SYNC = (
    "mutation($input: SyncImagesInput!) { syncImages(input: $input) { "
    f"images {{ id status }} {ERRORS} }} }}"
)
CHUNK = 64 * 1024


def noise_png(seed: int, side: int = 600) -> bytes:
    """A PNG of random pixels: about a megabyte, so it streams in many chunks."""
    pixels = hashlib.shake_256(seed.to_bytes(4, "big")).digest(side * side * 3)
    out = io.BytesIO()
    Image.frombytes("RGB", (side, side), pixels).save(out, format="PNG", compress_level=0)
    return out.getvalue()


@pytest.fixture
def server() -> Iterator[ImageServer]:
    yield from running_server()


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    """An app that may fetch from 127.0.0.1 and renders nothing in the background (a
    rendition written after a request would race the checks of the temporary folder)."""
    async with api_with(
        settings, "faults", fetch_allow_hosts="127.0.0.1", warm_renditions=False
    ) as api:
        yield api


# ---- the faults ----------------------------------------------------------------------------


def disk_error(code: int) -> OSError:
    return OSError(code, os.strerror(code))


@dataclass
class Fault:
    """Counts the times it struck."""

    strikes: int = 0


class _FailingFile:
    """A temporary blob's file whose writes fail once ``allowed`` bytes were written."""

    def __init__(self, file: BinaryIO, fault: Fault, allowed: int, code: int) -> None:
        self._file = file
        self._fault = fault
        self._left = allowed
        self._code = code

    def write(self, data: bytes) -> int:
        if len(data) > self._left:
            self._file.write(bytes(data[: self._left]))  # a partial write, then the error
            self._left = 0
            self._fault.strikes += 1
            raise disk_error(self._code)
        self._left -= len(data)
        return self._file.write(data) or 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)


@contextmanager
def failing_temp_writes(
    monkeypatch: pytest.MonkeyPatch, *, allowed: int, code: int = errno.ENOSPC
) -> Iterator[Fault]:
    """Writes of temporary blobs (files created in the store's .tmp) fail after ``allowed``
    bytes each; every other file opens as usual."""
    fault = Fault()
    real_create = writer_module._create

    def create(path: Path) -> Any:
        file = real_create(path)
        if path.parent.name == blobs_module.TEMP_DIRECTORY:
            return _FailingFile(file, fault, allowed, code)
        return file

    with monkeypatch.context() as patch:
        patch.setattr(writer_module, "_create", create)
        yield fault


@contextmanager
def failing_moves(
    monkeypatch: pytest.MonkeyPatch, *, after_move: bool, code: int = errno.ENOSPC, skip: int = 0
) -> Iterator[Fault]:
    """The rename of a temporary blob to its key fails (or, with ``after_move``, succeeds and
    then reports an I/O error, as a failing sync of the folder would); ``skip`` moves pass."""
    fault = Fault()
    real_replace = aiofiles.os.replace
    passed = 0

    async def replace(source: Any, target: Any) -> None:
        nonlocal passed
        if Path(source).parent.name != blobs_module.TEMP_DIRECTORY or passed < skip:
            passed += 1
            await real_replace(source, target)
            return
        fault.strikes += 1
        if after_move:
            await real_replace(source, target)
        raise disk_error(code)

    with monkeypatch.context() as patch:
        patch.setattr(blobs_module.aiofiles.os, "replace", replace)
        yield fault


@contextmanager
def failing_fsync(monkeypatch: pytest.MonkeyPatch) -> Iterator[Fault]:
    """Flushing a blob to disk before its move fails with EIO (lost writes, full disk)."""
    fault = Fault()
    real_fsync = blobs_module._fsync

    def fsync(path: Path, directory: bool) -> None:
        if not directory:
            fault.strikes += 1
            raise disk_error(errno.EIO)
        real_fsync(path, directory)

    with monkeypatch.context() as patch:
        patch.setattr(blobs_module, "_fsync", fsync)
        yield fault


@contextmanager
def failing_commit(api: Api, *, table: str, at: str = "commit") -> Iterator[Fault]:
    """The database fails the transaction that inserted into ``table``: when it commits
    (after the blob was moved to its key) or, with ``at="insert"``, at the INSERT itself."""
    fault = Fault()
    engine = api.backend.db.write_engine.sync_engine
    marked: set[int] = set()

    def before_cursor_execute(connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith(f"INSERT INTO {table.upper()} "):
            if at == "insert":
                fault.strikes += 1
                raise sa.exc.OperationalError(statement, None, Exception("disk I/O error"))
            marked.add(id(connection))

    def commit(connection: Any) -> None:
        if id(connection) in marked:
            marked.discard(id(connection))
            fault.strikes += 1
            raise sa.exc.OperationalError("COMMIT", None, Exception("database is locked"))

    event.listen(engine, "before_cursor_execute", before_cursor_execute)
    event.listen(engine, "commit", commit)
    try:
        yield fault
    finally:
        event.remove(engine, "before_cursor_execute", before_cursor_execute)
        event.remove(engine, "commit", commit)


# ---- requests --------------------------------------------------------------------------------


async def upload_image(api: Api, product_id: str, content: bytes) -> dict[str, Any]:
    response = await api.upload(
        UPLOAD_IMAGE,
        {"input": {"productId": product_id, "file": None}},
        {"variables.input.file": ("photo.png", content, "image/png")},
    )
    return answer(response)


async def upload_images(api: Api, product_id: str, contents: list[bytes]) -> dict[str, Any]:
    response = await api.upload(
        UPLOAD_IMAGES,
        {"input": {"productId": product_id, "files": [None] * len(contents)}},
        {
            f"variables.input.files.{n}": (f"{n}.png", content, "image/png")
            for n, content in enumerate(contents)
        },
    )
    return answer(response)


async def upload_video(api: Api, product_id: str, content: bytes) -> dict[str, Any]:
    response = await api.upload(
        UPLOAD_VIDEO,
        {"input": {"productId": product_id, "file": None}},
        {"variables.input.file": ("clip.mp4", content, "video/mp4")},
    )
    return answer(response)


async def sync(api: Api, sku: str, urls: list[str]) -> dict[str, Any]:
    images = [{"url": url, "position": n} for n, url in enumerate(urls)]
    response = await api.client.post(
        "/graphql",
        json={"query": SYNC, "variables": {"input": {"productSku": sku, "images": images}}},
        headers=api.headers(),
    )
    return answer(response)


def answer(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_masked_failure(body: dict[str, Any]) -> None:
    """The fault reached the client as a masked internal error: no data, no details."""
    assert body.get("data") is None, body
    messages = [error["message"] for error in body["errors"]]
    assert messages == ["Internal server error."], body
    text = json.dumps(body)
    for leak in ("Traceback", "No space", "errno", "Input/output", "sqlite", "INSERT", ".tmp"):
        assert leak not in text, body


async def assert_nothing_changed(api: Api, before: set[str], rows: dict[str, int]) -> None:
    for table, count in rows.items():
        assert await api.count_rows(table) == count, table
    assert api.blob_files() == before
    await api.assert_consistent()


async def state(api: Api) -> tuple[set[str], dict[str, int]]:
    tables = ("image", "video", "downloadable_image")
    return api.blob_files(), {table: await api.count_rows(table) for table in tables}


async def stocked(api: Api, sku: str) -> tuple[dict[str, Any], set[str], dict[str, int]]:
    """A product that already has an image (it must survive every fault), and the state."""
    product = await api.create_product(sku)
    payload = await api.upload_image(product["id"], image_bytes("PNG", (30, 30), seed=99))
    assert payload["userErrors"] == [], payload
    blobs, rows = await state(api)
    return product, blobs, rows


# ---- a failing blob write ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allowed", "code"),
    [
        pytest.param(0, errno.ENOSPC, id="first-write-ENOSPC"),
        pytest.param(5 * CHUNK + 100, errno.ENOSPC, id="mid-stream-ENOSPC"),
        pytest.param(3 * CHUNK, errno.EIO, id="mid-stream-EIO"),
    ],
)
async def test_failing_write_of_an_upload(
    api: Api, monkeypatch: pytest.MonkeyPatch, allowed: int, code: int
) -> None:
    product, before, rows = await stocked(api, "DISK-1")
    content = noise_png(1)
    assert len(content) > 10 * CHUNK
    with failing_temp_writes(monkeypatch, allowed=allowed, code=code) as fault:
        assert_masked_failure(await upload_image(api, product["id"], content))
    assert fault.strikes == 1
    await assert_nothing_changed(api, before, rows)
    # The disk has room again: the same upload goes through.
    payload = (await upload_image(api, product["id"], content))["data"]["uploadImage"]
    assert payload["userErrors"] == [], payload
    await api.assert_consistent()


async def test_failing_write_of_the_second_file_of_uploadimages(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    product, before, rows = await stocked(api, "DISK-2")
    contents = [noise_png(2, side=100), noise_png(3), noise_png(4, side=100)]
    # Each file may write 200 KiB: the first (30 KiB) fits, the second (1 MiB) does not.
    with failing_temp_writes(monkeypatch, allowed=200 * 1024) as fault:
        assert_masked_failure(await upload_images(api, product["id"], contents))
    assert fault.strikes == 1
    await assert_nothing_changed(api, before, rows)


async def test_failing_write_of_a_video(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    product, before, rows = await stocked(api, "DISK-3")
    clip = mp4_bytes(seconds=2.0)
    with failing_temp_writes(monkeypatch, allowed=len(clip) // 2) as fault:
        assert_masked_failure(await upload_video(api, product["id"], clip))
    assert fault.strikes == 1
    await assert_nothing_changed(api, before, rows)


async def test_failing_write_of_a_sync_download(
    api: Api, server: ImageServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    product, before, rows = await stocked(api, "DISK-4")
    urls = [server.serve(f"/d{n}.png", noise_png(10 + n, side=300)) for n in range(4)]
    with failing_temp_writes(monkeypatch, allowed=2 * CHUNK) as fault:
        assert_masked_failure(await sync(api, product["sku"], urls))
    assert fault.strikes >= 1
    await assert_nothing_changed(api, before, rows)


@dataclass
class SlowServer:
    """Serves ``/fast/…`` at once and ``/slow/…`` after ``delay`` seconds."""

    bodies: dict[str, bytes]
    delay: float
    port: int = 0

    async def handle(self, request: Request) -> Response:
        if request.url.path.startswith("/slow/"):
            await asyncio.sleep(self.delay)
        return Response(self.bodies[request.url.path], media_type="application/octet-stream")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@contextmanager
def slow_server(bodies: dict[str, bytes], delay: float) -> Iterator[SlowServer]:
    state = SlowServer(bodies, delay)
    with serving(Starlette(routes=[Route("/{path:path}", state.handle)])) as port:
        state.port = port
        yield state


async def test_failing_write_of_one_download_leaves_no_other_download_behind(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One download of a sync fails on a full disk while the others are still arriving: they
    are stopped and their temporary files removed, not left to finish into a folder nobody
    cleans (and those that had finished are removed too)."""
    product, before, rows = await stocked(api, "DISK-5")
    bodies = {"/fast/big.png": noise_png(20)}
    bodies |= {f"/fast/small{n}.png": image_bytes("PNG", (20, 20), seed=70 + n) for n in range(2)}
    bodies |= {f"/slow/{n}.png": image_bytes("PNG", (20, 20), seed=80 + n) for n in range(3)}
    with slow_server(bodies, delay=1.0) as server:
        urls = [server.url(path) for path in bodies]
        with failing_temp_writes(monkeypatch, allowed=4 * CHUNK) as fault:
            assert_masked_failure(await sync(api, product["sku"], urls))
        assert fault.strikes == 1
        await asyncio.sleep(1.5)  # the slow downloads would have finished by now
    await assert_nothing_changed(api, before, rows)


# ---- a failing move of the blob to its key (the commit of the blob) ------------------------


@pytest.mark.parametrize("after_move", [False, True], ids=["rename-fails", "fails-after-rename"])
async def test_failing_commit_of_an_upload(
    api: Api, monkeypatch: pytest.MonkeyPatch, after_move: bool
) -> None:
    product, before, rows = await stocked(api, "MOVE-1")
    with failing_moves(monkeypatch, after_move=after_move) as fault:
        assert_masked_failure(await upload_image(api, product["id"], noise_png(5)))
    assert fault.strikes == 1
    await assert_nothing_changed(api, before, rows)


async def test_failing_fsync_before_the_move(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    product, before, rows = await stocked(api, "MOVE-2")
    with failing_fsync(monkeypatch) as fault:
        assert_masked_failure(await upload_image(api, product["id"], noise_png(6)))
    assert fault.strikes == 1
    await assert_nothing_changed(api, before, rows)


@pytest.mark.parametrize("after_move", [False, True], ids=["rename-fails", "fails-after-rename"])
async def test_failing_commit_of_the_second_file_takes_the_first_back(
    api: Api, monkeypatch: pytest.MonkeyPatch, after_move: bool
) -> None:
    product, before, rows = await stocked(api, "MOVE-3")
    contents = [noise_png(7, side=100), noise_png(8, side=100), noise_png(9, side=100)]
    with failing_moves(monkeypatch, after_move=after_move, skip=1) as fault:
        assert_masked_failure(await upload_images(api, product["id"], contents))
    assert fault.strikes == 1
    await assert_nothing_changed(api, before, rows)


@pytest.mark.parametrize("after_move", [False, True], ids=["rename-fails", "fails-after-rename"])
async def test_failing_commit_of_a_video(
    api: Api, monkeypatch: pytest.MonkeyPatch, after_move: bool
) -> None:
    product, before, rows = await stocked(api, "MOVE-4")
    with failing_moves(monkeypatch, after_move=after_move) as fault:
        assert_masked_failure(await upload_video(api, product["id"], mp4_bytes()))
    assert fault.strikes == 1
    await assert_nothing_changed(api, before, rows)


@pytest.mark.parametrize("after_move", [False, True], ids=["rename-fails", "fails-after-rename"])
async def test_failing_commit_of_a_sync(
    api: Api, server: ImageServer, monkeypatch: pytest.MonkeyPatch, after_move: bool
) -> None:
    product, before, rows = await stocked(api, "MOVE-5")
    urls = [server.serve(f"/m{n}.png", image_bytes("PNG", (40, 30), seed=40 + n)) for n in range(3)]
    with failing_moves(monkeypatch, after_move=after_move, skip=1) as fault:
        assert_masked_failure(await sync(api, product["sku"], urls))
    assert fault.strikes == 1
    await assert_nothing_changed(api, before, rows)


# ---- a database failure after the blob was moved ----------------------------------------------


@pytest.mark.parametrize("at", ["commit", "insert"])
async def test_database_failure_of_an_upload(api: Api, at: str) -> None:
    product, before, rows = await stocked(api, "DB-1")
    with failing_commit(api, table="image", at=at) as fault:
        assert_masked_failure(await upload_image(api, product["id"], noise_png(11)))
    assert fault.strikes == 1
    await assert_nothing_changed(api, before, rows)
    payload = (await upload_image(api, product["id"], noise_png(11)))["data"]["uploadImage"]
    assert payload["userErrors"] == [], payload
    await api.assert_consistent()


async def test_database_failure_of_uploadimages(api: Api) -> None:
    product, before, rows = await stocked(api, "DB-2")
    contents = [noise_png(12, side=100), noise_png(13, side=100)]
    with failing_commit(api, table="image") as fault:
        assert_masked_failure(await upload_images(api, product["id"], contents))
    assert fault.strikes == 1
    await assert_nothing_changed(api, before, rows)


async def test_database_failure_of_a_video(api: Api) -> None:
    product, before, rows = await stocked(api, "DB-3")
    with failing_commit(api, table="video") as fault:
        assert_masked_failure(await upload_video(api, product["id"], mp4_bytes()))
    assert fault.strikes == 1
    await assert_nothing_changed(api, before, rows)


async def test_database_failure_of_a_sync(api: Api, server: ImageServer) -> None:
    product, before, rows = await stocked(api, "DB-4")
    urls = [server.serve(f"/b{n}.png", image_bytes("PNG", (40, 30), seed=60 + n)) for n in range(3)]
    with failing_commit(api, table="image") as fault:
        assert_masked_failure(await sync(api, product["sku"], urls))
    assert fault.strikes == 1
    await assert_nothing_changed(api, before, rows)


async def test_a_blob_shared_with_another_product_survives_a_failed_commit(api: Api) -> None:
    """The failed upload's bytes are already stored for another product: taking the failed
    upload back must not delete the blob that the other product's row refers to."""
    content = noise_png(14)
    other = await api.create_product("DB-5-OTHER")
    assert (await api.upload_image(other["id"], content))["userErrors"] == []
    product, before, rows = await stocked(api, "DB-5")
    with failing_commit(api, table="image") as fault:
        assert_masked_failure(await upload_image(api, product["id"], content))
    assert fault.strikes == 1
    await assert_nothing_changed(api, before, rows)
    digest = hashlib.sha256(content).hexdigest()
    assert f"{digest[:2]}/{digest}.png" in api.blob_files()
