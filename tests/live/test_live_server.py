"""The real thing: ``media-gateway serve`` as a subprocess on a free port of 127.0.0.1, spoken
to over TCP with httpx. It prints the GraphiQL URL and the admin token on stdout (stderr holds
only JSON log lines, none with the token), migrates a
fresh SQLite file, accepts a multipart upload and serves the stored original with its caching
headers; a second start with the same files prints the same saved admin token."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from support.media_factory import image_bytes
from support.server_process import TOKEN_LINE, GatewayProcess, running_gateway

pytestmark = pytest.mark.live

START_TIMEOUT = 20.0


def admin_token(server: GatewayProcess) -> str:
    banner = server.stdout()
    assert f"{server.base}/graphql" in banner, banner
    found = TOKEN_LINE.findall(banner)
    assert len(found) == 1, banner
    token: str = found[0]
    log = server.output()
    assert token not in log, log
    for line in log.splitlines():
        assert isinstance(json.loads(line), dict), line
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
    with running_gateway(tmp_path, "first", timeout=START_TIMEOUT) as server:
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
    with running_gateway(tmp_path, "second", timeout=START_TIMEOUT) as again:
        assert admin_token(again) == token
        with httpx.Client(base_url=again.base, timeout=10.0) as client:
            data = graphql(client, token, '{ product(sku: "LIVE-1") { images { id } } }', {})
            assert data == {"product": {"images": [{"id": image["id"]}]}}
