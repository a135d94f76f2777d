"""The S3-compatible store (storage/blobs/s3.py, gateway/media/s3.py) against a real S3 server
on 127.0.0.1 (moto's ThreadedMotoServer): uploads, media GETs (Range, 304, HEAD), renditions,
shared bytes, deletion, refused uploads and gc."""

from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer
from PIL import Image

from gateway.settings import Settings
from storage.blobs.s3 import CACHE_DIRECTORY, S3BlobStore
from storage.gc import collect_garbage
from support.api import ERRORS, Api, api_with
from support.media_factory import image_bytes

BUCKET = "media"
PREFIX = "gw"

RENDITIONS = """query($id: ID!, $sizes: [RenditionSize!]) {
  image(id: $id) { renditions(sizes: $sizes) { size url width height mimeType } } }"""
DELETE = f"mutation($ids: [ID!]!) {{ deleteImages(ids: $ids) {{ deletedIds {ERRORS} }} }}"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A client of the server with an empty ``media`` bucket (the server's state reset)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("S3_ENDPOINT_URL", s3_endpoint)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    requests.post(f"{s3_endpoint}/moto-api/reset", timeout=10).raise_for_status()
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    return client


def objects(s3: Any) -> set[str]:
    listing = s3.list_objects_v2(Bucket=BUCKET)
    return {entry["Key"] for entry in listing.get("Contents", [])}


@pytest.fixture
async def api(settings: Settings, s3: Any) -> AsyncIterator[Api]:
    async with api_with(
        settings, "s3", storage_url=f"s3://{BUCKET}/{PREFIX}", warm_renditions=False
    ) as api:
        assert isinstance(api.backend.blobs, S3BlobStore)
        yield api


def path(url: str) -> str:
    return url.removeprefix("http://testserver")


async def upload(api: Api, sku: str, content: bytes) -> dict[str, Any]:
    product = await api.create_product(sku)
    payload = await api.upload_image(product["id"], content)
    assert payload["userErrors"] == [], payload
    image: dict[str, Any] = payload["image"]
    return image


def temp_files(api: Api) -> list[Path]:
    return [p for p in (api.media_root / ".tmp").glob("*") if p.is_file()]


async def test_upload_and_serve_from_s3(api: Api, s3: Any) -> None:
    content = image_bytes("PNG", (64, 48))
    image = await upload(api, "S3-1", content)
    key = image["url"].split("/media/", 1)[1]
    assert objects(s3) == {f"{PREFIX}/{key}"}
    assert image["checksum"] == hashlib.sha256(content).hexdigest()
    assert not (api.media_root / key).exists()  # nothing in the local store's layout

    response = await api.client.get(path(image["url"]))
    assert response.status_code == 200 and response.content == content
    assert response.headers["content-type"] == "image/png"
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["content-length"] == str(len(content))
    assert "last-modified" in response.headers
    etag = response.headers["etag"]

    partial = await api.client.get(path(image["url"]), headers={"Range": "bytes=0-9"})
    assert partial.status_code == 206 and partial.content == content[:10]
    assert partial.headers["content-range"] == f"bytes 0-9/{len(content)}"

    cached = await api.client.get(path(image["url"]), headers={"If-None-Match": etag})
    assert cached.status_code == 304 and cached.content == b""
    assert cached.headers["cache-control"].endswith("immutable")

    head = await api.client.head(path(image["url"]))
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(content))
    assert head.headers["content-type"] == "image/png"

    missing = key.replace(key.split("/")[1][:8], "00000000").replace(key[:2], "00", 1)
    for wrong in (missing, "%2e%2e/" + key, ".tmp/x", "gw/" + key):
        answer = await api.client.get(f"/media/{wrong}")
        assert answer.status_code == 404, wrong
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert (await api.client.post(path(image["url"]))).status_code == 405


IGNORED_RANGES = [
    "items=0-5",
    "bytes=5-2",
    "bytes=0-1, 5-2",
    "bytes=abc",
    "bytes=0-x",
    "bytes=--5",
    "bytes=1-2-3",
    "bytes=+1-5",
    "bytes=1_0-20",
    "bytes=0x10-",
    "bytes=\u0663-5",
    "bytes=",
    "bytes=, ,",
    "bytes",
    "",
    "=0-5",
    "bytes=" + ",".join(["0-0"] * 101),
    "bytes=0-1, 10-11",  # several ranges: S3 serves one at most
]


async def test_range_edge_cases(api: Api, s3: Any) -> None:
    content = image_bytes("PNG", (64, 48))
    url = path((await upload(api, "S3-RANGE", content))["url"])
    size = len(content)

    for field in IGNORED_RANGES:
        ignored = await api.client.get(url, headers={"Range": field.encode()})
        assert ignored.status_code == 200, (field, ignored.text)
        assert ignored.content == content, field
        assert "content-range" not in ignored.headers, field

    for field, start, end in [
        ("BYTES=0-9", 0, 10),
        ("bytes= 0-9 ,", 0, 10),
        (f"bytes={size - 10}-99999999999999999999999999", size - 10, size),
        ("bytes=-10", size - 10, size),
        ("bytes=-99999999999999999999999999", 0, size),
    ]:
        partial = await api.client.get(url, headers={"Range": field})
        assert partial.status_code == 206, (field, partial.text)
        assert partial.content == content[start:end], field
        assert partial.headers["content-range"] == f"bytes {start}-{end - 1}/{size}", field

    for field in (
        "bytes=999999999-",
        f"bytes={size}-",
        "bytes=99999999999999999999999999-",
        "bytes=-0",
    ):
        beyond = await api.client.get(url, headers={"Range": field})
        assert beyond.status_code == 416, (field, beyond.text)


async def test_renditions_are_generated_and_served(api: Api, s3: Any) -> None:
    image = await upload(api, "S3-R", image_bytes("JPEG", (1200, 900)))
    # A fresh process has no local copy: the original is downloaded for rendering.
    blobs = api.backend.blobs
    assert isinstance(blobs, S3BlobStore)
    (blobs.work_dir / CACHE_DIRECTORY / image["url"].split("/media/", 1)[1]).unlink()
    data = await api.data(RENDITIONS, {"id": image["id"], "sizes": ["SMALL"]})
    (small,) = data["image"]["renditions"]
    response = await api.client.get(path(small["url"]))
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(response.content)) as decoded:
        assert decoded.size == (small["width"], small["height"]) == (250, 188)
    rendition = f"{PREFIX}/{small['url'].split('/media/', 1)[1]}"
    assert rendition in objects(s3)
    generated = api.backend.renditions.generated
    assert (await api.client.get(path(small["url"]))).status_code == 200
    assert api.backend.renditions.generated == generated == 1


async def test_shared_bytes_are_one_object_deleted_with_the_last_image(api: Api, s3: Any) -> None:
    content = image_bytes("PNG", (300, 200))
    first = await upload(api, "S3-A", content)
    second = await upload(api, "S3-B", content)
    assert first["url"] == second["url"]
    key = first["url"].split("/media/", 1)[1]
    assert objects(s3) == {f"{PREFIX}/{key}"}
    (thumb,) = (await api.data(RENDITIONS, {"id": first["id"], "sizes": ["THUMBNAIL"]}))["image"][
        "renditions"
    ]
    assert (await api.client.get(path(thumb["url"]))).status_code == 200
    assert len(objects(s3)) == 2

    deleted = await api.data(DELETE, {"ids": [first["id"]]})
    assert deleted["deleteImages"]["userErrors"] == []
    assert f"{PREFIX}/{key}" in objects(s3)  # the other product still has it
    assert (await api.client.get(path(first["url"]))).status_code == 200

    deleted = await api.data(DELETE, {"ids": [second["id"]]})
    assert deleted["deleteImages"]["userErrors"] == []
    assert objects(s3) == set()
    assert (await api.client.get(path(first["url"]))).status_code == 404
    assert (await api.client.get(path(thumb["url"]))).status_code == 404


async def test_refused_upload_leaves_no_object_and_no_temp_file(api: Api, s3: Any) -> None:
    product = await api.create_product("S3-X")
    payload = await api.upload_image(product["id"], b"not an image at all")
    assert payload["image"] is None and payload["userErrors"]
    too_big = image_bytes("PNG", (64, 48)) + b"\0" * (11 * 1024 * 1024)
    payload = await api.upload_image(product["id"], too_big)
    assert payload["userErrors"][0]["code"] == "FILE_TOO_LARGE"
    assert objects(s3) == set()
    assert temp_files(api) == []


async def test_gc_removes_an_unreferenced_object(api: Api, s3: Any) -> None:
    kept = await upload(api, "S3-G", image_bytes("PNG", (40, 40)))
    stray = image_bytes("PNG", (50, 50), color=(1, 2, 3))
    digest = hashlib.sha256(stray).hexdigest()
    stray_key = f"{digest[:2]}/{digest}.png"
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{stray_key}", Body=stray)
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/r/{digest[:2]}/{digest}/100.png", Body=b"r")
    orphan = "ab" + "1" * 62
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/r/ab/{orphan}/100.png", Body=b"r")

    result = await collect_garbage(api.backend)
    assert result.blobs == [stray_key]
    assert result.renditions == [f"r/ab/{orphan}"]
    kept_key = kept["url"].split("/media/", 1)[1]
    assert objects(s3) == {f"{PREFIX}/{kept_key}"}


async def test_gc_counts_the_bytes_it_frees(api: Api, s3: Any) -> None:
    kept = await upload(api, "S3-F", image_bytes("JPEG", (600, 400)))
    (thumb,) = (await api.data(RENDITIONS, {"id": kept["id"], "sizes": ["THUMBNAIL"]}))["image"][
        "renditions"
    ]
    assert (await api.client.get(path(thumb["url"]))).status_code == 200  # kept, not counted
    stray = image_bytes("PNG", (50, 50), color=(4, 5, 6))
    digest = hashlib.sha256(stray).hexdigest()
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{digest[:2]}/{digest}.png", Body=stray)
    for name, body in (("100.png", b"rendition"), ("250.png", b"another one")):
        s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/r/{digest[:2]}/{digest}/{name}", Body=body)
    orphan = "cd" + "2" * 62
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/r/cd/{orphan}/100.png", Body=b"orphaned")
    expected = len(stray) + len(b"rendition") + len(b"another one") + len(b"orphaned")

    dry = await collect_garbage(api.backend, dry_run=True)
    assert dry.freed_bytes == expected
    before = objects(s3)
    assert len(before) == 6
    done = await collect_garbage(api.backend)
    assert done.freed_bytes == expected
    assert len(done.blobs) == len(done.renditions) == 1
    assert objects(s3) == {o for o in before if digest not in o and orphan not in o}
    assert (await collect_garbage(api.backend)).freed_bytes == 0


async def test_readiness_checks_the_bucket(api: Api, s3: Any) -> None:
    await api.backend.blobs.check()
    assert objects(s3) == set()
    response = await api.client.get("/readyz")
    assert response.status_code == 200, response.text
