"""The blob store interface. Bytes arrive as a stream: :meth:`BlobStore.receive` writes them
to a temporary blob while hashing and counting (stopping at the size limit), or the caller
hands them over as they come to the writer of :meth:`BlobStore.new_temporary`; the caller
inspects the temporary file, :meth:`BlobStore.commit` stores it under its key atomically
(keeping the temporary blob, so that a transaction that is run again can commit it again),
and :meth:`BlobStore.discard` removes the temporary blob at the end. No store holds a whole
file in memory."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from storage.blobs.writer import TempWriter

TEMP_DIRECTORY = ".tmp"
"""Folder under the root for blobs being received; no key can start with it."""

DEFAULT_TEMPORARY_AGE = 3600.0
"""Seconds without a write after which :meth:`BlobStore.clean_temporary` treats a temporary
file as left over: younger ones may belong to a transfer running in another process, unless
their name says that their writer is dead (storage/blobs/tempfiles.py)."""


@dataclass(frozen=True)
class TempBlob:
    """Bytes received but not yet stored under their key."""

    path: Path
    sha256: str
    size: int


class BlobStore(Protocol):
    """Where blobs live; every method is safe to call from several processes at once."""

    def new_temporary(self, *, limit: int) -> TempWriter:
        """A new temporary blob to write, for a caller that has bytes to hand over as they
        arrive (a multipart request's file part) rather than a stream to read; the caller
        finishes or discards it."""
        ...

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

    async def local_copy(self, key: str) -> Path:
        """A local file with the bytes of ``key`` (for decoders that need a path), fetched
        first when the store is remote."""
        ...

    async def exists(self, key: str) -> bool:
        """Whether a blob is stored at ``key``."""
        ...

    async def size(self, key: str) -> int | None:
        """Bytes of the blob at ``key``; None when there is none."""
        ...

    async def renditions_size(self, sha256: str) -> int:
        """Bytes of the stored renditions of the blob with this sha256 (0 for none)."""
        ...

    def keys(self) -> AsyncIterator[str]:
        """Every stored key (temporary blobs excluded)."""
        ...

    def rendition_sources(self) -> AsyncIterator[str]:
        """The sha256 of every blob that has renditions stored (``r/ab/<sha256>/``)."""
        ...

    async def clean_temporary(self, *, older_than: float = DEFAULT_TEMPORARY_AGE) -> int:
        """Delete temporary blobs not written to for ``older_than`` seconds, and younger ones
        whose writer surely no longer runs (storage/blobs/tempfiles.py); return how many."""
        ...

    async def check(self) -> None:
        """Raise when blobs cannot be written."""
        ...
