"""Blobs in an S3-compatible object store (AWS S3, MinIO, …): ``s3://bucket/prefix``.

Objects are ``<prefix>/<key>`` for the keys of :mod:`storage.blobs` (originals
``<prefix>/ab/ab12….jpg``, renditions ``<prefix>/r/ab/<sha256>/250.webp``), so every process
on every machine that is given the same URL shares them.

What stays local, in a work directory (by default the media root):

- temporary blobs (``<work>/.tmp``): bytes stream there while they are hashed and counted,
  exactly as in :class:`~storage.blobs.LocalBlobStore` (an internal one does it), and
  :meth:`S3BlobStore.commit` uploads them (and leaves them for another commit until they
  are discarded);
- a read-through cache of originals (``<work>/.s3-cache/ab/ab12….jpg``) for decoders that
  need a file (Pillow making renditions): :meth:`S3BlobStore.local_copy` downloads an
  object once, to a temporary file renamed into place. A committed upload is hard-linked into
  the cache, so warming its renditions downloads nothing. The cache
  holds only copies of immutable objects: any file of it may be deleted at any time.

Credentials and region come from the usual ``AWS_*`` variables (boto3's own lookup), the
endpoint of a non-AWS service from ``S3_ENDPOINT_URL``. boto3 is synchronous, so every call
runs in a worker thread; its clients are thread-safe.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio.to_thread
import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from storage.blobs import (
    DEFAULT_TEMPORARY_AGE,
    KEY_PATTERN,
    LocalBlobStore,
    TempBlob,
    content_type_for,
    is_media_key,
    sha256_of,
)
from storage.blobs.tempfiles import temp_name
from storage.blobs.writer import TempWriter

CACHE_DIRECTORY = ".s3-cache"
"""Folder of the work directory with local copies of originals."""

_HEX2 = frozenset(f"{i:02x}" for i in range(256))
_DELETE_BATCH = 1000
"""Keys per DeleteObjects request (the S3 maximum)."""

T = TypeVar("T")


@dataclass(frozen=True)
class S3Location:
    bucket: str
    prefix: str
    """Without slashes at either end; empty for the bucket's root."""

    @classmethod
    def parse(cls, url: str) -> S3Location:
        """``s3://bucket/prefix`` (the prefix is optional)."""
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc or parts.query or parts.fragment:
            raise ValueError(f"Not an s3://bucket/prefix URL: {url!r}")
        return cls(bucket=parts.netloc, prefix=parts.path.strip("/"))

    def object_key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    @property
    def root(self) -> str:
        """What every object key of the store starts with (``""`` or ``"prefix/"``)."""
        return f"{self.prefix}/" if self.prefix else ""


ByteRange = tuple[int | None, int | None]
"""``(first, last)`` inclusive, ``(first, None)`` from ``first`` to the end, ``(None, n)`` the
last ``n`` bytes."""

_CONTENT_RANGE = re.compile(r"bytes ([0-9]+)-([0-9]+)/([0-9]+)")


class UnsatisfiableRange(Exception):
    """The range asked for starts past the end of the object."""


@dataclass(frozen=True)
class StoredObject:
    """What the store answers about an object to a read: its metadata, and its bytes unless
    only the metadata was asked for or the caller's copy is current (``not_modified``)."""

    size: int
    """Bytes of the whole object (0 when ``not_modified``)."""
    content_type: str
    etag: str | None = None
    last_modified: datetime | None = None
    served: tuple[int, int] | None = None
    """The bytes served, ``(first, last)`` inclusive, when a range was; None: all of them."""
    not_modified: bool = False
    body: Any | None = None
    """botocore's ``StreamingBody`` for a GET with content, else None."""

    @property
    def length(self) -> int:
        """Bytes served."""
        return self.size if self.served is None else self.served[1] - self.served[0] + 1

    def chunks(self, size: int = 64 * 1024) -> AsyncIterator[bytes]:
        return _read_body(self.body, size)


async def _read_body(body: Any, size: int) -> AsyncIterator[bytes]:
    if body is None:
        return
    try:
        while True:
            chunk: bytes = await anyio.to_thread.run_sync(body.read, size)
            if not chunk:
                return
            yield chunk
    finally:
        body.close()


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _http_status(error: ClientError) -> int:
    return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


def _is_missing(error: ClientError) -> bool:
    return _error_code(error) in {"404", "NoSuchKey", "NotFound"} or _http_status(error) == 404


class S3BlobStore:
    """A :class:`~storage.blobs.BlobStore` on an S3-compatible service."""

    def __init__(
        self,
        url: str,
        work_dir: Path,
        *,
        endpoint_url: str | None = None,
        client: Any | None = None,
    ) -> None:
        self.location = S3Location.parse(url)
        self.url = url
        self.work_dir = Path(work_dir)
        self._temps = LocalBlobStore(self.work_dir)
        self._cache = LocalBlobStore(self.work_dir / CACHE_DIRECTORY)
        self.client = client or boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint_url or os.environ.get("S3_ENDPOINT_URL") or None,
            config=Config(max_pool_connections=32, retries={"mode": "standard"}),
        )

    # -- helpers ---------------------------------------------------------------

    async def _call(self, function: Callable[..., T], /, **kwargs: Any) -> T:
        return await anyio.to_thread.run_sync(partial(function, **kwargs))

    def _object(self, key: str) -> str:
        if not is_media_key(key):
            raise ValueError(f"Not a blob key: {key!r}")
        return self.location.object_key(key)

    def _rendition_prefix(self, sha256: str) -> str:
        if len(sha256) != 64 or any(c not in _HEX_DIGITS for c in sha256):
            raise ValueError(f"Not a sha256 hex digest: {sha256!r}")
        return self.location.object_key(f"r/{sha256[:2]}/{sha256}/")

    def _pages(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        paginator = self.client.get_paginator("list_objects_v2")
        yield from paginator.paginate(Bucket=self.location.bucket, **kwargs)

    async def _folders(self, prefix: str) -> list[str]:
        """Names of the sub-folders of ``prefix`` (``Delimiter="/"``)."""

        def run() -> list[str]:
            return [
                str(entry["Prefix"])[len(prefix) :].rstrip("/")
                for page in self._pages(Prefix=prefix, Delimiter="/")
                for entry in page.get("CommonPrefixes", [])
            ]

        return await anyio.to_thread.run_sync(run)

    async def _objects(self, prefix: str) -> dict[str, int]:
        """The whole key and the size of every object under ``prefix``."""

        def run() -> dict[str, int]:
            return {
                str(entry["Key"]): int(entry.get("Size", 0))
                for page in self._pages(Prefix=prefix)
                for entry in page.get("Contents", [])
            }

        return await anyio.to_thread.run_sync(run)

    async def _delete_objects(self, object_keys: list[str]) -> None:
        for start in range(0, len(object_keys), _DELETE_BATCH):
            batch = object_keys[start : start + _DELETE_BATCH]
            await self._call(
                self.client.delete_objects,
                Bucket=self.location.bucket,
                Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
            )

    # -- BlobStore -------------------------------------------------------------

    def new_temporary(self, *, limit: int) -> TempWriter:
        return self._temps.new_temporary(limit=limit)

    async def receive(self, chunks: AsyncIterable[bytes], *, limit: int) -> TempBlob:
        return await self._temps.receive(chunks, limit=limit)

    async def discard(self, temp: TempBlob) -> None:
        await self._temps.discard(temp)

    async def commit(self, temp: TempBlob, key: str) -> None:
        object_key = self._object(key)
        if not await self.exists(key):
            await self._call(
                self.client.upload_file,
                Filename=str(temp.path),
                Bucket=self.location.bucket,
                Key=object_key,
                ExtraArgs={"ContentType": content_type_for(key)},
            )
        # Keep the bytes as the local copy (renditions are made from them right away).
        target = self._cache.path_for(key)

        def keep() -> None:
            with contextlib.suppress(OSError):  # already cached, or no hard links: no copy
                target.parent.mkdir(parents=True, exist_ok=True)
                os.link(temp.path, target)

        self._temps.checked_temp_path(temp)
        await anyio.to_thread.run_sync(keep)

    async def delete(self, key: str) -> None:
        object_key = self._object(key)
        await self._call(self.client.delete_object, Bucket=self.location.bucket, Key=object_key)
        self._cache.path_for(key).unlink(missing_ok=True)
        if KEY_PATTERN.match(key) is not None:
            await self.delete_renditions(sha256_of(key))

    async def write(self, key: str, data: bytes) -> None:
        await self._call(
            self.client.put_object,
            Bucket=self.location.bucket,
            Key=self._object(key),
            Body=data,
            ContentType=content_type_for(key),
        )

    async def delete_renditions(self, sha256: str) -> None:
        await self._delete_objects(list(await self._objects(self._rendition_prefix(sha256))))

    async def local_copy(self, key: str) -> Path:
        """A local file with the bytes of ``key``, downloaded on first use; raises
        ``FileNotFoundError`` when the store has no such object."""
        target = self._cache.path_for(key)
        if await anyio.to_thread.run_sync(target.is_file):
            return target
        object_key = self._object(key)
        temp = self._cache.root / ".tmp" / temp_name(".part")

        def download() -> None:
            try:
                self.client.download_file(self.location.bucket, object_key, str(temp))
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(temp, target)
            except ClientError as exc:
                if _is_missing(exc):
                    raise FileNotFoundError(f"No object {object_key!r}") from exc
                raise
            finally:
                temp.unlink(missing_ok=True)

        await anyio.to_thread.run_sync(download)
        return target

    async def exists(self, key: str) -> bool:
        return await self.size(key) is not None

    async def size(self, key: str) -> int | None:
        try:
            answer: dict[str, Any] = await self._call(
                self.client.head_object, Bucket=self.location.bucket, Key=self._object(key)
            )
        except ClientError as exc:
            if _is_missing(exc):
                return None
            raise
        return int(answer.get("ContentLength", 0))

    async def renditions_size(self, sha256: str) -> int:
        return sum((await self._objects(self._rendition_prefix(sha256))).values())

    async def keys(self) -> AsyncIterator[str]:
        root = self.location.root
        for folder in sorted(await self._folders(root)):
            if folder not in _HEX2:
                continue
            for object_key in sorted(await self._objects(f"{root}{folder}/")):
                key = object_key[len(root) :]
                if KEY_PATTERN.match(key):
                    yield key

    async def rendition_sources(self) -> AsyncIterator[str]:
        base = f"{self.location.root}r/"
        for folder in sorted(await self._folders(base)):
            if folder not in _HEX2:
                continue
            for name in sorted(await self._folders(f"{base}{folder}/")):
                if len(name) == 64 and name.startswith(folder) and set(name) <= set(_HEX_DIGITS):
                    yield name

    async def clean_temporary(self, *, older_than: float = DEFAULT_TEMPORARY_AGE) -> int:
        removed = await self._temps.clean_temporary(older_than=older_than)
        return removed + await self._cache.clean_temporary(older_than=older_than)

    async def check(self) -> None:
        await self._temps.check()
        probe = self.location.object_key(f".probe/{temp_name('.probe')}")
        await self._call(self.client.put_object, Bucket=self.location.bucket, Key=probe, Body=b"ok")
        await self._call(self.client.delete_object, Bucket=self.location.bucket, Key=probe)

    # -- Serving ---------------------------------------------------------------

    async def fetch(
        self,
        key: str,
        *,
        head: bool = False,
        byte_range: ByteRange | None = None,
        if_none_match: str | None = None,
        if_modified_since: datetime | None = None,
    ) -> StoredObject | None:
        """Read the object of ``key`` (only its metadata with ``head``) with the caller's
        conditions and range passed through to the object store; None when there is no such
        object. Raises :class:`UnsatisfiableRange` for a range past the end."""
        kwargs: dict[str, Any] = {"Bucket": self.location.bucket, "Key": self._object(key)}
        if byte_range is not None:
            kwargs["Range"] = _range_field(byte_range)
        if if_none_match:
            kwargs["IfNoneMatch"] = if_none_match
        elif if_modified_since is not None:
            kwargs["IfModifiedSince"] = if_modified_since
        function = self.client.head_object if head else self.client.get_object
        content_type = content_type_for(key)
        try:
            answer: dict[str, Any] = await self._call(function, **kwargs)
        except ClientError as exc:
            if _is_missing(exc):
                return None
            if _http_status(exc) == 416:
                raise UnsatisfiableRange(key) from exc
            if _http_status(exc) == 304 or _error_code(exc) in {"304", "NotModified"}:
                headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
                etag = headers.get("etag") or (if_none_match if if_none_match != "*" else None)
                return StoredObject(0, content_type, etag=etag, not_modified=True)
            raise
        modified = answer.get("LastModified")
        served, size = None, int(answer.get("ContentLength", 0))
        if answer.get("ContentRange"):
            served, size = _served(str(answer["ContentRange"]))
        return StoredObject(
            size,
            content_type,
            etag=str(answer["ETag"]) if answer.get("ETag") else None,
            last_modified=modified.astimezone(UTC) if isinstance(modified, datetime) else None,
            served=served,
            body=None if head else answer["Body"],
        )


def _range_field(byte_range: ByteRange) -> str:
    """The ``Range`` parameter of a GetObject for ``byte_range``."""
    first, last = byte_range
    if first is None:
        return f"bytes=-{last}"
    return f"bytes={first}-{'' if last is None else last}"


def _served(content_range: str) -> tuple[tuple[int, int], int]:
    """(the bytes served, the object's size) from a ``ContentRange`` answer."""
    match = _CONTENT_RANGE.fullmatch(content_range.strip())
    if match is None:
        raise ValueError(f"Unexpected ContentRange from the object store: {content_range!r}")
    first, last, size = (int(group) for group in match.groups())
    return (first, last), size


_HEX_DIGITS = "0123456789abcdef"


__all__ = [
    "CACHE_DIRECTORY",
    "ByteRange",
    "S3BlobStore",
    "S3Location",
    "StoredObject",
    "UnsatisfiableRange",
]
