"""An httpx transport whose connections go only to addresses pinned for the current task."""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx


@dataclass(frozen=True)
class _Pin:
    """The checked addresses that a connection to ``host``:``port`` may use."""

    host: str
    port: int
    addresses: tuple[str, ...]


_PIN: ContextVar[_Pin | None] = ContextVar("media_gateway_fetch_pin", default=None)


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections to the addresses pinned in the current context, nowhere else.

    httpcore asks for ``host``:``port`` of the URL; the connection goes to the first pinned
    address that accepts it. Without a pin for exactly that host and port it refuses.
    """

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore.AsyncNetworkBackend API)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        pin = _PIN.get()
        if pin is None or pin.host != host.lower() or pin.port != port:
            raise httpcore.ConnectError(f"No checked address for {host}:{port}.")
        failure: Exception | None = None
        for address in pin.addresses:
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
        if failure is None:
            raise httpcore.ConnectError(f"No checked address for {host}:{port}.")
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore.AsyncNetworkBackend API)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("Unix sockets are not used for fetches.")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport over a connection pool whose connections use :class:`_PinnedBackend`.

    httpx takes no network backend as an argument, so the pool that its constructor builds
    is replaced by an equivalent one built with the pinned backend (no proxy, HTTP/1.1).
    """

    def __init__(self, *, limits: httpx.Limits, ssl_context: ssl.SSLContext) -> None:
        super().__init__(verify=ssl_context, limits=limits, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=False,
            network_backend=_PinnedBackend(),
        )


@contextmanager
def pinned(host: str, port: int, addresses: tuple[str, ...]) -> Iterator[None]:
    """Connections to ``host``:``port`` opened inside the block go to one of ``addresses``."""
    token = _PIN.set(_Pin(host, port, addresses))
    try:
        yield
    finally:
        _PIN.reset(token)
