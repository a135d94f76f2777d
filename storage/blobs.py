"""Content-addressed blob storage: the bytes of originals and renditions.

A blob's key is derived from its bytes: ``<first 2 hex>/<sha256 hex>.<extension>``.
Content addressing gives three properties the rest of the system relies on:

- identical bytes are stored once, whatever number of rows or products refer to them;
- keys cannot be guessed without the bytes, so media URLs can stay public;
- the bytes behind a key never change, so responses can be cached forever
  (``Cache-Control: immutable``) and a write of an existing key is a no-op.

Bytes arrive as a stream: :meth:`BlobStore.receive` writes them to a temporary
blob while hashing and counting (stopping at the size limit), the caller
inspects the temporary file, :meth:`BlobStore.commit` stores it under its key
atomically (keeping the temporary blob, so that a transaction that is run again
can commit it again), and :meth:`BlobStore.discard` removes the temporary blob
at the end. Nothing in this module holds a whole file in memory.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import time
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Protocol

import aiofiles
import aiofiles.os
import anyio
import anyio.to_thread

from storage.enums import ErrorCode
from storage.errors import FileRejected
from storage.tempfiles import temp_name, writer_is_gone

EXTENSIONS: Mapping[str, str] = MappingProxyType(
    {
        "jpg": "image/jpeg",
        "png": "image/png",
        "gif": "image/gif",
        "webp": "image/webp",
        "mp4": "video/mp4",
        "avif": "image/avif",
    }
)

KEY_PATTERN: re.Pattern[str] = re.compile(
    r"\A(?P<folder>[0-9a-f]{2})/(?P=folder)[0-9a-f]{62}\.(?P<extension>"
    + "|".join(re.escape(extension) for extension in EXTENSIONS)
    + r")\Z"
)
"""A blob key; anchored, so ``match``, ``fullmatch`` and ``search`` all test the whole string."""

RENDITION_EXTENSIONS = ("jpg", "png", "webp", "avif")

RENDITION_KEY_PATTERN: re.Pattern[str] = re.compile(
    r"\Ar/(?P<folder>[0-9a-f]{2})/(?P<sha256>(?P=folder)[0-9a-f]{62})/(?P<box>[1-9][0-9]{0,4})"
    r"\.(?P<extension>" + "|".join(RENDITION_EXTENSIONS) + r")\Z"
)
"""A rendition of the blob with that sha256, fitted into a box of ``box`` pixels:
``r/ab/ab12…/250.webp``. Derived from the source's bytes, so as immutable as a blob key."""

_SHA256_PATTERN = re.compile(r"\A[0-9a-f]{64}\Z")
_FOLDER_PATTERN = re.compile(r"\A[0-9a-f]{2}\Z")

TEMP_DIRECTORY = ".tmp"
"""Folder under the root for blobs being received; no key can start with it."""

_TEMP_SUFFIX = ".part"

DEFAULT_TEMPORARY_AGE = 3600.0
"""Seconds without a write after which :meth:`BlobStore.clean_temporary` treats a temporary
file as left over: younger ones may belong to a transfer running in another process, unless
their name says that their writer is dead (storage/tempfiles.py)."""


def blob_key(sha256: str, extension: str) -> str:
    """The key of the bytes whose sha256 hex digest is ``sha256``, stored with ``extension``.

    ``extension`` may be given with a leading dot and in any case (``".JPG"``).
    """
    digest = sha256.lower()
    if not _SHA256_PATTERN.match(digest):
        raise ValueError(f"Not a sha256 hex digest: {sha256!r}")
    normalized = extension.lower().removeprefix(".")
    if normalized not in EXTENSIONS:
        raise ValueError(f"Unsupported blob extension: {extension!r}")
    return f"{digest[:2]}/{digest}.{normalized}"


def rendition_key(sha256: str, box: int, extension: str) -> str:
    return f"r/{sha256[:2]}/{sha256}/{box}.{extension}"


def is_media_key(key: str) -> bool:
    """A blob key or a rendition key."""
    return bool(KEY_PATTERN.match(key) or RENDITION_KEY_PATTERN.match(key))


def sha256_of(key: str) -> str:
    """The sha256 of a blob key's bytes (its file name without the extension)."""
    match = KEY_PATTERN.match(key)
    if match is None:
        raise ValueError(f"Not a blob key: {key!r}")
    return key.split("/")[1].split(".")[0]


def content_type_for(key: str) -> str:
    """The media type served for ``key``; raises ``ValueError`` for anything but a key."""
    match = KEY_PATTERN.match(key) or RENDITION_KEY_PATTERN.match(key)
    if match is None:
        raise ValueError(f"Not a blob key: {key!r}")
    return EXTENSIONS[match["extension"]]


def format_size(size: int) -> str:
    """``size`` bytes for people: ``"10 MiB"``, ``"1.5 KiB (1536 bytes)"``, ``"900 bytes"``."""
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor:
            if size % factor == 0:
                return f"{size // factor} {unit}"
            return f"{size / factor:.1f} {unit} ({size} bytes)"
    return "1 byte" if size == 1 else f"{size} bytes"


@dataclass(frozen=True)
class TempBlob:
    """Bytes received but not yet stored under their key."""

    path: Path
    sha256: str
    size: int


class BlobStore(Protocol):
    """Where blobs live; every method is safe to call from several processes at once."""

    async def receive(self, chunks: AsyncIterable[bytes], *, limit: int) -> TempBlob:
        """Stream ``chunks`` to a new temporary blob while hashing and counting them.

        Reading stops as soon as more than ``limit`` bytes arrived: the temporary blob is
        deleted and ``FileRejected(FILE_TOO_LARGE)`` raised. Any other exception, cancellation
        included, also deletes the temporary blob before it propagates.
        """
        ...

    async def discard(self, temp: TempBlob) -> None:
        """Delete a temporary blob; one already gone is fine."""
        ...

    async def commit(self, temp: TempBlob, key: str) -> None:
        """Store the bytes of a temporary blob under ``key`` atomically (durable on return).

        The temporary blob stays until :meth:`discard`. When ``key`` already exists it holds
        the same bytes, and nothing is written.
        """
        ...

    async def delete(self, key: str) -> None:
        """Delete the blob at ``key`` and its renditions; one already gone is fine."""
        ...

    async def write(self, key: str, data: bytes) -> None:
        """Store small derived bytes (a rendition) at ``key`` atomically."""
        ...

    async def delete_renditions(self, sha256: str) -> None:
        """Delete every rendition of the blob with this sha256."""
        ...

    def path_for(self, key: str) -> Path:
        """Where the local file of ``key`` is (for a remote store: its local copy, which exists
        only after :meth:`local_copy`)."""
        ...

    async def local_copy(self, key: str) -> Path:
        """A local file with the bytes of ``key`` (for decoders that need a path), fetched
        first when the store is remote."""
        ...

    async def exists(self, key: str) -> bool:
        """Whether a blob is stored at ``key``."""
        ...

    def keys(self) -> AsyncIterator[str]:
        """Every stored key (temporary blobs excluded)."""
        ...

    def rendition_sources(self) -> AsyncIterator[str]:
        """The sha256 of every blob that has renditions stored (``r/ab/<sha256>/``)."""
        ...

    async def clean_temporary(self, *, older_than: float = DEFAULT_TEMPORARY_AGE) -> int:
        """Delete temporary blobs not written to for ``older_than`` seconds, and younger ones
        whose writer surely no longer runs (storage/tempfiles.py); return how many."""
        ...

    async def check(self) -> None:
        """Raise when blobs cannot be written."""
        ...


class LocalBlobStore:
    """Blobs as files under ``root``: ``root/ab/ab12….jpg``, temporary ones in ``root/.tmp``.

    The temporary folder is inside the root so that a commit is a rename within one
    filesystem (atomic), and its name cannot match :data:`KEY_PATTERN`, so it is never served.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._temp_root = self.root / TEMP_DIRECTORY
        self._temp_root.mkdir(parents=True, exist_ok=True)

    def path_for(self, key: str) -> Path:
        """The file of ``key``; raises ``ValueError`` for anything but a key."""
        if not is_media_key(key):
            raise ValueError(f"Not a blob key: {key!r}")
        return self.root / key

    async def local_copy(self, key: str) -> Path:
        return self.path_for(key)

    async def receive(self, chunks: AsyncIterable[bytes], *, limit: int) -> TempBlob:
        if limit < 0:
            raise ValueError("limit must not be negative")
        path = self._temp_root / temp_name(_TEMP_SUFFIX)
        digest = hashlib.sha256()
        size = 0
        try:
            async with aiofiles.open(path, "xb") as file:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > limit:
                        raise FileRejected(
                            ErrorCode.FILE_TOO_LARGE,
                            f"The file is over the limit of {format_size(limit)}.",
                        )
                    digest.update(chunk)
                    await file.write(chunk)
        except BaseException:
            _remove_now(path)
            raise
        return TempBlob(path=path, sha256=digest.hexdigest(), size=size)

    async def discard(self, temp: TempBlob) -> None:
        await _remove_missing_ok(self._own_temp_path(temp))

    async def commit(self, temp: TempBlob, key: str) -> None:
        """A second hard link to the temporary file, renamed to the key: the bytes are not
        copied, and the temporary file stays for another commit."""
        source = self._own_temp_path(temp)
        target = self.path_for(key)
        if await aiofiles.os.path.isfile(target):
            return
        await aiofiles.os.makedirs(target.parent, exist_ok=True)
        await anyio.to_thread.run_sync(_fsync, source, False)
        link = self._temp_root / temp_name(_TEMP_SUFFIX)
        try:
            await anyio.to_thread.run_sync(os.link, source, link)
            await aiofiles.os.replace(link, target)
        finally:
            _remove_now(link)
        await anyio.to_thread.run_sync(_fsync, target.parent, True)

    async def delete(self, key: str) -> None:
        await _remove_missing_ok(self.path_for(key))
        match = KEY_PATTERN.match(key)
        if match is not None:
            await self.delete_renditions(sha256_of(key))

    async def write(self, key: str, data: bytes) -> None:
        target = self.path_for(key)
        temp = self._temp_root / temp_name(_TEMP_SUFFIX)
        try:
            async with aiofiles.open(temp, "xb") as file:
                await file.write(data)
            await aiofiles.os.makedirs(target.parent, exist_ok=True)
            await aiofiles.os.replace(temp, target)
        finally:
            _remove_now(temp)

    async def delete_renditions(self, sha256: str) -> None:
        if not _SHA256_PATTERN.match(sha256):
            raise ValueError(f"Not a sha256 hex digest: {sha256!r}")
        folder = self.root / "r" / sha256[:2] / sha256
        await anyio.to_thread.run_sync(partial(shutil.rmtree, folder, ignore_errors=True))

    async def exists(self, key: str) -> bool:
        return await aiofiles.os.path.isfile(self.path_for(key))

    async def keys(self) -> AsyncIterator[str]:
        for folder in sorted(await _listdir_missing_ok(self.root)):
            if not _FOLDER_PATTERN.match(folder):
                continue
            for name in sorted(await _listdir_missing_ok(self.root / folder)):
                key = f"{folder}/{name}"
                if KEY_PATTERN.match(key):
                    yield key

    async def rendition_sources(self) -> AsyncIterator[str]:
        base = self.root / "r"
        for folder in sorted(await _listdir_missing_ok(base)):
            if not _FOLDER_PATTERN.match(folder):
                continue
            for name in sorted(await _listdir_missing_ok(base / folder)):
                if _SHA256_PATTERN.match(name) and name.startswith(folder):
                    yield name

    async def clean_temporary(self, *, older_than: float = DEFAULT_TEMPORARY_AGE) -> int:
        cutoff = time.time() - older_than
        removed = 0
        for name in await _listdir_missing_ok(self._temp_root):
            path = self._temp_root / name
            try:
                stat_result = await aiofiles.os.stat(path, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if not stat.S_ISREG(stat_result.st_mode):
                continue
            if stat_result.st_mtime > cutoff and not writer_is_gone(name):
                continue
            if await _remove_missing_ok(path):
                removed += 1
        return removed

    async def check(self) -> None:
        await aiofiles.os.makedirs(self._temp_root, exist_ok=True)
        probe = self._temp_root / temp_name(_TEMP_SUFFIX)
        try:
            async with aiofiles.open(probe, "xb") as file:
                await file.write(b"ok")
        finally:
            _remove_now(probe)

    def _own_temp_path(self, temp: TempBlob) -> Path:
        if temp.path.parent != self._temp_root:
            raise ValueError(f"Not a temporary blob of this store: {temp.path}")
        return temp.path


def _remove_now(path: Path) -> None:
    """Delete ``path`` without awaiting: cleanup that no cancellation can interrupt (a second
    ``Task.cancel()`` breaks through an anyio shield, and a removal still queued for a worker
    thread would then never run)."""
    path.unlink(missing_ok=True)


async def _remove_missing_ok(path: Path) -> bool:
    """Delete ``path``; return whether there was something to delete."""
    try:
        await aiofiles.os.remove(path)
    except FileNotFoundError:
        return False
    return True


async def _listdir_missing_ok(path: Path) -> list[str]:
    try:
        return await aiofiles.os.listdir(path)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _fsync(path: Path, directory: bool) -> None:
    """Flush ``path`` to disk: a file's bytes, or a directory's entries (a rename in it).

    Some platforms and filesystems cannot fsync a directory; that is skipped.
    """
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        descriptor = os.open(path, flags)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    except OSError:
        if not directory:
            raise
