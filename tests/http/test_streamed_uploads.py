"""Multipart bodies parsed as they stream in (gateway/multipart.py): a file part is written to
disk once, as the very file that becomes its blob; a part over the largest file limit is
refused before the rest of the body is read; and no failure leaves a temporary file behind."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.types import Message

from gateway.settings import Settings
from storage.blobs import TempWriter
from support.api import ERRORS, IMAGE_FIELDS, VIDEO_FIELDS, Api, api_with
from support.media_factory import image_bytes, mp4_bytes

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024
BOUNDARY = "streamed-upload-boundary"
UPLOAD_IMAGE = (
    "mutation($input: UploadImageInput!) { uploadImage(input: $input) { "
    f"image {{ {IMAGE_FIELDS} }} {ERRORS} }} }}"
)
UPLOAD_VIDEO = (
    "mutation($input: UploadVideoInput!) { uploadVideo(input: $input) { "
    f"video {{ {VIDEO_FIELDS} }} {ERRORS} }} }}"
)


def temp_files(api: Api) -> list[Path]:
    return list((api.media_root / ".tmp").glob("*"))


def text_part(name: str, value: str) -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
    ).encode()


def file_head(name: str, filename: str = "clip.mp4") -> bytes:
    return (
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; "
        f'name="{name}"; filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
    ).encode()


CLOSING = f"\r\n--{BOUNDARY}--\r\n".encode()


def video_head(product: str) -> bytes:
    """The operations and map of an ``uploadVideo`` with its file in part ``0``, and the head
    of that part: the file's bytes follow."""
    operations = {"query": UPLOAD_VIDEO, "variables": {"input": {"productId": product}}}
    operations["variables"]["input"]["file"] = None
    return (
        text_part("operations", json.dumps(operations))
        + text_part("map", json.dumps({"0": ["variables.input.file"]}))
        + file_head("0")
    )


async def post_multipart(api: Api, body: bytes | AsyncIterator[bytes]) -> httpx.Response:
    return await api.client.post(
        "/graphql",
        content=body,
        headers={
            **api.headers(),
            "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
        },
    )


@pytest.fixture
def temporaries(api: Api, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[Path, int]]]:
    """Every temporary blob the store creates, as (path, inode), and a check that nothing
    streams bytes into the store a second time (``receive`` copies a stream to a new one)."""
    made: list[tuple[Path, int]] = []
    store = api.backend.blobs
    real = store.new_temporary

    def new_temporary(*, limit: int) -> TempWriter:
        writer = real(limit=limit)
        made.append((writer.path, writer.path.stat().st_ino))
        return writer

    async def receive(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("an uploaded file was copied into another temporary blob")

    monkeypatch.setattr(store, "new_temporary", new_temporary)
    monkeypatch.setattr(store, "receive", receive)
    yield made


@pytest.mark.parametrize("kind", ["image", "video"])
async def test_the_file_part_is_written_once_as_the_file_of_its_blob(
    api: Api, temporaries: list[tuple[Path, int]], kind: str
) -> None:
    product = (await api.create_product("ONCE-1"))["id"]
    if kind == "image":
        content, query, type_ = image_bytes("PNG", (300, 200), seed=1), UPLOAD_IMAGE, "image/png"
    else:
        content, query, type_ = mp4_bytes(seconds=1.0), UPLOAD_VIDEO, "video/mp4"
    response = await api.upload(
        query,
        {"input": {"productId": product, "file": None}},
        {"variables.input.file": (f"f.{kind}", content, type_)},
    )
    assert response.status_code == 200, response.text
    (payload,) = response.json()["data"].values()
    assert payload["userErrors"] == []
    key = payload[kind]["url"].removeprefix("http://testserver/media/")
    blob = api.media_root / key
    [(path, inode)] = temporaries  # one temporary file for the part, none for a copy
    assert blob.stat().st_ino == inode  # the blob is that very file (a hard link, no copy)
    assert blob.stat().st_nlink == 1  # and the temporary name is gone with the response
    assert not path.exists()
    assert blob.read_bytes() == content
    await api.assert_consistent()


async def test_one_part_used_twice_is_one_temporary_file(
    api: Api, temporaries: list[tuple[Path, int]]
) -> None:
    first = (await api.create_product("ONCE-A"))["id"]
    second = (await api.create_product("ONCE-B"))["id"]
    query = (
        "mutation($a: UploadImageInput!, $b: UploadImageInput!) { "
        f"a: uploadImage(input: $a) {{ image {{ checksum }} {ERRORS} }} "
        f"b: uploadImage(input: $b) {{ image {{ checksum }} {ERRORS} }} }}"
    )
    operations = {
        "query": query,
        "variables": {"a": {"productId": first, "file": None}, "b": {"productId": second}},
    }
    operations["variables"]["b"]["file"] = None
    response = await api.client.post(
        "/graphql",
        data={
            "operations": json.dumps(operations),
            "map": json.dumps({"0": ["variables.a.file", "variables.b.file"]}),
        },
        files={"0": ("x.png", image_bytes("PNG", (40, 30), seed=2), "image/png")},
        headers=api.headers(),
    )
    data = response.json()["data"]
    assert data["a"]["userErrors"] == data["b"]["userErrors"] == []
    assert data["a"]["image"]["checksum"] == data["b"]["image"]["checksum"]
    assert len(temporaries) == 1
    await api.assert_consistent()


@pytest.fixture
async def small_files(settings: Settings) -> AsyncIterator[Api]:
    """Files up to 2 MiB (videos), 1 MiB (images); the body may be far larger (text parts)."""
    async with api_with(
        settings, "small-files", max_image_bytes=MIB, max_video_bytes=2 * MIB
    ) as api:
        yield api


async def test_a_file_over_the_largest_limit_is_refused_before_the_body_is_read(
    small_files: Api,
) -> None:
    api = small_files
    product = (await api.create_product("BIG-1"))["id"]
    total = 64 * MIB
    sent = 0
    seen_temp: list[Path] = []

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        yield video_head(product)
        while sent < total:
            if sent == MIB:
                seen_temp.extend(temp_files(api))  # the part is on its way to disk
            sent += 64 * 1024
            yield b"\0" * (64 * 1024)
        yield CLOSING

    response = await post_multipart(api, body())
    assert response.status_code == 413, response.text
    message = response.json()["errors"][0]["message"]
    assert "2 MiB" in message, message
    assert sent <= 3 * MIB, sent  # refused once past the limit, not at the end of the body
    assert len(seen_temp) == 1
    assert temp_files(api) == []
    assert await api.count_rows("video") == 0
    await api.assert_consistent()


async def test_a_file_within_the_largest_limit_but_over_its_own_is_a_user_error(
    small_files: Api,
) -> None:
    api = small_files
    product = (await api.create_product("BIG-2"))["id"]
    content = image_bytes("PNG", (20, 20), seed=3) + b"\0" * (MIB + 10)  # 1 MiB < size < 2 MiB
    response = await api.upload(
        UPLOAD_IMAGE,
        {"input": {"productId": product, "file": None}},
        {"variables.input.file": ("big.png", content, "image/png")},
    )
    payload = response.json()["data"]["uploadImage"]
    assert [(e["field"], e["code"]) for e in payload["userErrors"]] == [
        (["file"], "FILE_TOO_LARGE")
    ]
    await api.assert_consistent()


@pytest.mark.parametrize(
    ("tail", "status"),
    [
        pytest.param(b"", 400, id="body-ends-inside-the-file"),
        pytest.param(CLOSING[:-4], 400, id="no-closing-boundary"),
        pytest.param(
            b"\r\n" + b"".join(text_part(f"x{n}", "y") for n in range(120)) + CLOSING[2:],
            413,
            id="too-many-fields-after-the-file",
        ),
        pytest.param(
            b"\r\n" + text_part("pad", "x" * (2 * MIB)) + CLOSING[2:],
            413,
            id="text-part-over-its-limit-after-the-file",
        ),
        pytest.param(
            b"\r\n--" + BOUNDARY.encode() + b"\r\nContent-Disposition: form-data\r\n\r\nx"
            b"" + CLOSING,
            400,
            id="part-without-a-name-after-the-file",
        ),
    ],
)
async def test_a_refused_body_leaves_no_temporary_file(api: Api, tail: bytes, status: int) -> None:
    product = (await api.create_product("FAIL-1"))["id"]
    body = video_head(product) + mp4_bytes(seconds=1.0) + tail
    response = await post_multipart(api, body)
    assert response.status_code == status, response.text
    assert temp_files(api) == []
    await api.assert_consistent()


async def test_a_map_naming_another_part_leaves_no_temporary_file(api: Api) -> None:
    product = (await api.create_product("FAIL-2"))["id"]
    operations = {"query": UPLOAD_VIDEO, "variables": {"input": {"productId": product}}}
    operations["variables"]["input"]["file"] = None
    body = (
        text_part("operations", json.dumps(operations))
        + text_part("map", json.dumps({"1": ["variables.input.file"]}))
        + file_head("0")
        + mp4_bytes(seconds=1.0)
        + CLOSING
    )
    response = await post_multipart(api, body)
    assert response.status_code == 400, response.text
    assert temp_files(api) == []


async def test_a_client_gone_mid_file_leaves_no_temporary_file(api: Api, app: Starlette) -> None:
    product = (await api.create_product("GONE-1"))["id"]
    head = video_head(product)
    messages: list[Message] = [
        {"type": "http.request", "body": head, "more_body": True},
        *({"type": "http.request", "body": b"\0" * MIB, "more_body": True} for _ in range(3)),
        {"type": "http.disconnect"},
    ]
    sent: list[Message] = []
    seen_temp: list[Path] = []

    async def receive() -> Message:
        seen_temp.extend(temp_files(api))
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", f"multipart/form-data; boundary={BOUNDARY}".encode()),
            (b"authorization", f"Bearer {api.token}".encode()),
        ],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }
    await app(scope, receive, send)
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 400
    assert seen_temp  # the file part had reached the disk
    assert temp_files(api) == []
    await api.assert_consistent()
