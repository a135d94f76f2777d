"""ERP sync throughput: bulk sync against the same downloads done one at a time.

A real HTTP server on 127.0.0.1 (tests/support/image_server.py's handler under uvicorn, in a
process of its own so that it takes no CPU from the process under test) serves 1000 distinct
small PNGs and delays every response by 50 ms, like a slow ERP media host. There are
200 products (SKUs) with 5 images each.

* bulk: ``storage.sync.sync_images`` (what ``syncImagesBulk`` runs) over the 200 SKUs in
  batches of 100, against a fresh migrated SQLite database and blob folder per run (products
  created first, not timed). Each batch downloads its URLs concurrently under the sync's
  bound (16 at a time), inspects them, and commits one transaction per SKU. The background
  warm-up of renditions after a sync is off (bench/renditions.py measures renditions);
  ``--warm-renditions`` turns it on and counts it until it has finished.
* sequential: the same 1000 URLs fetched one after another with a plain ``httpx.Client``
  (keep-alive), each body written to a file.

Each figure is the median of its runs. A sequential run costs at least 1000 x 50 ms = 50 s,
so by default the sequential baseline runs once and the bulk sync three times (the whole
bench then takes a little under two minutes); ``--sequential-runs 3`` gives a median there
too. The table prints images/s for both and their ratio (goal: bulk at least 6x faster).

Usage: .venv/bin/python bench/sync.py [--runs N] [--sequential-runs N] [--warm-renditions]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from gateway.app import build_backend, close_backend  # noqa: E402
from gateway.settings import Settings  # noqa: E402
from storage import products  # noqa: E402
from storage.sql import migrate  # noqa: E402
from storage.sync import SyncItem, SyncRequest, sync_images  # noqa: E402
from support.image_server import ImageServer  # noqa: E402
from support.media_factory import image_bytes  # noqa: E402
from support.server_process import free_port  # noqa: E402

SKUS = 200
IMAGES_PER_SKU = 5
DELAY = 0.050
BATCH = 100


def catalogue(server: ImageServer) -> list[SyncRequest]:
    requests = []
    for product in range(SKUS):
        items = []
        for index in range(IMAGES_PER_SKU):
            seed = product * IMAGES_PER_SKU + index + 1
            url = server.serve(
                f"/p{product:03d}/{index}.png", image_bytes("PNG", (64, 48), seed=seed)
            )
            items.append(SyncItem(url=url, position=index))
        requests.append(SyncRequest(sku=f"SKU-{product:03d}", items=items))
    return requests


def fresh_store(folder: Path, requests: list[SyncRequest], warm: bool) -> Settings:
    """A migrated SQLite database in ``folder`` with every product of ``requests``."""
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{folder / 'media.db'}",
        media_root=folder / "media",
        fetch_allow_hosts="127.0.0.1",
        warm_renditions=warm,
    )
    migrate.upgrade(settings.database_url)

    async def create() -> None:
        backend = build_backend(settings)
        try:
            for request in requests:
                await products.create_product(backend, request.sku, f"Product {request.sku}")
        finally:
            await close_backend(backend)

    asyncio.run(create())
    return settings


def bulk_run(server: ServerProcess, requests: list[SyncRequest], warm: bool) -> float:
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as temp:
        settings = fresh_store(Path(temp), requests, warm)
        server.reset_hits()

        async def run() -> float:
            backend = build_backend(settings)
            try:
                started = time.perf_counter()
                for start in range(0, len(requests), BATCH):
                    outcomes = await sync_images(
                        backend, backend.fetcher, requests[start : start + BATCH]
                    )
                    failed = [o for o in outcomes if o.problems]
                    if failed:
                        raise SystemExit(f"sync failed: {failed[0].sku}: {failed[0].problems}")
                await backend.renditions.drain()  # the warm-ups, when they are on, count too
                return time.perf_counter() - started
            finally:
                await close_backend(backend)

        elapsed = asyncio.run(run())
        downloads = server.total_hits()
        if downloads != SKUS * IMAGES_PER_SKU:
            raise SystemExit(f"expected {SKUS * IMAGES_PER_SKU} downloads, saw {downloads}")
        return elapsed


def sequential_run(requests: list[SyncRequest]) -> float:
    urls = [item.url for request in requests for item in request.items]
    with tempfile.TemporaryDirectory(prefix="bench-seq-") as temp, httpx.Client() as client:
        folder = Path(temp)
        started = time.perf_counter()
        for number, url in enumerate(urls):
            response = client.get(url)
            response.raise_for_status()
            (folder / f"{number}.png").write_bytes(response.content)
        return time.perf_counter() - started


class ServerProcess:
    """An ImageServer (bodies registered before ``start``) served by a child process; its
    request count is read over HTTP."""

    def __init__(self) -> None:
        self.state = ImageServer(port=free_port())
        self.process: multiprocessing.process.BaseProcess | None = None

    def start(self) -> None:
        context = multiprocessing.get_context("fork")
        self.process = context.Process(target=_serve, args=(self.state,), daemon=True)
        self.process.start()
        deadline = time.monotonic() + 10
        while True:
            try:
                self.reset_hits()
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def total_hits(self) -> int:
        return int(httpx.get(self.state.url("/__hits")).text)

    def reset_hits(self) -> None:
        httpx.post(self.state.url("/__hits")).raise_for_status()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.join(10)


def _serve(state: ImageServer) -> None:
    async def hits(request: Request) -> PlainTextResponse:
        if request.method == "POST":
            state.hits.clear()
        return PlainTextResponse(str(state.total_hits))

    app = Starlette(
        routes=[
            Route("/__hits", hits, methods=["GET", "POST"]),
            Route("/{path:path}", state.handle),
        ]
    )
    uvicorn.run(app, host="127.0.0.1", port=state.port, log_level="warning")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="bulk sync runs (default 3)")
    parser.add_argument(
        "--sequential-runs", type=int, default=1, help="sequential runs (default 1, ~52 s each)"
    )
    parser.add_argument(
        "--warm-renditions",
        action="store_true",
        help="render each stored image's default renditions in the background, as the "
        "gateway does by default, and count that time (off: the sync alone)",
    )
    args = parser.parse_args()
    if args.runs < 1 or args.sequential_runs < 1:
        parser.error("--runs and --sequential-runs must be at least 1")

    server = ServerProcess()
    server.state.delay = DELAY
    requests = catalogue(server.state)
    server.start()
    try:
        images = SKUS * IMAGES_PER_SKU
        bulk = [bulk_run(server, requests, args.warm_renditions) for _ in range(args.runs)]
        sequential = [sequential_run(requests) for _ in range(args.sequential_runs)]
    finally:
        server.stop()

    bulk_s, sequential_s = statistics.median(bulk), statistics.median(sequential)
    warm = " + renditions" if args.warm_renditions else ""
    rows = [
        ("sequential httpx GETs", len(sequential), sequential_s, images / sequential_s),
        (f"sync_images, batches of {BATCH}{warm}", len(bulk), bulk_s, images / bulk_s),
    ]
    print(
        f"ERP sync: {SKUS} SKUs x {IMAGES_PER_SKU} images, {DELAY * 1000:.0f} ms per response "
        "from 127.0.0.1"
    )
    print(f"{'method':<42} {'runs':>4} {'median s':>9} {'images/s':>9}")
    for name, runs, seconds, rate in rows:
        print(f"{name:<42} {runs:>4} {seconds:>9.2f} {rate:>9.1f}")
    print(f"ratio (bulk / sequential images/s): {sequential_s / bulk_s:.2f}x  (goal: >= 6x)")
    print("bulk runs (s): " + ", ".join(f"{s:.2f}" for s in bulk))


if __name__ == "__main__":
    main()
