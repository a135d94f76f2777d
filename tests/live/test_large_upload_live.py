"""A large upload through a real server: its file is written to disk once (the bytes the
process writes, from /proc/<pid>/io, stay near the file's size, where spooling and copying
wrote it twice), and the server's peak RSS grows by a bounded amount however large the file
is (bench/http_bench.py measures it the same way, through VmHWM)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from bench import http_store as store
from bench.http_bench import peak_rss_growth
from support.server_process import running_gateway

pytestmark = pytest.mark.live

MIB = 1024 * 1024
SIZE = 200 * MIB
RSS_GROWTH_MIB = 30.0
"""The goal of the upload bench; the stream holds about two 1 MiB batches at a time."""


def written_bytes(pid: int) -> int:
    """Bytes the process handed to write calls so far (``wchar``: files, sockets, logs)."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise RuntimeError(f"no wchar for pid {pid}")


def test_a_large_upload_is_written_once_with_bounded_memory(tmp_path: Path) -> None:
    video = tmp_path / "large.mp4"
    store.write_mp4(video, SIZE)
    with running_gateway(tmp_path / "gateway", WARM_RENDITIONS="false") as gateway:
        token = gateway.admin_token()
        headers = {"Authorization": f"Bearer {token}"}
        created = httpx.post(
            f"{gateway.base}/graphql",
            json={
                "query": 'mutation { productCreate(input: {sku: "BIG", name: "Big"}) { '
                "product { id } } }"
            },
            headers=headers,
        )
        assert created.status_code == 200, created.text
        operations = {
            "query": store.UPLOAD_VIDEO,
            "variables": {"input": {"productSku": "BIG", "file": None}},
        }
        before = written_bytes(gateway.pid)
        with peak_rss_growth(gateway.pid) as growth:
            done = subprocess.run(
                [
                    "curl", "-sS", "--fail-with-body",
                    "-H", f"Authorization: Bearer {token}",
                    "-F", f"operations={json.dumps(operations)}",
                    "-F", 'map={"0": ["variables.input.file"]}',
                    "-F", f"0=@{video};type=video/mp4",
                    f"{gateway.base}/graphql",
                ],
                capture_output=True,
                text=True,
                timeout=300,
            )  # fmt: skip
        written = written_bytes(gateway.pid) - before
        print(f"{SIZE / MIB:.0f} MiB: wrote {written / MIB:.1f} MiB, peak RSS +{growth[0]:.1f} MiB")
        assert done.returncode == 0, done.stderr + done.stdout
        payload = json.loads(done.stdout)["data"]["uploadVideo"]
        assert payload["userErrors"] == [], payload
        assert payload["video"]["fileSize"] == SIZE
        assert SIZE <= written < SIZE + 8 * MIB, written / MIB
        assert growth[0] <= RSS_GROWTH_MIB, growth
        # The request's files are removed once its response has been sent, a moment after
        # the client has it.
        deadline = time.monotonic() + 10
        while list((gateway.media_root / ".tmp").glob("*")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list((gateway.media_root / ".tmp").glob("*")) == []
