"""The ``/media`` route: blobs of the local store, served by Starlette's ``StaticFiles``.

``StaticFiles`` and ``FileResponse`` provide ETag, Last-Modified, HEAD, 304 for
``If-None-Match``/``If-Modified-Since``, ``Accept-Ranges`` and 206 for ``Range``
(single and multiple ranges) and answer 405 to other methods. :class:`MediaFiles`
narrows what is served to blob keys, adds the headers that content addressing
allows, and reads ``Range`` as RFC 9110 has it (:func:`parse_range`): a field it
cannot use is ignored (200 with the whole body), one whose ranges all start past
the end is 416.
"""

from __future__ import annotations

import os
import re
from collections.abc import Awaitable, Callable

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, PlainTextResponse, RangeNotSatisfiable, Response
from starlette.staticfiles import NotModifiedResponse, PathLike, StaticFiles
from starlette.types import Scope

from storage.blobs import RENDITION_KEY_PATTERN, content_type_for, is_media_key

IMMUTABLE = "public, max-age=31536000, immutable"
"""A key names its bytes forever, so caches may keep them for a year without revalidating."""

NOSNIFF = "nosniff"

MAX_RANGES = 100
"""More ranges than this in one field: the field is ignored (whole body)."""

RANGE_SPEC = re.compile(r"[ \t]*(?:([0-9]+)-([0-9]*)|-([0-9]+))[ \t]*")
"""One range-spec of RFC 9110: ``first-last``, ``first-`` or ``-suffix_length``."""

HUGE = 10**18
"""A position of more digits than this is past the end of any file."""

RangeSpec = tuple[int | None, int | None]
"""``(first, last)``, ``(first, None)`` from ``first`` to the end, ``(None, n)`` the last n."""


def parse_range(field: str) -> list[RangeSpec] | None:
    """The byte ranges of a ``Range`` field, or None when it is to be ignored: another unit,
    a malformed or reversed range-spec, no range, or more than ``MAX_RANGES``."""
    unit, equals, specs = field.partition("=")
    if not equals or unit.strip().lower() != "bytes":
        return None
    parts = [part for part in specs.split(",") if part.strip()]  # empty list elements
    if not parts or len(parts) > MAX_RANGES:
        return None
    ranges: list[RangeSpec] = []
    for part in parts:
        match = RANGE_SPEC.fullmatch(part)
        if match is None:
            return None
        first, last, suffix = (_number(group) for group in match.groups())
        if first is not None and last is not None and last < first:
            return None
        ranges.append((None, suffix) if suffix is not None else (first, last))
    return ranges


def satisfiable(ranges: list[RangeSpec], size: int) -> list[tuple[int, int]]:
    """The ranges that select bytes of a ``size``-byte file, as ``(start, end)`` with ``end``
    exclusive, overlapping ones merged; none: 416."""
    spans: list[tuple[int, int]] = []
    for first, last in ranges:
        if first is None:
            if last and size:
                spans.append((max(size - last, 0), size))
        elif first < size:
            spans.append((first, size if last is None else min(last + 1, size)))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _number(digits: str | None) -> int | None:
    if not digits:
        return None
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= 18 else HUGE


class MediaFileResponse(FileResponse):
    """A file with Starlette's range handling, over :func:`parse_range`."""

    @classmethod
    def _parse_range_header(cls, http_range: str, file_size: int) -> list[tuple[int, int]]:
        ranges = parse_range(http_range)
        if ranges is None:
            return []  # Starlette sends the whole file
        spans = satisfiable(ranges, file_size)
        if not spans:
            raise RangeNotSatisfiable(file_size)
        return spans


class MediaFiles(StaticFiles):
    """Serve ``<directory>/<key>`` for blob keys only; everything else is a plain 404.

    The request path is checked against `storage.blobs.is_media_key` before the
    filesystem is touched, so dot segments, encoded slashes, absolute paths and the
    temporary folder never reach a lookup. Symlinks are not followed out of the
    directory (``follow_symlink`` stays ``False``).
    """

    def __init__(
        self,
        *,
        directory: PathLike,
        check_dir: bool = True,
        ensure: Callable[[str], Awaitable[bool]] | None = None,
    ) -> None:
        """``ensure(key)`` makes a derived file (a rendition) on its first request; it answers
        False when there is no such thing, which is a 404."""
        super().__init__(directory=directory, check_dir=check_dir, follow_symlink=False)
        self.ensure = ensure

    def get_path(self, scope: Scope) -> str:
        """The requested key as sent (only the mount prefix removed), without normalisation."""
        path: str = scope["path"]
        root_path: str = scope.get("root_path", "")
        if root_path and path.startswith(root_path + "/"):
            path = path[len(root_path) :]
        return path.removeprefix("/")

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            if scope["method"] in ("GET", "HEAD"):
                if not _is_key(path, scope):
                    raise HTTPException(status_code=404)
                if (
                    self.ensure is not None
                    and RENDITION_KEY_PATTERN.match(path)
                    and not await self.ensure(path)
                ):
                    raise HTTPException(status_code=404)
            return await super().get_response(path.replace("/", os.sep), scope)
        except HTTPException as exc:
            headers = dict(exc.headers or {})
            headers["X-Content-Type-Options"] = NOSNIFF
            return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=headers)

    def file_response(
        self,
        full_path: PathLike,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        key = self.get_path(scope)
        response: Response = MediaFileResponse(
            full_path, status_code=status_code, stat_result=stat_result
        )
        if self.is_not_modified(response.headers, Headers(scope=scope)):
            response = NotModifiedResponse(response.headers)
        if isinstance(response, FileResponse):
            response.media_type = content_type_for(key)
            response.headers["Content-Type"] = response.media_type
        response.headers["Cache-Control"] = IMMUTABLE
        response.headers["X-Content-Type-Options"] = NOSNIFF
        return response


def _is_key(path: str, scope: Scope) -> bool:
    """Whether ``path`` is a blob key, spelled as such on the wire (no percent-encoding)."""
    if not is_media_key(path):
        return False
    raw_path: bytes | None = scope.get("raw_path")
    return raw_path is None or raw_path.endswith(b"/" + path.encode("ascii"))
