"""Renditions on demand: URLs are computed without touching a file; the first request of a
missing rendition makes it (in a worker thread) and keeps it.

One generation at a time per source image, across processes too: an asyncio lock per source
inside a process, and an exclusive ``flock`` on a lock file between processes. Whoever gets
the lock checks again whether the file now exists before rendering. A background warm-up
after each upload renders every default size in one decode, so the first visitor rarely
waits."""

from __future__ import annotations

import asyncio
import fcntl
import os
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import IO

import anyio.to_thread
import sqlalchemy as sa

from storage.blobs import RENDITION_KEY_PATTERN, BlobStore, rendition_key
from storage.enums import RenditionFormat, RenditionSize
from storage.events import MediaEvents
from storage.media.formats import BY_EXTENSION, BY_MIME_TYPE
from storage.media.rendering import (
    DEFAULT_BOXES,
    fit,
    output_format,
    plan,
    render,
    rendition_format,
)
from storage.sql.database import Database
from storage.sql.tables import image_table

VIEWS = 4096
"""(original, sizes, format) requests whose rendition views are kept."""


@dataclass(frozen=True)
class RenditionView:
    """What the API shows of one rendition."""

    size: RenditionSize
    key: str
    key_2x: str | None
    width: int
    height: int
    mime_type: str


@dataclass(frozen=True)
class Source:
    blob_key: str
    sha256: str
    width: int
    height: int
    mime_type: str


def parse_boxes(text: str) -> dict[RenditionSize, int]:
    """``"THUMBNAIL=120,ZOOM=2000"`` over the defaults; raises ValueError when malformed."""
    boxes = dict(DEFAULT_BOXES)
    for entry in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = entry.partition("=")
        size = RenditionSize(name.strip().upper())
        box = int(value)
        if not 1 <= box <= 10_000:
            raise ValueError(f"{name}: a box is 1..10000 pixels")
        boxes[size] = box
    return boxes


class Renditions:
    def __init__(
        self,
        db: Database,
        blobs: BlobStore,
        lock_dir: Path,
        boxes: Mapping[RenditionSize, int] = DEFAULT_BOXES,
        events: MediaEvents | None = None,
    ) -> None:
        self.db = db
        self.blobs = blobs
        self.boxes = dict(boxes)
        self.lock_dir = lock_dir
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        self.generated = 0
        """Renditions written by this process (files, not requests)."""
        self.events = events or MediaEvents()
        self._locks: dict[str, _SourceLock] = {}
        self._working = asyncio.Semaphore(max(1, os.cpu_count() or 1))
        self._background: set[asyncio.Task[None]] = set()
        self._views = lru_cache(maxsize=VIEWS)(self._describe)

    # -- URLs ------------------------------------------------------------------

    def describe(
        self,
        sha256: str,
        width: int,
        height: int,
        mime_type: str,
        sizes: Sequence[RenditionSize] | None,
        requested: RenditionFormat,
    ) -> tuple[RenditionView, ...]:
        """The renditions of an original, one per size asked (all when None). A listing shows
        the same few images' renditions on every read, so the views (their keys hash and
        format names) are kept per original and request, in a bounded cache."""
        chosen = tuple(sizes) if sizes is not None else None
        return self._views(sha256, width, height, mime_type, chosen, requested)

    def _describe(
        self,
        sha256: str,
        width: int,
        height: int,
        mime_type: str,
        sizes: tuple[RenditionSize, ...] | None,
        requested: RenditionFormat,
    ) -> tuple[RenditionView, ...]:
        fmt = rendition_format(
            output_format(BY_MIME_TYPE[mime_type].name, requested, animated=False)
        )
        extension = fmt.extension
        views = []
        for size in sizes if sizes is not None else list(RenditionSize):
            box = self.boxes[size]
            planned = plan(width, height, size, box)
            views.append(
                RenditionView(
                    size=size,
                    key=rendition_key(sha256, box, extension),
                    key_2x=rendition_key(sha256, 2 * box, extension) if planned.size_2x else None,
                    width=planned.width,
                    height=planned.height,
                    mime_type=fmt.mime_type,
                )
            )
        return tuple(views)

    def _allowed_boxes(self) -> set[int]:
        return {box * scale for box in self.boxes.values() for scale in (1, 2)}

    # -- Files -----------------------------------------------------------------

    async def ensure(self, key: str) -> bool:
        """Make the rendition at ``key`` unless it exists; False when there is no such
        rendition (unknown source, a box that is not configured)."""
        match = RENDITION_KEY_PATTERN.match(key)
        if match is None or int(match["box"]) not in self._allowed_boxes():
            return False
        if await self.blobs.exists(key):
            return True
        source = await self._source(match["sha256"])
        if source is None:
            return False
        return await self._render_missing(source, [key])

    async def _source(self, sha256: str) -> Source | None:
        query = (
            sa.select(
                image_table.c.blob_key,
                image_table.c.width,
                image_table.c.height,
                image_table.c.mime_type,
            )
            .where(image_table.c.checksum == sha256)
            .limit(1)
        )
        async with self.db.read() as connection:
            row = (await connection.execute(query)).first()
        return Source(row.blob_key, sha256, row.width, row.height, row.mime_type) if row else None

    def default_keys(self, source: Source) -> list[str]:
        keys: list[str] = []
        for view in self.describe(
            source.sha256,
            source.width,
            source.height,
            source.mime_type,
            None,
            RenditionFormat.ORIGINAL,
        ):
            keys.append(view.key)
            if view.key_2x:
                keys.append(view.key_2x)
        return list(dict.fromkeys(keys))

    async def _render_missing(self, source: Source, keys: Sequence[str]) -> bool:
        """Render the keys that do not exist yet; False when the source blob is gone (its
        last image was deleted meanwhile: deletion holds the same lock)."""
        async with self.exclusive(source.sha256):
            if not await self.blobs.exists(source.blob_key):
                return False
            missing = [k for k in keys if not await self.blobs.exists(k)]
            if not missing:
                return True
            targets = []
            for key in missing:
                match = RENDITION_KEY_PATTERN.match(key)
                assert match is not None
                width, height = fit(source.width, source.height, int(match["box"]))
                targets.append((width, height, BY_EXTENSION[match["extension"]].name))
            path = await self.blobs.local_copy(source.blob_key)
            async with self._working:
                rendered = await anyio.to_thread.run_sync(render, path, targets)
            for key, result in zip(missing, rendered, strict=True):
                await self.blobs.write(key, result.data)
            self.generated += len(missing)
            for _ in missing:
                self.events.rendition_generated()
            return True

    @asynccontextmanager
    async def exclusive(self, sha256: str) -> AsyncIterator[None]:
        """The source's lock: rendering it, and deleting it with its renditions, hold it."""
        entry = self._locks.setdefault(sha256, _SourceLock())
        entry.users += 1
        try:
            async with entry.lock:
                handle = await anyio.to_thread.run_sync(_flock, self.lock_dir / f"{sha256}.lock")
                try:
                    yield
                finally:
                    handle.close()
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._locks[sha256]

    # -- Warm-up and rebuilds --------------------------------------------------

    async def warm(self, sha256s: Iterable[str]) -> None:
        """Render every default (ORIGINAL format) rendition of these sources."""
        for sha256 in dict.fromkeys(sha256s):
            source = await self._source(sha256)
            if source is not None:
                await self._render_missing(source, self.default_keys(source))

    def warm_later(self, sha256s: Iterable[str]) -> None:
        task = asyncio.get_running_loop().create_task(self.warm(list(sha256s)))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def rebuild(self, sha256s: Iterable[str]) -> None:
        """Throw away and re-render every rendition of these sources (e.g. after the box
        settings changed)."""
        sha256s = list(dict.fromkeys(sha256s))
        for sha256 in sha256s:
            async with self.exclusive(sha256):
                await self.blobs.delete_renditions(sha256)
        await self.warm(sha256s)

    async def drain(self) -> None:
        """Wait for background warm-ups (at shutdown), including any started meanwhile."""
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)


@dataclass
class _SourceLock:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


def _flock(path: Path) -> IO[bytes]:
    handle = open(path, "ab")  # noqa: SIM115  (closed by the caller when the lock ends)
    fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
    return handle
