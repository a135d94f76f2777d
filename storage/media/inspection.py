"""Sniff and measure uploaded media from the bytes on disk.

The filename and the Content-Type of an upload or a download come from the
client or the remote server and can say anything, so neither is consulted:
the format is decided from the file's magic bytes, then confirmed by decoding
the pixels (images) or by walking the box structure (MP4). Image sizes are
checked against the pixel limit from the header before any pixel is decoded,
so a small file that declares a huge image is refused without allocating it.

Both entry points are synchronous and meant to run in a worker thread. They
raise ``FileRejected`` for anything the bytes make unacceptable; only an
``OSError`` from opening or reading the path itself escapes otherwise.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

from PIL import Image

from storage.enums import ErrorCode
from storage.errors import FileRejected
from storage.media.formats import AVIF, GIF, JPEG, MP4, PNG, WEBP, MediaFormat
from storage.media.memory import DECODES


@dataclass(frozen=True)
class ImageInfo:
    """An accepted image: its real format and its upright size."""

    format: str  # "JPEG" | "PNG" | "GIF" | "WEBP"
    mime_type: str
    extension: str
    width: int  # EXIF orientation 5..8 swaps width and height
    height: int


@dataclass(frozen=True)
class VideoInfo:
    """An accepted MP4 video and what its headers say about it."""

    mime_type: str
    extension: str
    width: int | None  # video track's tkhd, when present and non-zero
    height: int | None
    duration_seconds: float | None  # mvhd duration / timescale, when known


@dataclass(frozen=True)
class _Sniffed:
    kind: MediaFormat | None  # None for anything the gateway does not store
    description: str  # e.g. "a BMP image", to complete "The file is ..."

    @classmethod
    def of(cls, kind: MediaFormat) -> _Sniffed:
        return cls(kind, kind.description)


_HEAD_BYTES: Final = 4096
_ACCEPTED_IMAGES: Final = "accepted formats are JPEG, PNG, GIF and WebP"
_ACCEPTED_VIDEO: Final = "the accepted video format is MP4"
_EXIF_ORIENTATION: Final = 0x0112
_SWAPPING_ORIENTATIONS: Final = frozenset({5, 6, 7, 8})
# Frames after the first of an animation are decoded until this many times
# max_pixels have been decoded in total; frames beyond that are not checked.
_ANIMATION_DECODE_FACTOR: Final = 4
_MAX_BOXES: Final = 100_000

_MP4_BRANDS: Final = frozenset(
    {
        b"isom",
        b"iso2",
        b"iso3",
        b"iso4",
        b"iso5",
        b"iso6",
        b"mp41",
        b"mp42",
        b"avc1",
        b"dash",
        b"M4V ",
        b"MSNV",
    }
)
_HEIF_BRANDS: Final = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis"}
)
_AVIF_BRANDS: Final = frozenset({b"avif", b"avis"})

_OTHER_MAGIC: Final = (
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"%PDF-", "a PDF document"),
    (b"8BPS", "a Photoshop document"),
    (b"\x00\x00\x01\x00", "an ICO image"),
    (b"\x00\x00\x00\x0cjP  ", "a JPEG 2000 image"),
    (b"\x00\x00\x00\x0cJXL ", "a JPEG XL image"),
    (b"\xff\x0a", "a JPEG XL image"),
    (b"\x1aE\xdf\xa3", "a WebM or Matroska video"),
    (b"OggS", "an Ogg file"),
    (b"FLV", "a Flash video"),
    (b"ID3", "an MP3 audio file"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"\x7fELF", "an executable program"),
    (b"MZ", "an executable program"),
)
_BMP_HEADER_SIZES: Final = frozenset({12, 40, 52, 56, 64, 108, 124})
_RIFF_KINDS: Final = {b"AVI ": "an AVI video", b"WAVE": "a WAV audio file"}


def inspect_image(path: Path, *, max_pixels: int, min_side: int) -> ImageInfo:
    """Return the format and upright size of the image at ``path``, or raise FileRejected."""
    with path.open("rb") as fh:
        head = fh.read(_HEAD_BYTES)
        if not head:
            raise FileRejected(ErrorCode.CORRUPT_FILE, "The file is empty.")
        sniffed = _sniff(head)
        image_format = sniffed.kind
        if image_format is None or not image_format.source:
            raise FileRejected(
                ErrorCode.UNSUPPORTED_FORMAT,
                f"The file is {sniffed.description}; {_ACCEPTED_IMAGES}.",
            )
        fh.seek(0)
        width, height, orientation = _decode_image(fh, image_format, max_pixels)

    if orientation in _SWAPPING_ORIENTATIONS:
        width, height = height, width
    if width < min_side or height < min_side:
        raise FileRejected(
            ErrorCode.IMAGE_TOO_SMALL,
            f"The image is {width}x{height} pixels; both sides must be at least {min_side} pixels.",
        )
    return ImageInfo(
        format=image_format.name,
        mime_type=image_format.mime_type,
        extension=image_format.extension,
        width=width,
        height=height,
    )


def inspect_video(path: Path) -> VideoInfo:
    """Return what the MP4 headers of the file at ``path`` say, or raise FileRejected."""
    with path.open("rb") as fh:
        head = fh.read(_HEAD_BYTES)
        if not head:
            raise FileRejected(ErrorCode.CORRUPT_FILE, "The file is empty.")
        sniffed = _sniff(head)
        if sniffed.kind is not MP4:
            raise FileRejected(
                ErrorCode.UNSUPPORTED_FORMAT,
                f"The file is {sniffed.description}; {_ACCEPTED_VIDEO}.",
            )
        file_size = fh.seek(0, os.SEEK_END)
        return _read_mp4(_BoxReader(fh), file_size)


# Sniffing ------------------------------------------------------------------


def _sniff(head: bytes) -> _Sniffed:
    """Classify the file from its first bytes."""
    if head.startswith(b"\xff\xd8\xff"):
        return _Sniffed.of(JPEG)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return _Sniffed.of(PNG)
    if head.startswith((b"GIF87a", b"GIF89a")):
        return _Sniffed.of(GIF)
    if head.startswith(b"RIFF") and len(head) >= 12:
        if head[8:12] == b"WEBP":
            return _Sniffed.of(WEBP)
        return _Sniffed(None, _RIFF_KINDS.get(head[8:12], "a RIFF file"))
    if head[4:8] == b"ftyp":
        return _sniff_ftyp(head)
    if head.startswith(b"BM") and int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES:
        return _Sniffed(None, "a BMP image")
    for magic, description in _OTHER_MAGIC:
        if head.startswith(magic):
            return _Sniffed(None, description)
    return _Sniffed(None, _describe_text(head) or "not in a recognised format")


def _sniff_ftyp(head: bytes) -> _Sniffed:
    """Classify an ISO base media file from the brands of its leading ftyp box."""
    brands = _ftyp_brands(head)
    if brands is None:
        # No brand to judge by: the box walk reports the damaged ftyp.
        return _Sniffed.of(MP4)
    if _AVIF_BRANDS.intersection(brands):
        return _Sniffed(None, AVIF.description)  # written as renditions, never accepted
    if _HEIF_BRANDS.intersection(brands):
        return _Sniffed(None, "a HEIF/HEIC image")
    if _MP4_BRANDS.intersection(brands):
        return _Sniffed.of(MP4)
    major = brands[0]
    if major == b"qt  ":
        return _Sniffed(None, "a QuickTime movie")
    if major.startswith(b"3g"):
        return _Sniffed(None, "a 3GPP video")
    label = major.decode("latin-1").strip()
    return _Sniffed(None, f"an ISO media file of brand {label!r}")


def _ftyp_brands(head: bytes) -> list[bytes] | None:
    """Major brand followed by the compatible brands, or None when there is no major brand."""
    size = int.from_bytes(head[0:4], "big")
    header = 8
    if size == 1:
        size = int.from_bytes(head[8:16], "big")
        header = 16
    elif size == 0:
        size = len(head)
    body = head[header : min(size, len(head))]
    if len(body) < 4:
        return None
    # Body: major brand (4), minor version (4), compatible brands (4 each).
    compatible = [body[i : i + 4] for i in range(8, len(body) - 3, 4)]
    return [body[0:4], *compatible]


def _describe_text(head: bytes) -> str | None:
    """Describe markup or plain text, or None when the bytes are not text."""
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    if text.startswith(b"<"):
        if b"<svg" in text:
            return "an SVG image"
        if b"<html" in text or text.startswith(b"<!doctype html"):
            return "an HTML document"
        if text.startswith(b"<?xml"):
            return "an XML document"
    if any(byte < 0x20 and byte not in b"\t\n\r\f" for byte in head):
        return None
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # The head may end in the middle of a multi-byte character.
        if exc.reason != "unexpected end of data":
            return None
    return "a text file"


# Images --------------------------------------------------------------------


def _decode_image(fh: BinaryIO, image_format: MediaFormat, max_pixels: int) -> tuple[int, int, int]:
    """Check the declared size, decode every pixel; return width, height and EXIF orientation."""
    try:
        # The image closes (and drops its pixels) before its share of the budget ends.
        with ExitStack() as budget, Image.open(fh, formats=[image_format.name]) as img:
            width, height = img.size
            if width * height > max_pixels:
                raise FileRejected(
                    ErrorCode.IMAGE_TOO_LARGE,
                    f"The image is {width}x{height} pixels ({width * height}), "
                    f"over the limit of {max_pixels}.",
                )
            budget.enter_context(DECODES.share(width * height))
            img.load()
            orientation = exif_orientation(img)
            _load_later_frames(img, budget=_ANIMATION_DECODE_FACTOR * max_pixels)
    except FileRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise FileRejected(
            ErrorCode.IMAGE_TOO_LARGE,
            "The image declares too many pixels to be decoded safely.",
        ) from exc
    except Exception as exc:
        raise FileRejected(
            ErrorCode.CORRUPT_FILE,
            f"The file looks like {image_format.description} but could not be decoded; "
            "it may be truncated or damaged.",
        ) from exc
    return width, height, orientation


def exif_orientation(img: Image.Image) -> int:
    """EXIF orientation 1..8; 1 when absent or unreadable."""
    try:
        value = img.getexif().get(_EXIF_ORIENTATION)
    except Exception:
        return 1
    if isinstance(value, int) and 1 <= value <= 8:
        return value
    return 1


def _load_later_frames(img: Image.Image, *, budget: int) -> None:
    """Decode the frames after the first, while the pixels decoded stay within budget."""
    frame_count = int(getattr(img, "n_frames", 1))
    frame_pixels = max(1, img.width * img.height)
    for index in range(1, frame_count):
        if frame_pixels * (index + 1) > budget:
            break
        img.seek(index)
        img.load()


# MP4 -----------------------------------------------------------------------


def _corrupt_mp4(reason: str) -> FileRejected:
    return FileRejected(ErrorCode.CORRUPT_FILE, f"The MP4 file is damaged: {reason}.")


class _BoxReader:
    """Walks ISO-BMFF boxes with seeks, never holding more than a box header in memory."""

    def __init__(self, fh: BinaryIO) -> None:
        self._fh = fh
        self._boxes_seen = 0

    def read_at(self, offset: int, length: int) -> bytes:
        self._fh.seek(offset)
        return self._fh.read(length)

    def boxes(self, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
        """Yield (type, payload offset, end offset) for each box laid out in [start, end)."""
        offset = start
        while offset < end:
            self._boxes_seen += 1
            if self._boxes_seen > _MAX_BOXES:
                raise _corrupt_mp4(f"it holds more than {_MAX_BOXES} boxes")
            header = self.read_at(offset, 8)
            if end - offset < 8 or len(header) < 8:
                raise _corrupt_mp4("a box header runs past the end of its container")
            size, box_type = struct.unpack(">I4s", header)
            payload = offset + 8
            if size == 1:
                large = self._fh.read(8)
                if end - offset < 16 or len(large) < 8:
                    raise _corrupt_mp4("a box header runs past the end of its container")
                size = int.from_bytes(large, "big")
                payload += 8
                if size < 16:
                    raise _corrupt_mp4("a box declares a size smaller than its header")
            elif size == 0:
                size = end - offset
            elif size < 8:
                raise _corrupt_mp4("a box declares a size smaller than its header")
            box_end = offset + size
            if box_end > end:
                raise _corrupt_mp4("a box runs past the end of the file or of its container")
            yield box_type, payload, box_end
            offset = box_end


def _read_mp4(reader: _BoxReader, file_size: int) -> VideoInfo:
    moov: tuple[int, int] | None = None
    for box_type, payload, end in reader.boxes(0, file_size):
        if box_type == b"ftyp" and end - payload < 8:
            raise _corrupt_mp4("the 'ftyp' box is too short to hold a brand")
        if box_type == b"moov" and moov is None:
            moov = (payload, end)
    if moov is None:
        raise _corrupt_mp4("it has no movie header ('moov' box)")

    duration: float | None = None
    width: int | None = None
    height: int | None = None
    video_track_found = False
    for box_type, payload, end in reader.boxes(*moov):
        if box_type == b"mvhd" and duration is None:
            duration = _mvhd_duration(reader.read_at(payload, min(end - payload, 32)))
        elif box_type == b"trak" and not video_track_found:
            size = _video_track_size(reader, payload, end)
            if size is not None:
                video_track_found = True
                width, height = size
    return VideoInfo(
        mime_type=MP4.mime_type,
        extension=MP4.extension,
        width=width,
        height=height,
        duration_seconds=duration,
    )


def _mvhd_duration(data: bytes) -> float | None:
    """Duration in seconds from the start of an mvhd payload, or None when unknown."""
    if not data:
        return None
    if data[0] == 1:
        if len(data) < 32:
            return None
        timescale, duration = struct.unpack_from(">IQ", data, 20)
        unknown = 0xFFFF_FFFF_FFFF_FFFF
    else:
        if len(data) < 20:
            return None
        timescale, duration = struct.unpack_from(">II", data, 12)
        unknown = 0xFFFF_FFFF
    if timescale == 0 or duration == unknown:
        return None
    return float(duration / timescale)


def _video_track_size(
    reader: _BoxReader, start: int, end: int
) -> tuple[int | None, int | None] | None:
    """Width and height from the tkhd of a video track, or None when the trak is not video."""
    tkhd: bytes | None = None
    is_video = False
    for box_type, payload, box_end in reader.boxes(start, end):
        if box_type == b"tkhd" and tkhd is None:
            tkhd = reader.read_at(payload, min(box_end - payload, 96))
        elif box_type == b"mdia":
            for inner_type, inner_payload, inner_end in reader.boxes(payload, box_end):
                if inner_type == b"hdlr" and inner_end - inner_payload >= 12:
                    # hdlr payload: version and flags (4), pre_defined (4), handler type (4).
                    is_video = reader.read_at(inner_payload + 8, 4) == b"vide"
    if not is_video:
        return None
    if tkhd is None or not tkhd:
        return None, None
    # Width and height (16.16 fixed point) follow the matrix: at 76 in version 0, 88 in version 1.
    offset = 88 if tkhd[0] == 1 else 76
    if len(tkhd) < offset + 8:
        return None, None
    raw_width, raw_height = struct.unpack_from(">II", tkhd, offset)
    return _fixed_16_16(raw_width), _fixed_16_16(raw_height)


def _fixed_16_16(value: int) -> int | None:
    pixels = round(value / 65536)
    return pixels or None
