"""The ``/media`` route: blobs of the local store, served by Starlette's ``StaticFiles``.

``StaticFiles`` and ``FileResponse`` provide ETag, Last-Modified, HEAD, 304 for
``If-None-Match``/``If-Modified-Since``, ``Accept-Ranges`` and 206 for ``Range``
(single and multiple ranges) and answer 405 to other methods. :class:`MediaFiles`
narrows what is served to blob keys (``gateway.media.keys``), adds the headers
that content addressing allows, and reads ``Range`` as ``gateway.media.ranges``
does: a field it cannot use is ignored (200 with the whole body), one whose
ranges all start past the end is 416.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, PlainTextResponse, RangeNotSatisfiable, Response
from starlette.staticfiles import NotModifiedResponse, PathLike, StaticFiles
from starlette.types import Scope

from gateway.media.keys import IMMUTABLE, NOSNIFF, is_served_key, requested_key
from gateway.media.ranges import parse_range, satisfiable
from storage.blobs import RENDITION_KEY_PATTERN, content_type_for


class MediaFileResponse(FileResponse):
    """A file with Starlette's range handling, over :func:`gateway.media.ranges.parse_range`."""

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
        return requested_key(scope)

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            if scope["method"] in ("GET", "HEAD"):
                if not is_served_key(path, scope):
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
