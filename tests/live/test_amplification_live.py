"""The output amplification request of the security review (one image, 100 000 rendition sizes
in a variable) against ``media-gateway serve``: refused before it runs, a small answer, and
/healthz keeps answering while such requests come in."""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from support.media_factory import image_bytes
from support.server_process import running_gateway

pytestmark = pytest.mark.live

AMPLIFIER = (
    "query($s:[RenditionSize!]){images(first:1000){edges{node{"
    "renditions(sizes:$s,format:WEBP){url url2x width height}}}}}"
)
BODY = json.dumps({"query": AMPLIFIER, "variables": {"s": ["ZOOM"] * 100_000}})
ROUNDS = 6


def _upload_image(client: httpx.Client, token: str) -> None:
    content = base64.b64encode(image_bytes("PNG", (64, 48), seed=4)).decode()
    response = client.post(
        "/graphql",
        json={
            "query": "mutation($i: UploadImageInput!) { uploadImage(input: $i) { "
            "image { id } userErrors { code } } }",
            "variables": {
                "i": {"productSku": "AMP-1", "base64": content, "filename": "a.png"},
            },
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.json()["data"]["uploadImage"]["userErrors"] == [], response.text


def _amplify(base: str) -> list[tuple[int, bytes]]:
    with httpx.Client(base_url=base, timeout=30.0) as client:
        return [
            (r.status_code, r.content)
            for r in (
                client.post("/graphql", content=BODY, headers={"Content-Type": "application/json"})
                for _ in range(ROUNDS)
            )
        ]


def test_amplification_is_refused_and_healthz_stays_answerable(tmp_path: Path) -> None:
    with running_gateway(tmp_path) as server:
        token = server.admin_token()
        with httpx.Client(base_url=server.base, timeout=30.0) as client:
            created = client.post(
                "/graphql",
                json={
                    "query": 'mutation { productCreate(input: {sku: "AMP-1", name: "A"}) '
                    "{ userErrors { code } } }"
                },
                headers={"Authorization": f"Bearer {token}"},
            )
            assert created.json()["data"]["productCreate"]["userErrors"] == []
            _upload_image(client, token)
            with ThreadPoolExecutor(max_workers=2) as pool:
                attacks = [pool.submit(_amplify, server.base) for _ in range(2)]
                health = [client.get("/healthz").status_code for _ in range(ROUNDS)]
                answers = [answer for attack in attacks for answer in attack.result()]
        assert health == [200] * ROUNDS
        assert len(answers) == 2 * ROUNDS
        for status, content in answers:
            assert status == 200
            assert len(content) < 1_000, content[:200]
            (error,) = json.loads(content)["errors"]
            assert error["extensions"]["code"] == "BAD_USER_INPUT", error
        assert server.process.poll() is None
