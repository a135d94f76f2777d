"""Real media files made in memory for tests (no fixtures on disk)."""

from __future__ import annotations

import io
from fractions import Fraction

import av
from PIL import Image

Color = tuple[int, int, int] | tuple[int, int, int, int]

_EXIF_ORIENTATION = 0x0112
_EXIF_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})
_ANIMATED_FORMATS = frozenset({"GIF", "WEBP", "PNG"})


def image_bytes(
    fmt: str = "PNG",
    size: tuple[int, int] = (64, 48),
    color: Color = (200, 30, 30),
    *,
    orientation: int | None = None,
    mode: str | None = None,
    frames: int = 1,
    seed: int = 0,
) -> bytes:
    """Encode an image of ``size`` filled with ``color`` in ``fmt``.

    ``fmt`` is JPEG, PNG, GIF or WEBP (BMP and TIFF too, for negative tests).
    A non-zero ``seed`` marks pixels in its binary pattern and a seed-coloured
    rectangle, so different seeds give different bytes. ``orientation`` writes
    EXIF tag 0x0112 (JPEG, PNG, WebP). ``frames`` > 1 makes an animation
    (GIF, WebP, PNG) whose frames differ in colour. ``mode`` converts the
    pixels (e.g. "L", "P", "RGBA") before saving.
    """
    fmt = fmt.upper()
    if frames < 1:
        raise ValueError("frames must be at least 1")
    if frames > 1 and fmt not in _ANIMATED_FORMATS:
        raise ValueError(f"{fmt} cannot hold an animation here")
    if orientation is not None and fmt not in _EXIF_FORMATS:
        raise ValueError(f"{fmt} cannot carry an EXIF orientation here")

    pictures = [_picture(size, _shift(color, index * 40), mode, seed) for index in range(frames)]
    options: dict[str, object] = {}
    if orientation is not None:
        exif = Image.Exif()
        exif[_EXIF_ORIENTATION] = orientation
        options["exif"] = exif.tobytes()
    if frames > 1:
        options.update(save_all=True, append_images=pictures[1:], duration=100, loop=0)
    if fmt == "JPEG":
        options["quality"] = 90
    elif fmt == "WEBP":
        options["lossless"] = True

    out = io.BytesIO()
    pictures[0].save(out, format=fmt, **options)
    return out.getvalue()


def _picture(size: tuple[int, int], color: Color, mode: str | None, seed: int) -> Image.Image:
    base_mode = "RGBA" if len(color) == 4 else "RGB"
    img = Image.new(base_mode, size, color)
    if seed:
        width, height = size
        marker = _shift(color, 128 + seed * 7)
        img.paste(marker, (0, 0, max(1, width // 4), max(1, height // 4)))
        inverse = _shift(color, 128)
        for bit in range(seed.bit_length()):
            if seed >> bit & 1:
                index = bit % (width * height)
                img.putpixel((index % width, index // width), inverse)
    return img.convert(mode) if mode is not None and mode != base_mode else img


def _shift(color: Color, amount: int) -> Color:
    red, green, blue = ((channel + amount) % 256 for channel in color[:3])
    if len(color) == 4:
        return (red, green, blue, color[3])
    return (red, green, blue)


def mp4_bytes(width: int = 64, height: int = 48, seconds: float = 1.0, fps: int = 10) -> bytes:
    """Encode ``seconds`` of real frames at ``fps`` into an MP4 (H.264 when available)."""
    codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
    frame_count = max(1, round(seconds * fps))
    out = io.BytesIO()
    with av.open(out, mode="w", format="mp4") as container:
        stream = container.add_stream(codec, rate=fps)
        assert isinstance(stream, av.VideoStream)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        for index in range(frame_count):
            shade = (index * 255) // frame_count
            picture = Image.new("RGB", (width, height), (shade, 80, 255 - shade))
            frame = av.VideoFrame.from_image(picture)  # type: ignore[no-untyped-call]
            frame = frame.reformat(format="yuv420p")
            frame.pts = index
            frame.time_base = Fraction(1, fps)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return out.getvalue()
