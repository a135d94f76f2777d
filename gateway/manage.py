"""The media manager at ``/manage``: one static page (``static/manage/``, no build step) that
uses the GraphQL API: sign in with a token, find a product by SKU or name, manage its option
galleries, images (upload with GraphQL multipart, reorder, move between galleries, alt text,
image type, main image, delete), videos, and see its ERP images and re-sync them.

The page and its script and styles are plain files; this module serves the page with a
Content-Security-Policy that lets it load scripts and styles from the gateway only, talk to
the gateway only, and show images and play videos from the gateway and from ``PUBLIC_URL``
(where media URLs point)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from gateway.assets import STATIC_DIR
from gateway.media import NOSNIFF

PAGE = STATIC_DIR / "manage" / "index.html"


def content_security_policy(public_url: str | None) -> str:
    images = ["'self'", "data:", "blob:"]
    if public_url:
        parts = urlsplit(public_url)
        if parts.scheme in ("http", "https") and parts.netloc:
            images.append(f"{parts.scheme}://{parts.netloc}")
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src {' '.join(images)}",
            f"media-src {' '.join(images)}",
            "connect-src 'self'",
            "base-uri 'self'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def manage_endpoint(public_url: str | None) -> Callable[[Request], Awaitable[Response]]:
    policy = content_security_policy(public_url)

    async def manage(request: Request) -> Response:
        return FileResponse(
            PAGE,
            media_type="text/html",
            headers={
                "cache-control": "no-cache",
                "content-security-policy": policy,
                "x-content-type-options": NOSNIFF,
                "referrer-policy": "no-referrer",
            },
        )

    return manage


__all__ = ["content_security_policy", "manage_endpoint"]
