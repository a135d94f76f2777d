"""``media-gateway serve`` as a subprocess on a free port of 127.0.0.1, for the live tests that
kill and restart it and for bench/soak.py: its environment (a SQLite file and a media root in
one folder), its log (stderr: the JSON log lines), its start banner (stdout: the GraphiQL URL
and the admin token), and a SIGKILL."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
TOKEN_LINE = re.compile(r"^Admin token: (mgw_\S+)$", re.MULTILINE)


def console_script() -> str:
    path = Path(sys.executable).parent / "media-gateway"
    if not path.exists():
        raise RuntimeError(f"the console script is not installed beside {sys.executable}")
    return str(path)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def gateway_env(folder: Path, **settings: str) -> dict[str, str]:
    """The environment of a gateway whose files all live in ``folder``; ``settings`` are more
    ``MEDIA_GATEWAY_*`` variables, named without the prefix (``FETCH_ALLOW_HOSTS=...``)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIA_GATEWAY_")}
    env.update(
        MEDIA_GATEWAY_DATABASE_URL=f"sqlite+aiosqlite:///{folder / 'db' / 'media.db'}",
        MEDIA_GATEWAY_MEDIA_ROOT=str(folder / "media"),
        MEDIA_GATEWAY_ADMIN_TOKEN_FILE=str(folder / "admin-token"),
    )
    env.update({f"MEDIA_GATEWAY_{name.upper()}": value for name, value in settings.items()})
    return env


@dataclass
class GatewayProcess:
    folder: Path
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    banner: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def media_root(self) -> Path:
        return self.folder / "media"

    @property
    def database(self) -> Path:
        return self.folder / "db" / "media.db"

    def output(self) -> str:
        """What the gateway wrote to stderr (its log)."""
        return self.log.read_text(errors="replace")

    def stdout(self) -> str:
        """What the gateway wrote to stdout (its start banner)."""
        return self.banner.read_text(errors="replace")

    def admin_token(self) -> str:
        found = TOKEN_LINE.findall(self.stdout())
        if not found:
            raise RuntimeError(f"no admin token in the banner:\n{self.stdout()}")
        token: str = found[-1]
        return token

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the gateway exited with {self.process.returncode}:\n{self.output()}"
                )
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"no healthy /healthz within {timeout} s:\n{self.output()}")
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL: no lifespan shutdown, no cleanup, as a crash or the OOM killer."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(STOP_TIMEOUT)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()


def start_gateway(
    folder: Path,
    name: str = "gateway",
    *,
    env: dict[str, str] | None = None,
    timeout: float = START_TIMEOUT,
    args: Sequence[str] = (),
    **settings: str,
) -> GatewayProcess:
    """Start ``media-gateway serve`` on a free port and wait (up to ``timeout`` seconds) until it
    is healthy; ``settings`` go to :func:`gateway_env` (``ADMIN_TOKEN="mgw_..."``,
    ``FETCH_ALLOW_HOSTS="127.0.0.1"``) unless a whole ``env`` is given; ``args`` are more
    options of ``serve`` (``"--workers", "2"``)."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = folder / f"{name}.log"
    banner = folder / f"{name}.out"
    with log.open("wb") as sink, banner.open("wb") as out:
        process = subprocess.Popen(
            [console_script(), "serve", "--host", "127.0.0.1", "--port", str(port), *args],
            env=env or gateway_env(folder, **settings),
            cwd=folder,
            stdout=out,
            stderr=sink,
        )
    gateway = GatewayProcess(folder, port, process, log, banner)
    try:
        gateway.wait_healthy(timeout)
    except BaseException:
        gateway.stop()
        raise
    return gateway


@contextmanager
def running_gateway(
    folder: Path,
    name: str = "gateway",
    *,
    env: dict[str, str] | None = None,
    timeout: float = START_TIMEOUT,
    args: Sequence[str] = (),
    **settings: str,
) -> Iterator[GatewayProcess]:
    """:func:`start_gateway`, always stopped on the way out."""
    gateway = start_gateway(folder, name, env=env, timeout=timeout, args=args, **settings)
    try:
        yield gateway
    finally:
        gateway.stop()


__all__ = [
    "TOKEN_LINE",
    "GatewayProcess",
    "console_script",
    "free_port",
    "gateway_env",
    "running_gateway",
    "start_gateway",
]
