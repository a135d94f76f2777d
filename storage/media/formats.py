"""The media formats the gateway stores, each declared once; every lookup derives from them.

A format is accepted as an upload (``source`` images, the MP4 video), written as a rendition
(``rendition``), or both. Blob keys end in a format's extension and are served with its media
type, so the key patterns and content types follow from this table too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final


@dataclass(frozen=True)
class MediaFormat:
    """One stored format."""

    name: str
    """Pillow's format name for an image (``"JPEG"``); ``"MP4"`` for the video."""
    mime_type: str
    extension: str
    """Of blob and rendition keys, without the dot."""
    description: str
    """Completes "The file is ..." in user errors."""
    source: bool = False
    """An image accepted as an upload and decoded to make renditions."""
    rendition: bool = False
    """Renditions can be written in it; a still source in such a format keeps it for ORIGINAL."""


JPEG: Final = MediaFormat("JPEG", "image/jpeg", "jpg", "a JPEG image", source=True, rendition=True)
PNG: Final = MediaFormat("PNG", "image/png", "png", "a PNG image", source=True, rendition=True)
GIF: Final = MediaFormat("GIF", "image/gif", "gif", "a GIF image", source=True)
WEBP: Final = MediaFormat("WEBP", "image/webp", "webp", "a WebP image", source=True, rendition=True)
AVIF: Final = MediaFormat("AVIF", "image/avif", "avif", "an AVIF image", rendition=True)
MP4: Final = MediaFormat("MP4", "video/mp4", "mp4", "an MP4 video")

FORMATS: Final = (JPEG, PNG, GIF, WEBP, AVIF, MP4)

BY_NAME: Final[Mapping[str, MediaFormat]] = MappingProxyType({f.name: f for f in FORMATS})
BY_EXTENSION: Final[Mapping[str, MediaFormat]] = MappingProxyType({f.extension: f for f in FORMATS})
BY_MIME_TYPE: Final[Mapping[str, MediaFormat]] = MappingProxyType({f.mime_type: f for f in FORMATS})

SOURCE_IMAGES: Final = tuple(f for f in FORMATS if f.source)
RENDITION_OUTPUTS: Final = tuple(f for f in FORMATS if f.rendition)
