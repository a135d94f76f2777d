"""Rendition sizes and the image processing that makes rendition files (Pillow).

Pure functions over files and bytes: no HTTP, no database, no GraphQL. Callers
decide which renditions they need (``plan`` and ``output_format``) and hand the
resulting targets to ``render``, which decodes the source once and encodes
every target from it.

Sizes
    A size is a box for the longest side (``DEFAULT_BOXES``). ``fit`` keeps the
    aspect ratio, never upscales and rounds the shorter side half up (minimum
    1). The 2x rendition exists only when the original's longest side is at
    least twice the 1x longest side; it is the fit into the doubled box, so its
    longest side is exactly double and its shorter side is rounded from the
    original's aspect ratio (it may differ from twice the 1x by one pixel).

Formats
    ORIGINAL keeps JPEG as JPEG, PNG as PNG and WebP as WebP. GIF sources and
    animated sources (animated PNG or WebP) become a PNG of their first frame:
    a still rendition of an animation is lossless and keeps transparency in
    PNG, and a resized GIF would need requantising to 256 colours.

Encoder settings (``EncoderSettings``, the defaults; sizes measured on the
bench's photo-like content resized to 800x800, PSNR against the unencoded pixels)
    JPEG quality 85, progressive, optimized Huffman tables, 4:2:0 chroma
    subsampling: the usual web photo setting, 42 KB at 38.3 dB; quality 95
    doubled the file (92 KB, 40.7 dB) and 4:4:4 added 45% (61 KB).
    Progressive files show a whole preview early and are no larger.
    Transparent areas are composited onto white, the usual product background.
    PNG: lossless with ``optimize`` (zlib level 9 and a filter search), for
    sources that need exact pixels or transparency.
    WebP quality 80, method 4 (libwebp's default effort): 19 KB at 38.9 dB,
    less than half the JPEG's bytes at a slightly better PSNR; methods 5 and
    6 gave the same size for 5-20% more time. Alpha is kept.
    AVIF quality 60, speed 6 (Pillow's built-in encoder, ``features.check("avif")``;
    ``render`` raises ``RenditionError`` for AVIF when it is missing): 14 KB
    at 40.2 dB in 150 ms. Speed 8 encoded five times faster but its files
    were a third larger; AVIF renditions are made once and served many
    times. Alpha is kept.

Pixels
    The decode happens once. JPEG sources are decoded with ``Image.draft`` at
    the smallest DCT scale (1/2, 1/4 or 1/8) that is still at least the
    largest target; the decoded image is resized once to the largest target
    (LANCZOS with ``reducing_gap``, so a large reduction starts with a cheap
    ``reduce`` and ends with the LANCZOS filter), and the smaller targets are
    made from that intermediate (targets of another aspect ratio, which the
    largest does not cover, are each made from the decoded frame). Colour
    conversion and EXIF orientation are applied to the intermediate, not to
    the full decode: the same result for far fewer pixels. Orientation uses
    the same eight transposes as ``ImageOps.exif_transpose``. Embedded ICC
    profiles other than sRGB are converted to sRGB with LittleCMS
    (``ImageCms``, perceptual intent); CMYK JPEGs (Pillow reads them with
    Adobe's inverted convention) go through their embedded profile, or
    Pillow's plain CMYK to RGB conversion when they have none. 16-bit samples
    are scaled to 8 bits; palette images become RGB, or RGBA when they have
    transparency; an alpha channel that is opaque everywhere is dropped.

Metadata
    Renditions carry none: no EXIF (so no GPS and no orientation tag), no XMP,
    no ICC profile (the pixels are sRGB, the web's default), no comments or
    text chunks.

Pillow or pyvips
    Pillow, because it is within the goal of at most 1.5x pyvips' time for the same
    renditions (``bench/renditions.py``; the README's Renditions section has the figures),
    it is already a dependency and it ships as a wheel with no system library. One decode
    and one intermediate per source is what keeps it there.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import BinaryIO, Final, NamedTuple

from PIL import Image, ImageCms, features

from storage.enums import RenditionFormat, RenditionSize
from storage.media.formats import BY_NAME, JPEG, PNG, SOURCE_IMAGES, MediaFormat
from storage.media.inspection import exif_orientation
from storage.media.memory import DECODES

DEFAULT_BOXES: Final[Mapping[RenditionSize, int]] = MappingProxyType(
    {
        RenditionSize.THUMBNAIL: 100,
        RenditionSize.SMALL: 250,
        RenditionSize.MEDIUM: 500,
        RenditionSize.LARGE: 800,
        RenditionSize.ZOOM: 1600,
    }
)
"""Longest side in pixels of each size's box, in enum order."""

SOURCE_FORMATS: Final = tuple(f.name for f in SOURCE_IMAGES)
"""Pillow formats ``render`` agrees to decode; anything else is an error."""

_SWAPPING_ORIENTATIONS: Final = frozenset({5, 6, 7, 8})
_TRANSPOSES: Final[Mapping[int, Image.Transpose]] = MappingProxyType(
    {
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_270,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_90,
    }
)
_SIXTEEN_BIT_MODES: Final = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})
_WHITE: Final = 255
# reduce() first while the remaining LANCZOS step still shrinks by at least this factor.
_REDUCING_GAP: Final = 3.0
_SRGB_PROFILE: Final = ImageCms.createProfile("sRGB")


class RenditionError(Exception):
    """A rendition that cannot be made: unknown format, or AVIF without an encoder."""


# Sizes -----------------------------------------------------------------------


def fit(width: int, height: int, box: int) -> tuple[int, int]:
    """Fit width x height inside box x box: aspect ratio kept, never upscaled.

    The longest side becomes ``box`` (when larger), the shorter side is rounded
    half up from the aspect ratio and is at least 1.
    """
    if width < 1 or height < 1 or box < 1:
        raise ValueError(f"sizes must be positive, got {width}x{height} into {box}")
    longest = max(width, height)
    if longest <= box:
        return width, height
    if width >= height:
        return box, _scaled_side(height, box, longest)
    return _scaled_side(width, box, longest), box


def _scaled_side(side: int, box: int, longest: int) -> int:
    """side * box / longest, rounded half up, at least 1 (integer arithmetic)."""
    return max(1, (2 * side * box + longest) // (2 * longest))


class Plan(NamedTuple):
    """The 1x size of a rendition and its 2x size, when the original allows one."""

    width: int
    height: int
    size_2x: tuple[int, int] | None


def plan(width: int, height: int, size: RenditionSize, box: int | None = None) -> Plan:
    """1x and 2x dimensions of ``size`` for an upright original of width x height.

    ``box`` overrides the size's default box (``DEFAULT_BOXES``). The 2x size
    is None unless the original's longest side is at least twice the 1x
    longest side; then it is the fit into the doubled box.
    """
    box = DEFAULT_BOXES[size] if box is None else box
    width_1x, height_1x = fit(width, height, box)
    if max(width, height) < 2 * max(width_1x, height_1x):
        return Plan(width_1x, height_1x, None)
    return Plan(width_1x, height_1x, fit(width, height, 2 * box))


def output_format(source_format: str, requested: RenditionFormat, animated: bool) -> str:
    """The format ``render`` writes for ``requested`` from a source in ``source_format``.

    ``source_format`` is a Pillow format name (JPEG, PNG, GIF, WEBP). Explicit
    formats are written as asked. ORIGINAL keeps still JPEG, PNG and WebP in
    their format; GIF and every animated source become a PNG of the first frame.
    """
    if requested is not RenditionFormat.ORIGINAL:
        return requested.value
    name = source_format.upper()
    if name == "MPO":  # a JPEG with extra pictures (Pillow's name for it)
        return JPEG.name
    source = BY_NAME.get(name)
    if source is None or not source.source:
        raise RenditionError(f"unsupported source format {source_format!r}")
    if animated or not source.rendition:
        return PNG.name
    return source.name


def rendition_format(name: str) -> MediaFormat:
    """The format a rendition of Pillow format ``name`` is written in; ``RenditionError``
    for a format renditions are not written in."""
    found = BY_NAME.get(name)
    if found is None or not found.rendition:
        raise RenditionError(f"unsupported rendition format {name!r}")
    return found


# Rendering -------------------------------------------------------------------


@dataclass(frozen=True)
class EncoderSettings:
    """Encoder options of ``render``; the module docstring explains the defaults."""

    jpeg_quality: int = 85
    webp_quality: int = 80
    webp_method: int = 4
    avif_quality: int = 60
    avif_speed: int = 6
    png_optimize: bool = True


DEFAULT_SETTINGS: Final = EncoderSettings()


class Target(NamedTuple):
    """An upright output size and its format (JPEG, PNG, WEBP or AVIF)."""

    width: int
    height: int
    format: str


@dataclass(frozen=True)
class Rendered:
    """One encoded rendition: its bytes, the exact size written and its format."""

    data: bytes
    width: int
    height: int
    format: str

    @property
    def mime_type(self) -> str:
        return rendition_format(self.format).mime_type


def is_animated(source: Path | BinaryIO) -> bool:
    """Whether the image has more than one frame (the ``animated`` of ``output_format``).

    JPEGs with extra pictures (MPO, as some cameras write) count as still images.
    """
    with Image.open(source, formats=SOURCE_FORMATS) as img:
        return img.format != "MPO" and bool(getattr(img, "is_animated", False))


def avif_available() -> bool:
    """Whether the installed Pillow can write AVIF."""
    return bool(features.check("avif"))


def render(
    source: Path | BinaryIO,
    targets: Sequence[tuple[int, int, str]],
    settings: EncoderSettings = DEFAULT_SETTINGS,
) -> list[Rendered]:
    """Decode ``source`` once and encode it at each (width, height, format) target.

    Sizes are upright (after EXIF orientation); a target's aspect ratio should
    be the source's (``plan`` gives such sizes), as each target is resized to
    exactly its size. Returns one ``Rendered`` per target, in target order.
    Raises ``ValueError`` for a size below 1, ``RenditionError`` for an
    unknown output format or AVIF without an encoder, and Pillow's errors
    (``OSError``, ``Image.DecompressionBombError``) for sources it cannot
    decode. Meant to run in a worker thread.
    """
    wanted = [Target(int(w), int(h), fmt.upper()) for w, h, fmt in targets]
    for target in wanted:
        _check_target(target)
    if not wanted:
        return []
    # The decode's share of the pixel budget ends once every image of _render is freed.
    with ExitStack() as budget:
        return _render(source, wanted, settings, budget)


def _render(
    source: Path | BinaryIO,
    wanted: list[Target],
    settings: EncoderSettings,
    budget: ExitStack,
) -> list[Rendered]:
    sizes = sorted({(t.width, t.height) for t in wanted}, key=lambda s: s[0] * s[1], reverse=True)
    largest = sizes[0]
    # Targets of one source share its aspect ratio, so the largest covers the others and
    # serves as the intermediate. Otherwise every target is made from the decoded frame.
    covering = all(w <= largest[0] and h <= largest[1] for w, h in sizes)
    needed = largest if covering else (max(w for w, _ in sizes), max(h for _, h in sizes))
    with Image.open(source, formats=SOURCE_FORMATS) as img:
        orientation = exif_orientation(img)
        if img.format in ("JPEG", "MPO"):
            img.draft(None, _stored_size(needed, orientation))
        budget.enter_context(DECODES.share(img.width * img.height))
        img.load()
        icc = img.info.get("icc_profile")
        # Resized inside the block: a closed ImageFile drops its pixels.
        base = _normalized(img)
        if covering:
            base = _resized(base, _stored_size(largest, orientation))
        if base is img:
            base = img.copy()

    base = _to_srgb(base, icc if isinstance(icc, bytes) else None)
    transpose = _TRANSPOSES.get(orientation)
    if transpose is not None:
        base = base.transpose(transpose)
    base.info = {}  # the source's EXIF, XMP, ICC and text; resized copies inherit this

    resized = {size: _resized(base, size) for size in sizes}
    encoded: dict[Target, bytes] = {}
    for target in wanted:
        if target not in encoded:
            encoded[target] = _encode(resized[target.width, target.height], target.format, settings)
    return [Rendered(encoded[t], t.width, t.height, t.format) for t in wanted]


def _check_target(target: Target) -> None:
    if target.width < 1 or target.height < 1:
        raise ValueError(f"target sizes must be positive, got {target.width}x{target.height}")
    rendition_format(target.format)
    if target.format == "AVIF" and not avif_available():
        raise RenditionError("this Pillow build cannot write AVIF (features.check('avif') is off)")


def _stored_size(upright: tuple[int, int], orientation: int) -> tuple[int, int]:
    """The size in the file's own pixel layout of an upright size."""
    if orientation in _SWAPPING_ORIENTATIONS:
        return upright[1], upright[0]
    return upright


def _normalized(img: Image.Image) -> Image.Image:
    """8-bit L, LA, RGB, RGBA or CMYK pixels of the decoded frame; opaque alpha dropped.

    Palette and single-colour (tRNS) transparency become an alpha channel.
    """
    mode = img.mode
    if mode in _SIXTEEN_BIT_MODES:
        wide = img if mode == "I" else img.convert("I")
        return wide.point(lambda value: value / 257).convert("L")
    if mode in ("LA", "RGBA", "CMYK") or (mode in ("L", "RGB") and "transparency" not in img.info):
        out = img
    elif mode in ("1", "L", "La"):
        out = img.convert("LA" if img.has_transparency_data else "L")
    else:
        out = img.convert("RGBA" if img.has_transparency_data else "RGB")
    if out.mode in ("LA", "RGBA") and out.getchannel("A").getextrema() == (255, 255):
        out = out.convert(out.mode[:-1])
    return out


def _resized(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    if img.size == size:
        return img
    return img.resize(size, Image.Resampling.LANCZOS, reducing_gap=_REDUCING_GAP)


# Colour ------------------------------------------------------------------------


@lru_cache(maxsize=32)
def _is_srgb(icc: bytes) -> bool:
    """Whether the profile describes itself as sRGB (then no conversion is needed)."""
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        description = ImageCms.getProfileDescription(profile)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return False
    return "srgb" in description.lower()


@lru_cache(maxsize=32)
def _srgb_transform(icc: bytes, in_mode: str) -> ImageCms.ImageCmsTransform | None:
    """A transform from the embedded profile to sRGB, or None when none can be built."""
    out_mode = "RGBA" if in_mode == "RGBA" else "RGB"
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        return ImageCms.buildTransform(
            profile,
            _SRGB_PROFILE,
            in_mode,
            out_mode,
            renderingIntent=ImageCms.Intent.PERCEPTUAL,
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None


def _to_srgb(img: Image.Image, icc: bytes | None) -> Image.Image:
    """sRGB pixels in L, LA, RGB or RGBA, converted through ``icc`` when it is not sRGB.

    A profile that cannot be read or does not match the pixels is ignored.
    """
    if icc and not _is_srgb(icc):
        alpha = img.getchannel("A") if img.mode == "LA" else None
        colour = img.getchannel("L") if alpha is not None else img
        transform = _srgb_transform(icc, colour.mode)
        if transform is not None:
            converted = transform.apply(colour)
            if alpha is not None:
                converted.putalpha(alpha)
            return converted
    if img.mode == "CMYK":
        return img.convert("RGB")
    return img


# Encoding ------------------------------------------------------------------------


def _encode(img: Image.Image, fmt: str, settings: EncoderSettings) -> bytes:
    """Encode with no metadata at all (no EXIF, XMP, ICC profile or comment)."""
    if fmt == "JPEG":
        img = _on_white(img)
    elif fmt in ("WEBP", "AVIF") and img.mode in ("L", "LA"):
        img = img.convert("RGBA" if img.mode == "LA" else "RGB")
    if img.info:
        img = img.copy()
        img.info = {}
    out = io.BytesIO()
    if fmt == "JPEG":
        img.save(
            out,
            format="JPEG",
            quality=settings.jpeg_quality,
            progressive=True,
            optimize=True,
            subsampling="4:2:0",
        )
    elif fmt == "PNG":
        img.save(out, format="PNG", optimize=settings.png_optimize)
    elif fmt == "WEBP":
        img.save(out, format="WEBP", quality=settings.webp_quality, method=settings.webp_method)
    elif fmt == "AVIF":
        img.save(out, format="AVIF", quality=settings.avif_quality, speed=settings.avif_speed)
    else:
        raise RenditionError(f"unsupported rendition format {fmt!r}")
    return out.getvalue()


def _on_white(img: Image.Image) -> Image.Image:
    """The image composited onto white when it has alpha (JPEG has none)."""
    if img.mode not in ("LA", "RGBA"):
        return img
    colour_mode = img.mode[:-1]
    background = Image.new(colour_mode, img.size, (_WHITE,) * len(colour_mode))
    background.paste(img.convert(colour_mode), mask=img.getchannel("A"))
    return background
