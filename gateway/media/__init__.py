"""The ``/media`` routes: one key check (``keys``) and one reading of ``Range`` (``ranges``)
over the local store (``local``, Starlette's StaticFiles) and the S3-compatible store
(``s3``, imported only where it is configured)."""

from gateway.media.keys import IMMUTABLE, NOSNIFF
from gateway.media.local import MediaFiles

__all__ = ["IMMUTABLE", "NOSNIFF", "MediaFiles"]
