"""Receive an uploaded or downloaded file: stream it to a temporary blob (hashing, counting,
stopping at the byte limit), then sniff and measure it in a worker thread."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from functools import partial
from typing import Generic, TypeVar

import anyio.to_thread

from storage import validation
from storage.backend import Backend
from storage.blobs import TempBlob, blob_key
from storage.enums import MediaSource
from storage.errors import FieldPath, FileRejected, MediaFailure, Problem
from storage.fetch import Fetcher, check_url
from storage.media import ImageInfo, VideoInfo, inspect_image, inspect_video

Info = TypeVar("Info", ImageInfo, VideoInfo)


@dataclass(frozen=True)
class Incoming:
    """File content on its way in, and the input field it came from (for user errors)."""

    chunks: AsyncIterable[bytes]
    field: FieldPath


@dataclass(frozen=True)
class FromUrl:
    """File content to download from ``url`` with the backend's fetcher, and the input field
    that named the URL."""

    url: str
    field: FieldPath


Content = Incoming | FromUrl


def stored_source(content: Content, given: MediaSource | None) -> MediaSource:
    """The source as given, else URL for content downloaded from a URL and UPLOAD otherwise."""
    if given is not None:
        return given
    return MediaSource.URL if isinstance(content, FromUrl) else MediaSource.UPLOAD


@dataclass(frozen=True)
class Received(Generic[Info]):
    """A received file: its temporary blob and what inspection found."""

    temp: TempBlob
    info: Info

    @property
    def key(self) -> str:
        """The content-addressed key the blob is stored under."""
        return blob_key(self.temp.sha256, self.info.extension)


def url_problems(url: str, field: FieldPath) -> list[Problem]:
    """What is wrong with a URL to download (as text, then by the fetcher's rules), before
    anything is fetched."""
    problems = validation.required_text(url, field, validation.URL_LENGTH)
    if problems:
        return problems
    try:
        check_url(url)
    except FileRejected as rejected:
        return [Problem(field, rejected.code, rejected.message)]
    return []


def downloaded(fetcher: Fetcher, url: str, field: FieldPath, limit: int) -> Incoming:
    """A URL's body as incoming content; nothing is fetched until it is read."""
    return Incoming(_body(fetcher, url, limit), field)


async def _body(fetcher: Fetcher, url: str, limit: int) -> AsyncIterator[bytes]:
    async with fetcher.open(url, limit=limit) as body:
        async for chunk in body:
            yield chunk


async def _receive(
    backend: Backend, incoming: Incoming, limit: int, inspect: partial[Info]
) -> Received[Info]:
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
    return Received(temp, info)


async def receive_image(backend: Backend, content: Content) -> Received[ImageInfo]:
    """Receive an image; content ``FromUrl`` is downloaded with the backend's fetcher."""
    limits = backend.limits
    if isinstance(content, FromUrl):
        content = downloaded(backend.fetcher, content.url, content.field, limits.max_image_bytes)
    inspect = partial(
        inspect_image, max_pixels=limits.max_image_pixels, min_side=limits.min_image_side
    )
    return await _receive(backend, content, limits.max_image_bytes, inspect)


async def receive_video(backend: Backend, content: Content) -> Received[VideoInfo]:
    """Receive a video; content ``FromUrl`` is downloaded with the backend's fetcher."""
    limit = backend.limits.max_video_bytes
    if isinstance(content, FromUrl):
        content = downloaded(backend.fetcher, content.url, content.field, limit)
    return await _receive(backend, content, limit, partial(inspect_video))
