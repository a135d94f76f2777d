"""A bounded soak on loopback: the real server under a steady mix of reads and writes.

``media-gateway serve`` runs as a subprocess on a free port of 127.0.0.1 with a fresh SQLite
file and media root in a temporary folder, allowed to fetch from 127.0.0.1, where an image
server (tests/support/image_server.py, in a thread of this process) serves 200 distinct PNGs for
syncs. 40 products get two images each. Then 16 clients (one ``httpx.AsyncClient`` each,
keep-alive) run this mix, first for a warm-up (15 s by default), then for the measured
duration (60 s by default):

* read (45 %): a storefront page, ``products(first: 20)`` with images, main image and
  rendition URLs, or one product by SKU;
* media (30 %): a GET of a media URL seen in a read: an original or a rendition (generated on
  that request when missing);
* upload (15 %): ``uploadImage`` of distinct bytes (320x240 PNG) by multipart; a gallery
  kept at 6 images or fewer by ``deleteImages`` of its oldest, so the data stays bounded;
* sync (10 %): ``syncImages`` of 1 to 3 URLs of the image server for one of 8 SKUs (each
  sync replaces the list: new URLs are downloaded, dropped ones deleted).

Reported: requests by kind, errors (any 5xx, transport error, or GraphQL error where none
is expected), p50/p95 latency per kind and overall, and the server's resident memory (psutil
when installed, else VmRSS of /proc/<pid>/status) after the warm-up and at the end. It passes
with zero 5xx, zero errors, and the end's memory within 20 % of the warm-up's; the server is
then stopped and its files checked: every row has its blob, every blob a row, no temporary
file is left.

Usage: .venv/bin/python bench/soak.py [--duration 60] [--warmup 15] [--clients 16] [--json F]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from support.image_server import ImageServer, running_server  # noqa: E402
from support.media_factory import image_bytes  # noqa: E402
from support.server_process import GatewayProcess, start_gateway  # noqa: E402

PRODUCTS = 40
SYNC_SKUS = 8
SERVED_IMAGES = 200
GALLERY_CAP = 6
MEMORY_TOLERANCE = 0.20

STOREFRONT = """
query($first: Int!, $after: String) {
  products(first: $first, after: $after) {
    pageInfo { hasNextPage endCursor }
    edges { node {
      id sku name
      mainImage { url renditions(sizes: [THUMBNAIL]) { url url2x } }
      images { id url width height renditions(sizes: [SMALL, MEDIUM]) { url url2x } }
    } }
  }
}
"""
PRODUCT = """
query($sku: String!) { product(sku: $sku) {
  id images { id url position renditions { url } } videos { url } downloadableImages { url }
} }
"""
CREATE = (
    "mutation($i: ProductCreateInput!) { productCreate(input: $i) { product { id } "
    "userErrors { code } } }"
)
UPLOAD = (
    "mutation($input: UploadImageInput!) { uploadImage(input: $input) { "
    "image { id url } userErrors { code message } } }"
)
DELETE = "mutation($ids: [ID!]!) { deleteImages(ids: $ids) { deletedIds userErrors { code } } }"
GALLERY = "query($sku: String!) { product(sku: $sku) { images { id } } }"
SYNC = (
    "mutation($input: SyncImagesInput!) { syncImages(input: $input) { "
    "images { status } userErrors { code message } } }"
)


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid``: psutil when installed, else /proc/<pid>/status."""
    try:
        import psutil  # type: ignore[import-not-found]
    except ImportError:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no VmRSS for pid {pid}") from None
    return int(psutil.Process(pid).memory_info().rss)


@dataclass
class Tally:
    counts: Counter[str] = field(default_factory=Counter)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    server_errors: int = 0
    failures: list[str] = field(default_factory=list)

    def record(self, kind: str, seconds: float) -> None:
        self.counts[kind] += 1
        self.latencies[kind].append(seconds)

    def fail(self, kind: str, what: str) -> None:
        self.counts[f"{kind}:failed"] += 1
        if len(self.failures) < 20:
            self.failures.append(f"{kind}: {what}")


@dataclass
class Shared:
    """What the clients learn while they run."""

    media_urls: list[str] = field(default_factory=list)
    skus: list[str] = field(default_factory=list)
    sync_skus: list[str] = field(default_factory=list)
    sync_urls: list[str] = field(default_factory=list)
    next_seed: int = 10_000
    upload_locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    def seed(self) -> int:
        self.next_seed += 1
        return self.next_seed

    def remember(self, urls: list[str]) -> None:
        self.media_urls.extend(urls)
        if len(self.media_urls) > 2000:
            del self.media_urls[: len(self.media_urls) - 2000]


class Client:
    def __init__(self, http: httpx.AsyncClient, token: str, shared: Shared, rng: random.Random):
        self.http = http
        self.token = token
        self.shared = shared
        self.rng = rng

    async def graphql(
        self, tally: Tally, kind: str, query: str, variables: dict[str, Any], write: bool = False
    ) -> dict[str, Any] | None:
        headers = {"Authorization": f"Bearer {self.token}"} if write else {}
        started = time.perf_counter()
        try:
            response = await self.http.post(
                "/graphql", json={"query": query, "variables": variables}, headers=headers
            )
        except httpx.HTTPError as exc:
            tally.fail(kind, f"transport: {exc!r}")
            return None
        return self._answer(tally, kind, response, time.perf_counter() - started)

    def _answer(
        self, tally: Tally, kind: str, response: httpx.Response, seconds: float
    ) -> dict[str, Any] | None:
        tally.record(kind, seconds)
        if response.status_code >= 500:
            tally.server_errors += 1
            tally.fail(kind, f"HTTP {response.status_code}: {response.text[:200]}")
            return None
        body = response.json()
        if response.status_code != 200 or body.get("errors"):
            tally.fail(kind, f"HTTP {response.status_code}: {json.dumps(body)[:300]}")
            return None
        data: dict[str, Any] = body["data"]
        return data

    async def step(self, tally: Tally) -> None:
        roll = self.rng.random()
        if roll < 0.45:
            await self.read(tally)
        elif roll < 0.75:
            await self.media(tally)
        elif roll < 0.90:
            await self.upload(tally)
        else:
            await self.sync(tally)

    async def read(self, tally: Tally) -> None:
        if self.rng.random() < 0.6:
            data = await self.graphql(tally, "read", STOREFRONT, {"first": 20})
            if data:
                urls = []
                for edge in data["products"]["edges"]:
                    for image in edge["node"]["images"]:
                        urls.append(image["url"])
                        urls.extend(r["url"] for r in image["renditions"])
                self.shared.remember(urls)
        else:
            sku = self.rng.choice(self.shared.skus + self.shared.sync_skus)
            data = await self.graphql(tally, "read", PRODUCT, {"sku": sku})
            if data and data["product"]:
                self.shared.remember([i["url"] for i in data["product"]["images"]])

    async def media(self, tally: Tally) -> None:
        if not self.shared.media_urls:
            await self.read(tally)
            return
        url = self.rng.choice(self.shared.media_urls)
        started = time.perf_counter()
        try:
            response = await self.http.get(url)
        except httpx.HTTPError as exc:
            tally.fail("media", f"transport: {exc!r}")
            return
        tally.record("media", time.perf_counter() - started)
        if response.status_code >= 500:
            tally.server_errors += 1
            tally.fail("media", f"HTTP {response.status_code} for {url}")
        elif response.status_code not in (200, 404):
            tally.fail("media", f"HTTP {response.status_code} for {url}")
        # 404: an image that an upload's cap or a sync deleted since it was read.

    async def upload(self, tally: Tally) -> None:
        sku = self.rng.choice(self.shared.skus)
        content = image_bytes("PNG", (320, 240), seed=self.shared.seed())
        operations = {"query": UPLOAD, "variables": {"input": {"productSku": sku, "file": None}}}
        started = time.perf_counter()
        try:
            response = await self.http.post(
                "/graphql",
                data={
                    "operations": json.dumps(operations),
                    "map": json.dumps({"0": ["variables.input.file"]}),
                },
                files={"0": ("soak.png", content, "image/png")},
                headers={"Authorization": f"Bearer {self.token}"},
            )
        except httpx.HTTPError as exc:
            tally.fail("upload", f"transport: {exc!r}")
            return
        data = self._answer(tally, "upload", response, time.perf_counter() - started)
        if not data:
            return
        payload = data["uploadImage"]
        if payload["userErrors"]:
            tally.fail("upload", json.dumps(payload["userErrors"]))
            return
        self.shared.remember([payload["image"]["url"]])
        lock = self.shared.upload_locks.setdefault(sku, asyncio.Lock())
        async with lock:  # one trimmer per product: two would delete the same image
            gallery = await self.graphql(tally, "trim", GALLERY, {"sku": sku}, write=True)
            if gallery and len(gallery["product"]["images"]) > GALLERY_CAP:
                oldest = [i["id"] for i in gallery["product"]["images"][:-GALLERY_CAP]]
                await self.graphql(tally, "trim", DELETE, {"ids": oldest}, write=True)

    async def sync(self, tally: Tally) -> None:
        sku = self.rng.choice(self.shared.sync_skus)
        urls = self.rng.sample(self.shared.sync_urls, self.rng.randint(1, 3))
        images = [{"url": url, "position": n} for n, url in enumerate(urls)]
        data = await self.graphql(
            tally, "sync", SYNC, {"input": {"productSku": sku, "images": images}}, write=True
        )
        if data and data["syncImages"]["userErrors"]:
            tally.fail("sync", json.dumps(data["syncImages"]["userErrors"]))


async def seed_data(base: str, token: str, shared: Shared) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        client = Client(http, token, shared, random.Random(0))
        tally = Tally()
        for n in range(PRODUCTS):
            sku = f"SOAK-{n:03d}"
            await client.graphql(tally, "seed", CREATE, {"i": {"sku": sku, "name": sku}}, True)
            shared.skus.append(sku)
        for n in range(SYNC_SKUS):
            sku = f"SOAK-SYNC-{n}"
            await client.graphql(tally, "seed", CREATE, {"i": {"sku": sku, "name": sku}}, True)
            shared.sync_skus.append(sku)
        for _ in range(2 * PRODUCTS):
            await client.upload(tally)
        if tally.failures:
            raise RuntimeError(f"seeding failed: {tally.failures}")


async def run_clients(
    base: str, token: str, shared: Shared, clients: int, seconds: float, tally: Tally
) -> None:
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)

    async def one(index: int) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
            client = Client(http, token, shared, random.Random(index))
            while time.monotonic() < deadline:
                await client.step(tally)

    await asyncio.gather(*(one(index) for index in range(clients)))


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def check_files(gateway: GatewayProcess) -> list[str]:
    """Problems of the stopped server's files: rows without blobs, blobs without rows,
    temporary files left."""
    with sqlite3.connect(gateway.database) as connection:
        rows = connection.execute("SELECT blob_key FROM image UNION SELECT blob_key FROM video")
        keys = {row[0] for row in rows}
    root = gateway.media_root
    files = {str(p.relative_to(root)) for p in root.glob("??/*") if p.is_file()}
    problems = [f"row without blob: {k}" for k in sorted(keys - files)]
    problems += [f"blob without row: {k}" for k in sorted(files - keys)]
    problems += [f"temporary file left: {p.name}" for p in (root / ".tmp").glob("*")]
    return problems


@dataclass
class Report:
    duration: float
    clients: int
    counts: dict[str, int]
    latency_ms: dict[str, dict[str, float]]
    requests: int
    requests_per_second: float
    server_errors: int
    failures: list[str]
    rss_after_warmup: int
    rss_at_end: int
    file_problems: list[str]

    @property
    def memory_change(self) -> float:
        return (self.rss_at_end - self.rss_after_warmup) / self.rss_after_warmup

    @property
    def passed(self) -> bool:
        return (
            self.server_errors == 0
            and not self.failures
            and abs(self.memory_change) <= MEMORY_TOLERANCE
            and not self.file_problems
        )

    def lines(self) -> Iterator[str]:
        yield f"soak: {self.clients} clients for {self.duration:.0f} s on loopback"
        yield f"{'kind':<8} {'requests':>9} {'p50 ms':>8} {'p95 ms':>8}"
        for kind, figures in self.latency_ms.items():
            yield (
                f"{kind:<8} {self.counts.get(kind, 0):>9} "
                f"{figures['p50']:>8.1f} {figures['p95']:>8.1f}"
            )
        yield f"requests: {self.requests} ({self.requests_per_second:.0f}/s)"
        yield f"5xx: {self.server_errors}   other failures: {len(self.failures)}"
        for failure in self.failures:
            yield f"  {failure}"
        mib = 1024 * 1024
        yield (
            f"server RSS: {self.rss_after_warmup / mib:.1f} MiB after warm-up, "
            f"{self.rss_at_end / mib:.1f} MiB at the end ({self.memory_change:+.1%}; "
            f"limit ±{MEMORY_TOLERANCE:.0%})"
        )
        yield f"files after stop: {'consistent' if not self.file_problems else 'PROBLEMS'}"
        for problem in self.file_problems[:20]:
            yield f"  {problem}"
        yield "PASS" if self.passed else "FAIL"


def soak(
    duration: float = 60.0,
    warmup: float = 15.0,
    clients: int = 16,
    folder: Path | None = None,
) -> Report:
    """Run the whole soak (see the module) and return its report."""
    with ExitStack() as stack:
        if folder is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="soak-")))
        server: ImageServer = stack.enter_context(contextmanager(running_server)())
        shared = Shared()
        shared.sync_urls = [
            server.serve(f"/s/{n}.png", image_bytes("PNG", (200, 150), seed=n + 1))
            for n in range(SERVED_IMAGES)
        ]
        gateway = start_gateway(folder / "gateway", "soak", FETCH_ALLOW_HOSTS="127.0.0.1")
        try:
            token = gateway.admin_token()
            asyncio.run(seed_data(gateway.base, token, shared))
            asyncio.run(run_clients(gateway.base, token, shared, clients, warmup, Tally()))
            rss_warm = rss_bytes(gateway.pid)
            tally = Tally()
            started = time.monotonic()
            asyncio.run(run_clients(gateway.base, token, shared, clients, duration, tally))
            elapsed = time.monotonic() - started
            rss_end = rss_bytes(gateway.pid)
        finally:
            gateway.stop()
        problems = check_files(gateway)
    kinds = [k for k in ("read", "media", "upload", "sync", "trim") if k in tally.latencies]
    everything = [s for k in kinds for s in tally.latencies[k]]
    latency = {
        kind: {
            "p50": percentile(tally.latencies[kind], 0.50) * 1000,
            "p95": percentile(tally.latencies[kind], 0.95) * 1000,
        }
        for kind in kinds
    }
    latency["all"] = {
        "p50": percentile(everything, 0.50) * 1000,
        "p95": percentile(everything, 0.95) * 1000,
    }
    counts = dict(tally.counts)
    counts["all"] = len(everything)
    return Report(
        duration=elapsed,
        clients=clients,
        counts=counts,
        latency_ms=latency,
        requests=len(everything),
        requests_per_second=len(everything) / elapsed,
        server_errors=tally.server_errors,
        failures=tally.failures,
        rss_after_warmup=rss_warm,
        rss_at_end=rss_end,
        file_problems=problems,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=15.0, help="seconds before measuring")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--json", type=Path, help="also write the report here as JSON")
    args = parser.parse_args()
    report = soak(args.duration, args.warmup, args.clients)
    for line in report.lines():
        print(line)
    if args.json:
        figures = {**report.__dict__, "memory_change": report.memory_change}
        args.json.write_text(json.dumps(figures | {"passed": report.passed}, indent=2))
    return 0 if report.passed else 1


__all__ = ["Report", "soak"]

if __name__ == "__main__":
    sys.exit(main())
