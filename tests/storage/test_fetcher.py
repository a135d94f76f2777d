"""The safe URL fetcher: the address check on its own, then real fetches from test servers.

Every network test talks to servers that the test starts on loopback addresses of this
machine. An autouse guard wraps the TCP connect that httpcore uses: it records every
attempt and refuses any host that is not a loopback IP address (a host name included),
so no test can reach another machine, and the attempts show whether a connection was
tried at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import shutil
import socket
import ssl
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import anyio
import pytest

from storage.blobs import LocalBlobStore
from storage.enums import ErrorCode
from storage.errors import FileRejected
from storage.fetch import Fetcher, FetchPolicy, address_allowed, check_url

pytestmark = pytest.mark.anyio

KIB = 1024
IMAGE = os.urandom(200 * KIB)
LOCAL_ONLY = FetchPolicy(allow_networks=(IPv4Network("127.0.0.1/32"),), timeout=5.0)


# --- the address check --------------------------------------------------------------------

NOTHING_ALLOWED = FetchPolicy()

REFUSED = [
    "127.0.0.1",
    "127.0.0.2",
    "::1",
    "0.0.0.0",
    "::",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "224.0.0.1",
    "ff02::1",
    "100.64.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "198.18.0.1",
    "192.0.2.1",
    "198.51.100.7",
    "203.0.113.9",
    "2001:db8::1",
    "fec0::1",
    "::ffff:127.0.0.1",
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::127.0.0.1",
    "64:ff9b::a00:1",
    "64:ff9b::7f00:1",
    "64:ff9b:1::808:808",
    "2002:a00:1::1",
    "2002:808:808::1",
    "2001::1",
]

ALLOWED = [
    "8.8.8.8",
    "1.1.1.1",
    "2606:4700:4700::1111",
    "2a00:1450:4001:82a::200e",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
]


@pytest.mark.parametrize("address", REFUSED)
def test_special_addresses_are_refused(address: str) -> None:
    assert not address_allowed(ip_address(address), "images.example", NOTHING_ALLOWED)


@pytest.mark.parametrize("address", ALLOWED)
def test_public_unicast_addresses_are_allowed(address: str) -> None:
    assert address_allowed(ip_address(address), "images.example", NOTHING_ALLOWED)


def test_allowed_networks_let_their_addresses_through() -> None:
    policy = FetchPolicy(allow_networks=(IPv4Network("127.0.0.0/8"), IPv6Network("fd00::/8")))
    assert address_allowed(ip_address("127.0.0.2"), "any.example", policy)
    assert address_allowed(ip_address("::ffff:127.0.0.2"), "any.example", policy)
    assert address_allowed(ip_address("fd00::5"), "any.example", policy)
    assert not address_allowed(ip_address("10.0.0.1"), "any.example", policy)
    assert not address_allowed(ip_address("::1"), "any.example", policy)


def test_allowed_hosts_let_their_addresses_through() -> None:
    policy = FetchPolicy(allow_hosts=frozenset({"localhost"}))
    assert address_allowed(ip_address("127.0.0.1"), "localhost", policy)
    assert address_allowed(ip_address("::1"), "localhost", policy)
    assert address_allowed(ip_address("127.0.0.1"), "LocalHost.", policy)
    assert not address_allowed(ip_address("127.0.0.1"), "localhost.example", policy)
    assert not address_allowed(ip_address("127.0.0.1"), "evil.example", policy)


def test_unspecified_and_multicast_are_never_allowed() -> None:
    policy = FetchPolicy(
        allow_hosts=frozenset({"localhost"}),
        allow_networks=(IPv4Network("0.0.0.0/0"), IPv6Network("::/0")),
    )
    for address in ("0.0.0.0", "::", "224.0.0.1", "ff02::1", "::ffff:0.0.0.0"):
        assert not address_allowed(ip_address(address), "localhost", policy)


def test_policy_parse_splits_hosts_from_networks() -> None:
    policy = FetchPolicy.parse(
        " localhost, Images.Example.\n127.0.0.1 10.1.0.0/16,[::1] fd00::/8,,", timeout=7.5
    )
    assert policy.allow_hosts == frozenset({"localhost", "images.example"})
    assert policy.allow_networks == (
        ip_network("127.0.0.1/32"),
        ip_network("10.1.0.0/16"),
        ip_network("::1/128"),
        ip_network("fd00::/8"),
    )
    assert policy.timeout == 7.5
    assert policy.max_redirects == 5
    assert FetchPolicy.parse("", timeout=20) == FetchPolicy(timeout=20)


@pytest.mark.parametrize("entry", ["http://images.example", "host:8080", "a b/c"])
def test_policy_parse_refuses_entries_that_are_neither(entry: str) -> None:
    with pytest.raises(ValueError, match="FETCH_ALLOW_HOSTS"):
        FetchPolicy.parse(entry, timeout=20)


def test_check_url_returns_scheme_host_and_port() -> None:
    assert check_url("https://Images.Example/a.png") == ("https", "images.example", 443)
    assert check_url("http://images.example/a.png") == ("http", "images.example", 80)
    assert check_url("http://[::1]:8080/") == ("http", "::1", 8080)
    assert check_url("http://bücher.example/") == ("http", "xn--bcher-kva.example", 80)


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://images.example/a.png",
        "gopher://images.example:70/",
        "data:image/png;base64,AAAA",
        "javascript:alert(1)",
        "//images.example/a.png",
        "images.example/a.png",
        "http:///a.png",
        "http://user:secret@images.example/a.png",
        "http://user@images.example/a.png",
        "http://images.example:0/",
        "http://images.example:99999/",
        "http://images.example:port/",
        "http://[fe80::1%25eth0]/",
    ],
)
def test_check_url_refuses(url: str) -> None:
    with pytest.raises(FileRejected) as caught:
        check_url(url)
    assert caught.value.code is ErrorCode.URL_NOT_ALLOWED


# --- test servers ---------------------------------------------------------------------------


@dataclass
class Server:
    """A minimal HTTP/1.1 server, one request per connection, listening on loopback."""

    port: int = 0
    requests: Counter[str] = field(default_factory=Counter)
    connections: Counter[str] = field(default_factory=Counter)
    host_headers: list[str] = field(default_factory=list)
    listeners: list[str] = field(default_factory=list)
    tls: ssl.SSLContext | None = None
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        shown = f"[{host}]" if ":" in host else host
        return f"http://{shown}:{self.port}{path}"

    def handler(
        self, listener: str
    ) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._tasks.add(task)
            self.connections[listener] += 1
            try:
                if self.tls is not None:
                    await writer.start_tls(self.tls)
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                target = request_line.split(" ")[1]
                headers = {
                    name.strip().lower(): value.strip()
                    for name, _, value in (line.partition(":") for line in header_lines if line)
                }
                self.host_headers.append(headers.get("host", ""))
                path = urlsplit(target).path
                self.requests[path] += 1
                await respond(target, writer)
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                self._tasks.discard(task)
                writer.close()

        return handle

    async def stop(self, servers: list[asyncio.Server]) -> None:
        for server in servers:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for server in servers:
            await server.wait_closed()


def _head(status: str, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers.items())]
    lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


async def respond(target: str, writer: asyncio.StreamWriter) -> None:
    """The routes of the test server."""
    parts = urlsplit(target)
    path = parts.path
    if path == "/image":
        headers = {"Content-Type": "image/png", "Content-Length": str(len(IMAGE))}
        writer.write(_head("200 OK", headers) + IMAGE)
    elif path == "/chunked-image":
        writer.write(_head("200 OK", {"Transfer-Encoding": "chunked"}))
        for start in range(0, len(IMAGE), 7 * KIB):
            writer.write(_chunk(IMAGE[start : start + 7 * KIB]))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
    elif path == "/missing":
        writer.write(_head("404 Not Found", {"Content-Length": "9"}) + b"not found")
    elif path.startswith("/redirect/"):
        left = int(path.rsplit("/", 1)[1])
        location = f"/redirect/{left - 1}" if left > 1 else "/image"
        writer.write(_head("302 Found", {"Location": location, "Content-Length": "0"}))
    elif path == "/to":
        location = parse_qs(parts.query)["url"][0]
        writer.write(_head("301 Moved Permanently", {"Location": location, "Content-Length": "0"}))
    elif path == "/slow-headers":
        await asyncio.sleep(60)
    elif path == "/slow-body":
        writer.write(_head("200 OK", {"Content-Length": "1000"}) + b"0123456789")
        await writer.drain()
        await asyncio.sleep(60)
    elif path == "/endless":
        writer.write(_head("200 OK", {"Transfer-Encoding": "chunked"}))
        while True:
            writer.write(_chunk(b"x" * (16 * KIB)))
            await writer.drain()
    elif path == "/huge":
        writer.write(_head("200 OK", {"Content-Length": str(10 * 1024 * KIB)}))
        await writer.drain()
        await asyncio.sleep(60)
    elif path == "/gzip":
        headers = {"Content-Encoding": "gzip", "Content-Length": "4"}
        writer.write(_head("200 OK", headers) + b"abcd")
    else:
        writer.write(_head("404 Not Found", {"Content-Length": "0"}))
    await writer.drain()


@contextlib.asynccontextmanager
async def serving(tls: ssl.SSLContext | None = None) -> AsyncIterator[Server]:
    """A server on 127.0.0.1 and, where possible, on 127.0.0.2 and ::1 at the same port.

    With ``tls`` each connection starts TLS in the handler, so a failed handshake ends
    that connection quietly.
    """
    state = Server(tls=tls)
    servers = [await asyncio.start_server(state.handler("127.0.0.1"), "127.0.0.1", 0)]
    state.port = servers[0].sockets[0].getsockname()[1]
    state.listeners.append("127.0.0.1")
    for host in ("127.0.0.2", "::1"):
        try:
            servers.append(await asyncio.start_server(state.handler(host), host, state.port))
        except OSError:
            continue
        state.listeners.append(host)
    try:
        yield state
    finally:
        await state.stop(servers)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    async with serving() as state:
        yield state


@pytest.fixture(autouse=True)
def connects(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, int]]]:
    """Every TCP connection httpcore tries; anything but a loopback IP is refused."""
    attempts: list[tuple[str, int]] = []
    real_connect = anyio.connect_tcp

    async def guarded(remote_host: str, remote_port: int, **kwargs: Any) -> Any:
        attempts.append((remote_host, remote_port))
        try:
            loopback = ip_address(remote_host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise OSError(f"test guard: no connection to {remote_host}")
        return await real_connect(remote_host, remote_port, **kwargs)

    monkeypatch.setattr(anyio, "connect_tcp", guarded)
    yield attempts


@pytest.fixture
async def fetcher() -> AsyncIterator[Fetcher]:
    async with Fetcher(LOCAL_ONLY) as shared:
        yield shared


class FixedResolver:
    """Answers given by the test, counting the questions."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        if host not in self.answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return self.answers[host]


async def fetch(fetcher: Fetcher, url: str, limit: int = 1024 * KIB) -> bytes:
    received = bytearray()
    async with fetcher.open(url, limit=limit) as chunks:
        async for chunk in chunks:
            received += chunk
    return bytes(received)


async def refused(fetcher: Fetcher, url: str, limit: int = 1024 * KIB) -> FileRejected:
    with pytest.raises(FileRejected) as caught:
        await fetch(fetcher, url, limit)
    return caught.value


# --- fetching ---------------------------------------------------------------------------------


async def test_downloads_exactly_the_bytes(fetcher: Fetcher, server: Server) -> None:
    assert await fetch(fetcher, server.url("/image")) == IMAGE
    assert await fetch(fetcher, server.url("/chunked-image")) == IMAGE
    assert server.requests["/image"] == 1
    assert server.requests["/chunked-image"] == 1


async def test_body_streams_into_the_blob_store(
    fetcher: Fetcher, server: Server, tmp_path: Path
) -> None:
    store = LocalBlobStore(tmp_path / "media")
    async with fetcher.open(server.url("/chunked-image"), limit=len(IMAGE)) as chunks:
        temp = await store.receive(chunks, limit=len(IMAGE))
    assert temp.size == len(IMAGE)
    assert temp.sha256 == hashlib.sha256(IMAGE).hexdigest()
    assert temp.path.read_bytes() == IMAGE


async def test_a_host_name_connects_to_the_resolved_address_only(
    server: Server, connects: list[tuple[str, int]]
) -> None:
    resolver = FixedResolver({"images.test": ["127.0.0.2", "127.0.0.1"]})
    async with Fetcher(LOCAL_ONLY, resolver=resolver) as fetcher:
        assert await fetch(fetcher, f"http://images.test:{server.port}/image") == IMAGE
    assert resolver.calls == [("images.test", server.port)]
    assert connects == [("127.0.0.1", server.port)]
    assert server.host_headers == [f"images.test:{server.port}"]
    assert server.connections["127.0.0.2"] == 0


async def test_allowed_ipv6_and_mapped_addresses_connect(
    server: Server, connects: list[tuple[str, int]]
) -> None:
    resolver = FixedResolver({"mapped.test": ["::ffff:127.0.0.1"]})
    policy = FetchPolicy(
        allow_networks=(IPv4Network("127.0.0.1/32"), IPv6Network("::1/128")), timeout=5.0
    )
    async with Fetcher(policy, resolver=resolver) as fetcher:
        assert await fetch(fetcher, f"http://mapped.test:{server.port}/image") == IMAGE
        assert connects == [("127.0.0.1", server.port)]
        if "::1" in server.listeners:
            assert await fetch(fetcher, server.url("/image", "::1")) == IMAGE
            assert connects[1:] == [("::1", server.port)]
            assert server.connections["::1"] == 1


async def test_a_private_answer_is_refused_without_connecting(
    server: Server, connects: list[tuple[str, int]]
) -> None:
    resolver = FixedResolver(
        {"evil.example": ["10.1.2.3"], "metadata.example": ["169.254.169.254", "fe80::1", "::1"]}
    )
    async with Fetcher(LOCAL_ONLY, resolver=resolver) as fetcher:
        evil = await refused(fetcher, f"http://evil.example:{server.port}/image")
        metadata = await refused(fetcher, "http://metadata.example/latest/meta-data/")
    assert evil.code is ErrorCode.URL_NOT_ALLOWED
    assert "10.1.2.3" in evil.message
    assert metadata.code is ErrorCode.URL_NOT_ALLOWED
    assert "169.254.169.254" in metadata.message
    assert resolver.calls == [("evil.example", server.port), ("metadata.example", 80)]
    assert connects == []
    assert sum(server.connections.values()) == 0


async def test_an_unknown_host_fails_to_download(server: Server) -> None:
    async with Fetcher(LOCAL_ONLY, resolver=FixedResolver({})) as fetcher:
        rejected = await refused(fetcher, "http://nowhere.test/a.png")
    assert rejected.code is ErrorCode.DOWNLOAD_FAILED
    assert "nowhere.test" in rejected.message


@pytest.mark.parametrize("host", ["::1", "127.0.0.2", "0.0.0.0"])
async def test_loopback_outside_the_policy_is_refused_without_connecting(
    fetcher: Fetcher, server: Server, connects: list[tuple[str, int]], host: str
) -> None:
    rejected = await refused(fetcher, server.url("/image", host))
    assert rejected.code is ErrorCode.URL_NOT_ALLOWED
    assert connects == []
    assert sum(server.connections.values()) == 0
    assert server.requests["/image"] == 0


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://127.0.0.1/a.png", "gopher://127.0.0.1:70/"]
)
async def test_other_schemes_are_refused(
    fetcher: Fetcher, connects: list[tuple[str, int]], url: str
) -> None:
    rejected = await refused(fetcher, url)
    assert rejected.code is ErrorCode.URL_NOT_ALLOWED
    assert connects == []


async def test_an_error_status_fails_with_the_status(fetcher: Fetcher, server: Server) -> None:
    rejected = await refused(fetcher, server.url("/missing"))
    assert rejected.code is ErrorCode.DOWNLOAD_FAILED
    assert "404" in rejected.message


async def test_a_refused_connection_fails_with_the_reason() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with Fetcher(LOCAL_ONLY) as fetcher:
        rejected = await refused(fetcher, f"http://127.0.0.1:{port}/image")
    assert rejected.code is ErrorCode.DOWNLOAD_FAILED
    assert "127.0.0.1" in rejected.message


async def test_redirects_are_followed(fetcher: Fetcher, server: Server) -> None:
    assert await fetch(fetcher, server.url("/redirect/3")) == IMAGE
    assert [server.requests[f"/redirect/{n}"] for n in (3, 2, 1)] == [1, 1, 1]
    assert await fetch(fetcher, server.url("/redirect/5")) == IMAGE
    assert server.requests["/image"] == 2


async def test_more_than_five_redirects_fail(fetcher: Fetcher, server: Server) -> None:
    rejected = await refused(fetcher, server.url("/redirect/6"))
    assert rejected.code is ErrorCode.DOWNLOAD_FAILED
    assert "redirected more than 5 times" in rejected.message
    assert server.requests["/image"] == 0


async def test_each_redirect_resolves_its_host_once(server: Server) -> None:
    resolver = FixedResolver({"images.test": ["127.0.0.1"]})
    async with Fetcher(LOCAL_ONLY, resolver=resolver) as fetcher:
        assert await fetch(fetcher, f"http://images.test:{server.port}/redirect/2") == IMAGE
    assert resolver.calls == [("images.test", server.port)] * 3


async def test_a_redirect_to_a_refused_address_is_refused(
    fetcher: Fetcher, server: Server, connects: list[tuple[str, int]]
) -> None:
    target = f"http://127.0.0.2:{server.port}/image"
    rejected = await refused(fetcher, server.url(f"/to?url={quote(target, safe='')}"))
    assert rejected.code is ErrorCode.URL_NOT_ALLOWED
    assert "redirected to" in rejected.message
    assert server.requests == Counter({"/to": 1})
    assert server.connections["127.0.0.2"] == 0
    assert connects == [("127.0.0.1", server.port)]


async def test_a_redirect_to_a_host_with_a_refused_answer_is_refused(server: Server) -> None:
    resolver = FixedResolver({"evil.example": ["127.0.0.2"]})
    target = f"http://evil.example:{server.port}/image"
    async with Fetcher(LOCAL_ONLY, resolver=resolver) as fetcher:
        rejected = await refused(fetcher, server.url(f"/to?url={quote(target, safe='')}"))
    assert rejected.code is ErrorCode.URL_NOT_ALLOWED
    assert server.requests["/image"] == 0
    assert server.connections["127.0.0.2"] == 0


async def test_a_redirect_to_a_file_url_is_refused(fetcher: Fetcher, server: Server) -> None:
    rejected = await refused(fetcher, server.url("/to?url=file%3A%2F%2F%2Fetc%2Fpasswd"))
    assert rejected.code is ErrorCode.URL_NOT_ALLOWED
    assert "file" in rejected.message


async def test_a_slow_body_hits_the_total_timeout(server: Server) -> None:
    policy = FetchPolicy(allow_networks=LOCAL_ONLY.allow_networks, timeout=1.0)
    async with Fetcher(policy) as fetcher:
        started = time.monotonic()
        rejected = await refused(fetcher, server.url("/slow-body"))
    assert rejected.code is ErrorCode.DOWNLOAD_FAILED
    assert "timed out after 1 s" in rejected.message
    assert time.monotonic() - started < 3


async def test_slow_headers_hit_the_total_timeout(server: Server) -> None:
    policy = FetchPolicy(allow_networks=LOCAL_ONLY.allow_networks, timeout=1.0)
    async with Fetcher(policy) as fetcher:
        started = time.monotonic()
        rejected = await refused(fetcher, server.url("/slow-headers"))
    assert rejected.code is ErrorCode.DOWNLOAD_FAILED
    assert "timed out" in rejected.message
    assert time.monotonic() - started < 3


async def test_an_endless_body_stops_at_the_limit(fetcher: Fetcher, server: Server) -> None:
    rejected = await refused(fetcher, server.url("/endless"), limit=64 * KIB)
    assert rejected.code is ErrorCode.FILE_TOO_LARGE
    assert "64 KiB" in rejected.message


async def test_an_endless_body_stops_at_the_limit_of_the_blob_store(
    fetcher: Fetcher, server: Server, tmp_path: Path
) -> None:
    store = LocalBlobStore(tmp_path / "media")
    with pytest.raises(FileRejected) as caught:
        async with fetcher.open(server.url("/endless"), limit=64 * KIB) as chunks:
            await store.receive(chunks, limit=64 * KIB)
    assert caught.value.code is ErrorCode.FILE_TOO_LARGE
    assert list((tmp_path / "media" / ".tmp").iterdir()) == []


async def test_a_content_length_over_the_limit_fails_before_reading(
    fetcher: Fetcher, server: Server
) -> None:
    entered = False
    started = time.monotonic()
    with pytest.raises(FileRejected) as caught:
        async with fetcher.open(server.url("/huge"), limit=64 * KIB):
            entered = True
    assert caught.value.code is ErrorCode.FILE_TOO_LARGE
    assert "10 MiB" in caught.value.message
    assert not entered
    assert time.monotonic() - started < 2


async def test_a_compressed_body_is_refused(fetcher: Fetcher, server: Server) -> None:
    rejected = await refused(fetcher, server.url("/gzip"))
    assert rejected.code is ErrorCode.DOWNLOAD_FAILED
    assert "gzip" in rejected.message


# --- https: the pinned address keeps the host name for SNI and verification ---------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for images.test, made with the openssl command."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "1", "-subj", "/CN=images.test",
            "-addext", "subjectAltName=DNS:images.test",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_https_uses_the_host_name_on_the_pinned_address(
    certificate: tuple[Path, Path], connects: list[tuple[str, int]]
) -> None:
    cert, key = certificate
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    names: list[str | None] = []
    server_context.sni_callback = lambda _socket, name, _context: names.append(name)
    client_context = ssl.create_default_context(cafile=str(cert))
    resolver = FixedResolver({"images.test": ["127.0.0.1"]})
    async with (
        serving(server_context) as server,
        Fetcher(LOCAL_ONLY, resolver=resolver, ssl_context=client_context) as fetcher,
    ):
        assert await fetch(fetcher, f"https://images.test:{server.port}/image") == IMAGE
        assert names == ["images.test"]
        assert connects == [("127.0.0.1", server.port)]
        assert server.host_headers == [f"images.test:{server.port}"]
        by_address = await refused(fetcher, f"https://127.0.0.1:{server.port}/image")
    assert by_address.code is ErrorCode.DOWNLOAD_FAILED
    assert server.requests["/image"] == 1
