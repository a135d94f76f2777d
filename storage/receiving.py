"""Receive an uploaded or downloaded file: stream it to a temporary blob (hashing, counting,
stopping at the byte limit), then sniff and measure it in a worker thread."""

from __future__ import annotations

from collections.abc import AsyncIterable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

import anyio.to_thread

from storage.backend import Backend
from storage.blobs import TempBlob
from storage.errors import FieldPath, FileRejected, MediaFailure
from storage.media import ImageInfo, VideoInfo, inspect_image, inspect_video

Info = TypeVar("Info", ImageInfo, VideoInfo)


@dataclass(frozen=True)
class Incoming:
    """File content on its way in, and the input field it came from (for user errors)."""

    chunks: AsyncIterable[bytes]
    field: FieldPath


async def _receive(
    backend: Backend, incoming: Incoming, limit: int, inspect: partial[Info]
) -> tuple[TempBlob, Info]:
    try:
        temp = await backend.blobs.receive(incoming.chunks, limit=limit)
    except FileRejected as rejected:
        raise MediaFailure.one(incoming.field, rejected.code, rejected.message) from None
    try:
        info = await anyio.to_thread.run_sync(inspect, temp.path)
    except FileRejected as rejected:
        await backend.blobs.discard(temp)
        raise MediaFailure.one(incoming.field, rejected.code, rejected.message) from None
    except BaseException:
        await backend.blobs.discard(temp)
        raise
    return temp, info


async def receive_image(backend: Backend, incoming: Incoming) -> tuple[TempBlob, ImageInfo]:
    limits = backend.limits
    inspect = partial(
        inspect_image, max_pixels=limits.max_image_pixels, min_side=limits.min_image_side
    )
    return await _receive(backend, incoming, limits.max_image_bytes, inspect)


async def receive_video(backend: Backend, incoming: Incoming) -> tuple[TempBlob, VideoInfo]:
    return await _receive(backend, incoming, backend.limits.max_video_bytes, partial(inspect_video))
