"""The /media route over HTTP: caching headers, ranges, 304, and nothing but blob keys."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import Message, Scope

from gateway.media import MediaFiles
from storage.blobs import LocalBlobStore, blob_key

pytestmark = pytest.mark.anyio

IMMUTABLE = "public, max-age=31536000, immutable"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "media")


@pytest.fixture
def app(store: LocalBlobStore) -> Starlette:
    return Starlette(routes=[Mount("/media", MediaFiles(directory=store.root))])


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


async def put(store: LocalBlobStore, data: bytes, extension: str) -> str:
    async def chunks() -> AsyncIterator[bytes]:
        yield data

    temp = await store.receive(chunks(), limit=len(data))
    key = blob_key(temp.sha256, extension)
    await store.commit(temp, key)
    return key


def assert_not_found(response: httpx.Response) -> None:
    assert response.status_code == 404
    assert response.text == ("" if response.request.method == "HEAD" else "Not Found")
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "cache-control" not in response.headers


async def test_get_serves_blob_with_immutable_headers(
    client: httpx.AsyncClient, store: LocalBlobStore
) -> None:
    data = b"\x89PNG\r\n\x1a\n" + os.urandom(2000)
    key = await put(store, data, "png")
    response = await client.get(f"/media/{key}")
    assert response.status_code == 200
    assert response.content == data
    headers = response.headers
    assert headers["cache-control"] == IMMUTABLE
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["content-type"] == "image/png"
    assert headers["accept-ranges"] == "bytes"
    assert headers["content-length"] == str(len(data))
    assert headers["etag"].startswith('"')
    assert "last-modified" in headers


@pytest.mark.parametrize(
    ("extension", "content_type"),
    [
        ("jpg", "image/jpeg"),
        ("gif", "image/gif"),
        ("webp", "image/webp"),
        ("avif", "image/avif"),
        ("mp4", "video/mp4"),
    ],
)
async def test_content_type_comes_from_the_key(
    client: httpx.AsyncClient, store: LocalBlobStore, extension: str, content_type: str
) -> None:
    key = await put(store, f"bytes of a {extension}".encode(), extension)
    response = await client.get(f"/media/{key}")
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type


async def test_head(client: httpx.AsyncClient, store: LocalBlobStore) -> None:
    data = os.urandom(3000)
    key = await put(store, data, "jpg")
    get = await client.get(f"/media/{key}")
    response = await client.head(f"/media/{key}")
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(len(data))
    assert response.headers["etag"] == get.headers["etag"]
    assert response.headers["cache-control"] == IMMUTABLE
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-type"] == "image/jpeg"


async def test_range_gives_partial_content(
    client: httpx.AsyncClient, store: LocalBlobStore
) -> None:
    data = os.urandom(5000)
    key = await put(store, data, "mp4")
    response = await client.get(f"/media/{key}", headers={"Range": "bytes=0-9"})
    assert response.status_code == 206
    assert response.content == data[:10]
    assert response.headers["content-range"] == f"bytes 0-9/{len(data)}"
    assert response.headers["content-length"] == "10"
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["cache-control"] == IMMUTABLE
    assert response.headers["x-content-type-options"] == "nosniff"

    tail = await client.get(f"/media/{key}", headers={"Range": "bytes=-100"})
    assert tail.status_code == 206
    assert tail.content == data[-100:]

    several = await client.get(f"/media/{key}", headers={"Range": "bytes=0-1, 10-11"})
    assert several.status_code == 206
    assert several.headers["content-type"].startswith("multipart/byteranges; boundary=")
    assert b"Content-Type: video/mp4" in several.content

    beyond = await client.get(f"/media/{key}", headers={"Range": f"bytes={len(data)}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(data)}"


IGNORED_RANGES = [
    pytest.param("items=0-5", id="other-unit"),
    pytest.param("bytes=5-2", id="reversed"),
    pytest.param("bytes=0-1, 5-2", id="one-reversed"),
    pytest.param("bytes=abc", id="garbage"),
    pytest.param("bytes=0-x", id="garbage-end"),
    pytest.param("bytes=--5", id="double-dash"),
    pytest.param("bytes=1-2-3", id="three-numbers"),
    pytest.param("bytes=+1-5", id="signed"),
    pytest.param("bytes=1_0-20", id="underscore"),
    pytest.param("bytes=0x10-", id="hex"),
    pytest.param("bytes=\u0663-5", id="non-ascii-digit"),
    pytest.param("bytes=", id="no-range"),
    pytest.param("bytes=, ,", id="empty-elements"),
    pytest.param("bytes", id="no-equals"),
    pytest.param("", id="empty"),
    pytest.param("=0-5", id="no-unit"),
    pytest.param("bytes=" + ",".join(["0-0"] * 101), id="too-many"),
]


@pytest.mark.parametrize("field", IGNORED_RANGES)
async def test_a_range_field_that_cannot_be_used_is_ignored(
    client: httpx.AsyncClient, store: LocalBlobStore, field: str
) -> None:
    data = os.urandom(5000)
    key = await put(store, data, "mp4")
    response = await client.get(f"/media/{key}", headers={"Range": field.encode()})
    assert response.status_code == 200, response.text
    assert response.content == data
    assert "content-range" not in response.headers
    assert response.headers["cache-control"] == IMMUTABLE


@pytest.mark.parametrize(
    ("field", "start", "end"),
    [
        pytest.param("BYTES=0-9", 0, 10, id="unit-case"),
        pytest.param("bytes= 0-9 ,", 0, 10, id="spaces-and-empty-element"),
        pytest.param("bytes=4990-99999999999999999999999999", 4990, 5000, id="huge-last"),
        pytest.param("bytes=0-3, 2-9", 0, 10, id="overlapping-merged"),
        pytest.param("bytes=-99999999999999999999999999", 0, 5000, id="huge-suffix"),
    ],
)
async def test_valid_ranges_give_partial_content(
    client: httpx.AsyncClient, store: LocalBlobStore, field: str, start: int, end: int
) -> None:
    data = os.urandom(5000)
    key = await put(store, data, "mp4")
    response = await client.get(f"/media/{key}", headers={"Range": field})
    assert response.status_code == 206, response.text
    assert response.content == data[start:end]
    assert response.headers["content-range"] == f"bytes {start}-{end - 1}/{len(data)}"


@pytest.mark.parametrize(
    "field",
    [
        "bytes=999999999-",
        "bytes=5000-5001",
        "bytes=-0",
        "bytes=99999999999999999999999999-",
        "bytes=5000-, 6000-7000",
    ],
)
async def test_ranges_past_the_end_are_416(
    client: httpx.AsyncClient, store: LocalBlobStore, field: str
) -> None:
    data = os.urandom(5000)
    key = await put(store, data, "mp4")
    response = await client.get(f"/media/{key}", headers={"Range": field})
    assert response.status_code == 416, response.text
    assert response.headers["content-range"] == f"bytes */{len(data)}"


async def test_if_none_match_gives_not_modified(
    client: httpx.AsyncClient, store: LocalBlobStore
) -> None:
    key = await put(store, os.urandom(1000), "webp")
    etag = (await client.get(f"/media/{key}")).headers["etag"]
    response = await client.get(f"/media/{key}", headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    assert response.headers["cache-control"] == IMMUTABLE
    assert response.headers["x-content-type-options"] == "nosniff"
    other = await client.get(f"/media/{key}", headers={"If-None-Match": '"other"'})
    assert other.status_code == 200


async def test_unknown_key_is_not_found(client: httpx.AsyncClient) -> None:
    key = blob_key(hashlib.sha256(b"never stored").hexdigest(), "jpg")
    assert_not_found(await client.get(f"/media/{key}"))
    assert_not_found(await client.head(f"/media/{key}"))


async def test_post_is_not_allowed(client: httpx.AsyncClient, store: LocalBlobStore) -> None:
    key = await put(store, b"bytes", "jpg")
    response = await client.post(f"/media/{key}", content=b"x")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert store.path_for(key).read_bytes() == b"bytes"


async def test_traversal_attempts_are_not_found(
    client: httpx.AsyncClient, store: LocalBlobStore, tmp_path: Path
) -> None:
    key = await put(store, b"stored", "jpg")
    outside = tmp_path / "secret.jpg"
    outside.write_bytes(b"secret")
    folder, name = key.split("/")
    temp = await store.receive(_one(b"in flight"), limit=100)

    outside_the_mount = await client.get("/media/../pyproject.toml")
    assert outside_the_mount.status_code == 404
    for path in [
        "/media/%2e%2e/%2e%2e/etc/passwd",
        "/media/ab%2f..%2f..%2fx",
        f"/media/.tmp/{temp.path.name}",
        f"/media//{key}",
        f"/media/{folder}%2f{name}",
        f"/media/{folder}/%2e/{name}",
        f"/media/{folder}/{name[:-4]}%2ejpg",
        f"/media/{key.upper()}",
        f"/media/{key}/",
        f"/media/{outside}",
        "/media/",
        "/media/etc/passwd",
    ]:
        response = await client.get(path)
        assert response.status_code == 404, path
        assert_not_found(response)


async def test_key_shaped_symlink_out_of_root_is_not_followed(
    client: httpx.AsyncClient, store: LocalBlobStore, tmp_path: Path
) -> None:
    outside = tmp_path / "secret.jpg"
    outside.write_bytes(b"secret")
    key = blob_key(hashlib.sha256(b"secret").hexdigest(), "jpg")
    link = store.path_for(key)
    link.parent.mkdir(parents=True)
    link.symlink_to(outside)
    assert link.read_bytes() == b"secret"
    assert_not_found(await client.get(f"/media/{key}"))

    folder_link = store.root / key.split("/")[0]
    link.unlink()
    folder_link.rmdir()
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / key.split("/")[1]).write_bytes(b"secret")
    folder_link.symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    assert_not_found(await client.get(f"/media/{key}"))


@pytest.mark.parametrize(
    "raw_path",
    [
        "/media/../pyproject.toml",
        "/media/../../etc/passwd",
        "/media/ab/../../x",
        "/media//etc/passwd",
        "/media/.tmp/x.part",
        "/media/00/../00/00" + "0" * 62 + ".jpg",
        "/media/00/./00" + "0" * 62 + ".jpg",
    ],
)
async def test_raw_asgi_paths_are_answered_by_media_files(
    store: LocalBlobStore, raw_path: str
) -> None:
    """Paths as a server may pass them, without the client's dot-segment removal."""
    media = MediaFiles(directory=store.root)
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": raw_path,
        "raw_path": raw_path.encode(),
        "root_path": "/media",
        "query_string": b"",
        "headers": [],
        "server": ("test", 80),
        "client": ("127.0.0.1", 1234),
    }
    messages: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        messages.append(message)

    await media(scope, receive, send)
    assert messages[0]["status"] == 404
    assert (b"x-content-type-options", b"nosniff") in messages[0]["headers"]
    assert messages[1]["body"] == b"Not Found"


def test_symlinks_are_not_followed_by_configuration(store: LocalBlobStore) -> None:
    assert MediaFiles(directory=store.root).follow_symlink is False


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data
