"""An ASGI app served by uvicorn in a thread of this process, on a free port of a loopback
address: the real servers that tests (and bench/soak.py) talk to over TCP."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from starlette.types import ASGIApp

START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


@contextmanager
def serving(
    app: ASGIApp, host: str = "127.0.0.1", *, timeout: float = START_TIMEOUT, **config: Any
) -> Iterator[int]:
    """Serve ``app`` on ``host`` until the block ends; yields the port the system chose.
    ``config`` holds further ``uvicorn.Config`` options (``lifespan="on"``, ``loop=...``)."""
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=0, log_level="warning", **config))
    thread = threading.Thread(target=server.run, name=f"uvicorn {host}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server on {host} did not start")
            time.sleep(0.01)
        yield int(server.servers[0].sockets[0].getsockname()[1])
    finally:
        server.should_exit = True
        thread.join(timeout=STOP_TIMEOUT)
