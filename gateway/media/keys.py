"""What both media routes check before they touch a store: the key asked for, exactly as it was
sent, and the headers that content addressing allows."""

from __future__ import annotations

from starlette.responses import PlainTextResponse, Response
from starlette.types import Scope

from storage.blobs import is_media_key

IMMUTABLE = "public, max-age=31536000, immutable"
"""A key names its bytes forever, so caches may keep them for a year without revalidating."""

NOSNIFF = "nosniff"


def requested_key(scope: Scope) -> str:
    """The requested key as sent (only the mount prefix removed), without normalisation."""
    path: str = scope["path"]
    root_path: str = scope.get("root_path", "")
    if root_path and path.startswith(root_path + "/"):
        path = path[len(root_path) :]
    return path.removeprefix("/")


def is_served_key(key: str, scope: Scope) -> bool:
    """Whether ``key`` is a blob or rendition key, spelled as such on the wire (no
    percent-encoding, no dot segments): anything else is a 404 before any store is asked."""
    if not is_media_key(key):
        return False
    raw_path: bytes | None = scope.get("raw_path")
    return raw_path is None or raw_path.endswith(b"/" + key.encode("ascii"))


def plain(text: str, status: int, headers: dict[str, str] | None = None) -> Response:
    """A short text answer (404, 405, 416) that browsers may not sniff."""
    return PlainTextResponse(
        text, status_code=status, headers={**(headers or {}), "X-Content-Type-Options": NOSNIFF}
    )
