"""The ``/media`` route: blobs of the local store, served by Starlette's ``StaticFiles``.

``StaticFiles`` and ``FileResponse`` provide ETag, Last-Modified, HEAD, 304 for
``If-None-Match``/``If-Modified-Since``, ``Accept-Ranges`` and 206 for ``Range``
(single and multiple ranges, 416 when unsatisfiable) and answer 405 to other
methods. :class:`MediaFiles` narrows what is served to blob keys and adds the
headers that content addressing allows.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import Scope

from storage.blobs import RENDITION_KEY_PATTERN, content_type_for, is_media_key

IMMUTABLE = "public, max-age=31536000, immutable"
"""A key names its bytes forever, so caches may keep them for a year without revalidating."""

NOSNIFF = "nosniff"


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
        response = super().file_response(full_path, stat_result, scope, status_code)
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
