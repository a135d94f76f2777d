"""Health endpoints: ``/healthz`` (the process is up and its database answers) and ``/readyz``
(the database answers and the blob store takes a write)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import anyio
import structlog
from starlette.requests import Request
from starlette.responses import JSONResponse

from storage.backend import Backend

READY_TIMEOUT = 5.0
"""Seconds each readiness check may take before it counts as failed."""

Endpoint = Callable[[Request], Awaitable[JSONResponse]]

log = structlog.stdlib.get_logger("gateway")


def liveness(backend: Backend) -> Endpoint:
    """``/healthz``: 200 while the database answers, else 503 with the error's type."""

    async def endpoint(request: Request) -> JSONResponse:
        try:
            await backend.db.ping()
        except Exception as exc:  # any database fault means "not healthy"
            return JSONResponse({"status": "unavailable", "error": type(exc).__name__}, 503)
        return JSONResponse({"status": "ok"})

    return endpoint


def readiness(backend: Backend) -> Endpoint:
    """``/readyz``: 200 when the database answers and the blob store takes a write, else 503
    naming what failed (the error's type only; its detail goes to the log)."""
    checks: dict[str, Callable[[], Awaitable[None]]] = {
        "database": lambda: backend.db.ping(),
        "blobs": lambda: backend.blobs.check(),
    }

    async def endpoint(request: Request) -> JSONResponse:
        failed: dict[str, str] = {}
        for name, check in checks.items():
            try:
                with anyio.fail_after(READY_TIMEOUT):
                    await check()
            except Exception as exc:  # any fault means "not ready"
                log.warning("not ready", check=name, exc_info=exc)
                failed[name] = type(exc).__name__
        if failed:
            return JSONResponse({"status": "unavailable", "failed": failed}, status_code=503)
        return JSONResponse({"status": "ready"})

    return endpoint
