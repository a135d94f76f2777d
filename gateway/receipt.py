"""Deadlines for receiving a request, in uvicorn's HTTP protocol: no ASGI middleware runs before
a request's headers are parsed, and uvicorn has no timeout for receiving a request (its
keep-alive timeout restarts on every byte). ``media-gateway serve`` runs
:class:`DeadlineHttpToolsProtocol`.

- The headers must be complete within ``request_header_timeout`` seconds of the request's
  first byte (for a connection's first request: of the connection's opening, so a silent
  connection is closed too).
- The body must be complete within ``body_timeout`` seconds plus its declared length at
  ``min_body_rate`` bytes per second. A chunked body has no declared length: its deadline is the
  base plus what has arrived so far at that rate, so a sender at least that fast never runs out.

Past a deadline the connection is closed, after a 408 when no response to the request has
begun. Time while the gateway itself does not read (the app has not taken the buffered body
yet, or a pipelined request waits for the one before it) is not held against the client.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from gateway.settings import Settings

PAUSED_RECHECK = 0.5
"""Seconds between looks at a deadline that passed while the gateway did not read."""


class Phase(enum.Enum):
    IDLE = "idle"
    HEADERS = "headers"
    BODY = "body"


@dataclass(frozen=True)
class ReceiptLimits:
    header_timeout: float
    body_timeout: float
    min_body_rate: float

    def body_seconds(self, size: int) -> float:
        return self.body_timeout + size / self.min_body_rate


@cache
def configured_limits() -> ReceiptLimits:
    """The limits of this process's settings (read once: a protocol is made per connection)."""
    settings = Settings()
    return ReceiptLimits(
        settings.request_header_timeout, settings.body_timeout, settings.min_body_rate
    )


class Receipt:
    """The clock of the request a connection is receiving: which part is due, and by when."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        limits: ReceiptLimits,
        paused: Callable[[], bool],
        expired: Callable[[Phase], None],
    ) -> None:
        self.loop = loop
        self.limits = limits
        self.paused = paused
        self.expired = expired
        self.phase = Phase.IDLE
        self.started = 0.0
        self.declared: int | None = None
        self.received = 0
        self.timer: asyncio.TimerHandle | None = None

    def expect_headers(self) -> None:
        """A request has begun (a running header clock keeps running)."""
        if self.phase is not Phase.HEADERS:
            self._start(Phase.HEADERS)

    def expect_body(self, declared: int | None) -> None:
        self.declared = declared
        self.received = 0
        self._start(Phase.BODY)

    def add(self, size: int) -> None:
        self.received += size

    def done(self) -> None:
        self.phase = Phase.IDLE
        self._cancel()

    def deadline(self) -> float:
        if self.phase is Phase.HEADERS:
            return self.started + self.limits.header_timeout
        size = self.declared if self.declared is not None else self.received
        return self.started + self.limits.body_seconds(size)

    def _start(self, phase: Phase) -> None:
        self._cancel()
        self.phase = phase
        self.started = self.loop.time()
        self.timer = self.loop.call_at(self.deadline(), self._check)

    def _cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _check(self) -> None:
        self.timer = None
        if self.phase is Phase.IDLE:
            return
        if self.paused():
            self.started += PAUSED_RECHECK
            self.timer = self.loop.call_later(PAUSED_RECHECK, self._check)
            return
        remaining = self.deadline() - self.loop.time()
        if remaining > 0:  # a chunked body that arrived in time so far
            self.timer = self.loop.call_later(remaining, self._check)
            return
        phase, self.phase = self.phase, Phase.IDLE
        self.expired(phase)


class DeadlineHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the deadlines of :mod:`gateway.receipt`."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.receipt = Receipt(
            self.loop, configured_limits(), lambda: self.flow.read_paused, self._expired
        )

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # uvicorn narrows it to asyncio.Transport
        super().connection_made(transport)
        self.receipt.expect_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self.receipt.done()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.receipt.expect_headers()

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self.receipt.expect_body(_declared_length(self.headers))

    def on_body(self, body: bytes) -> None:
        super().on_body(body)
        self.receipt.add(len(body))

    def on_message_complete(self) -> None:
        self.receipt.done()
        super().on_message_complete()

    def _expired(self, phase: Phase) -> None:
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if phase is Phase.HEADERS:
            # The request has no cycle yet: a 408 may follow a completed response only.
            answerable = cycle is None or cycle.response_complete
        else:
            answerable = not cycle.response_started
        if cycle is not None and not cycle.response_complete:
            # The app hears a disconnect, and what it still sends goes nowhere.
            cycle.disconnected = True
            cycle.message_event.set()
        if answerable:
            self.transport.write(
                _timeout_response(phase, self.receipt.limits, self.server_state.default_headers)
            )
        self.transport.close()


def _declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The Content-Length the parser accepted (None: chunked); httptools refuses a bad one."""
    for name, value in headers:
        if name == b"content-length":
            return int(value)
    return None


def _timeout_response(
    phase: Phase, limits: ReceiptLimits, default_headers: list[tuple[bytes, bytes]]
) -> bytes:
    if phase is Phase.HEADERS:
        text = f"The request's headers did not arrive within {limits.header_timeout:g} s."
    else:
        text = (
            f"The request body did not arrive within {limits.body_timeout:g} s plus its "
            f"size at {limits.min_body_rate:g} bytes/s."
        )
    body = text.encode("ascii")
    defaults = [name + b": " + value + b"\r\n" for name, value in default_headers]
    return b"".join(
        [
            STATUS_LINE[408],
            *defaults,
            b"content-type: text/plain; charset=utf-8\r\n",
            b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
            b"connection: close\r\n",
            b"\r\n",
            body,
        ]
    )


__all__ = ["DeadlineHttpToolsProtocol", "Receipt", "ReceiptLimits", "configured_limits"]
