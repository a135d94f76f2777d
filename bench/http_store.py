"""The data of bench/http_bench.py: its GraphQL documents, a store seeded through the
gateway's API, the JSON snapshot of that store the reference server loads, and MP4 files
of any size for the upload scenario."""

from __future__ import annotations

import json
import os
import struct
import sys
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "tests") not in sys.path:
    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from support.media_factory import image_bytes, mp4_bytes  # noqa: E402

PUBLIC_URL = "http://media.bench.test"
"""The gateway's MEDIA_GATEWAY_PUBLIC_URL, so media URLs do not depend on its port."""

STOREFRONT = (
    "query { products(first: 20) { edges { node { id sku name mainImage { url width height } "
    "images { id url width height position renditions(sizes: [SMALL, LARGE]) "
    "{ url width height } } } } } }"
)
PRODUCT_PAGE = (
    "query($sku: String!) { product(sku: $sku) { id sku name mainImage { url width height } "
    "images { id url width height position alt renditions "
    "{ size url url2x width height mimeType } } "
    "videos { id url position mimeType fileSize width height durationSeconds } } }"
)
UPDATE_ALT = (
    "mutation($id: ID!, $alt: String) { updateImage(id: $id, input: { alt: $alt }) "
    "{ image { id alt } userErrors { code message } } }"
)
UPLOAD_VIDEO = (
    "mutation($input: UploadVideoInput!) { uploadVideo(input: $input) "
    "{ video { id fileSize } userErrors { code message } } }"
)
DELETE_VIDEOS = (
    "mutation($ids: [ID!]!) { deleteVideos(ids: $ids) { deletedIds userErrors { code } } }"
)
SNAPSHOT = (
    "query($first: Int!) { products(first: $first) { edges { node { id sku name "
    "mainImage { id } images { id url width height position alt renditions "
    "{ size url url2x width height mimeType } } "
    "videos { id url position mimeType fileSize width height durationSeconds } } } } }"
)
CREATE = (
    "mutation($i: ProductCreateInput!) { productCreate(input: $i) "
    "{ product { id } userErrors { code message } } }"
)
UPLOAD_IMAGES = (
    "mutation($input: UploadImagesInput!) { uploadImages(input: $input) "
    "{ images { id } userErrors { code message } } }"
)


class GraphQLClient:
    """POSTs to one server's /graphql, failing on any HTTP or GraphQL error."""

    def __init__(self, base: str, token: str | None = None, timeout: float = 120.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=base, headers=headers, timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def raw(self, query: str, variables: dict[str, Any] | None = None) -> bytes:
        response = self.http.post("/graphql", json={"query": query, "variables": variables})
        if response.status_code != 200 or b'"errors"' in response.content:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:500]}")
        return response.content

    def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.raw(query, variables))["data"]
        return data

    def upload(
        self, query: str, variables: dict[str, Any], files: dict[str, tuple[str, bytes, str]]
    ) -> dict[str, Any]:
        """A GraphQL multipart request; ``files`` maps a variable path such as
        "variables.input.file" to (name, bytes, type)."""
        paths = list(files)
        response = self.http.post(
            "/graphql",
            data={
                "operations": json.dumps({"query": query, "variables": variables}),
                "map": json.dumps({str(n): [path] for n, path in enumerate(paths)}),
            },
            files={str(n): files[path] for n, path in enumerate(paths)},
        )
        body = response.json()
        if response.status_code != 200 or body.get("errors"):
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:500]}")
        data: dict[str, Any] = body["data"]
        return data


def _no_user_errors(payload: dict[str, Any]) -> dict[str, Any]:
    if payload["userErrors"]:
        raise RuntimeError(f"user errors: {payload['userErrors']}")
    return payload


def seed(
    gateway: GraphQLClient,
    products: int = 20,
    images: int = 8,
    videos: int = 2,
    image_size: tuple[int, int] = (1000, 750),
) -> str:
    """``products`` products (BENCH-000...) of ``images`` JPEGs each; the first also gets
    ``videos`` small MP4s. Returns the first product's SKU (the product page's)."""
    for n in range(products):
        sku = f"BENCH-{n:03d}"
        create = gateway.data(CREATE, {"i": {"sku": sku, "name": f"Bench product {n}"}})
        _no_user_errors(create["productCreate"])
        files = {
            f"variables.input.files.{i}": (
                f"{sku}-{i}.jpg",
                image_bytes("JPEG", image_size, seed=1 + n * 100 + i),
                "image/jpeg",
            )
            for i in range(images)
        }
        variables: dict[str, Any] = {"input": {"productSku": sku, "files": [None] * images}}
        _no_user_errors(gateway.upload(UPLOAD_IMAGES, variables, files)["uploadImages"])
    first = "BENCH-000"
    for n in range(videos):
        clip = mp4_bytes(seconds=0.5 + n)
        variables = {"input": {"productSku": first, "file": None}}
        payload = gateway.upload(
            UPLOAD_VIDEO, variables, {"variables.input.file": (f"clip-{n}.mp4", clip, "video/mp4")}
        )
        _no_user_errors(payload["uploadVideo"])
    return first


def snapshot(gateway: GraphQLClient, path: Path, products: int = 100) -> None:
    """The gateway's products as the reference server's plain dicts: renditions keyed by size,
    the main image by its id."""
    edges = gateway.data(SNAPSHOT, {"first": products})["products"]["edges"]
    records = []
    for edge in edges:
        node = edge["node"]
        main = node.pop("mainImage")
        node["mainImageId"] = main["id"] if main else None
        for image in node["images"]:
            image["renditions"] = {r["size"]: r for r in image["renditions"]}
        records.append(node)
    path.write_text(json.dumps({"products": records}))


def write_mp4(path: Path, size: int, chunk: int = 8 * 1024 * 1024) -> None:
    """A playable MP4 (ftyp, mdat, moov of a short clip) followed by one more ``mdat`` box
    filling the file to ``size`` bytes, written in ``chunk``-sized pieces. The clip's sample
    offsets stay valid; the gateway's inspection reads only the boxes."""
    clip = mp4_bytes()
    padding = size - len(clip) - 8
    if padding < 0 or padding + 8 > 0xFFFF_FFFF:
        raise ValueError(f"cannot make an MP4 of {size} bytes this way")
    block = os.urandom(chunk)
    with path.open("wb") as sink:
        sink.write(clip)
        sink.write(struct.pack(">I4s", padding + 8, b"mdat"))
        while padding > 0:
            piece = block[: min(chunk, padding)]
            sink.write(piece)
            padding -= len(piece)
