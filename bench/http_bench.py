"""The gateway against an ideal in-memory GraphQL server, A/B/A/B in one run.

Seeds a fresh gateway (``media-gateway serve``, one uvicorn process on 127.0.0.1, SQLite)
through its API with 20 products of 8 JPEGs each and two MP4s on the first, writes a JSON
snapshot of that data, and starts bench/reference_server.py on it (bare graphql-core and
Starlette over the same SDL, the same data as plain dicts). Before measuring a document it
checks that both answer the same parsed ``data``, and records whether the bytes match too.

Scenarios (``wrk`` with bench/wrk_post.lua for the POST bodies; each server gets an
unmeasured warm-up, then the runs alternate gateway, reference, gateway, reference...):

* ``storefront-cold`` / ``storefront-warm``: ``products(first: 20)`` with main image, images
  and two renditions each (about 82 KiB). Cold: every request carries an unused variable
  that differs (a counter), so no cache can answer; warm: identical requests.
* ``product-cold`` / ``product-warm``: one product with all images, all renditions, videos.
* ``mixed``: the warm storefront while a side client sends one ``updateImage`` (an alt
  change) per second to the same server.
* ``upload-100`` / ``upload-500``: one 100 MiB or 500 MiB MP4 by curl, ``uploadVideo``
  multipart to the gateway against ``await request.form()`` plus a copy to disk on the
  reference; MiB/s and each server's peak RSS growth (VmHWM after the upload, reset through
  /proc/<pid>/clear_refs, minus VmRSS before it).

Figures are medians over the runs; ratio = gateway / reference (req/s or MiB/s). The table is
printed and written as JSON to bench/results/<UTC timestamp>.json. wrk, the driver and both
servers share the machine's cores, so absolute figures depend on it; the ratio is the point.

Settings (environment): BENCH_SECONDS (10), BENCH_RUNS (3), BENCH_CONNECTIONS (32),
BENCH_SCENARIOS (comma list, default all). ``--profile FILE`` also records the gateway with
py-spy during one extra cold storefront run and prints its top functions.

Usage: .venv/bin/python bench/http_bench.py [--profile FILE]   (or ``make bench``)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from bench import http_store as store  # noqa: E402
from support.server_process import GatewayProcess, free_port, gateway_env, start_gateway  # noqa: E402

HERE = ROOT / "bench"
LUA = HERE / "wrk_post.lua"
RESULTS = HERE / "results"
NONCE = "@@NONCE@@"
MIB = 1024 * 1024
READ_SCENARIOS = ("storefront-cold", "storefront-warm", "product-cold", "product-warm", "mixed")
UPLOAD_SIZES = {"upload-100": 100, "upload-500": 500}
SCENARIOS = (*READ_SCENARIOS, *UPLOAD_SIZES)
GATEWAY_SETTINGS = {
    "PUBLIC_URL": store.PUBLIC_URL,
    # Renditions are not fetched here; warming them would only load the CPU while seeding.
    "WARM_RENDITIONS": "false",
    "MAX_VIDEO_BYTES": str(600 * MIB),
}


@dataclass(frozen=True)
class Config:
    seconds: float
    runs: int
    connections: int
    scenarios: tuple[str, ...]

    @classmethod
    def from_env(cls) -> Config:
        names = os.environ.get("BENCH_SCENARIOS", "")
        chosen = tuple(n.strip() for n in names.split(",") if n.strip()) or SCENARIOS
        unknown = set(chosen) - set(SCENARIOS)
        if unknown:
            raise SystemExit(f"unknown BENCH_SCENARIOS {sorted(unknown)}; known: {SCENARIOS}")
        return cls(
            seconds=float(os.environ.get("BENCH_SECONDS", "10")),
            runs=int(os.environ.get("BENCH_RUNS", "3")),
            connections=int(os.environ.get("BENCH_CONNECTIONS", "32")),
            scenarios=chosen,
        )


@dataclass
class Server:
    name: str
    base: str
    pid: int
    graphql: store.GraphQLClient
    upload: Callable[[Path], float]


@dataclass
class Run:
    """One measured run: req/s (or MiB/s), latency percentiles, and the failures seen."""

    rate: float
    p50_ms: float
    p99_ms: float
    failures: int = 0
    rss_growth_mib: float | None = None
    writes: int | None = None


@dataclass
class Side:
    runs: list[Run] = field(default_factory=list)

    def median(self, attribute: str) -> float | None:
        values = [getattr(run, attribute) for run in self.runs]
        present = [v for v in values if v is not None]
        return statistics.median(present) if present else None


@dataclass
class Result:
    scenario: str
    unit: str
    sides: dict[str, Side]
    same_data: bool | None = None
    same_bytes: bool | None = None
    answer_bytes: int | None = None

    @property
    def ratio(self) -> float | None:
        gateway, reference = (
            self.sides["gateway"].median("rate"),
            self.sides["reference"].median("rate"),
        )
        return gateway / reference if gateway and reference else None


# -- wrk ---------------------------------------------------------------------------------


def ensure_wrk() -> str:
    """wrk on PATH; Debian's package is installed when missing and we are root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit("wrk is missing: apt-get install wrk (as root), then run again")
    subprocess.run(["apt-get", "install", "-y", "wrk"], check=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("apt-get installed no wrk")
    return found


def run_wrk(url: str, body: Path, cold: bool, seconds: float, connections: int) -> Run:
    # BENCH_RUN: wrk's counters restart with each run, so without a run id of its own a cold
    # run would repeat the requests of the one before it (and the response cache answer them).
    run_id = f"{time.time_ns():x}"
    env = {
        **os.environ,
        "BENCH_BODY": str(body),
        "BENCH_NONCE": NONCE if cold else "",
        "BENCH_RUN": run_id,
    }
    threads = max(1, min(connections, os.cpu_count() or 1))
    command = [
        ensure_wrk(),
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "60s",
        "-s",
        str(LUA),
        url,
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if line is None:
        raise RuntimeError(f"no result from wrk:\n{done.stdout}\n{done.stderr}")
    figures = json.loads(line.removeprefix("BENCH_RESULT "))
    failures = sum(figures[k] for k in ("non_2xx", "connect", "read", "write", "timeout"))
    return Run(
        rate=figures["requests"] / (figures["duration_us"] / 1e6),
        p50_ms=figures["p50_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        failures=failures,
    )


# -- checks ------------------------------------------------------------------------------


def compare(
    clients: list[store.GraphQLClient], query: str, variables: dict[str, Any]
) -> tuple[bool, bool, int]:
    """(same parsed data, same bytes, size of the first answer) of the servers' answers to
    one request."""
    answers = [client.raw(query, variables) for client in clients]
    data = [json.loads(answer)["data"] for answer in answers]
    same_data = all(d == data[0] for d in data)
    return same_data, all(a == answers[0] for a in answers), len(answers[0])


# -- memory ------------------------------------------------------------------------------


def status_kib(pid: int, field_name: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field_name} for pid {pid}")


@contextmanager
def peak_rss_growth(pid: int) -> Iterator[list[float]]:
    """Yields a list that afterwards holds the peak RSS growth in MiB over the block: the
    peak (VmHWM) is reset to the current RSS first by writing 5 to /proc/<pid>/clear_refs."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    before = status_kib(pid, "VmRSS")
    growth: list[float] = []
    yield growth
    growth.append((status_kib(pid, "VmHWM") - before) / 1024)


# -- servers -----------------------------------------------------------------------------


def curl(*args: str) -> tuple[float, bytes]:
    """Runs curl; returns its total time in seconds and the response body."""
    with tempfile.NamedTemporaryFile() as out:
        done = subprocess.run(
            ["curl", "-sS", "--fail-with-body", "-o", out.name, "-w", "%{time_total}", *args],
            capture_output=True,
            text=True,
        )
        body = Path(out.name).read_bytes()
    if done.returncode != 0:
        raise RuntimeError(f"curl failed ({done.returncode}): {done.stderr} {body[:300]!r}")
    return float(done.stdout), body


def gateway_upload(
    gateway: GatewayProcess, client: store.GraphQLClient, sku: str
) -> Callable[[Path], float]:
    token = gateway.admin_token()

    def upload(path: Path) -> float:
        operations = {
            "query": store.UPLOAD_VIDEO,
            "variables": {"input": {"productSku": sku, "file": None}},
        }
        seconds, body = curl(
            "-H",
            f"Authorization: Bearer {token}",
            "-F",
            f"operations={json.dumps(operations)}",
            "-F",
            'map={"0": ["variables.input.file"]}',
            "-F",
            f"0=@{path};type=video/mp4",
            f"{gateway.base}/graphql",
        )
        payload = json.loads(body)["data"]["uploadVideo"]
        video = payload["video"]
        if payload["userErrors"] or video["fileSize"] != path.stat().st_size:
            raise RuntimeError(f"the gateway refused the upload: {payload}")
        client.data(store.DELETE_VIDEOS, {"ids": [video["id"]]})  # keeps the disk free
        return seconds

    return upload


def reference_upload(base: str) -> Callable[[Path], float]:
    def upload(path: Path) -> float:
        seconds, body = curl("-F", f"file=@{path};type=video/mp4", f"{base}/upload")
        if json.loads(body)["size"] != path.stat().st_size:
            raise RuntimeError(f"the reference stored another size: {body!r}")
        return seconds

    return upload


@contextmanager
def running_reference(snapshot: Path, folder: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    uploads = folder / "reference-uploads"
    uploads.mkdir(parents=True, exist_ok=True)
    log = (folder / "reference.log").open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            str(HERE / "reference_server.py"),
            "--snapshot",
            str(snapshot),
            "--port",
            str(port),
            "--upload-dir",
            str(uploads),
        ],
        stdout=log,
        stderr=log,
        env={**os.environ, "TMPDIR": str(uploads)},
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"the reference exited: {(folder / 'reference.log').read_text()}"
                )
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.05)
        yield base, process.pid
    finally:
        process.terminate()
        process.wait(10)
        log.close()


# -- scenarios ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """A read scenario: its document, its variables (``NONCE`` marks the cold counter), and
    whether a side client writes meanwhile."""

    query: str
    variables: dict[str, Any]
    cold: bool
    writes: bool = False


def readings(product_sku: str) -> dict[str, Reading]:
    page = {"sku": product_sku}
    return {
        "storefront-cold": Reading(store.STOREFRONT, {"nonce": NONCE}, cold=True),
        "storefront-warm": Reading(store.STOREFRONT, {}, cold=False),
        "product-cold": Reading(store.PRODUCT_PAGE, {**page, "nonce": NONCE}, cold=True),
        "product-warm": Reading(store.PRODUCT_PAGE, page, cold=False),
        "mixed": Reading(store.STOREFRONT, {}, cold=False, writes=True),
    }


class Writer:
    """Sends one updateImage (a new alt) per second to one server until stopped."""

    def __init__(self, server: Server, image_id: str) -> None:
        self.server = server
        self.image_id = image_id
        self.count = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(1.0):
            alt = f"{self.server.name} alt {self.count}"
            try:
                data = self.server.graphql.data(store.UPDATE_ALT, {"id": self.image_id, "alt": alt})
            except (httpx.HTTPError, RuntimeError) as exc:
                self.failures.append(repr(exc))
                continue
            payload = data["updateImage"]
            if payload["userErrors"] or payload["image"]["alt"] != alt:
                self.failures.append(json.dumps(payload))
            self.count += 1

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def measure_reads(
    name: str, reading: Reading, servers: list[Server], config: Config, folder: Path, image_id: str
) -> Result:
    checked = {**reading.variables, "nonce": "check-1"} if reading.cold else reading.variables
    same_data, same_bytes, size = compare([s.graphql for s in servers], reading.query, checked)
    if not same_data:
        raise RuntimeError(f"{name}: the gateway and the reference answer different data")
    body = folder / f"{name}.json"
    body.write_text(json.dumps({"query": reading.query, "variables": reading.variables}))
    sides = {server.name: Side() for server in servers}
    warmup = min(2.0, config.seconds)
    for server in servers:
        run_wrk(f"{server.base}/graphql", body, reading.cold, warmup, config.connections)
    for _ in range(config.runs):
        for server in servers:
            with ExitStack() as stack:
                writer = stack.enter_context(Writer(server, image_id)) if reading.writes else None
                run = run_wrk(
                    f"{server.base}/graphql", body, reading.cold, config.seconds, config.connections
                )
            if writer is not None:
                run.writes = writer.count
                run.failures += len(writer.failures)
            sides[server.name].runs.append(run)
            print(
                f"  {name:<16} {server.name:<9} {run.rate:8.1f} req/s  p50 {run.p50_ms:7.1f} ms"
                f"  p99 {run.p99_ms:7.1f} ms  failures {run.failures}"
                + ("" if run.writes is None else f"  writes {run.writes}"),
                flush=True,
            )
    return Result(name, "req/s", sides, same_data, same_bytes, size)


def measure_upload(
    name: str, mib: int, servers: list[Server], config: Config, folder: Path
) -> Result:
    path = folder / f"{name}.mp4"
    store.write_mp4(path, mib * MIB)
    sides = {server.name: Side() for server in servers}
    try:
        for _ in range(config.runs):
            for server in servers:
                with peak_rss_growth(server.pid) as growth:
                    seconds = server.upload(path)
                run = Run(
                    rate=mib / seconds,
                    p50_ms=seconds * 1000,
                    p99_ms=seconds * 1000,
                    rss_growth_mib=growth[0],
                )
                sides[server.name].runs.append(run)
                print(
                    f"  {name:<16} {server.name:<9} {run.rate:8.1f} MiB/s  {seconds:6.2f} s"
                    f"  peak RSS +{growth[0]:.1f} MiB",
                    flush=True,
                )
    finally:
        path.unlink()
    return Result(name, "MiB/s", sides)


# -- report ------------------------------------------------------------------------------


def _figure(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _kib(size: int | None) -> str:
    return "-" if size is None else f"{size / 1024:.1f}"


def table(results: list[Result], config: Config) -> list[str]:
    header = (
        f"{'scenario':<17}{'unit':>6} |{'gateway':>9}{'p50 ms':>9}{'p99 ms':>9}{'RSS+MiB':>9} |"
        f"{'reference':>10}{'p50 ms':>9}{'p99 ms':>9}{'RSS+MiB':>9} |{'ratio':>7}"
        f"  {'same data/bytes':<16}{'KiB':>6}"
    )
    lines = [header, "-" * len(header)]
    for result in results:
        cells = [f"{result.scenario:<17}{result.unit:>6} |"]
        for name, width in (("gateway", 9), ("reference", 10)):
            side = result.sides[name]
            cells.append(
                f"{_figure(side.median('rate'), f'{width}.1f')}"
                f"{_figure(side.median('p50_ms'), '9.1f')}{_figure(side.median('p99_ms'), '9.1f')}"
                f"{_figure(side.median('rss_growth_mib'), '9.1f'):>9} |"
            )
        same = "-" if result.same_data is None else f"{result.same_data}/{result.same_bytes}"
        cells.append(
            f"{_figure(result.ratio, '7.2f'):>7}  {same:<16}{_kib(result.answer_bytes):>6}"
        )
        lines.append("".join(cells))
    lines.append(
        f"medians of {config.runs} runs of {config.seconds:g} s, {config.connections} connections "
        f"(uploads: one at a time; p50 = the median upload's time); ratio = gateway / reference"
    )
    failures = Counter(
        {r.scenario: sum(run.failures for s in r.sides.values() for run in s.runs) for r in results}
    )
    if any(failures.values()):
        lines.append(f"FAILED REQUESTS: {dict(+failures)}")
    return lines


def write_json(
    results: list[Result], config: Config, started: datetime, load: tuple[float, ...]
) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    document = {
        "started": started.isoformat(),
        "config": asdict(config),
        "cpus": os.cpu_count(),
        "load_average_before": load,
        "load_average_after": os.getloadavg(),
        "results": [
            {
                "scenario": r.scenario,
                "unit": r.unit,
                "ratio": r.ratio,
                "same_data": r.same_data,
                "same_bytes": r.same_bytes,
                "answer_bytes": r.answer_bytes,
                **{
                    name: {
                        "median": {
                            k: side.median(k)
                            for k in ("rate", "p50_ms", "p99_ms", "rss_growth_mib")
                        },
                        "runs": [asdict(run) for run in side.runs],
                    }
                    for name, side in r.sides.items()
                },
            }
            for r in results
        ],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    return path


# -- profile -----------------------------------------------------------------------------


def profile(
    gateway: Server, reading: Reading, config: Config, folder: Path, out: Path
) -> list[str]:
    """py-spy's raw stacks of the gateway during one cold storefront run, sampling only the
    thread holding the GIL (the one core a single process has for Python), and a summary."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    body = folder / "profile.json"
    body.write_text(json.dumps({"query": reading.query, "variables": reading.variables}))
    seconds = max(1, round(config.seconds))
    command = [spy, "record", "--pid", str(gateway.pid), "--format", "raw", "--gil"]
    command += ["--rate", "200", "--duration", str(seconds), "--output", str(out)]
    recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    run_wrk(f"{gateway.base}/graphql", body, reading.cold, seconds, config.connections)
    _, errors = recorder.communicate(timeout=seconds + 60)
    if recorder.returncode != 0:
        raise RuntimeError(f"py-spy failed: {errors.decode(errors='replace')}")
    return summarise(out)


def summarise(raw: Path, top: int = 25, everywhere: float = 0.9) -> list[str]:
    """Functions by cumulative share of the samples (the stacks they appear in), leaving out
    those in more than ``everywhere`` of them (the event loop, the ASGI wrappers), then by
    self share (the stacks they end)."""
    total = 0
    cumulative: Counter[str] = Counter()
    own: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        frames = [_function(frame) for frame in stack.split(";")]
        cumulative.update(dict.fromkeys(frames, count))
        own[frames[-1]] += count
    lines = [f"{total} samples; cumulative share (functions on fewer than {everywhere:.0%}):"]
    shown = [(f, n) for f, n in cumulative.most_common() if n <= everywhere * total][:top]
    lines += [f"{100 * n / total:6.1f} %  {function}" for function, n in shown]
    lines.append("self share:")
    lines += [f"{100 * n / total:6.1f} %  {function}" for function, n in own.most_common(top)]
    packages: Counter[str] = Counter()
    for function, n in own.items():
        packages[function.rpartition(" (")[2].split("/")[0].rstrip(")")] += n
    lines.append(
        "self share by package: "
        + ", ".join(f"{name} {100 * n / total:.1f} %" for name, n in packages.most_common(12))
    )
    return lines


def _function(frame: str) -> str:
    """'name (path:line)' without the line, and the path from site-packages or the repo."""
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rpartition(":")[0] or where.rstrip(")")
    for marker in ("site-packages/", f"{ROOT}/"):
        path = path.partition(marker)[2] or path
    return f"{name} ({path})"


# -- main --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--profile", type=Path, help="py-spy raw stacks of a cold storefront run")
    args = parser.parse_args(argv)
    config = Config.from_env()
    started = datetime.now(UTC)
    load = os.getloadavg()
    ensure_wrk()
    results: list[Result] = []
    with ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-http-")))
        gateway = start_gateway(
            folder / "gateway", "gateway", env=gateway_env(folder / "gateway", **GATEWAY_SETTINGS)
        )
        stack.callback(gateway.stop)
        client = store.GraphQLClient(gateway.base, gateway.admin_token())
        stack.callback(client.close)
        print("seeding the gateway through its API ...", flush=True)
        sku = store.seed(client)
        snapshot = folder / "snapshot.json"
        store.snapshot(client, snapshot)
        base, pid = stack.enter_context(running_reference(snapshot, folder))
        reference = store.GraphQLClient(base)
        stack.callback(reference.close)
        servers = [
            Server(
                "gateway", gateway.base, gateway.pid, client, gateway_upload(gateway, client, sku)
            ),
            Server("reference", base, pid, reference, reference_upload(base)),
        ]
        # The mixed scenario's writes go to an image the product page does not show.
        image_id = json.loads(snapshot.read_text())["products"][1]["images"][0]["id"]
        scenarios = readings(sku)
        for name in config.scenarios:
            if name in scenarios:
                results.append(
                    measure_reads(name, scenarios[name], servers, config, folder, image_id)
                )
            else:
                results.append(measure_upload(name, UPLOAD_SIZES[name], servers, config, folder))
        profile_lines = (
            profile(servers[0], scenarios["storefront-cold"], config, folder, args.profile)
            if args.profile
            else []
        )
    print()
    print("\n".join(table(results, config)))
    print(f"results: {write_json(results, config, started, load).relative_to(ROOT)}")
    if profile_lines:
        print(f"\npy-spy, gateway, storefront-cold ({args.profile}):")
        print("\n".join(profile_lines))
    failed = any(run.failures for r in results for s in r.sides.values() for run in s.runs)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
