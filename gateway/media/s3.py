"""The ``/media`` route for the S3-compatible store: each request streams the object.

The same contract as :class:`gateway.media.MediaFiles` for the local store: only blob and
rendition keys spelled as such are looked up (anything else is a plain 404 without a call to
the store), a rendition is made on its first request, and responses carry the object's
``ETag`` and ``Last-Modified``, ``Accept-Ranges``, ``Cache-Control: immutable``, nosniff and
the key's content type. ``If-None-Match`` and ``If-Modified-Since`` are passed through to the
object store, which answers 304; so is a ``Range`` of one range as
:func:`gateway.media.ranges.parse_range` reads it (206 with ``Content-Range``, or 416 when it starts
past the end). Any other ``Range`` field is ignored (200 with the whole object): one the gateway
cannot use, and several ranges, which S3 does not serve.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from email.utils import format_datetime, parsedate_to_datetime

from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from gateway.media.keys import IMMUTABLE, NOSNIFF, is_served_key, plain, requested_key
from gateway.media.ranges import parse_range
from storage.blobs import RENDITION_KEY_PATTERN
from storage.blobs.s3 import ByteRange, S3BlobStore, StoredObject, UnsatisfiableRange


class S3MediaFiles:
    """An ASGI app serving ``<mount>/<key>`` from an :class:`S3BlobStore`."""

    def __init__(
        self, store: S3BlobStore, *, ensure: Callable[[str], Awaitable[bool]] | None = None
    ) -> None:
        """``ensure(key)`` makes a rendition on its first request; False is a 404."""
        self.store = store
        self.ensure = ensure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert scope["type"] == "http"
        response = await self.get_response(scope)
        await response(scope, receive, send)

    async def get_response(self, scope: Scope) -> Response:
        method = scope["method"]
        if method not in ("GET", "HEAD"):
            return plain("Method Not Allowed", 405, {"Allow": "GET, HEAD"})
        key = requested_key(scope)
        if not is_served_key(key, scope):
            return plain("Not Found", 404)
        if (
            self.ensure is not None
            and RENDITION_KEY_PATTERN.match(key)
            and not await self.ensure(key)
        ):
            return plain("Not Found", 404)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            found = await self.store.fetch(
                key,
                head=method == "HEAD",
                byte_range=_single_range(headers.get("range")),
                if_none_match=headers.get("if-none-match"),
                if_modified_since=_date(headers.get("if-modified-since")),
            )
        except UnsatisfiableRange:
            return plain("Range Not Satisfiable", 416)
        if found is None:
            return plain("Not Found", 404)
        response_headers = {
            **_object_headers(found),
            "Cache-Control": IMMUTABLE,
            "X-Content-Type-Options": NOSNIFF,
        }
        if found.not_modified:
            return Response(status_code=304, headers=response_headers)
        status = 200 if found.served is None else 206
        if method == "HEAD":
            # The length is the object's; Response keeps a Content-Length it is given.
            return Response(
                b"", status_code=status, headers=response_headers, media_type=found.content_type
            )
        return StreamingResponse(
            found.chunks(),
            status_code=status,
            headers=response_headers,
            media_type=found.content_type,
        )


def _object_headers(found: StoredObject) -> dict[str, str]:
    """The header fields that describe the object (a 304 names only its ETag)."""
    if found.not_modified:
        return {"ETag": found.etag} if found.etag else {}
    headers = {"Content-Length": str(found.length), "Accept-Ranges": "bytes"}
    if found.etag:
        headers["ETag"] = found.etag
    if found.last_modified is not None:
        headers["Last-Modified"] = format_datetime(found.last_modified, usegmt=True)
    if found.served is not None:
        first, last = found.served
        headers["Content-Range"] = f"bytes {first}-{last}/{found.size}"
    return headers


def _single_range(field: str | None) -> ByteRange | None:
    """The range to ask the object store for: a field of exactly one range."""
    ranges = parse_range(field) if field else None
    if ranges is None or len(ranges) != 1:
        return None
    return ranges[0]


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
