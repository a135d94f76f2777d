"""Collect what a crash left behind: blobs that no image or video row refers to, and rendition
folders (``r/ab/<sha256>/``) of bytes that no image has.

Use cases delete a blob as soon as the last row that refers to it is committed away, so in
normal operation there is nothing to collect. A process killed between moving a blob to its
key and committing its row (or before deleting a blob whose rows were deleted) leaves one.

Safe while gateways run: each candidate is released as a use case releases a blob
(``Backend.release_blobs``): checked again inside a write transaction that holds the blob's
lock (``Backend.lock_blobs``: SQLite's write lock, a PostgreSQL advisory lock), the same lock
an upload holds from moving its blob to committing its row, and only then deleted, under the
lock that rendering it holds. A blob that a running upload is about to commit is therefore
either not yet at its key when the store is listed, or referred to by the time it is checked.

Renditions are derived and regenerated on request, so removing a folder that an upload of
the same bytes needs a moment later costs only its regeneration.

A database that refers to no media at all while the store holds blobs is more likely the
wrong database (a mistyped ``DATABASE_URL``) than a store full of leftovers: collection then
refuses unless forced.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from storage.backend import Backend
from storage.blobs import sha256_of
from storage.sql.tables import image_table, video_table


class NothingReferenced(Exception):
    """The database refers to no blob at all, yet the store holds some."""

    def __init__(self, blobs: int) -> None:
        super().__init__(
            f"The database refers to no image or video, but the store holds {blobs} blob(s): "
            "is MEDIA_GATEWAY_DATABASE_URL the gateway's database? Nothing was removed; "
            "run again with --force to remove them all."
        )


@dataclass
class Collection:
    """What a collection removed (or, in a dry run, would remove)."""

    dry_run: bool
    blobs: list[str] = field(default_factory=list)
    """Keys of unreferenced blobs (their renditions went with them)."""
    renditions: list[str] = field(default_factory=list)
    """Rendition folders (``r/ab/<sha256>``) of bytes that no image has."""
    freed_bytes: int = 0
    missing: list[str] = field(default_factory=list)
    """Keys that rows refer to but the store lacks (reported, nothing to collect)."""

    @property
    def removed(self) -> list[str]:
        return [*self.blobs, *(f"{folder}/" for folder in self.renditions)]


async def _referenced(backend: Backend) -> tuple[set[str], set[str]]:
    """(blob keys, image checksums) that rows refer to."""
    keys = sa.union(sa.select(image_table.c.blob_key), sa.select(video_table.c.blob_key))
    async with backend.db.read() as connection:
        blob_keys = {row[0] for row in await connection.execute(keys)}
        checksums = {
            row[0] for row in await connection.execute(sa.select(image_table.c.checksum).distinct())
        }
    return blob_keys, checksums


async def collect_garbage(
    backend: Backend, *, dry_run: bool = False, force: bool = False
) -> Collection:
    """Remove (or with ``dry_run`` only list) unreferenced blobs and rendition folders."""
    result = Collection(dry_run=dry_run)
    referenced_keys, checksums = await _referenced(backend)
    listing = backend.blobs.keys()
    stored = [key async for key in listing]
    stored_set = set(stored)
    result.missing = sorted(referenced_keys - stored_set)
    if not referenced_keys and stored and not force:
        raise NothingReferenced(len(stored))

    for key in stored:
        if key in referenced_keys:
            continue
        # Measured first: the blob and its renditions are gone once released.
        size = (await backend.blobs.size(key) or 0) + await backend.blobs.renditions_size(
            sha256_of(key)
        )
        if await backend.release_blobs([key], dry_run=dry_run):
            result.blobs.append(key)
            result.freed_bytes += size
        # else committed since the listing: kept

    collected = {sha256_of(key) for key in result.blobs}
    for sha256 in [s async for s in backend.blobs.rendition_sources()]:
        if sha256 in checksums or sha256 in collected:
            continue
        async with backend.db.write() as session:
            has_image = sa.select(image_table.c.id).where(image_table.c.checksum == sha256).limit(1)
            if (await session.execute(has_image)).first() is not None:
                continue
            result.renditions.append(f"r/{sha256[:2]}/{sha256}")
            result.freed_bytes += await backend.blobs.renditions_size(sha256)
            if not dry_run:
                async with backend.renditions.exclusive(sha256):
                    await backend.blobs.delete_renditions(sha256)
    return result


__all__ = ["Collection", "NothingReferenced", "collect_garbage"]
