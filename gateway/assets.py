"""The gateway's own static files (``gateway/static``, package data), served at ``/static``.

Two kinds live there: the vendored GraphiQL assets in folders named after their package and
version (``graphiql/graphiql-4.1.2/...``, listed in ``graphiql/assets.json`` and written by
``scripts/fetch_graphiql_assets.py``), which never change under one path and so are cached for
a year without revalidation; and the gateway's own page scripts and styles (``manage/``,
``graphiql/gateway-graphiql.js``), which change with the gateway and so are revalidated on
each use (``no-cache``, answered with 304 through their ETag)."""

from __future__ import annotations

import json
import os
from functools import cache
from pathlib import Path

from starlette.responses import Response
from starlette.staticfiles import PathLike, StaticFiles
from starlette.types import Scope

from gateway.media import IMMUTABLE, NOSNIFF

STATIC_DIR = Path(__file__).resolve().parent / "static"
GRAPHIQL_MANIFEST = STATIC_DIR / "graphiql" / "assets.json"
REVALIDATE = "no-cache"


@cache
def vendored() -> dict[str, dict[str, object]]:
    """assets.json: package key -> name, version, integrity, folder, files (name -> sha256)."""
    manifest: dict[str, dict[str, object]] = json.loads(GRAPHIQL_MANIFEST.read_text())
    return manifest


@cache
def versioned_prefixes() -> tuple[str, ...]:
    return tuple(f"graphiql/{entry['folder']}/" for entry in vendored().values())


def vendored_path(key: str, name: str) -> str:
    """The URL path under ``/static`` of one vendored file, e.g. ``graphiql/react-18.3.1/...``."""
    entry = vendored()[key]
    files = entry["files"]
    assert isinstance(files, dict) and name in files, f"{key} has no {name}"
    return f"graphiql/{entry['folder']}/{name}"


class StaticAssets(StaticFiles):
    """``StaticFiles`` (ETag, 304, HEAD, no path outside the folder) with caching headers."""

    def __init__(self, directory: PathLike = STATIC_DIR) -> None:
        super().__init__(directory=directory, follow_symlink=False)
        self.root = Path(directory).resolve()

    def file_response(
        self,
        full_path: PathLike,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        relative = Path(full_path).resolve().relative_to(self.root)
        versioned = relative.as_posix().startswith(versioned_prefixes())
        response.headers["cache-control"] = IMMUTABLE if versioned else REVALIDATE
        response.headers["x-content-type-options"] = NOSNIFF
        return response


__all__ = ["STATIC_DIR", "StaticAssets", "vendored", "vendored_path"]
