"""The local content-addressed blob store."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import AsyncIterator, Iterable
from functools import partial
from pathlib import Path

import anyio
import pytest

from storage.blobs import (
    KEY_PATTERN,
    BlobStore,
    LocalBlobStore,
    TempBlob,
    blob_key,
    content_type_for,
    rendition_key,
)
from storage.enums import ErrorCode
from storage.errors import FileRejected
from storage.media import BY_EXTENSION

pytestmark = pytest.mark.anyio

CHUNK = 64 * 1024


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "media")


async def stream(parts: Iterable[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def stored_keys(store: LocalBlobStore) -> list[str]:
    return [key async for key in store.keys()]  # noqa: SIM118 (an async iterator, not a dict)


def temp_files(store: LocalBlobStore) -> list[str]:
    return os.listdir(store.root / ".tmp")


async def received(store: LocalBlobStore, data: bytes) -> tuple[TempBlob, str]:
    temp = await store.receive(stream([data]), limit=len(data))
    return temp, blob_key(temp.sha256, "png")


def test_local_store_is_a_blob_store(store: LocalBlobStore) -> None:
    typed: BlobStore = store
    assert typed is store


def test_blob_key_and_content_type() -> None:
    digest = hashlib.sha256(b"x").hexdigest()
    key = blob_key(digest, ".JPG")
    assert key == f"{digest[:2]}/{digest}.jpg"
    assert KEY_PATTERN.match(key)
    assert content_type_for(key) == "image/jpeg"
    assert content_type_for(blob_key(digest, "mp4")) == "video/mp4"
    assert content_type_for(blob_key(digest, "avif")) == "image/avif"
    assert set(BY_EXTENSION) == {"jpg", "png", "gif", "webp", "mp4", "avif"}
    with pytest.raises(ValueError):
        blob_key(digest, "exe")
    with pytest.raises(ValueError):
        blob_key("abc", "jpg")
    with pytest.raises(ValueError):
        content_type_for("../x.jpg")


def test_key_pattern_is_exact() -> None:
    digest = hashlib.sha256(b"x").hexdigest()
    good = f"{digest[:2]}/{digest}.png"
    assert KEY_PATTERN.match(good)
    rejected = [
        good + "\n",
        good + ".png",
        "/" + good,
        good.upper(),
        f"{digest[:2]}/{digest}.PNG",
        f"{digest[:2]}/{digest}.svg",
        f"{digest[:2]}/{digest[:-1]}.png",
        f"{'00' if digest[:2] != '00' else '11'}/{digest}.png",
        f"{digest[:2]}/{digest[:2]}/{digest}.png",
        f".tmp/{digest}.png",
    ]
    for key in rejected:
        assert not KEY_PATTERN.match(key), key
        assert not KEY_PATTERN.search(key), key


async def test_receive_hashes_and_counts(store: LocalBlobStore) -> None:
    parts = [os.urandom(1000), b"", os.urandom(CHUNK), b"tail"]
    data = b"".join(parts)
    temp = await store.receive(stream(parts), limit=len(data))
    assert temp.sha256 == hashlib.sha256(data).hexdigest()
    assert temp.size == len(data)
    assert temp.path.parent == store.root / ".tmp"
    assert temp.path.read_bytes() == data


async def test_receive_empty(store: LocalBlobStore) -> None:
    temp = await store.receive(stream([]), limit=0)
    assert temp.size == 0
    assert temp.sha256 == hashlib.sha256(b"").hexdigest()


async def test_over_limit_stops_reading_and_leaves_nothing(store: LocalBlobStore) -> None:
    pulled = 0

    async def hundred_megabytes() -> AsyncIterator[bytes]:
        nonlocal pulled
        chunk = b"\0" * CHUNK
        for _ in range(100 * 1024 * 1024 // CHUNK):
            pulled += 1
            yield chunk

    limit = 10 * 1024 * 1024
    with pytest.raises(FileRejected) as caught:
        await store.receive(hundred_megabytes(), limit=limit)
    assert caught.value.code is ErrorCode.FILE_TOO_LARGE
    assert "10 MiB" in caught.value.message
    assert pulled == limit // CHUNK + 1
    assert temp_files(store) == []


async def test_exactly_at_limit_is_accepted(store: LocalBlobStore) -> None:
    temp = await store.receive(stream([b"a" * 10, b"b" * 10]), limit=20)
    assert temp.size == 20
    with pytest.raises(FileRejected):
        await store.receive(stream([b"a" * 10, b"b" * 11]), limit=20)
    await store.discard(temp)
    assert temp_files(store) == []


async def test_failing_iterator_leaves_nothing(store: LocalBlobStore) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"some bytes"
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        await store.receive(broken(), limit=1000)
    assert temp_files(store) == []


async def test_cancellation_leaves_nothing(store: LocalBlobStore) -> None:
    started = anyio.Event()

    async def stalled() -> AsyncIterator[bytes]:
        yield b"first"
        started.set()
        await anyio.sleep_forever()
        yield b"never"

    async with anyio.create_task_group() as group:
        group.start_soon(partial(store.receive, stalled(), limit=1000))
        await started.wait()
        assert len(temp_files(store)) == 1
        group.cancel_scope.cancel()
    assert temp_files(store) == []


async def test_commit_places_file_at_its_key(store: LocalBlobStore) -> None:
    data = os.urandom(5000)
    temp, key = await received(store, data)
    assert not await store.exists(key)
    await store.commit(temp, key)
    assert store.path_for(key).read_bytes() == data
    assert await store.exists(key)
    assert temp_files(store) == [temp.path.name]  # kept for another commit
    await store.discard(temp)
    assert store.path_for(key).read_bytes() == data
    assert temp_files(store) == []


async def test_a_kept_temporary_blob_commits_again_after_its_key_was_deleted(
    store: LocalBlobStore,
) -> None:
    """A transaction that is run again after its blob was taken back stores it again."""
    data = os.urandom(5000)
    temp, key = await received(store, data)
    await store.commit(temp, key)
    await store.delete(key)
    await store.commit(temp, key)
    assert store.path_for(key).read_bytes() == data
    await store.discard(temp)
    assert temp_files(store) == []


async def test_second_commit_of_same_bytes_keeps_one_file(store: LocalBlobStore) -> None:
    data = os.urandom(5000)
    first, key = await received(store, data)
    await store.commit(first, key)
    stat_before = store.path_for(key).stat()
    second, same_key = await received(store, data)
    assert same_key == key
    await store.commit(second, key)
    assert store.path_for(key).stat().st_ino == stat_before.st_ino
    assert os.listdir(store.path_for(key).parent) == [key.split("/")[1]]
    for temp in (first, second):
        await store.discard(temp)
    assert temp_files(store) == []
    assert await stored_keys(store) == [key]


async def test_discard_and_delete_are_missing_ok(store: LocalBlobStore) -> None:
    temp, key = await received(store, b"bytes")
    await store.discard(temp)
    await store.discard(temp)
    assert temp_files(store) == []
    temp, key = await received(store, b"bytes")
    await store.commit(temp, key)
    await store.delete(key)
    assert not await store.exists(key)
    assert not store.path_for(key).exists()
    await store.delete(key)


async def test_keys_lists_exactly_committed_keys(store: LocalBlobStore) -> None:
    assert await stored_keys(store) == []
    committed = set()
    for index in range(5):
        temp, key = await received(store, f"blob {index}".encode())
        await store.commit(temp, key)
        committed.add(key)
    leftover = await store.receive(stream([b"in flight"]), limit=100)
    (store.root / "notes.txt").write_text("not a blob")
    (store.root / "zz").mkdir()
    (store.root / "zz" / "x.jpg").write_bytes(b"")
    some_folder = store.root / next(iter(committed)).split("/")[0]
    (some_folder / "other.jpg").write_bytes(b"")
    keys = await stored_keys(store)
    assert sorted(keys) == sorted(committed)
    assert len(keys) == len(committed)
    await store.discard(leftover)


async def test_clean_temporary_removes_leftovers(store: LocalBlobStore) -> None:
    temp, key = await received(store, b"kept")
    await store.commit(temp, key)
    await store.discard(temp)
    old = [await store.receive(stream([b"left over"]), limit=100) for _ in range(3)]
    recent = await store.receive(stream([b"in flight"]), limit=100)
    hour_ago = time.time() - 3601
    for leftover in old:
        os.utime(leftover.path, (hour_ago, hour_ago))
    assert await store.clean_temporary() == 3
    assert temp_files(store) == [recent.path.name]
    assert await store.clean_temporary(older_than=0) == 1
    assert temp_files(store) == []
    assert await store.exists(key)


async def test_check(store: LocalBlobStore) -> None:
    await store.check()
    assert temp_files(store) == []
    (store.root / ".tmp").rmdir()
    (store.root / ".tmp").write_bytes(b"in the way")
    with pytest.raises(OSError):
        await store.check()


def test_path_for_rejects_non_keys(store: LocalBlobStore) -> None:
    digest = hashlib.sha256(b"x").hexdigest()
    key = blob_key(digest, "jpg")
    assert store.path_for(key) == store.root / digest[:2] / f"{digest}.jpg"
    wrong_folder = "00" if digest[:2] != "00" else "11"
    for bad in [
        "../x",
        "ab/zz.jpg",
        f"{wrong_folder}/{digest}.jpg",
        f"../{digest[:2]}/{digest}.jpg",
        f"/{key}",
        f".tmp/{digest}.jpg",
        "",
    ]:
        with pytest.raises(ValueError):
            store.path_for(bad)


async def test_commit_refuses_foreign_temp_and_bad_key(
    store: LocalBlobStore, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"x")
    foreign = TempBlob(path=outside, sha256=hashlib.sha256(b"x").hexdigest(), size=1)
    with pytest.raises(ValueError):
        await store.commit(foreign, blob_key(foreign.sha256, "jpg"))
    with pytest.raises(ValueError):
        await store.discard(foreign)
    assert outside.exists()
    temp, _ = await received(store, b"y")
    with pytest.raises(ValueError):
        await store.commit(temp, "../escape.jpg")
    await store.discard(temp)


async def test_sizes_of_blobs_and_renditions(store: LocalBlobStore) -> None:
    temp, key = await received(store, b"twelve bytes")
    assert await store.size(key) is None
    await store.commit(temp, key)
    assert await store.size(key) == 12
    digest = temp.sha256
    assert await store.renditions_size(digest) == 0
    await store.write(rendition_key(digest, 100, "webp"), b"abc")
    await store.write(rendition_key(digest, 250, "webp"), b"defgh")
    assert await store.renditions_size(digest) == 8
    await store.delete(key)
    assert await store.size(key) is None
    assert await store.renditions_size(digest) == 0
    with pytest.raises(ValueError):
        await store.renditions_size("../" + digest[3:])
