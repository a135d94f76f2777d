"""Fetch files by URL for syncs and URL uploads, safely enough to point at any URL.

Anyone with a write token chooses the URLs, so every fetch keeps to these rules:

- only ``http`` and ``https``, no user name or password in the URL, a valid port;
- the host is resolved once and every address it resolves to is checked by
  :func:`address_allowed`: loopback, private, link-local (cloud metadata at
  169.254.169.254 included), multicast, reserved and other special ranges, IPv4 and IPv6,
  are refused unless the host or the address is allowed by the :class:`FetchPolicy`;
  when no address is left the URL is refused (``URL_NOT_ALLOWED``) and no connection is made;
- the connection goes to one of the checked addresses only (see :class:`Fetcher` for how
  the address is pinned without a second DNS lookup);
- redirects are followed by hand, each hop checked the same way, at most
  ``max_redirects`` of them;
- the body streams in chunks, a ``Content-Length`` over the limit is refused before
  reading, and reading stops as soon as more than ``limit`` bytes arrived;
- one total timeout per URL covers resolution, connection, every redirect and the whole
  body, also while the caller consumes it.

Every failure is a :class:`~storage.errors.FileRejected` with ``URL_NOT_ALLOWED``,
``DOWNLOAD_FAILED`` or ``FILE_TOO_LARGE`` and a message fit for a user error.
"""

from __future__ import annotations

import http.cookiejar
import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from ipaddress import IPv6Address, ip_address
from types import TracebackType
from typing import Protocol

import anyio
import httpx

from storage.enums import ErrorCode
from storage.errors import FileRejected, format_size, too_large
from storage.fetch.policy import FetchPolicy, IPAddress, address_allowed, checked_url
from storage.fetch.transport import PinnedTransport, pinned

USER_AGENT = "media-gateway/0.1"


class Resolver(Protocol):
    """Resolves a host name to IP address strings (IPv4 or IPv6), in preference order."""

    async def __call__(self, host: str, port: int) -> list[str]: ...


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses of ``host`` from one ``getaddrinfo`` call (the event loop's, in a thread)."""
    answers = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses: list[str] = []
    for _family, _type, _proto, _canonname, sockaddr in answers:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


class _Body:
    """The body of a response as chunks, stopping once more than ``limit`` bytes arrived."""

    def __init__(self, response: httpx.Response, limit: int, host: str) -> None:
        self._chunks = response.aiter_raw()
        self._limit = limit
        self._host = host
        self._received = 0

    def __aiter__(self) -> _Body:
        return self

    async def __anext__(self) -> bytes:
        try:
            chunk = await self._chunks.__anext__()
        except httpx.HTTPError as error:
            raise _download_failed(self._host, error) from None
        self._received += len(chunk)
        if self._received > self._limit:
            raise too_large(self._limit)
        return chunk

    async def aclose(self) -> None:
        close = getattr(self._chunks, "aclose", None)
        if close is not None:
            await close()


def _download_failed(host: str, error: Exception) -> FileRejected:
    reason = str(error) or type(error).__name__
    return FileRejected(
        ErrorCode.DOWNLOAD_FAILED, f"The download from {host} failed: {reason.rstrip('.')}."
    )


class Fetcher:
    """Downloads by URL under a :class:`FetchPolicy`; one shared HTTP client and pool.

    How a connection is pinned to a checked address: the request keeps its real URL, so
    the ``Host`` header, TLS SNI and certificate verification all use the host name, and
    the connection pool keys connections by host name, scheme and port. Before each
    request the fetcher resolves the host once through its :class:`Resolver`, keeps the
    allowed addresses, and stores them in a context variable. The pool's network backend
    (:mod:`storage.fetch.transport`) never resolves anything: httpcore opens a connection in the
    task that sends the request, so the backend reads that context variable and connects
    to one of those addresses, and refuses when it holds none for the requested host and
    port. A pooled connection is only reused for the same host, scheme and port, and it
    was opened to an address that was checked when it was opened.

    Responses are never decoded (``Accept-Encoding: identity``; a compressed body is
    refused), no cookies are kept, and no proxy or other setting is taken from the
    environment.
    """

    def __init__(
        self,
        policy: FetchPolicy,
        *,
        resolver: Resolver | None = None,
        max_connections: int = 8,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """``ssl_context`` verifies https servers; the default trusts httpx's CA bundle."""
        self.policy = policy
        self._resolver: Resolver = resolver if resolver is not None else system_resolver
        limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        context = (
            ssl_context if ssl_context is not None else httpx.create_ssl_context(trust_env=False)
        )
        no_cookies = http.cookiejar.CookieJar(
            policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=())
        )
        self._client = httpx.AsyncClient(
            transport=PinnedTransport(limits=limits, ssl_context=context),
            trust_env=False,
            follow_redirects=False,
            timeout=httpx.Timeout(policy.timeout),
            cookies=no_cookies,
            headers={
                "User-Agent": USER_AGENT,
                "Accept": "image/*, video/*;q=0.9, */*;q=0.5",
                "Accept-Encoding": "identity",
            },
        )

    async def aclose(self) -> None:
        """Close the pooled connections; the fetcher cannot be used afterwards."""
        await self._client.aclose()

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    @asynccontextmanager
    async def open(self, url: str, *, limit: int) -> AsyncIterator[AsyncIterator[bytes]]:
        """Fetch ``url`` and yield its body as chunks of at most ``limit`` bytes in all.

        Use it as ``async with fetcher.open(url, limit=n) as chunks:`` and consume
        ``chunks`` inside the block (for example ``await blobs.receive(chunks, limit=n)``).
        Entering resolves and checks the host, follows redirects and checks the final
        status and ``Content-Length``; iterating raises ``FILE_TOO_LARGE`` once more than
        ``limit`` bytes arrived. ``policy.timeout`` counts from entering to leaving the
        block: when it runs out, whatever the block awaits is cancelled and the block ends
        with ``FileRejected(DOWNLOAD_FAILED, "… timed out after N s.")``. The deadline is an
        anyio cancel scope, so the block is entered and left in one task.
        """
        if limit < 0:
            raise ValueError("limit must not be negative")
        with anyio.move_on_after(self.policy.timeout) as deadline:
            response, host = await self._follow(url)
            body = _Body(response, limit, host)
            try:
                _check_response(response, limit)
                yield body
            finally:
                with anyio.CancelScope(shield=True):
                    await body.aclose()
                    await response.aclose()
        if deadline.cancelled_caught:
            raise FileRejected(
                ErrorCode.DOWNLOAD_FAILED,
                f"The download timed out after {self.policy.timeout:g} s.",
            )

    async def _follow(self, url: str) -> tuple[httpx.Response, str]:
        """The first response that is not a redirect, and the host that sent it."""
        redirects = 0
        current = url
        while True:
            try:
                response, host = await self._send(current)
            except FileRejected as rejected:
                if redirects and rejected.code is ErrorCode.URL_NOT_ALLOWED:
                    raise FileRejected(
                        rejected.code,
                        f"The server redirected to {current}, which is refused: {rejected.message}",
                    ) from None
                raise
            if not response.has_redirect_location:
                break
            location = response.headers["Location"]
            base = response.url
            await response.aclose()
            if redirects >= self.policy.max_redirects:
                raise FileRejected(
                    ErrorCode.DOWNLOAD_FAILED,
                    f"The server redirected more than {self.policy.max_redirects} times.",
                )
            redirects += 1
            try:
                current = str(base.join(location))
            except (httpx.InvalidURL, TypeError, ValueError):
                raise FileRejected(
                    ErrorCode.URL_NOT_ALLOWED,
                    f"The server redirected to an invalid URL: {location!r}.",
                ) from None
        if not 200 <= response.status_code < 300:
            await response.aclose()
            raise FileRejected(
                ErrorCode.DOWNLOAD_FAILED, f"The server answered HTTP {response.status_code}."
            )
        return response, host

    async def _send(self, url: str) -> tuple[httpx.Response, str]:
        """GET one URL after checking it, on a connection to one of its allowed addresses."""
        parsed, host, port = checked_url(url)
        addresses = await self._allowed_addresses(host, port)
        request = self._client.build_request("GET", parsed)
        with pinned(host, port, addresses):
            try:
                return await self._client.send(request, stream=True, follow_redirects=False), host
            except httpx.HTTPError as error:
                raise _download_failed(host, error) from None

    async def _allowed_addresses(self, host: str, port: int) -> tuple[str, ...]:
        """The addresses of ``host`` that may be connected to, in the resolver's order."""
        try:
            literal: IPAddress | None = ip_address(host)
        except ValueError:
            literal = None
        if literal is not None:
            if not address_allowed(literal, host, self.policy):
                raise FileRejected(
                    ErrorCode.URL_NOT_ALLOWED, f"The address {literal} may not be fetched."
                )
            return (_connect_form(literal),)
        try:
            answers = await self._resolver(host, port)
        except (OSError, UnicodeError) as error:
            raise FileRejected(
                ErrorCode.DOWNLOAD_FAILED, f"The host {host} could not be resolved: {error}."
            ) from None
        resolved: list[IPAddress] = []
        for answer in answers:
            try:
                resolved.append(ip_address(answer))
            except ValueError:
                continue
        if not resolved:
            raise FileRejected(ErrorCode.DOWNLOAD_FAILED, f"The host {host} could not be resolved.")
        allowed: list[str] = []
        for address in resolved:
            if address_allowed(address, host, self.policy):
                form = _connect_form(address)
                if form not in allowed:
                    allowed.append(form)
        if not allowed:
            refused = ", ".join(str(address) for address in resolved)
            raise FileRejected(
                ErrorCode.URL_NOT_ALLOWED,
                f"The host {host} resolves only to addresses that may not be fetched ({refused}).",
            )
        return tuple(allowed)


def _connect_form(address: IPAddress) -> str:
    """The address to open a socket to: IPv4-mapped IPv6 addresses as plain IPv4."""
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _check_response(response: httpx.Response, limit: int) -> None:
    """Refuse a final response by its headers, before any of its body is read."""
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise FileRejected(
            ErrorCode.DOWNLOAD_FAILED,
            f"The server sent a {encoding}-encoded body; only unencoded bodies are accepted.",
        )
    declared = response.headers.get("Content-Length")
    if declared is None:
        return
    try:
        length = int(declared)
    except ValueError:
        return
    if length > limit:
        raise FileRejected(
            ErrorCode.FILE_TOO_LARGE,
            f"The file is over the limit of {format_size(limit)} "
            f"(the server announced {format_size(length)}).",
        )
