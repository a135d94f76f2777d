"""The real thing: ``media-gateway serve`` as a subprocess on a free port of 127.0.0.1, spoken
to over TCP with httpx. It prints the GraphiQL URL and the admin token (stderr), migrates a
fresh SQLite file, accepts a multipart upload and serves the stored original with its caching
headers; a second start with the same files prints the same saved admin token."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from media_factory import image_bytes

pytestmark = pytest.mark.live

START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
TOKEN_LINE = re.compile(r"^Admin token: (mgw_\S+)$", re.MULTILINE)


def command() -> list[str]:
    script = Path(sys.executable).parent / "media-gateway"
    assert script.exists(), f"the console script is not installed beside {sys.executable}"
    return [str(script)]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def gateway_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIA_GATEWAY_")}
    env.update(
        MEDIA_GATEWAY_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'db' / 'media.db'}",
        MEDIA_GATEWAY_MEDIA_ROOT=str(tmp_path / "media"),
        MEDIA_GATEWAY_ADMIN_TOKEN_FILE=str(tmp_path / "admin-token"),
    )
    return env


@dataclass
class Server:
    base: str
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def serve(tmp_path: Path, name: str) -> Iterator[Server]:
    """Start the server, wait for /healthz, and always stop it on the way out."""
    port = free_port()
    log = tmp_path / f"{name}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [*command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=gateway_env(tmp_path),
            cwd=tmp_path,
            stdout=sink,
            stderr=sink,
        )
    server = Server(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                pytest.fail(f"the server exited with {process.returncode}:\n{server.output()}")
            try:
                if httpx.get(f"{server.base}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"no healthy /healthz within {START_TIMEOUT} s:\n{server.output()}")
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def admin_token(server: Server) -> str:
    output = server.output()
    assert f"{server.base}/graphql" in output, output
    found = TOKEN_LINE.findall(output)
    assert len(found) == 1, output
    token: str = found[0]
    return token


def graphql(
    client: httpx.Client, token: str, query: str, variables: dict[str, object]
) -> dict[str, object]:
    response = client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    data: dict[str, object] = body["data"]
    return data


def test_serve_upload_query_and_media(tmp_path: Path) -> None:
    content = image_bytes("PNG", (80, 60), seed=3)
    with serve(tmp_path, "first") as server:
        token = admin_token(server)
        assert (tmp_path / "admin-token").read_text().strip() == token
        assert (tmp_path / "admin-token").stat().st_mode & 0o777 == 0o600
        with httpx.Client(base_url=server.base, timeout=10.0) as client:
            created = graphql(
                client,
                token,
                "mutation($i: ProductCreateInput!) { productCreate(input: $i) { "
                "product { id } userErrors { code } } }",
                {"i": {"sku": "LIVE-1", "name": "Live product"}},
            )["productCreate"]
            assert isinstance(created, dict) and created["userErrors"] == [], created
            product_id = created["product"]["id"]

            query = (
                "mutation($input: UploadImageInput!) { uploadImage(input: $input) { "
                "image { id url width height mimeType } userErrors { field code } } }"
            )
            variables = {"input": {"productId": product_id, "file": None}}
            operations = {"query": query, "variables": variables}
            response = client.post(
                "/graphql",
                data={
                    "operations": json.dumps(operations),
                    "map": json.dumps({"0": ["variables.input.file"]}),
                },
                files={"0": ("photo.png", content, "image/png")},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 200, response.text
            assert "errors" not in response.json(), response.json()
            payload = response.json()["data"]["uploadImage"]
            assert payload["userErrors"] == [], payload
            image = payload["image"]
            assert (image["width"], image["height"], image["mimeType"]) == (80, 60, "image/png")
            assert image["url"].startswith(f"{server.base}/media/")

            # Read it back with a query that needs no token.
            back = client.post(
                "/graphql",
                json={
                    "query": "query($s: String!) { product(sku: $s) { name mainImage { id url } "
                    "images { id } } }",
                    "variables": {"s": "LIVE-1"},
                },
            ).json()
            assert back == {
                "data": {
                    "product": {
                        "name": "Live product",
                        "mainImage": {"id": image["id"], "url": image["url"]},
                        "images": [{"id": image["id"]}],
                    }
                }
            }

            media = client.get(image["url"])
            assert media.status_code == 200
            assert media.content == content
            assert media.headers["content-type"] == "image/png"
            assert media.headers["cache-control"] == "public, max-age=31536000, immutable"
            assert media.headers["x-content-type-options"] == "nosniff"
            etag = media.headers["etag"]
            assert etag

            cached = client.get(image["url"], headers={"If-None-Match": etag})
            assert cached.status_code == 304
            assert cached.content == b""

            part = client.get(image["url"], headers={"Range": "bytes=8-15"})
            assert part.status_code == 206
            assert part.content == content[8:16]
            assert part.headers["content-range"] == f"bytes 8-15/{len(content)}"
        assert server.process.poll() is None

    assert server.process.returncode is not None

    # A second start with the same files: same admin token, same data.
    with serve(tmp_path, "second") as again:
        assert admin_token(again) == token
        with httpx.Client(base_url=again.base, timeout=10.0) as client:
            data = graphql(client, token, '{ product(sku: "LIVE-1") { images { id } } }', {})
            assert data == {"product": {"images": [{"id": image["id"]}]}}
