"""Rendition sizes and rendition files (storage.media.rendering), on real encoded images."""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

import pytest
from PIL import Image, ImageCms, ImageDraw, JpegImagePlugin, PngImagePlugin

from storage.enums import RenditionFormat, RenditionSize
from storage.media import rendering as renditions
from storage.media.inspection import inspect_image
from storage.media.rendering import (
    DEFAULT_BOXES,
    Plan,
    Rendered,
    RenditionError,
    fit,
    is_animated,
    output_format,
    plan,
    render,
)
from support import media_factory

Color = tuple[int, ...]

OUTPUT_FORMATS = ("JPEG", "PNG", "WEBP", "AVIF")
RED = (220, 20, 20)
GREEN = (20, 200, 20)
BLUE = (20, 20, 220)
YELLOW = (230, 210, 20)
GREY = (128, 128, 128)
GPS_IFD = 0x8825
EXIF_ORIENTATION = 0x0112


# Helpers ---------------------------------------------------------------------


def write(tmp_path: Path, data: bytes, name: str) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def encode(img: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **options)
    return out.getvalue()


def decode(rendered: Rendered) -> Image.Image:
    img = Image.open(io.BytesIO(rendered.data))
    img.load()
    return img


def scene(size: tuple[int, int]) -> Image.Image:
    """Gradients and shapes: enough detail for lossy encoders, cheap to compress."""
    width, height = size
    img = Image.merge(
        "RGB",
        (
            Image.linear_gradient("L").resize(size),
            Image.radial_gradient("L").resize(size),
            Image.linear_gradient("L").rotate(90).resize(size),
        ),
    )
    draw = ImageDraw.Draw(img)
    draw.ellipse((width // 4, height // 4, width // 2, height // 2), fill=RED)
    draw.rectangle((width // 2, height // 2, width - width // 8, height - height // 8), fill=BLUE)
    return img


def all_targets(width: int, height: int, fmt: str) -> list[tuple[int, int, str]]:
    """Every size at 1x and, when the original allows it, 2x."""
    targets: list[tuple[int, int, str]] = []
    for size in RenditionSize:
        planned = plan(width, height, size)
        targets.append((planned.width, planned.height, fmt))
        if planned.size_2x is not None:
            targets.append((*planned.size_2x, fmt))
    return targets


def close_to(actual: Sequence[int], expected: Sequence[int], tolerance: int = 12) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


def rgb_at(img: Image.Image, xy: tuple[int, int]) -> Color:
    pixel = img.convert("RGB").getpixel(xy)
    assert isinstance(pixel, tuple)
    return pixel


def rgba_at(img: Image.Image, xy: tuple[int, int]) -> Color:
    pixel = img.convert("RGBA").getpixel(xy)
    assert isinstance(pixel, tuple)
    return pixel


def png_chunks(data: bytes) -> list[bytes]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    chunks, offset = [], 8
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        chunks.append(kind)
        offset += 12 + length
    return chunks


def webp_chunks(data: bytes) -> list[bytes]:
    assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    chunks, offset = [], 12
    while offset < len(data):
        kind, length = struct.unpack("<4sI", data[offset : offset + 8])
        chunks.append(kind)
        offset += 8 + length + (length & 1)
    return chunks


def png_16bit(width: int, height: int, color: Sequence[int]) -> bytes:
    """A PNG with 16 bits per sample, RGB (3 values) or RGBA (4), written by hand."""
    color_type = 2 if len(color) == 3 else 6
    pixel = b"".join(struct.pack(">H", value) for value in color)
    raw = b"".join(b"\x00" + pixel * width for _ in range(height))

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def _s15f16(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz_tag(x: float, y: float, z: float) -> bytes:
    return b"XYZ " + bytes(4) + _s15f16(x) + _s15f16(y) + _s15f16(z)


def swapped_primaries_profile() -> bytes:
    """An ICC v2 RGB matrix profile whose red and green primaries are sRGB's green and red.

    Pixels tagged with it that hold pure red are green in sRGB, so a rendition
    shows whether the profile was applied. Gamma 2.2 curves, D50 white.
    """
    srgb_red, srgb_green, srgb_blue = (
        (0.4361, 0.2225, 0.0139),
        (0.3851, 0.7169, 0.0971),
        (0.1431, 0.0606, 0.7141),
    )
    description = b"Swapped primaries test profile\x00"
    desc = (
        b"desc"
        + bytes(4)
        + struct.pack(">I", len(description))
        + description
        + bytes(4 + 4 + 2 + 1 + 67)
    )
    curve = b"curv" + bytes(4) + struct.pack(">IH", 1, round(2.2 * 256)) + bytes(2)
    tags = [
        (b"desc", desc),
        (b"wtpt", _xyz_tag(0.9642, 1.0, 0.8249)),
        (b"rXYZ", _xyz_tag(*srgb_green)),
        (b"gXYZ", _xyz_tag(*srgb_red)),
        (b"bXYZ", _xyz_tag(*srgb_blue)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
        (b"cprt", b"text" + bytes(4) + b"none\x00\x00\x00\x00"),
    ]
    table, body = b"", b""
    offset = 128 + 4 + 12 * len(tags)
    for signature, payload in tags:
        payload += bytes(-len(payload) % 4)
        table += signature + struct.pack(">II", offset + len(body), len(payload))
        body += payload
    size = offset + len(body)
    header = (
        struct.pack(">I", size)
        + b"none"
        + struct.pack(">I", 0x02100000)
        + b"mntrRGB XYZ "
        + struct.pack(">6H", 2024, 1, 1, 0, 0, 0)
        + b"acsp"
        + bytes(4 + 4 + 4 + 4 + 8 + 4)
        + _s15f16(0.9642)
        + _s15f16(1.0)
        + _s15f16(0.8249)
        + bytes(4 + 16 + 28)
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


# fit ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "box", "expected"),
    [
        ((3000, 2000), 1600, (1600, 1067)),
        ((2000, 3000), 1600, (1067, 1600)),
        ((3000, 3000), 100, (100, 100)),
        ((1000, 335), 100, (100, 34)),  # 33.5 rounds half up
        ((1000, 334), 100, (100, 33)),  # 33.4 rounds down
        ((10_000, 10), 100, (100, 1)),  # 0.1 is raised to the minimum of 1
        ((1, 10_000), 250, (1, 250)),
        ((1600, 900), 1600, (1600, 900)),  # exactly the box
        ((640, 480), 1600, (640, 480)),  # never upscaled
        ((1, 1), 100, (1, 1)),
    ],
)
def test_fit_keeps_the_aspect_ratio_inside_the_box(
    size: tuple[int, int], box: int, expected: tuple[int, int]
) -> None:
    assert fit(*size, box) == expected


@pytest.mark.parametrize(("width", "height", "box"), [(0, 10, 100), (10, -1, 100), (10, 10, 0)])
def test_fit_refuses_sizes_that_are_not_positive(width: int, height: int, box: int) -> None:
    with pytest.raises(ValueError):
        fit(width, height, box)


def test_default_boxes_in_enum_order() -> None:
    assert list(DEFAULT_BOXES.items()) == [
        (RenditionSize.THUMBNAIL, 100),
        (RenditionSize.SMALL, 250),
        (RenditionSize.MEDIUM, 500),
        (RenditionSize.LARGE, 800),
        (RenditionSize.ZOOM, 1600),
    ]


# plan (url2x) --------------------------------------------------------------------


def test_plan_zoom_of_3000x2000_has_no_2x() -> None:
    assert plan(3000, 2000, RenditionSize.ZOOM) == Plan(1600, 1067, None)


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((3199, 2000), Plan(1600, 1000, None)),  # one pixel short of 2 x 1600
        ((3200, 2000), Plan(1600, 1000, (3200, 2000))),  # exactly 2 x 1600: the original's size
        ((4800, 3000), Plan(1600, 1000, (3200, 2000))),
        ((2000, 3199), Plan(1000, 1600, None)),
        ((2000, 3200), Plan(1000, 1600, (2000, 3200))),
    ],
)
def test_plan_2x_needs_twice_the_1x_longest_side(size: tuple[int, int], expected: Plan) -> None:
    assert plan(*size, RenditionSize.ZOOM) == expected


def test_plan_2x_shorter_side_is_rounded_from_the_original_not_doubled() -> None:
    planned = plan(3000, 2000, RenditionSize.THUMBNAIL)
    assert (planned.width, planned.height) == (100, 67)
    assert planned.size_2x == (200, 133)  # 133.3 from 3000x2000, not 2 x 67 = 134


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((199, 100), Plan(100, 50, None)),
        ((200, 100), Plan(100, 50, (200, 100))),
        ((100, 60), Plan(100, 60, None)),  # the original itself is the 1x
        ((80, 60), Plan(80, 60, None)),  # smaller than the box: never upscaled, no 2x
    ],
)
def test_plan_thumbnail_boundaries(size: tuple[int, int], expected: Plan) -> None:
    assert plan(*size, RenditionSize.THUMBNAIL) == expected


def test_plan_with_a_configured_box() -> None:
    assert plan(1000, 500, RenditionSize.SMALL, 300) == Plan(300, 150, (600, 300))
    assert plan(1000, 500, RenditionSize.SMALL, 600) == Plan(600, 300, None)


def test_plan_2x_longest_side_is_exactly_double_whenever_it_exists() -> None:
    for width, height in [(3001, 1999), (1234, 4321), (777, 555), (5000, 7), (401, 400)]:
        for size in RenditionSize:
            planned = plan(width, height, size)
            if planned.size_2x is None:
                assert max(width, height) < 2 * max(planned.width, planned.height)
            else:
                assert max(planned.size_2x) == 2 * max(planned.width, planned.height)
                assert planned.size_2x == fit(width, height, 2 * DEFAULT_BOXES[size])


# output_format -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "requested", "animated", "expected"),
    [
        ("JPEG", RenditionFormat.ORIGINAL, False, "JPEG"),
        ("PNG", RenditionFormat.ORIGINAL, False, "PNG"),
        ("WEBP", RenditionFormat.ORIGINAL, False, "WEBP"),
        ("GIF", RenditionFormat.ORIGINAL, False, "PNG"),
        ("GIF", RenditionFormat.ORIGINAL, True, "PNG"),
        ("WEBP", RenditionFormat.ORIGINAL, True, "PNG"),
        ("PNG", RenditionFormat.ORIGINAL, True, "PNG"),
        ("MPO", RenditionFormat.ORIGINAL, False, "JPEG"),
        ("GIF", RenditionFormat.WEBP, True, "WEBP"),
        ("JPEG", RenditionFormat.AVIF, False, "AVIF"),
        ("PNG", RenditionFormat.JPEG, False, "JPEG"),
        ("jpeg", RenditionFormat.ORIGINAL, False, "JPEG"),
    ],
)
def test_output_format(
    source: str, requested: RenditionFormat, animated: bool, expected: str
) -> None:
    assert output_format(source, requested, animated) == expected


def test_output_format_refuses_unknown_sources() -> None:
    with pytest.raises(RenditionError):
        output_format("TIFF", RenditionFormat.ORIGINAL, False)


# Dimensions and formats ------------------------------------------------------------


@pytest.mark.parametrize("source_format", ["JPEG", "PNG"])
@pytest.mark.parametrize("requested", list(RenditionFormat))
def test_every_size_and_format_decodes_to_the_reported_size(
    tmp_path: Path, source_format: str, requested: RenditionFormat
) -> None:
    source = write(tmp_path, encode(scene((1800, 1200)), source_format), "source")
    fmt = output_format(source_format, requested, animated=False)
    targets = all_targets(1800, 1200, fmt)
    assert len(targets) == 9  # ZOOM 2x would need 3200 pixels

    results = render(source, targets)

    assert [(r.width, r.height, r.format) for r in results] == targets
    for result in results:
        img = decode(result)
        assert img.format == fmt
        assert img.size == (result.width, result.height)
        assert result.mime_type == Image.MIME[fmt]


def test_a_source_smaller_than_every_box_is_never_upscaled(tmp_path: Path) -> None:
    source = write(tmp_path, encode(scene((90, 60)), "PNG"), "source.png")
    targets = all_targets(90, 60, "WEBP")
    assert targets == [(90, 60, "WEBP")] * 5
    assert {decode(r).size for r in render(source, targets)} == {(90, 60)}


@pytest.mark.parametrize("size", list(RenditionSize))
def test_one_target_at_a_time_from_a_large_jpeg(tmp_path: Path, size: RenditionSize) -> None:
    """JPEG draft decoding (DCT scaling) still ends at exactly the planned size."""
    source = write(tmp_path, encode(scene((3001, 1999)), "JPEG", quality=90), "source.jpg")
    planned = plan(3001, 1999, size)
    targets = [(planned.width, planned.height, "JPEG")]
    if planned.size_2x is not None:
        targets.append((*planned.size_2x, "JPEG"))
    for target in targets:
        (result,) = render(source, [target])
        assert decode(result).size == target[:2]
        # The ellipse's red survives the draft decode and the resample.
        x, y = round(target[0] * 3 / 8), round(target[1] * 3 / 8)
        assert close_to(rgb_at(decode(result), (x, y)), RED, 30)


def test_identical_targets_share_one_encoding(tmp_path: Path) -> None:
    source = write(tmp_path, encode(scene((600, 400)), "PNG"), "source.png")
    first, second, other = render(
        source, [(250, 167, "WEBP"), (250, 167, "WEBP"), (250, 167, "PNG")]
    )
    assert first.data == second.data
    assert decode(other).format == "PNG"


def test_targets_of_other_aspect_ratios_get_their_exact_size(tmp_path: Path) -> None:
    source = write(tmp_path, encode(scene((1200, 800)), "JPEG"), "source.jpg")
    targets = [(300, 200, "JPEG"), (100, 300, "PNG"), (400, 50, "WEBP")]
    assert [decode(r).size for r in render(source, targets)] == [(300, 200), (100, 300), (400, 50)]


def test_no_targets_no_work(tmp_path: Path) -> None:
    assert render(tmp_path / "does-not-exist.png", []) == []


def test_jpeg_renditions_are_progressive_with_4_2_0(tmp_path: Path) -> None:
    source = write(tmp_path, encode(scene((600, 400)), "PNG"), "source.png")
    (result,) = render(source, [(500, 333, "JPEG")])
    img = decode(result)
    assert isinstance(img, JpegImagePlugin.JpegImageFile)
    assert img.info.get("progressive") == 1
    assert JpegImagePlugin.get_sampling(img) == 2  # 4:2:0


def test_unknown_output_format_is_refused(tmp_path: Path) -> None:
    source = write(tmp_path, encode(scene((60, 40)), "PNG"), "source.png")
    with pytest.raises(RenditionError):
        render(source, [(60, 40, "GIF")])


def test_avif_without_an_encoder_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(renditions, "avif_available", lambda: False)
    source = write(tmp_path, encode(scene((60, 40)), "PNG"), "source.png")
    with pytest.raises(RenditionError, match="AVIF"):
        render(source, [(60, 40, "AVIF")])


def test_only_the_accepted_source_formats_are_decoded(tmp_path: Path) -> None:
    source = write(tmp_path, encode(scene((60, 40)), "BMP"), "source.bmp")
    with pytest.raises(OSError):
        render(source, [(60, 40, "PNG")])


# Transparency --------------------------------------------------------------------


def half_transparent(size: tuple[int, int] = (200, 100)) -> Image.Image:
    """Left half fully transparent, right half opaque red."""
    width, height = size
    img = Image.new("RGBA", size, (0, 0, 0, 0))
    img.paste((*RED, 255), (width // 2, 0, width, height))
    return img


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "AVIF"])
@pytest.mark.parametrize("source_format", ["PNG", "WEBP"])
def test_alpha_is_kept(tmp_path: Path, fmt: str, source_format: str) -> None:
    source = write(tmp_path, encode(half_transparent(), source_format, lossless=True), "source")
    (result,) = render(source, [(100, 50, fmt)])
    img = decode(result)
    assert img.mode in ("RGBA", "LA")
    assert rgba_at(img, (5, 25))[3] <= 8
    opaque = rgba_at(img, (95, 25))
    assert opaque[3] >= 247
    assert close_to(opaque[:3], RED, 20)


def test_jpeg_puts_transparency_on_white(tmp_path: Path) -> None:
    source = write(tmp_path, encode(half_transparent(), "PNG"), "source.png")
    (result,) = render(source, [(100, 50, "JPEG")])
    img = decode(result)
    assert img.mode == "RGB"
    assert close_to(rgb_at(img, (5, 25)), (255, 255, 255), 4)
    assert close_to(rgb_at(img, (95, 25)), RED, 20)


def test_half_transparent_pixels_blend_with_white_in_jpeg(tmp_path: Path) -> None:
    source = write(tmp_path, encode(Image.new("RGBA", (40, 40), (0, 0, 0, 128)), "PNG"), "a.png")
    (result,) = render(source, [(40, 40, "JPEG")])
    assert close_to(rgb_at(decode(result), (20, 20)), (127, 127, 127), 4)


def test_palette_gif_with_transparency_keeps_it_in_png(tmp_path: Path) -> None:
    img = Image.new("P", (80, 40), 0)
    img.putpalette([255, 255, 255, *RED] + [0] * (256 * 3 - 6))
    img.paste(1, (40, 0, 80, 40))
    source = write(tmp_path, encode(img, "GIF", transparency=0), "source.gif")
    (png, jpeg) = render(source, [(40, 20, "PNG"), (40, 20, "JPEG")])
    assert rgba_at(decode(png), (2, 10))[3] == 0
    assert close_to(rgba_at(decode(png), (38, 10)), (*RED, 255), 2)
    assert close_to(rgb_at(decode(jpeg), (2, 10)), (255, 255, 255), 4)


def test_grey_with_alpha_source(tmp_path: Path) -> None:
    img = Image.new("LA", (80, 40), (0, 0))
    img.paste((90, 255), (40, 0, 80, 40))
    source = write(tmp_path, encode(img, "PNG"), "source.png")
    webp, png, jpeg = render(source, [(40, 20, "WEBP"), (40, 20, "PNG"), (40, 20, "JPEG")])
    assert rgba_at(decode(webp), (2, 10))[3] == 0
    assert close_to(rgba_at(decode(webp), (38, 10)), (90, 90, 90, 255), 4)
    assert decode(png).mode == "LA"
    assert close_to(rgb_at(decode(jpeg), (2, 10)), (255, 255, 255), 4)


def test_opaque_alpha_channel_is_dropped(tmp_path: Path) -> None:
    source = write(tmp_path, encode(scene((60, 40)).convert("RGBA"), "PNG"), "source.png")
    (png,) = render(source, [(60, 40, "PNG")])
    assert decode(png).mode == "RGB"


@pytest.mark.parametrize(("mode", "transparent"), [("RGB", (10, 20, 30)), ("L", 77)])
def test_single_colour_transparency_becomes_alpha(
    tmp_path: Path, mode: str, transparent: int | tuple[int, int, int]
) -> None:
    img = Image.new(mode, (80, 40), transparent)
    img.paste(RED if mode == "RGB" else 200, (40, 0, 80, 40))
    source = write(tmp_path, encode(img, "PNG", transparency=transparent), "source.png")
    png, webp = render(source, [(40, 20, "PNG"), (40, 20, "WEBP")])
    for result in (png, webp):
        assert rgba_at(decode(result), (2, 10))[3] == 0
        assert rgba_at(decode(result), (38, 10))[3] == 255


@pytest.mark.parametrize("mode", ["1", "L", "P"])
def test_bilevel_grey_and_palette_sources(tmp_path: Path, mode: str) -> None:
    source = write(tmp_path, encode(scene((120, 80)).convert(mode), "PNG"), "source.png")
    for result in render(source, [(60, 40, fmt) for fmt in OUTPUT_FORMATS]):
        assert decode(result).size == (60, 40)


# EXIF orientation -------------------------------------------------------------------

# Transposes that turn an upright picture into the stored pixels of each orientation
# (the inverse of what a viewer applies).
TO_STORED = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


def upright_picture(size: tuple[int, int]) -> Image.Image:
    """Grey, with a red top-left, blue top-right and yellow bottom-left corner."""
    width, height = size
    qw, qh = width // 4, height // 4
    img = Image.new("RGB", size, GREY)
    img.paste(RED, (0, 0, qw, qh))
    img.paste(BLUE, (width - qw, 0, width, qh))
    img.paste(YELLOW, (0, height - qh, qw, height))
    return img


def stored_with_orientation(upright: Image.Image, orientation: int, fmt: str) -> bytes:
    transpose = TO_STORED[orientation]
    stored = upright if transpose is None else upright.transpose(transpose)
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    options: dict[str, object] = {"exif": exif.tobytes()}
    if fmt == "JPEG":
        options["quality"] = 95
    elif fmt == "WEBP":
        options["lossless"] = True
    return encode(stored, fmt, **options)


def assert_upright(img: Image.Image) -> None:
    width, height = img.size
    assert close_to(rgb_at(img, (width // 16, height // 16)), RED, 30)
    assert close_to(rgb_at(img, (width - 1 - width // 16, height // 16)), BLUE, 30)
    assert close_to(rgb_at(img, (width // 16, height - 1 - height // 16)), YELLOW, 30)
    assert close_to(rgb_at(img, (width - 1 - width // 16, height - 1 - height // 16)), GREY, 30)


@pytest.mark.parametrize("source_format", ["JPEG", "PNG", "WEBP"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_eight_exif_orientations_give_upright_pixels(
    tmp_path: Path, orientation: int, source_format: str
) -> None:
    upright = upright_picture((320, 160))
    data = stored_with_orientation(upright, orientation, source_format)
    source = write(tmp_path, data, "source")
    info = inspect_image(source, max_pixels=10**8, min_side=1)
    assert (info.width, info.height) == (320, 160)

    planned = plan(info.width, info.height, RenditionSize.THUMBNAIL)
    targets = [(planned.width, planned.height, fmt) for fmt in OUTPUT_FORMATS]
    assert planned.size_2x is not None
    targets.append((*planned.size_2x, "PNG"))
    for result in render(source, targets):
        img = decode(result)
        assert img.size == (result.width, result.height)
        assert img.size[0] > img.size[1]
        assert_upright(img)


@pytest.mark.parametrize("orientation", [5, 6, 7, 8])
def test_orientation_with_draft_decoding_of_a_large_jpeg(tmp_path: Path, orientation: int) -> None:
    upright = upright_picture((1200, 1800))
    source = write(tmp_path, stored_with_orientation(upright, orientation, "JPEG"), "source.jpg")
    (result,) = render(source, [(67, 100, "JPEG")])
    img = decode(result)
    assert img.size == (67, 100)
    assert_upright(img)


def test_media_factory_orientation_is_honoured(tmp_path: Path) -> None:
    data = media_factory.image_bytes("JPEG", (80, 40), orientation=6, seed=3)
    source = write(tmp_path, data, "source.jpg")
    (result,) = render(source, [(40, 80, "PNG")])
    assert decode(result).size == (40, 80)


# Colour: CMYK, 16-bit, ICC profiles ---------------------------------------------------


def test_cmyk_jpeg(tmp_path: Path) -> None:
    img = Image.new("CMYK", (200, 100), (255, 0, 0, 0))  # cyan
    img.paste((0, 255, 255, 0), (100, 0, 200, 100))  # red
    data = encode(img, "JPEG", quality=95)
    with Image.open(io.BytesIO(data)) as check:
        assert check.mode == "CMYK"
    source = write(tmp_path, data, "source.jpg")
    results = render(source, [(100, 50, fmt) for fmt in OUTPUT_FORMATS])
    for result in results:
        out = decode(result)
        assert out.size == (100, 50)
        assert out.mode in ("RGB", "RGBA")
        assert close_to(rgb_at(out, (10, 25)), (0, 255, 255), 16)
        assert close_to(rgb_at(out, (90, 25)), (255, 0, 0), 16)


def test_16_bit_grey_png(tmp_path: Path) -> None:
    img = Image.new("I;16", (200, 100), 40_000)
    img.paste(65_535, (100, 0, 200, 100))
    data = encode(img, "PNG")
    with Image.open(io.BytesIO(data)) as check:
        assert check.mode.startswith("I")
    source = write(tmp_path, data, "source.png")
    for result in render(source, [(100, 50, fmt) for fmt in OUTPUT_FORMATS]):
        out = decode(result)
        assert out.size == (100, 50)
        assert close_to(rgb_at(out, (10, 25)), (156, 156, 156), 4)  # 40000 / 257
        assert close_to(rgb_at(out, (90, 25)), (255, 255, 255), 4)


@pytest.mark.parametrize(
    "color",
    [(60_000, 5_000, 30_000), (60_000, 5_000, 30_000, 0), (60_000, 5_000, 30_000, 65_535)],
)
def test_16_bit_colour_png(tmp_path: Path, color: tuple[int, ...]) -> None:
    source = write(tmp_path, png_16bit(120, 60, color), "source.png")
    expected = tuple(value // 257 for value in color[:3])
    opaque = len(color) == 3 or color[3] == 65_535
    for result in render(source, [(60, 30, fmt) for fmt in OUTPUT_FORMATS]):
        out = decode(result)
        assert out.size == (60, 30)
        if opaque:
            assert close_to(rgb_at(out, (30, 15)), expected, 6)
        elif result.format == "JPEG":
            assert close_to(rgb_at(out, (30, 15)), (255, 255, 255), 4)
        else:
            assert rgba_at(out, (30, 15))[3] <= 8


@pytest.mark.parametrize("source_format", ["PNG", "JPEG"])
def test_non_srgb_icc_profile_is_converted_to_srgb(tmp_path: Path, source_format: str) -> None:
    profile = swapped_primaries_profile()
    ImageCms.ImageCmsProfile(io.BytesIO(profile))  # LittleCMS accepts it
    img = Image.new("RGB", (120, 60), (255, 0, 0))
    source = write(tmp_path, encode(img, source_format, icc_profile=profile), "source")
    for result in render(source, [(60, 30, fmt) for fmt in OUTPUT_FORMATS]):
        out = decode(result)
        assert not out.info.get("icc_profile")
        red, green, blue = rgb_at(out, (30, 15))
        # The file's "red" is sRGB's green primary.
        assert green > 200, (result.format, (red, green, blue))
        assert red < 60 and blue < 60, (result.format, (red, green, blue))


def test_non_srgb_icc_profile_with_alpha(tmp_path: Path) -> None:
    img = half_transparent()
    img.paste((255, 0, 0, 255), (100, 0, 200, 100))
    data = encode(img, "PNG", icc_profile=swapped_primaries_profile())
    source = write(tmp_path, data, "source.png")
    (result,) = render(source, [(100, 50, "WEBP")])
    out = decode(result)
    assert rgba_at(out, (5, 25))[3] <= 8
    red, green, _, alpha = rgba_at(out, (95, 25))
    assert alpha >= 247 and green > 200 and red < 60


def test_srgb_icc_profile_is_left_alone_and_not_embedded(tmp_path: Path) -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    img = Image.new("RGB", (120, 60), (200, 100, 50))
    source = write(tmp_path, encode(img, "JPEG", icc_profile=srgb, quality=95), "source.jpg")
    for result in render(source, [(60, 30, fmt) for fmt in OUTPUT_FORMATS]):
        out = decode(result)
        assert not out.info.get("icc_profile")
        assert close_to(rgb_at(out, (30, 15)), (200, 100, 50), 8)


def test_a_profile_that_does_not_match_the_pixels_is_ignored(tmp_path: Path) -> None:
    img = Image.new("L", (120, 60), 90)
    source = write(tmp_path, encode(img, "PNG", icc_profile=swapped_primaries_profile()), "a.png")
    (result,) = render(source, [(60, 30, "PNG")])
    assert close_to(rgb_at(decode(result), (30, 15)), (90, 90, 90), 1)


def test_a_broken_profile_is_ignored(tmp_path: Path) -> None:
    img = Image.new("RGB", (120, 60), (200, 100, 50))
    source = write(tmp_path, encode(img, "PNG", icc_profile=b"not a profile"), "a.png")
    (result,) = render(source, [(60, 30, "PNG")])
    assert rgb_at(decode(result), (30, 15)) == (200, 100, 50)


# Metadata -------------------------------------------------------------------------


def exif_with_gps() -> Image.Exif:
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = 1
    exif[0x010F] = "Camera maker"  # Make
    gps = exif.get_ifd(GPS_IFD)
    gps[1] = "N"  # GPSLatitudeRef
    gps[2] = (48.0, 51.0, 29.0)  # GPSLatitude
    gps[3] = "E"
    gps[4] = (2.0, 17.0, 40.0)
    return exif


XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'


def metadata_rich_source(tmp_path: Path, fmt: str) -> Path:
    img = scene((300, 200))
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    exif = exif_with_gps()
    options: dict[str, object] = {"exif": exif.tobytes(), "icc_profile": srgb}
    if fmt == "JPEG":
        options.update(xmp=XMP, comment=b"secret comment")
    elif fmt == "PNG":
        text = PngImagePlugin.PngInfo()
        text.add_text("Comment", "secret comment")
        text.add_itxt("XML:com.adobe.xmp", XMP.decode())
        options["pnginfo"] = text
    else:
        options.update(xmp=XMP, lossless=True)
    data = encode(img, fmt, **options)
    with Image.open(io.BytesIO(data)) as check:
        assert check.getexif().get_ifd(GPS_IFD)
    return write(tmp_path, data, "source")


@pytest.mark.parametrize("source_format", ["JPEG", "PNG", "WEBP"])
def test_renditions_carry_no_metadata(tmp_path: Path, source_format: str) -> None:
    source = metadata_rich_source(tmp_path, source_format)
    for result in render(source, [(150, 100, fmt) for fmt in OUTPUT_FORMATS]):
        out = decode(result)
        assert len(out.getexif()) == 0, result.format
        assert not out.getexif().get_ifd(GPS_IFD)
        for key in ("exif", "xmp", "XML:com.adobe.xmp", "icc_profile", "comment", "Comment"):
            assert not out.info.get(key), (result.format, key)
        for marker in (b"Exif", b"GPS", b"xmpmeta", b"secret comment", b"Camera maker"):
            assert marker not in result.data, (result.format, marker)
        if result.format == "PNG":
            assert set(png_chunks(result.data)) <= {b"IHDR", b"IDAT", b"IEND"}
        if result.format == "WEBP":
            assert set(webp_chunks(result.data)) <= {b"VP8 ", b"VP8L", b"VP8X", b"ALPH"}


# Animations ------------------------------------------------------------------------


@pytest.mark.parametrize("source_format", ["GIF", "WEBP", "PNG"])
def test_animation_becomes_a_png_of_its_first_frame(tmp_path: Path, source_format: str) -> None:
    data = media_factory.image_bytes(source_format, (80, 60), (200, 30, 30), frames=3)
    source = write(tmp_path, data, "source")
    assert is_animated(source)
    fmt = output_format(source_format, RenditionFormat.ORIGINAL, animated=True)
    assert fmt == "PNG"
    (result,) = render(source, [(40, 30, fmt)])
    out = decode(result)
    assert out.format == "PNG"
    assert out.size == (40, 30)
    assert getattr(out, "n_frames", 1) == 1
    assert close_to(rgb_at(out, (20, 15)), (200, 30, 30), 8)  # frame 1, not (240, 70, 70)


def test_still_gif_becomes_png_and_stills_are_not_animated(tmp_path: Path) -> None:
    gif = write(tmp_path, media_factory.image_bytes("GIF", (80, 60)), "still.gif")
    jpeg = write(tmp_path, media_factory.image_bytes("JPEG", (80, 60)), "still.jpg")
    assert not is_animated(gif)
    assert not is_animated(jpeg)
    assert output_format("GIF", RenditionFormat.ORIGINAL, animated=False) == "PNG"
    (result,) = render(gif, [(40, 30, "PNG")])
    assert decode(result).size == (40, 30)
