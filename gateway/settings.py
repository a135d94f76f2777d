"""Configuration from the environment (prefix ``MEDIA_GATEWAY_``), see the README's table."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from storage.backend import Limits
from storage.media import DEFAULT_DECODE_PIXELS

MIB = 1024 * 1024


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MEDIA_GATEWAY_", extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./var/media.db"
    media_root: Path = Path("./var/media")
    storage_url: str | None = None
    """``s3://bucket/prefix`` selects the S3-compatible store (storage/blobs/s3.py)."""
    storage_work_dir: Path | None = None
    """With ``storage_url``: the local folder for uploads being received and the read-through
    cache of originals (default: ``media_root``)."""
    public_url: str | None = None
    """Base of media URLs; when unset, the scheme and host the request was sent to."""
    trusted_hosts: str = ""
    """Hosts whose name may go into a publicly cached answer when ``public_url`` is unset,
    comma-separated: exact names and ``*.example.com`` for its subdomains (Starlette's
    ``TrustedHostMiddleware`` patterns). Requests to other hosts are served, never public."""
    admin_token: str | None = None
    admin_token_file: Path = Path("./var/admin-token")
    public_read: bool = True
    metrics_token: str | None = None
    """When set, ``/metrics`` needs ``Authorization: Bearer <metrics_token>``."""

    max_image_bytes: int = 10 * MIB
    max_video_bytes: int = 500 * MIB
    max_image_pixels: int = 50_000_000
    min_image_side: int = 1

    rendition_sizes: str = ""
    """Boxes over the defaults, e.g. ``THUMBNAIL=120,ZOOM=2000`` (longest side, pixels)."""
    warm_renditions: bool = True
    decode_pixel_budget: int = Field(DEFAULT_DECODE_PIXELS, ge=1)
    """Pixels that image decodes (uploads, renditions) hold at once in a process."""

    fetch_allow_hosts: str = ""
    fetch_timeout: float = 20.0

    max_query_depth: int = 15
    max_aliases: int = 50
    max_tokens: int = 10_000
    max_query_cost: int = 100_000
    """Items an operation may return, estimated by gateway/limits.py (``first`` multiplies)."""
    max_batch: int = 1
    """Operations in one request; 1 refuses JSON arrays (batches), N > 1 runs up to N."""
    introspection: bool = True
    """False in production hides ``__schema`` and ``__type`` (GraphiQL then cannot explore)."""
    max_json_bytes: int = 16 * MIB
    body_idle_timeout: float = 30.0
    """Seconds a client may send no request-body bytes before it gets 408."""
    request_header_timeout: float = 10.0
    """Seconds from a request's first byte (a connection's opening, for its first request)
    until its headers must be complete; then 408 and the connection is closed."""
    body_timeout: float = 20.0
    """Base seconds for receiving a request body whole, plus its size at ``min_body_rate``."""
    min_body_rate: float = 50_000.0
    """Bytes per second a request body must keep up on average (its deadline is
    ``body_timeout`` + declared length / rate; a chunked body's grows with what arrived)."""
    keep_alive_timeout: int = 5
    """Seconds an idle keep-alive connection stays open (uvicorn's ``timeout_keep_alive``)."""
    max_files: int = 20
    max_fields: int = 100
    max_text_part_bytes: int = 1 * MIB
    graphql_get_max_age: int = 60
    """Seconds a shared cache may keep an anonymous GET query's answer (0: never)."""
    response_cache: bool = True
    """Keep public query answers in memory while the catalogue version they were computed at
    is current (gateway/response_cache.py); GET ETags then answer 304 without executing."""
    response_cache_bytes: int = Field(64 * MIB, ge=0)
    """Bytes of answers the response cache keeps, least recently used dropped first."""
    compiled_plans: bool = True
    """Answer the storefront queries it covers from a plan compiled once per document
    (schema/plans/) instead of executing them field by field; the answer is the same."""

    def host_is_trusted(self, host: str | None) -> bool:
        """Whether media URLs built on the request's ``Host`` may be cached for everyone."""
        if self.public_url:
            return True  # the host is not used
        if not host:
            return False
        name = _hostname(host).lower()
        for pattern in (p.strip().lower() for p in self.trusted_hosts.split(",")):
            if pattern and (
                name == pattern or (pattern.startswith("*.") and name.endswith(pattern[1:]))
            ):
                return True
        return False

    def limits(self) -> Limits:
        return Limits(
            max_image_bytes=self.max_image_bytes,
            max_video_bytes=self.max_video_bytes,
            max_image_pixels=self.max_image_pixels,
            min_image_side=self.min_image_side,
        )

    @property
    def max_file_bytes(self) -> int:
        """The largest file any upload takes: a multipart file part over it is refused."""
        return max(self.max_image_bytes, self.max_video_bytes)

    @property
    def max_multipart_bytes(self) -> int:
        """A multipart body may carry one video or ``max_files`` images, plus its text parts."""
        files = max(self.max_video_bytes, self.max_files * self.max_image_bytes)
        return files + self.max_fields * self.max_text_part_bytes


def _hostname(host: str) -> str:
    """``host`` without its port (``[::1]:8000`` is ``[::1]``)."""
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    return host.partition(":")[0]
