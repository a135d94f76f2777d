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
import re
import socket
import ssl
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_address,
    ip_network,
)
from types import TracebackType
from typing import Any, Protocol

import anyio
import httpcore
import httpx

from storage.enums import ErrorCode
from storage.errors import FileRejected, format_size

USER_AGENT = "media-gateway/0.1"

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

_DEFAULT_PORTS = {"http": 80, "https": 443}

_HOST_NAME = re.compile(r"\A[a-z0-9_](?:[a-z0-9_.-]*[a-z0-9_])?\Z")

_REFUSED_V4: tuple[IPv4Network, ...] = tuple(
    IPv4Network(network)
    for network in (
        "0.0.0.0/8",  # "this network", 0.0.0.0 included
        "10.0.0.0/8",  # private
        "100.64.0.0/10",  # shared address space (carrier-grade NAT)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, cloud metadata services
        "172.16.0.0/12",  # private
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation (TEST-NET-1)
        "192.88.99.0/24",  # deprecated 6to4 relay anycast
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation (TEST-NET-2)
        "203.0.113.0/24",  # documentation (TEST-NET-3)
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, 255.255.255.255 included
    )
)

_REFUSED_V6: tuple[IPv6Network, ...] = tuple(
    IPv6Network(network)
    for network in (
        "::/96",  # unspecified, loopback and deprecated IPv4-compatible addresses
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard-only
        "2001::/23",  # IETF protocol assignments, Teredo (2001::/32) included
        "2001:db8::/32",  # documentation
        "2002::/16",  # 6to4
        "3fff::/20",  # documentation
        "5f00::/16",  # segment routing
        "fc00::/7",  # unique local (private)
        "fe80::/10",  # link-local
        "fec0::/10",  # deprecated site-local
        "ff00::/8",  # multicast
    )
)

_NAT64 = IPv6Network("64:ff9b::/96")


@dataclass(frozen=True)
class FetchPolicy:
    """Where fetches may go and how long they may take.

    ``allow_hosts`` holds lower-case host names, matched literally (no wildcards, a trailing
    dot ignored); every address such a host resolves to is allowed, except unspecified and
    multicast ones. ``allow_networks`` holds IP networks (single addresses as /32 or /128)
    whose addresses are allowed whatever host name led to them.
    """

    allow_hosts: frozenset[str] = frozenset()
    allow_networks: tuple[IPNetwork, ...] = ()
    timeout: float = 20.0
    """Total seconds per URL: resolution, connections, all redirects and the whole body."""
    max_redirects: int = 5

    def __post_init__(self) -> None:
        if not self.timeout > 0:
            raise ValueError("timeout must be positive")
        if self.max_redirects < 0:
            raise ValueError("max_redirects must not be negative")

    @classmethod
    def parse(cls, allow_hosts: str, timeout: float) -> FetchPolicy:
        """The policy of a ``MEDIA_GATEWAY_FETCH_ALLOW_HOSTS`` value and a timeout.

        Entries are separated by commas and/or white space. An entry that parses as an IP
        address or a CIDR (``127.0.0.1``, ``10.0.0.0/8``, ``::1``, ``[::1]``, ``fd00::/8``;
        host bits are ignored) is a network, any other entry a host name. Raises
        ``ValueError`` for an entry that is neither (``http://x``, ``host:8080``).
        """
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in re.split(r"[\s,]+", allow_hosts.strip()):
            entry = raw.strip().lower()
            if not entry:
                continue
            unbracketed = entry.removeprefix("[").replace("]", "", 1)
            try:
                network = ip_network(unbracketed, strict=False)
            except ValueError:
                pass
            else:
                if network not in networks:
                    networks.append(network)
                continue
            name = entry.removesuffix(".")
            if not _HOST_NAME.match(name):
                raise ValueError(
                    f"FETCH_ALLOW_HOSTS entry {raw!r} is neither a host name nor an IP or CIDR"
                )
            hosts.add(name)
        return cls(allow_hosts=frozenset(hosts), allow_networks=tuple(networks), timeout=timeout)


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


def _checked_url(url: str) -> tuple[httpx.URL, str, int]:
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as error:
        raise FileRejected(ErrorCode.URL_NOT_ALLOWED, f"The URL is not valid: {error}.") from None
    scheme = parsed.scheme
    if scheme not in _DEFAULT_PORTS:
        shown = f"{scheme}:" if scheme else "a URL without a scheme"
        raise FileRejected(
            ErrorCode.URL_NOT_ALLOWED,
            f"Only http and https URLs can be fetched, not {shown}.",
        )
    if parsed.userinfo:
        raise FileRejected(
            ErrorCode.URL_NOT_ALLOWED, "The URL may not contain a user name or password."
        )
    try:
        host = parsed.raw_host.decode("ascii").lower()
    except UnicodeDecodeError:
        host = ""
    if not host or "%" in host:
        raise FileRejected(ErrorCode.URL_NOT_ALLOWED, "The URL has no valid host.")
    port = parsed.port if parsed.port is not None else _DEFAULT_PORTS[scheme]
    if not 0 < port < 65536:
        raise FileRejected(ErrorCode.URL_NOT_ALLOWED, f"The URL's port {port} is not valid.")
    return parsed, host, port


def check_url(url: str) -> tuple[str, str, int]:
    """Check the syntax of ``url`` and return its scheme, host and port.

    The host is lower-case and ASCII (international names in punycode, IPv6 addresses
    without brackets); the port is filled in from the scheme when the URL has none.
    Raises ``FileRejected(URL_NOT_ALLOWED)`` for a syntax error, a scheme other than http
    and https, a user name or password, a missing host or an invalid port. The host's
    addresses are checked later, when it is resolved.
    """
    parsed, host, port = _checked_url(url)
    return parsed.scheme, host, port


def _is_public(address: IPAddress) -> bool:
    if isinstance(address, IPv6Address):
        if address.ipv4_mapped is not None:
            return _is_public(address.ipv4_mapped)
        if address in _NAT64:
            return _is_public(IPv4Address(int(address) & 0xFFFFFFFF))
        if any(address in network for network in _REFUSED_V6):
            return False
    elif any(address in network for network in _REFUSED_V4):
        return False
    if (
        address.is_unspecified
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_private
        or address.is_reserved
        or (isinstance(address, IPv6Address) and address.is_site_local)
    ):
        return False
    return address.is_global


def _never_reachable(address: IPAddress) -> bool:
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_unspecified or address.is_multicast


def address_allowed(address: IPAddress, host: str, policy: FetchPolicy) -> bool:
    """Whether a fetch of ``host`` may connect to ``address``.

    Public unicast addresses are allowed. Any other address is allowed only when ``host``
    is one of ``policy.allow_hosts`` or the address lies in one of
    ``policy.allow_networks``; unspecified (``0.0.0.0``, ``::``) and multicast addresses
    never are. An IPv4-mapped IPv6 address (``::ffff:127.0.0.1``) and a NAT64 address
    (``64:ff9b::/96``) are judged by the IPv4 address inside; 6to4 (``2002::/16``) and
    Teredo (``2001::/32``) addresses are always treated as not public.
    """
    if _never_reachable(address):
        return False
    if _is_public(address):
        return True
    if host.lower().removesuffix(".") in policy.allow_hosts:
        return True
    candidates: list[IPAddress] = [address]
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        candidates.append(address.ipv4_mapped)
    return any(
        candidate in network
        for candidate in candidates
        for network in policy.allow_networks
        if candidate.version == network.version
    )


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


class _PinnedTransport(httpx.AsyncHTTPTransport):
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
            raise FileRejected(
                ErrorCode.FILE_TOO_LARGE,
                f"The file is over the limit of {format_size(self._limit)}.",
            )
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
    (:class:`_PinnedBackend`) never resolves anything: httpcore opens a connection in the
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
            transport=_PinnedTransport(limits=limits, ssl_context=context),
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
        parsed, host, port = _checked_url(url)
        addresses = await self._allowed_addresses(host, port)
        request = self._client.build_request("GET", parsed)
        token = _PIN.set(_Pin(host, port, addresses))
        try:
            return await self._client.send(request, stream=True, follow_redirects=False), host
        except httpx.HTTPError as error:
            raise _download_failed(host, error) from None
        finally:
            _PIN.reset(token)

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
