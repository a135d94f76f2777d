"""Real clients against the real gateway: ``media-gateway serve`` as a subprocess on a free
port of 127.0.0.1 (fresh SQLite file and media root, an admin token from
MEDIA_GATEWAY_ADMIN_TOKEN, URL fetches allowed to 127.0.0.1), reached by

- Node: ``@apollo/client`` with ``apollo-upload-client`` (tests/clients/node/upload.mjs),
  a GraphQL multipart upload from a ``File`` built from a file on disk;
- Python ``gql`` with its HTTPX transport: uploads (``FileVar``) and a query;
- the ERP script examples/erp_sync.py (plain ``requests``, a JSON body, ``Authorization:
  Token …``, the whole image list of one SKU per ``syncImages`` call) against a local image
  server that counts its hits.

Every result is checked again through a separate plain HTTP query, and stored media through
a GET of their URL. The Node test needs Node (20.9 or later) and npm; ``npm ci`` installs
tests/clients/node/package-lock.json when node_modules is missing or stale."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from gql import Client, FileVar, GraphQLRequest, gql
from gql.transport.httpx import HTTPXTransport

from support.image_server import ImageServer, running_server
from support.media_factory import image_bytes
from support.npm import ensure_installed
from support.server_process import running_gateway

pytestmark = pytest.mark.live

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
NODE_DIR = HERE / "node"
ERP_SYNC = ROOT / "examples" / "erp_sync.py"
NODE_PINNED = ("@apollo/client", "apollo-upload-client", "graphql", "rxjs", "extract-files")
ADMIN_TOKEN = "mgw_real-clients-admin-token"

CLIENT_TIMEOUT = 120.0

PRODUCT_IMAGES = """
query($sku: String!) {
  product(sku: $sku) {
    id sku mainImage { id }
    images { id url position isMain imageType source width height mimeType fileSize checksum }
    downloadableImages {
      url position imageType status error image { id width height checksum }
    }
  }
}
"""


# The gateway -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gateway:
    url: str
    """The GraphQL endpoint."""
    token: str
    """A write token (the admin token)."""

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """A plain JSON POST, independent of the clients under test."""
        response = httpx.post(
            self.url,
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {self.token}", "Accept": "application/json"},
            timeout=30.0,
        )
        body: dict[str, Any] = response.json()
        assert response.status_code == 200 and "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data

    def create_product(self, sku: str) -> str:
        data = self.graphql(
            "mutation($input: ProductCreateInput!) { productCreate(input: $input) { "
            "product { id } userErrors { field code message } } }",
            {"input": {"sku": sku, "name": f"Product {sku}"}},
        )
        payload = data["productCreate"]
        assert payload["userErrors"] == [], payload
        product_id: str = payload["product"]["id"]
        return product_id

    def product(self, sku: str) -> dict[str, Any]:
        product: dict[str, Any] = self.graphql(PRODUCT_IMAGES, {"sku": sku})["product"]
        assert product is not None, sku
        return product


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A running ``media-gateway serve``, stopped after the module."""
    root = tmp_path_factory.mktemp("clients-gateway")
    with running_gateway(
        root, "server", ADMIN_TOKEN=ADMIN_TOKEN, FETCH_ALLOW_HOSTS="127.0.0.1"
    ) as server:
        yield Gateway(url=f"{server.base}/graphql", token=ADMIN_TOKEN)


def fetch(url: str) -> bytes:
    response = httpx.get(url, timeout=30.0)
    assert response.status_code == 200, (url, response.status_code)
    return response.content


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# Node: @apollo/client + apollo-upload-client -------------------------------------------------


@pytest.fixture(scope="module")
def node() -> str:
    found = {name: shutil.which(name) for name in ("node", "npm")}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        pytest.skip(
            f"{' and '.join(missing)} not on PATH: the apollo-upload-client test needs "
            "Node.js 20.9+ and npm"
        )
    node, npm = found["node"], found["npm"]
    assert node is not None and npm is not None
    ensure_installed(npm, NODE_DIR, NODE_PINNED)
    return node


def run_node_upload(
    node: str, gateway: Gateway, sku: str, path: Path, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [node, str(NODE_DIR / "upload.mjs"), gateway.url, token or gateway.token, sku, str(path)],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT,
    )


def test_apollo_upload_client_uploads_and_reads_back(
    node: str, gateway: Gateway, tmp_path: Path
) -> None:
    sku = "NODE-1"
    product_id = gateway.create_product(sku)
    # 120x80 stored sideways (EXIF orientation 6): upright it is 80 wide and 120 high.
    content = image_bytes("JPEG", size=(120, 80), orientation=6, seed=11)
    path = tmp_path / "chair.jpg"
    path.write_bytes(content)

    result = run_node_upload(node, gateway, sku, path)
    assert result.returncode == 0, f"upload.mjs failed:\n{result.stdout}\n{result.stderr}"
    out = json.loads(result.stdout)

    payload = out["upload"]
    assert payload["userErrors"] == []
    image = payload["image"]
    assert (image["width"], image["height"]) == (80, 120)
    assert image["mimeType"] == "image/jpeg"
    assert image["source"] == "UPLOAD"
    assert (image["position"], image["isMain"]) == (0, True)
    assert image["fileSize"] == len(content)
    assert image["checksum"] == sha256(content)

    # The client's own follow-up query sees it...
    product = out["product"]
    assert product["id"] == product_id
    assert [i["id"] for i in product["images"]] == [image["id"]]
    assert product["mainImage"]["id"] == image["id"]
    # ...and so does an independent request, and the URL serves the exact bytes.
    (stored,) = gateway.product(sku)["images"]
    assert stored["id"] == image["id"]
    assert (stored["width"], stored["height"], stored["fileSize"]) == (80, 120, len(content))
    assert fetch(stored["url"]) == content

    # A second file is appended after the first.
    second = tmp_path / "side.png"
    second.write_bytes(image_bytes("PNG", size=(64, 48), seed=12))
    result = run_node_upload(node, gateway, sku, second)
    assert result.returncode == 0, result.stderr
    again = json.loads(result.stdout)
    assert again["upload"]["image"]["position"] == 1
    assert [(i["width"], i["height"]) for i in again["product"]["images"]] == [
        (80, 120),
        (64, 48),
    ]


def test_apollo_upload_client_reports_user_errors_and_auth_failures(
    node: str, gateway: Gateway, tmp_path: Path
) -> None:
    sku = "NODE-2"
    gateway.create_product(sku)
    path = tmp_path / "a.png"
    path.write_bytes(image_bytes("PNG", seed=21))
    assert run_node_upload(node, gateway, sku, path).returncode == 0

    # The same bytes twice on one product: a userError, exit 1, nothing added.
    duplicate = run_node_upload(node, gateway, sku, path)
    assert duplicate.returncode == 1, duplicate.stderr
    payload = json.loads(duplicate.stdout)["upload"]
    assert payload["image"] is None
    assert [e["code"] for e in payload["userErrors"]] == ["DUPLICATE"]
    assert len(gateway.product(sku)["images"]) == 1

    # A token the gateway does not know: a top-level UNAUTHENTICATED error.
    refused = run_node_upload(node, gateway, sku, path, token="mgw_not-a-token")
    assert refused.returncode == 1
    assert "UNAUTHENTICATED" in refused.stderr, refused.stderr
    assert len(gateway.product(sku)["images"]) == 1


# Python: gql with its HTTPX transport --------------------------------------------------------


UPLOAD_IMAGE = gql(
    """
    mutation Upload($input: UploadImageInput!) {
      uploadImage(input: $input) {
        image { id url position isMain width height mimeType fileSize checksum source alt }
        userErrors { field code message }
      }
    }
    """
)
UPLOAD_IMAGES = gql(
    """
    mutation UploadMany($input: UploadImagesInput!) {
      uploadImages(input: $input) {
        images { id position width height mimeType checksum }
        userErrors { field code message }
      }
    }
    """
)
GQL_PRODUCT = gql(
    """
    query Product($sku: String!) {
      product(sku: $sku) {
        sku
        mainImage { id }
        images {
          id position width height checksum
          renditions(sizes: [THUMBNAIL]) { size width height url }
        }
      }
    }
    """
)


@pytest.fixture
def gql_client(gateway: Gateway) -> Client:
    transport = HTTPXTransport(
        url=gateway.url, headers={"Authorization": f"Bearer {gateway.token}"}, timeout=60
    )
    return Client(transport=transport)


def test_gql_uploads_and_queries(gateway: Gateway, gql_client: Client, tmp_path: Path) -> None:
    sku = "GQL-1"
    gateway.create_product(sku)
    front = image_bytes("WEBP", size=(300, 200), seed=31)
    (tmp_path / "front.webp").write_bytes(front)
    extra = [image_bytes("PNG", size=(40, 90), seed=32), image_bytes("GIF", size=(50, 50), seed=33)]
    for index, content in enumerate(extra):
        (tmp_path / f"extra-{index}.bin").write_bytes(content)

    with gql_client as session:
        upload = GraphQLRequest(
            UPLOAD_IMAGE,
            variable_values={
                "input": {
                    "productSku": sku,
                    "file": FileVar(str(tmp_path / "front.webp"), content_type="image/webp"),
                    "alt": "Front",
                }
            },
        )
        result = session.execute(upload, upload_files=True)
        payload = result["uploadImage"]
        assert payload["userErrors"] == []
        image = payload["image"]
        assert (image["width"], image["height"], image["mimeType"]) == (300, 200, "image/webp")
        assert (image["position"], image["source"], image["alt"]) == (0, "UPLOAD", "Front")
        assert image["checksum"] == sha256(front)

        # Several files in one multipart request, appended in order.
        files = [FileVar(str(tmp_path / f"extra-{i}.bin")) for i in range(len(extra))]
        upload_many = GraphQLRequest(
            UPLOAD_IMAGES, variable_values={"input": {"productSku": sku, "files": files}}
        )
        many = session.execute(upload_many, upload_files=True)["uploadImages"]
        assert many["userErrors"] == []
        assert [(i["position"], i["width"], i["height"]) for i in many["images"]] == [
            (1, 40, 90),
            (2, 50, 50),
        ]
        assert [i["mimeType"] for i in many["images"]] == ["image/png", "image/gif"]

        query = GraphQLRequest(GQL_PRODUCT, variable_values={"sku": sku})
        product = session.execute(query)["product"]

    assert product["sku"] == sku
    assert product["mainImage"] == {"id": image["id"]}
    assert [i["checksum"] for i in product["images"]] == [sha256(front)] + [
        sha256(c) for c in extra
    ]
    (thumbnail,) = product["images"][0]["renditions"]
    assert thumbnail["size"] == "THUMBNAIL"
    assert max(thumbnail["width"], thumbnail["height"]) <= 300
    assert fetch(thumbnail["url"])  # generated on request
    assert fetch(image["url"]) == front
    stored = gateway.product(sku)["images"]
    assert [(i["width"], i["height"]) for i in stored] == [(300, 200), (40, 90), (50, 50)]


# The seed-style ERP script: examples/erp_sync.py --------------------------------------------


@pytest.fixture
def image_server() -> Iterator[ImageServer]:
    yield from running_server()


def erp_sync(
    gateway: Gateway, *args: str, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIA_GATEWAY_")}
    env.update(MEDIA_GATEWAY_URL=gateway.url, MEDIA_GATEWAY_TOKEN=token or gateway.token)
    return subprocess.run(
        [sys.executable, str(ERP_SYNC), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT,
    )


def synced(gateway: Gateway, sku: str) -> list[tuple[str, int, str, str]]:
    """(url, position, imageType, status) of the product's downloadable images."""
    return [
        (d["url"], d["position"], d["imageType"], d["status"])
        for d in gateway.product(sku)["downloadableImages"]
    ]


def test_erp_script_syncs_and_a_rerun_downloads_nothing(
    gateway: Gateway, image_server: ImageServer
) -> None:
    sku = "ERP-1"
    gateway.create_product(sku)
    bodies = {
        "/erp/1.png": image_bytes("PNG", size=(200, 100), seed=41),
        "/erp/2.jpg": image_bytes("JPEG", size=(90, 160), seed=42),
        "/erp/3.webp": image_bytes("WEBP", size=(64, 64), seed=43),
    }
    one, two, three = (image_server.serve(path, body) for path, body in bodies.items())

    first = erp_sync(gateway, sku, one, f"swatch={two}", three)
    assert first.returncode == 0, f"{first.stdout}\n{first.stderr}"
    assert first.stdout.splitlines()[0] == f"{sku}: 3 image(s) synced"
    assert "200x100" in first.stdout and "90x160" in first.stdout
    assert all(image_server.hits[path] == 1 for path in bodies), image_server.hits
    assert synced(gateway, sku) == [
        (one, 0, "DEFAULT", "DOWNLOADED"),
        (two, 1, "SWATCH", "DOWNLOADED"),
        (three, 2, "DEFAULT", "DOWNLOADED"),
    ]
    product = gateway.product(sku)
    assert [(i["width"], i["height"], i["source"]) for i in product["images"]] == [
        (200, 100, "URL"),
        (90, 160, "URL"),
        (64, 64, "URL"),
    ]
    assert [i["checksum"] for i in product["images"]] == [sha256(b) for b in bodies.values()]
    image_ids = [i["id"] for i in product["images"]]

    # The same list again: nothing is downloaded, the same images stay.
    hits = image_server.total_hits
    rerun = erp_sync(gateway, sku, one, f"swatch={two}", three)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout == first.stdout
    assert image_server.total_hits == hits
    assert [i["id"] for i in gateway.product(sku)["images"]] == image_ids

    # A new order and a dropped URL: still nothing downloaded, the dropped image is deleted.
    reordered = erp_sync(gateway, sku, three, one)
    assert reordered.returncode == 0, reordered.stderr
    assert reordered.stdout.splitlines()[0] == f"{sku}: 2 image(s) synced"
    assert image_server.total_hits == hits
    assert synced(gateway, sku) == [
        (three, 0, "DEFAULT", "DOWNLOADED"),
        (one, 1, "DEFAULT", "DOWNLOADED"),
    ]
    assert [i["id"] for i in gateway.product(sku)["images"]] == [image_ids[2], image_ids[0]]


def test_erp_script_sends_the_seed_json_body_format(
    gateway: Gateway, image_server: ImageServer, tmp_path: Path
) -> None:
    sku = "ERP-2"
    gateway.create_product(sku)
    a = image_server.serve("/json/a.png", image_bytes("PNG", size=(30, 20), seed=51))
    b = image_server.serve("/json/b.png", image_bytes("PNG", size=(20, 30), seed=52))
    # The body an ERP already posts to REST downloadable-image endpoints, sent as is.
    export = tmp_path / "product.json"
    export.write_text(
        json.dumps(
            {
                "product_sku": sku,
                "images": [
                    {"url": b, "order": 1},
                    {"url": a, "order": 0, "image_type": "swatch"},
                ],
            }
        )
    )
    result = erp_sync(gateway, "--from-json", str(export))
    assert result.returncode == 0, result.stderr
    assert synced(gateway, sku) == [(a, 0, "SWATCH", "DOWNLOADED"), (b, 1, "DEFAULT", "DOWNLOADED")]

    # An empty list deletes them all.
    emptied = erp_sync(gateway, sku)
    assert emptied.returncode == 0, emptied.stderr
    assert emptied.stdout.splitlines() == [f"{sku}: 0 image(s) synced"]
    product = gateway.product(sku)
    assert product["downloadableImages"] == [] and product["images"] == []


def test_erp_script_exits_non_zero_on_user_errors(
    gateway: Gateway, image_server: ImageServer
) -> None:
    sku = "ERP-3"
    gateway.create_product(sku)
    good = image_server.serve("/fail/good.png", image_bytes("PNG", seed=61))
    assert erp_sync(gateway, sku, good).returncode == 0
    before = gateway.product(sku)

    missing = image_server.url("/fail/missing.png")
    result = erp_sync(gateway, sku, good, missing)
    assert result.returncode == 1, f"{result.stdout}\n{result.stderr}"
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == f"{sku}: refused, nothing changed"
    assert lines[1].split()[:2] == ["DOWNLOAD_FAILED", "images.1.url:"]
    assert "404" in lines[1]
    assert image_server.hits["/fail/missing.png"] == 1
    assert gateway.product(sku) == before  # all or nothing

    # An unknown SKU (sync never creates products) is a userError too.
    unknown = erp_sync(gateway, "NO-SUCH-SKU", good)
    assert unknown.returncode == 1
    assert "NOT_FOUND" in unknown.stderr


def test_erp_script_reports_a_bad_token(gateway: Gateway, image_server: ImageServer) -> None:
    sku = "ERP-4"
    gateway.create_product(sku)
    url = image_server.serve("/token/a.png", image_bytes("PNG", seed=71))
    result = erp_sync(gateway, sku, url, token="mgw_unknown")
    assert result.returncode == 2
    assert "UNAUTHENTICATED" in result.stderr, result.stderr
    assert image_server.total_hits == 0
    assert gateway.product(sku)["downloadableImages"] == []
