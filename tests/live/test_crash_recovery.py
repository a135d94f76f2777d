"""A gateway killed (SIGKILL) in the middle of an upload, then started again.

* Killed while a multipart body is still arriving: the file part streams straight into a
  temporary blob in the store's ``.tmp`` (nothing is spooled to ``TMPDIR``), named after the
  process that writes it; the next start removes it.
* Killed while a blob is being written (a sync download streaming slowly into the store's
  ``.tmp``): the temporary file stays behind, named after the dead process; the next start
  removes it, young as it is, while it spares a young file of a process that still runs
  (another worker's transfer) and one whose writer it cannot tell (the age rule, an hour).

Afterwards there is no row without its blob and no blob without its row."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from storage.blobs.tempfiles import temp_name, writer_of
from support.media_factory import image_bytes
from support.server_process import (
    GatewayProcess,
    gateway_env,
    running_gateway,
    start_gateway,
)
from support.threaded_server import serving

pytestmark = pytest.mark.live

CHUNK = 64 * 1024


def graphql(gateway: GatewayProcess, query: str, variables: dict[str, object]) -> dict[str, object]:
    response = httpx.post(
        f"{gateway.base}/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {gateway.admin_token()}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    data: dict[str, object] = body["data"]
    return data


def create_product(gateway: GatewayProcess, sku: str) -> str:
    data = graphql(
        gateway,
        "mutation($i: ProductCreateInput!) { productCreate(input: $i) { product { id } } }",
        {"i": {"sku": sku, "name": sku}},
    )
    payload = data["productCreate"]
    assert isinstance(payload, dict)
    product_id: str = payload["product"]["id"]
    return product_id


def temp_files(gateway: GatewayProcess) -> list[Path]:
    return sorted((gateway.media_root / ".tmp").glob("*"))


def assert_consistent(gateway: GatewayProcess) -> None:
    """No row without its blob, no blob without its row (on disk and in the SQLite file)."""
    with sqlite3.connect(gateway.database) as connection:
        rows = connection.execute("SELECT blob_key FROM image UNION SELECT blob_key FROM video")
        keys = {row[0] for row in rows}
    root = gateway.media_root
    files = {str(p.relative_to(root)) for p in root.glob("??/*") if p.is_file()}
    assert files == keys


def count_rows(gateway: GatewayProcess, table: str) -> int:
    with sqlite3.connect(gateway.database) as connection:
        return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


# ---- killed while the multipart body arrives ---------------------------------------------------


def test_killed_while_a_multipart_body_streams(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    folder = tmp_path / "gw"
    env = gateway_env(folder) | {"TMPDIR": str(spool)}
    gateway = start_gateway(folder, "first", env=env)
    try:
        product_id = create_product(gateway, "CRASH-1")
        boundary = uuid.uuid4().hex
        operations = {
            "query": "mutation($input: UploadVideoInput!) { uploadVideo(input: $input) { "
            "video { id } } }",
            "variables": {"input": {"productId": product_id, "file": None}},
        }
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="operations"\r\n\r\n'
            f"{json.dumps(operations)}\r\n"
            f'--{boundary}\r\nContent-Disposition: form-data; name="map"\r\n\r\n'
            f"{json.dumps({'0': ['variables.input.file']})}\r\n"
            f'--{boundary}\r\nContent-Disposition: form-data; name="0"; '
            'filename="big.mp4"\r\nContent-Type: video/mp4\r\n\r\n'
        ).encode()
        seen_during: list[list[Path]] = []

        def body() -> Iterator[bytes]:
            yield head
            for index in range(1024):  # 64 MiB announced, a few MiB sent
                yield os.urandom(CHUNK)
                time.sleep(0.002)
                if index == 64:  # 4 MiB in
                    seen_during.append(temp_files(gateway) + sorted(spool.iterdir()))
                    gateway.kill()
            yield f"\r\n--{boundary}--\r\n".encode()

        with pytest.raises(httpx.TransportError):
            httpx.post(
                f"{gateway.base}/graphql",
                content=body(),
                headers={
                    "Content-Type": f"multipart/form-data; boundary={boundary}",
                    "Authorization": f"Bearer {gateway.admin_token()}",
                },
                timeout=30,
            )
        assert gateway.process.returncode is not None
        # While it streamed: one temporary blob in the store, written by the gateway, and
        # nothing spooled beside it; the kill leaves that blob behind.
        [[streaming]] = seen_during
        assert streaming.parent == gateway.media_root / ".tmp"
        writer = writer_of(streaming.name)
        assert writer is not None and writer.pid == gateway.pid
        assert temp_files(gateway) == [streaming]
        assert sorted(spool.iterdir()) == []
    finally:
        gateway.stop()

    with running_gateway(folder, "second", env=env) as again:
        data = graphql(
            again,
            "query($id: ID!) { node(id: $id) { ... on Product { videos { id } } } }",
            {"id": product_id},
        )
        assert data == {"node": {"videos": []}}
        assert temp_files(again) == []
        assert count_rows(again, "video") == 0
        assert_consistent(again)


# ---- killed while a blob is written ----------------------------------------------------------


class TrickleServer:
    """Serves a PNG-looking body of 8 MiB slowly (64 KiB every 20 ms: about 2.6 s)."""

    def __init__(self) -> None:
        self.port = 0
        self.sent = 0

    async def handle(self, request: Request) -> Response:
        head = image_bytes("PNG", (16, 16), seed=5)

        async def body() -> AsyncIterator[bytes]:
            yield head
            for _ in range(128):
                await asyncio.sleep(0.02)
                self.sent += CHUNK
                yield b"\0" * CHUNK

        return StreamingResponse(body(), media_type="image/png")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@contextmanager
def trickle_server() -> Iterator[TrickleServer]:
    state = TrickleServer()
    with serving(Starlette(routes=[Route("/{path:path}", state.handle)])) as port:
        state.port = port
        yield state


def test_killed_while_a_blob_is_written_and_startup_cleans(tmp_path: Path) -> None:
    folder = tmp_path / "gw"
    settings = {"FETCH_ALLOW_HOSTS": "127.0.0.1", "FETCH_TIMEOUT": "60"}
    with trickle_server() as trickle:
        gateway = start_gateway(folder, "first", **settings)
        try:
            create_product(gateway, "CRASH-2")
            request = threading.Thread(
                target=_sync_ignoring_errors,
                args=(gateway, "CRASH-2", trickle.url("/slow.png")),
                daemon=True,
            )
            request.start()
            leftover = _wait_for_growing_temp_file(gateway, at_least=4 * CHUNK)
            gateway.kill()
            request.join(timeout=30)
        finally:
            gateway.stop()
        dead_pid = gateway.pid

    # The killed process left its temporary blob, named after it.
    assert leftover.exists()
    writer = writer_of(leftover.name)
    assert writer is not None and writer.pid == dead_pid
    # Beside it: a young file of a process that runs (this one), a young file whose writer
    # cannot be told, and an old one.
    tmp = gateway.media_root / ".tmp"
    live = tmp / temp_name()
    live.write_bytes(b"another worker's transfer")
    unknown = tmp / "from-an-older-version.part"
    unknown.write_bytes(b"young, writer unknown")
    old = tmp / "long-gone.part"
    old.write_bytes(b"old")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))

    with running_gateway(folder, "second", **settings) as again:
        assert temp_files(again) == sorted([live, unknown])
        assert count_rows(again, "image") == 0
        assert count_rows(again, "downloadable_image") == 0
        assert_consistent(again)
        # The product is as before the crash, and the gateway answers.
        data = graphql(again, '{ product(sku: "CRASH-2") { images { id } } }', {})
        assert data == {"product": {"images": []}}
    live.unlink()
    unknown.unlink()


def _sync_ignoring_errors(gateway: GatewayProcess, sku: str, url: str) -> None:
    query = (
        "mutation($input: SyncImagesInput!) { syncImages(input: $input) { userErrors { code } } }"
    )
    variables = {"input": {"productSku": sku, "images": [{"url": url, "position": 0}]}}
    with contextlib.suppress(httpx.TransportError):  # the server is killed under it
        httpx.post(
            f"{gateway.base}/graphql",
            json={"query": query, "variables": variables},
            headers={"Authorization": f"Bearer {gateway.admin_token()}"},
            timeout=60,
        )


def _wait_for_growing_temp_file(gateway: GatewayProcess, at_least: int) -> Path:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for path in temp_files(gateway):
            try:
                if path.stat().st_size >= at_least:
                    return path
            except FileNotFoundError:
                continue
        time.sleep(0.005)
    raise AssertionError(f"no temporary blob appeared:\n{gateway.output()}")
