"""Blobs as files under a root folder (aiofiles; blocking calls in worker threads)."""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import time
from collections.abc import AsyncIterable, AsyncIterator
from functools import partial
from pathlib import Path

import aiofiles
import aiofiles.os
import anyio
import anyio.to_thread

from storage.blobs.keys import FOLDER_PATTERN, KEY_PATTERN, SHA256_PATTERN, is_media_key, sha256_of
from storage.blobs.store import DEFAULT_TEMPORARY_AGE, TEMP_DIRECTORY, TempBlob
from storage.blobs.tempfiles import temp_name, writer_is_gone
from storage.blobs.writer import TempWriter

_TEMP_SUFFIX = ".part"


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
        """The file of ``key`` (this store's own layout, for its callers that need a file);
        raises ``ValueError`` for anything but a key."""
        if not is_media_key(key):
            raise ValueError(f"Not a blob key: {key!r}")
        return self.root / key

    async def local_copy(self, key: str) -> Path:
        return self.path_for(key)

    def new_temporary(self, *, limit: int) -> TempWriter:
        return TempWriter(self._temp_root / temp_name(_TEMP_SUFFIX), limit)

    async def receive(self, chunks: AsyncIterable[bytes], *, limit: int) -> TempBlob:
        writer = self.new_temporary(limit=limit)
        try:
            async for chunk in chunks:
                await writer.write(chunk)
            return await writer.finish()
        except BaseException:
            writer.discard()
            raise

    async def discard(self, temp: TempBlob) -> None:
        await _remove_missing_ok(self.checked_temp_path(temp))

    async def commit(self, temp: TempBlob, key: str) -> None:
        """A second hard link to the temporary file, renamed to the key: the bytes are not
        copied, and the temporary file stays for another commit."""
        source = self.checked_temp_path(temp)
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
        folder = self._rendition_folder(sha256)
        await anyio.to_thread.run_sync(partial(shutil.rmtree, folder, ignore_errors=True))

    async def exists(self, key: str) -> bool:
        return await aiofiles.os.path.isfile(self.path_for(key))

    async def size(self, key: str) -> int | None:
        try:
            found = await aiofiles.os.stat(self.path_for(key))
        except (FileNotFoundError, NotADirectoryError):
            return None
        return found.st_size if stat.S_ISREG(found.st_mode) else None

    async def renditions_size(self, sha256: str) -> int:
        return await anyio.to_thread.run_sync(_files_size, self._rendition_folder(sha256))

    async def keys(self) -> AsyncIterator[str]:
        for folder in sorted(await _listdir_missing_ok(self.root)):
            if not FOLDER_PATTERN.match(folder):
                continue
            for name in sorted(await _listdir_missing_ok(self.root / folder)):
                key = f"{folder}/{name}"
                if KEY_PATTERN.match(key):
                    yield key

    async def rendition_sources(self) -> AsyncIterator[str]:
        base = self.root / "r"
        for folder in sorted(await _listdir_missing_ok(base)):
            if not FOLDER_PATTERN.match(folder):
                continue
            for name in sorted(await _listdir_missing_ok(base / folder)):
                if SHA256_PATTERN.match(name) and name.startswith(folder):
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

    def _rendition_folder(self, sha256: str) -> Path:
        if not SHA256_PATTERN.match(sha256):
            raise ValueError(f"Not a sha256 hex digest: {sha256!r}")
        return self.root / "r" / sha256[:2] / sha256

    def checked_temp_path(self, temp: TempBlob) -> Path:
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


def _files_size(folder: Path) -> int:
    """Bytes of the regular files in ``folder`` (none when it is missing)."""
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return 0
    total = 0
    for entry in entries:
        with contextlib.suppress(FileNotFoundError):
            if entry.is_file(follow_symlinks=False):
                total += entry.stat(follow_symlinks=False).st_size
    return total


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
