"""A real HTTP server on 127.0.0.1 for URL downloads in tests: serves registered bodies,
counts requests per path, and can redirect, fail, stall or delay."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from support.threaded_server import serving


@dataclass
class ImageServer:
    bodies: dict[str, bytes] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    hits: Counter[str] = field(default_factory=Counter)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def serve(self, path: str, body: bytes) -> str:
        self.bodies[path] = body
        return self.url(path)

    async def handle(self, request: Request) -> Response:
        path = request.url.path
        self.hits[path] += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if path in self.redirects:
            return RedirectResponse(self.redirects[path], status_code=302)
        if path in self.bodies:
            return Response(self.bodies[path], media_type="application/octet-stream")
        return PlainTextResponse("not here", status_code=404)

    @property
    def total_hits(self) -> int:
        return sum(self.hits.values())


def running_server() -> Iterator[ImageServer]:
    """Start an ImageServer in a thread for the duration of the generator."""
    state = ImageServer()
    with serving(Starlette(routes=[Route("/{path:path}", state.handle)])) as port:
        state.port = port
        yield state
