"""Receive an uploaded or downloaded file: stream it to a temporary blob (hashing, counting,
stopping at the byte limit), or take one that already arrived in a temporary blob (a
multipart file part, written there while the request streamed in), then sniff and measure
it in a worker thread."""

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
from storage.errors import FieldPath, FileRejected, MediaFailure, Problem, too_large
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


@dataclass(frozen=True)
class ReceivedFile:
    """A file that arrived in a temporary blob of the backend's store before any use case
    ran (a multipart file part), or the error that stopped its writing (a full disk), raised
    where it is used. Whoever received it owns the blob and discards it once every use is
    over: a request may use one file several times."""

    temp: TempBlob | None
    error: Exception | None = None


@dataclass(frozen=True)
class Arrived:
    """A received file as the content of one input field."""

    file: ReceivedFile
    field: FieldPath


Content = Incoming | FromUrl | Arrived


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
    owned: bool = True
    """Whether the temporary blob is the use case's to discard (not an ``Arrived`` file's)."""

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
    backend: Backend, content: Incoming | Arrived, limit: int, inspect: partial[Info]
) -> Received[Info]:
    owned = isinstance(content, Incoming)
    try:
        temp = await _temporary(backend, content, limit)
    except FileRejected as rejected:
        raise MediaFailure.one(content.field, rejected.code, rejected.message) from None
    try:
        info = await anyio.to_thread.run_sync(inspect, temp.path)
    except BaseException as exc:
        if owned:
            await backend.blobs.discard(temp)
        if isinstance(exc, FileRejected):
            raise MediaFailure.one(content.field, exc.code, exc.message) from None
        raise
    return Received(temp, info, owned)


async def _temporary(backend: Backend, content: Incoming | Arrived, limit: int) -> TempBlob:
    """The temporary blob of the content: streamed to one now, or the one it arrived in."""
    if isinstance(content, Incoming):
        return await backend.blobs.receive(content.chunks, limit=limit)
    if content.file.error is not None:
        raise content.file.error
    if content.file.temp is None:
        raise ValueError("A received file has a temporary blob or an error.")
    if content.file.temp.size > limit:
        raise too_large(limit)
    return content.file.temp


async def done_with(backend: Backend, received: Received[Info]) -> None:
    """The end of a use case's work with a received file: its temporary blob is discarded
    unless it belongs to whoever received it (``Arrived``)."""
    if received.owned:
        await backend.blobs.discard(received.temp)


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
