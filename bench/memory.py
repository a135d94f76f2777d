"""Resident memory of the real server around a burst of renditions of large images.

``media-gateway serve`` runs as a subprocess on a free port of 127.0.0.1 with a fresh SQLite
file and media root in a temporary folder. Sources are photo-like images (gradients, soft
shapes and noise, as in bench/renditions.py) of ``--side`` pixels square, JPEG and PNG in
turn (``--images`` of them, 2 by default), uploaded one after another to one product; the
background warm-up of their default renditions is awaited. Then every rendition URL the API
gives that is not made yet (all sizes, 1x and 2x, in JPEG, PNG, WEBP and AVIF) is fetched,
``--concurrency`` GETs at a time, each of which makes its file on that request.

The server's VmRSS (/proc/<pid>/status) is reported at start (the baseline), after the
uploads and their warm-up, at its highest during the burst (sampled every 50 ms), and
``--settle`` seconds after the last GET (the lowest of the samples over that wait, which is
what the process keeps for good). ``--env NAME=VALUE`` passes more variables to the server
(e.g. ``--env MALLOC_ARENA_MAX=8`` to compare glibc settings).

Usage: .venv/bin/python bench/memory.py [--side 7000] [--images 2] [--concurrency 8]
       [--settle 10] [--env NAME=VALUE ...] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from bench.renditions import photo  # noqa: E402
from bench.soak import rss_bytes  # noqa: E402
from support.server_process import GatewayProcess, gateway_env, running_gateway  # noqa: E402

MIB = 1024 * 1024
FORMATS = ("JPEG", "PNG", "WEBP", "AVIF")
SAMPLE_SECONDS = 0.05
WARM_TIMEOUT = 300.0
PRODUCT_SKU = "MEMORY-1"

CREATE = (
    "mutation($i: ProductCreateInput!) { productCreate(input: $i) { product { id } "
    "userErrors { code } } }"
)
UPLOAD = (
    "mutation($input: UploadImageInput!) { uploadImage(input: $input) { "
    "image { id } userErrors { code message } } }"
)
RENDITIONS = """
query($sku: String!, $f: RenditionFormat!) { product(sku: $sku) {
  images { renditions(format: $f) { url url2x } }
} }
"""


@dataclass
class Figures:
    """Resident memory in MiB at each step of a run, and what the run did."""

    side: int
    images: int
    renditions: int
    baseline: float = 0.0
    after_uploads: float = 0.0
    peak: float = 0.0
    settled: float = 0.0
    settle_samples: list[float] = field(default_factory=list)
    seconds: float = 0.0
    env: dict[str, str] = field(default_factory=dict)

    @property
    def kept(self) -> float:
        """MiB the burst left behind: settled RSS over the baseline."""
        return self.settled - self.baseline

    def lines(self) -> list[str]:
        extra = " ".join(f"{k}={v}" for k, v in self.env.items()) or "none"
        return [
            f"{self.images} sources of {self.side}x{self.side} (JPEG and PNG), "
            f"{self.renditions} renditions made on request in {self.seconds:.1f} s; "
            f"extra environment: {extra}",
            f"RSS baseline       {self.baseline:8.1f} MiB",
            f"RSS after uploads  {self.after_uploads:8.1f} MiB",
            f"RSS peak (burst)   {self.peak:8.1f} MiB",
            f"RSS settled        {self.settled:8.1f} MiB  (+{self.kept:.1f} over baseline)",
        ]


def make_sources(folder: Path, side: int, count: int) -> list[tuple[str, bytes]]:
    """(MIME type, bytes) of ``count`` distinct photo-like images, JPEG and PNG in turn."""
    sources = []
    for index in range(count):
        fmt = "JPEG" if index % 2 == 0 else "PNG"
        path = folder / f"source-{index}.{fmt.lower()}"
        image = photo((side, side), seed=100 + index)
        image.save(path, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
        del image
        sources.append((f"image/{fmt.lower()}", path.read_bytes()))
    return sources


def mib(pid: int) -> float:
    return rss_bytes(pid) / MIB


@contextmanager
def peak_rss(pid: int) -> Iterator[list[float]]:
    """Samples the RSS of ``pid`` in a thread while the block runs; yields [highest]."""
    highest = [mib(pid)]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(SAMPLE_SECONDS):
            highest[0] = max(highest[0], mib(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield highest
    finally:
        done.set()
        sampler.join()


def graphql(client: httpx.Client, query: str, variables: dict[str, object]) -> dict[str, object]:
    response = client.post("/graphql", json={"query": query, "variables": variables})
    response.raise_for_status()
    body = response.json()
    if "errors" in body:
        raise RuntimeError(json.dumps(body["errors"]))
    data: dict[str, object] = body["data"]
    return data


def upload(client: httpx.Client, mime_type: str, content: bytes) -> None:
    operations = {
        "query": UPLOAD,
        "variables": {"input": {"productSku": PRODUCT_SKU, "file": None}},
    }
    response = client.post(
        "/graphql",
        data={
            "operations": json.dumps(operations),
            "map": json.dumps({"0": ["variables.input.file"]}),
        },
        files={"0": ("source", content, mime_type)},
        timeout=120.0,
    )
    response.raise_for_status()
    payload = response.json()["data"]["uploadImage"]
    if payload["userErrors"]:
        raise RuntimeError(json.dumps(payload["userErrors"]))


def rendition_urls(client: httpx.Client, fmt: str) -> list[str]:
    data = graphql(client, RENDITIONS, {"sku": PRODUCT_SKU, "f": fmt})
    product = data["product"]
    assert isinstance(product, dict)
    urls = []
    for image in product["images"]:
        for rendition in image["renditions"]:
            urls.extend(u for u in (rendition["url"], rendition["url2x"]) if u)
    return urls


def rendition_file(gateway: GatewayProcess, url: str) -> Path:
    return gateway.media_root / url.split("/media/", 1)[1]


def wait_for_files(gateway: GatewayProcess, urls: list[str]) -> None:
    """Until every URL's file exists (the warm-up after the uploads made them)."""
    deadline = time.monotonic() + WARM_TIMEOUT
    while not all(rendition_file(gateway, url).exists() for url in urls):
        if time.monotonic() > deadline:
            raise RuntimeError("the warm-up did not finish in time")
        time.sleep(0.2)


def fetch_all(base: str, urls: list[str], concurrency: int) -> None:
    with (
        httpx.Client(base_url=base, timeout=300.0) as client,
        ThreadPoolExecutor(concurrency) as pool,
    ):

        def get(url: str) -> None:
            response = client.get(url)
            if response.status_code != 200:
                raise RuntimeError(f"HTTP {response.status_code} for {url}")

        list(pool.map(get, urls))


def settle(pid: int, seconds: float) -> list[float]:
    samples = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.5)
        samples.append(mib(pid))
    return samples


def measure(
    folder: Path,
    *,
    side: int = 7000,
    images: int = 2,
    concurrency: int = 8,
    settle_seconds: float = 10.0,
    env: dict[str, str] | None = None,
) -> Figures:
    """One run in ``folder``: start a server, upload, burst, and read its RSS throughout."""
    sources = make_sources(folder, side, images)
    extra = dict(env or {})
    server_env = gateway_env(
        folder / "gateway", MAX_IMAGE_BYTES=str(max(len(c) for _, c in sources) + MIB)
    )
    server_env.update(extra)
    with running_gateway(folder / "gateway", "memory", env=server_env) as gateway:
        pid = gateway.pid
        headers = {"Authorization": f"Bearer {gateway.admin_token()}"}
        with httpx.Client(base_url=gateway.base, headers=headers, timeout=60.0) as client:
            time.sleep(1.0)
            figures = Figures(side=side, images=images, renditions=0, env=extra)
            figures.baseline = mib(pid)
            graphql(client, CREATE, {"i": {"sku": PRODUCT_SKU, "name": "Large images"}})
            for mime_type, content in sources:
                upload(client, mime_type, content)
            wait_for_files(gateway, rendition_urls(client, "ORIGINAL"))
            figures.after_uploads = mib(pid)
            urls = [u for fmt in FORMATS for u in rendition_urls(client, fmt)]
            missing = [u for u in dict.fromkeys(urls) if not rendition_file(gateway, u).exists()]
        figures.renditions = len(missing)
        started = time.monotonic()
        with peak_rss(pid) as highest:
            fetch_all(gateway.base, missing, concurrency)
        figures.seconds = time.monotonic() - started
        figures.settle_samples = settle(pid, settle_seconds)
        figures.peak = max(highest[0], *figures.settle_samples)
        figures.settled = min(figures.settle_samples)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--side", type=int, default=7000, help="source side in pixels")
    parser.add_argument("--images", type=int, default=2, help="sources, JPEG and PNG in turn")
    parser.add_argument("--concurrency", type=int, default=8, help="GETs at a time")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds after the burst")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    env = dict(item.split("=", 1) for item in args.env)
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        figures = measure(
            Path(tmp),
            side=args.side,
            images=args.images,
            concurrency=args.concurrency,
            settle_seconds=args.settle,
            env=env,
        )
    print("\n".join(figures.lines()))
    if args.json:
        args.json.write_text(json.dumps(asdict(figures), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
