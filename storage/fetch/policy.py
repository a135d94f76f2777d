"""Where a fetch may go: URL syntax (:func:`check_url`) and the addresses a host may be
reached at (:func:`address_allowed`) under a :class:`FetchPolicy`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from ipaddress import (
    IPv4Address,
    IPv4Network,
    IPv6Address,
    IPv6Network,
    ip_network,
)

import httpx

from storage.enums import ErrorCode
from storage.errors import FileRejected

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


def checked_url(url: str) -> tuple[httpx.URL, str, int]:
    """The parsed URL with its host and port, after the checks of :func:`check_url`."""
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
    parsed, host, port = checked_url(url)
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
