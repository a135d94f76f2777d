"""Writing a new temporary blob as its bytes arrive: counted (stopping at a limit), hashed
(sha256) and written once.

The caller (a loop reading a request or a download) hands over chunks; they are gathered into
batches of :data:`BATCH` bytes, and each batch is hashed and written in a worker thread while
the caller reads the next one (hashlib and file writes release the GIL, so both cores work).
At most one batch is in flight per blob: memory stays at a few batches whatever the size
of the file, and a disk slower than the sender slows the reading down.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from storage.blobs.store import TempBlob
from storage.errors import too_large

BATCH = 2 * 1024 * 1024
"""Bytes hashed and written per worker-thread call."""

WRITE_BEHIND = 16 * 1024 * 1024
"""Each time this many more bytes are written, the kernel is told to start writing them to
disk (``POSIX_FADV_DONTNEED`` starts the writeback of dirty pages without waiting): the fsync
of the commit then finds little left to flush, and a large upload does not pile up dirty
pages. Files smaller than this (images) are left alone."""

_WORKERS = ThreadPoolExecutor(max_workers=8, thread_name_prefix="blob-writer")
"""Threads for every writer of the process (each has at most one batch in flight)."""


def _create(path: Path) -> BinaryIO:
    """A new file at ``path`` (never an existing one), unbuffered: batches go straight to it."""
    return path.open("xb", buffering=0)


def _write_all(file: BinaryIO, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = file.write(view)
        view = view[written or 0 :]


class TempWriter:
    """A temporary blob being written at ``path``; more than ``limit`` bytes raise
    ``FileRejected(FILE_TOO_LARGE)``. Call :meth:`finish` for the finished ``TempBlob``, and
    :meth:`discard` on any failure (or when the blob is no longer needed)."""

    def __init__(self, path: Path, limit: int) -> None:
        if limit < 0:
            raise ValueError("limit must not be negative")
        self.path = path
        self.limit = limit
        self.size = 0
        self._file = _create(path)
        self._digest = hashlib.sha256()
        self._batch: list[bytes] = []
        self._batched = 0
        self._job: Future[None] | None = None
        self._written = 0

    async def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise too_large(self.limit)
        self._batch.append(data)
        self._batched += len(data)
        if self._batched >= BATCH:
            await self._flush()

    async def finish(self) -> TempBlob:
        """Wait until every byte is written; the file is then closed (its bytes are flushed to
        disk when the blob is committed)."""
        await self._flush()
        await self._wait()
        self._file.close()
        return TempBlob(path=self.path, sha256=self._digest.hexdigest(), size=self.size)

    def discard(self) -> None:
        """Remove the file, written whole or not; a batch still being written in a worker
        thread closes the file when it ends (closing it under the thread could hand its
        descriptor to another file). Synchronous, so that no cancellation can interrupt it."""
        self.path.unlink(missing_ok=True)
        if self._job is None:
            self._file.close()
        else:
            self._job.add_done_callback(lambda _: self._file.close())

    async def _flush(self) -> None:
        """Hand the gathered chunks to a worker thread, once the batch before is written."""
        await self._wait()
        if not self._batch:
            return
        batch = self._batch[0] if len(self._batch) == 1 else b"".join(self._batch)
        self._batch, self._batched = [], 0
        self._job = _WORKERS.submit(self._put, batch)

    async def _wait(self) -> None:
        if self._job is not None:
            await asyncio.wrap_future(self._job)
            self._job = None

    def _put(self, batch: bytes) -> None:
        """Hash and write one joined batch: the thread takes the GIL back after each call,
        which costs a switch with the event loop's thread, so a call per chunk would cost
        thousands of them per file."""
        behind = self._written - self._written % WRITE_BEHIND
        self._digest.update(batch)
        _write_all(self._file, batch)
        self._written += len(batch)
        if self._written - behind >= WRITE_BEHIND and hasattr(os, "posix_fadvise"):
            os.posix_fadvise(self._file.fileno(), behind, WRITE_BEHIND, os.POSIX_FADV_DONTNEED)


__all__ = ["BATCH", "TempWriter"]
