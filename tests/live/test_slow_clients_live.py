"""Slow clients against ``media-gateway serve`` over raw sockets: a request's headers must
arrive within REQUEST_HEADER_TIMEOUT and its body within BODY_TIMEOUT plus its size at
MIN_BODY_RATE (gateway/receipt.py), else 408 and the connection is closed; a fair upload at a
reasonable rate still succeeds. Short settings keep each case to a few seconds."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.server_process import GatewayProcess, running_gateway

pytestmark = pytest.mark.live

SETTINGS = {"REQUEST_HEADER_TIMEOUT": "1", "BODY_TIMEOUT": "1", "MIN_BODY_RATE": "500000"}
DRIP_INTERVAL = 0.25
GIVE_UP = 20.0
"""Seconds of dripping after which the connection counts as never cut off."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    with running_gateway(tmp_path_factory.mktemp("slow"), **SETTINGS) as gateway:
        yield gateway


def connect(server: GatewayProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def read_to_end(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def drip_until_closed(sock: socket.socket, start: bytes, drip: bytes) -> bytes:
    """Send ``start``, then ``drip`` every DRIP_INTERVAL seconds until the server answers;
    return what it sent until it closed."""
    sock.sendall(start)
    given_up = time.monotonic() + GIVE_UP
    while time.monotonic() < given_up:
        readable, _, _ = select.select([sock], [], [], DRIP_INTERVAL)
        if readable:
            return read_to_end(sock)
        sock.sendall(drip)
    raise AssertionError(f"the connection was still open after {GIVE_UP} s of dripping")


def assert_408_and_closed(answer: bytes, part: str) -> None:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), answer
    assert b"connection: close" in head.lower(), answer
    assert part.encode() in body, answer


def request_head(method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [
        f"{method} {path} HTTP/1.1",
        "Host: 127.0.0.1",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def test_headers_sent_a_byte_at_a_time_get_408(server: GatewayProcess) -> None:
    with connect(server) as sock:
        answer = drip_until_closed(
            sock, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ", b"a"
        )
    assert_408_and_closed(answer, "headers")


def test_a_bare_request_line_gets_408(server: GatewayProcess) -> None:
    with connect(server) as sock:
        sock.sendall(b"GET /heal")
        answer = read_to_end(sock)
    assert_408_and_closed(answer, "headers")


def test_a_silent_connection_is_closed(server: GatewayProcess) -> None:
    with connect(server) as sock:
        answer = read_to_end(sock)
    assert_408_and_closed(answer, "headers")


def test_a_body_of_declared_length_sent_slowly_gets_408(server: GatewayProcess) -> None:
    head = request_head(
        "POST", "/graphql", {"Content-Type": "application/json", "Content-Length": "1000000"}
    )
    with connect(server) as sock:
        answer = drip_until_closed(sock, head + b'{"query": "', b" ")
    assert_408_and_closed(answer, "body")


def test_a_chunked_body_sent_slowly_gets_408(server: GatewayProcess) -> None:
    head = request_head(
        "POST", "/graphql", {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    )
    with connect(server) as sock:
        answer = drip_until_closed(sock, head, b"1\r\n \r\n")
    assert_408_and_closed(answer, "body")


def test_half_a_second_request_on_a_kept_alive_connection_gets_408(
    server: GatewayProcess,
) -> None:
    with connect(server) as sock:
        sock.sendall(request_head("GET", "/healthz", {}))
        first = b""
        while not first.endswith(b'{"status":"ok"}'):
            chunk = sock.recv(65536)
            assert chunk, first
            first += chunk
        assert first.startswith(b"HTTP/1.1 200 "), first
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHo")
        answer = read_to_end(sock)
    assert_408_and_closed(answer, "headers")


def fair_upload(sock: socket.socket, head: bytes, body: bytes, framed: bool) -> bytes:
    """Send ``body`` in 64 KiB pieces at about 4 MB/s (chunk-framed when ``framed``)."""
    sock.sendall(head)
    for offset in range(0, len(body), 65536):
        piece = body[offset : offset + 65536]
        sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if framed else piece)
        time.sleep(0.016)
    if framed:
        sock.sendall(b"0\r\n\r\n")
    return read_to_end(sock)


def padded_query() -> bytes:
    """A 3 MB GraphQL request: a query and a variable it does not use."""
    return json.dumps({"query": "{ __typename }", "variables": {"pad": "x" * 3_000_000}}).encode()


@pytest.mark.parametrize("framed", [False, True], ids=["content-length", "chunked"])
def test_a_fair_upload_of_a_few_megabytes_succeeds(server: GatewayProcess, framed: bool) -> None:
    body = padded_query()
    length = {"Transfer-Encoding": "chunked"} if framed else {"Content-Length": str(len(body))}
    head = request_head(
        "POST", "/graphql", {"Content-Type": "application/json", "Connection": "close", **length}
    )
    with connect(server) as sock:
        answer = fair_upload(sock, head, body, framed)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:500]
    assert answer.endswith(b'{"data":{"__typename":"Query"}}'), answer[-500:]


def test_every_worker_cuts_off_slow_headers(tmp_path: Path) -> None:
    with running_gateway(tmp_path, args=("--workers", "2"), **SETTINGS) as gateway:
        for _ in range(4):  # connections spread over the workers
            with connect(gateway) as sock:
                sock.sendall(b"GET /heal")
                assert_408_and_closed(read_to_end(sock), "headers")
