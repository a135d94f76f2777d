"""Format sniffing and measuring of uploaded media, on real files."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest
from PIL import ImageFile

from storage.enums import ErrorCode
from storage.errors import FileRejected
from storage.media import ImageInfo, VideoInfo, inspect_image, inspect_video
from support import media_factory

MAX_PIXELS = 50_000_000


def write(tmp_path: Path, data: bytes, name: str = "upload.bin") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def image_info(path: Path, *, max_pixels: int = MAX_PIXELS, min_side: int = 1) -> ImageInfo:
    return inspect_image(path, max_pixels=max_pixels, min_side=min_side)


def rejected_image(path: Path, *, max_pixels: int = MAX_PIXELS, min_side: int = 1) -> FileRejected:
    with pytest.raises(FileRejected) as caught:
        inspect_image(path, max_pixels=max_pixels, min_side=min_side)
    assert caught.value.message
    return caught.value


def rejected_video(path: Path) -> FileRejected:
    with pytest.raises(FileRejected) as caught:
        inspect_video(path)
    assert caught.value.message
    return caught.value


def png_with_declared_size(width: int, height: int) -> bytes:
    """A small palette PNG whose IHDR is rewritten to declare width x height (CRC fixed)."""
    data = bytearray(media_factory.image_bytes("PNG", (8, 8), mode="P"))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def box(box_type: bytes, payload: bytes = b"", *, large: bool = False) -> bytes:
    if large:
        return struct.pack(">I4sQ", 1, box_type, 16 + len(payload)) + payload
    return struct.pack(">I4s", 8 + len(payload), box_type) + payload


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    return box(b"ftyp", major + b"\x00\x00\x00\x00" + b"".join(compatible))


def mvhd_v1(timescale: int, duration: int) -> bytes:
    payload = b"\x01\x00\x00\x00" + struct.pack(">QQIQ", 0, 0, timescale, duration)
    return box(b"mvhd", payload + bytes(80))


def tkhd_v1(width: int, height: int) -> bytes:
    payload = b"\x01\x00\x00\x07" + struct.pack(">QQIIQ", 0, 0, 1, 0, 0)
    payload += bytes(16) + bytes(36) + struct.pack(">II", width << 16, height << 16)
    assert len(payload) == 96
    return box(b"tkhd", payload)


def track(handler: bytes, tkhd: bytes) -> bytes:
    hdlr = box(b"hdlr", bytes(8) + handler + bytes(12) + b"\x00")
    return box(b"trak", tkhd + box(b"mdia", hdlr))


# Images: accepted formats ----------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "mime_type", "extension"),
    [
        ("JPEG", "image/jpeg", "jpg"),
        ("PNG", "image/png", "png"),
        ("GIF", "image/gif", "gif"),
        ("WEBP", "image/webp", "webp"),
    ],
)
def test_accepted_formats_are_measured(
    tmp_path: Path, fmt: str, mime_type: str, extension: str
) -> None:
    path = write(tmp_path, media_factory.image_bytes(fmt, (64, 48)), "misleading.txt")

    assert image_info(path) == ImageInfo(fmt, mime_type, extension, 64, 48)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_animations_report_the_canvas_size(tmp_path: Path, fmt: str) -> None:
    path = write(tmp_path, media_factory.image_bytes(fmt, (40, 30), frames=4))

    info = image_info(path, max_pixels=40 * 30, min_side=30)

    assert (info.format, info.width, info.height) == (fmt, 40, 30)


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "1"])
def test_png_modes_are_accepted(tmp_path: Path, mode: str) -> None:
    path = write(tmp_path, media_factory.image_bytes("PNG", (20, 10), mode=mode))

    assert image_info(path).width == 20


@pytest.mark.parametrize(
    ("orientation", "upright"),
    [(value, (64, 48)) for value in (1, 2, 3, 4)] + [(value, (48, 64)) for value in (5, 6, 7, 8)],
)
def test_jpeg_exif_orientation_gives_the_upright_size(
    tmp_path: Path, orientation: int, upright: tuple[int, int]
) -> None:
    data = media_factory.image_bytes("JPEG", (64, 48), orientation=orientation)
    info = image_info(write(tmp_path, data))

    assert (info.width, info.height) == upright


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_exif_orientation_applies_to_png_and_webp(tmp_path: Path, fmt: str) -> None:
    data = media_factory.image_bytes(fmt, (64, 48), orientation=6)
    info = image_info(write(tmp_path, data))

    assert (info.width, info.height) == (48, 64)


def test_seeds_give_different_bytes() -> None:
    for fmt in ("JPEG", "PNG", "GIF", "WEBP"):
        variants = {media_factory.image_bytes(fmt, seed=seed) for seed in range(6)}
        assert len(variants) == 6, fmt


# Images: refused formats -----------------------------------------------------


@pytest.mark.parametrize(
    ("data", "described"),
    [
        (
            b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" '
            b'width="64" height="48"><rect width="64" height="48"/></svg>',
            "SVG",
        ),
        (b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "SVG"),
        (b"<!DOCTYPE html>\n<html><body><img src=x></body></html>", "HTML"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "PDF"),
        (b"just some words,\nnothing more\n", "text"),
        (b"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09", "recognised"),
    ],
)
def test_non_images_are_unsupported(tmp_path: Path, data: bytes, described: str) -> None:
    error = rejected_image(write(tmp_path, data, "picture.png"))

    assert error.code is ErrorCode.UNSUPPORTED_FORMAT
    assert described in error.message


@pytest.mark.parametrize("fmt", ["BMP", "TIFF"])
def test_other_image_formats_are_unsupported(tmp_path: Path, fmt: str) -> None:
    error = rejected_image(write(tmp_path, media_factory.image_bytes(fmt), "picture.jpg"))

    assert error.code is ErrorCode.UNSUPPORTED_FORMAT
    assert fmt in error.message
    assert "JPEG, PNG, GIF and WebP" in error.message


def test_a_video_is_not_an_image(tmp_path: Path) -> None:
    error = rejected_image(write(tmp_path, media_factory.mp4_bytes(), "picture.jpg"))

    assert error.code is ErrorCode.UNSUPPORTED_FORMAT
    assert "MP4" in error.message


def test_heic_is_not_an_accepted_image(tmp_path: Path) -> None:
    error = rejected_image(write(tmp_path, ftyp(b"heic", b"mif1", b"heic") + box(b"meta")))

    assert error.code is ErrorCode.UNSUPPORTED_FORMAT
    assert "HEIC" in error.message


# Images: damaged files -------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP"])
def test_truncated_images_are_corrupt(tmp_path: Path, fmt: str) -> None:
    data = media_factory.image_bytes(fmt, (64, 48), seed=3)

    error = rejected_image(write(tmp_path, data[: len(data) // 2]))

    assert error.code is ErrorCode.CORRUPT_FILE
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_an_animation_truncated_in_its_last_frame_is_corrupt(tmp_path: Path) -> None:
    data = media_factory.image_bytes("GIF", (64, 48), frames=3)

    error = rejected_image(write(tmp_path, data[:-12]))

    assert error.code is ErrorCode.CORRUPT_FILE


def test_empty_file_is_corrupt(tmp_path: Path) -> None:
    error = rejected_image(write(tmp_path, b""))

    assert error.code is ErrorCode.CORRUPT_FILE


def test_magic_bytes_alone_are_corrupt(tmp_path: Path) -> None:
    error = rejected_image(write(tmp_path, b"\x89PNG\r\n\x1a\n"))

    assert error.code is ErrorCode.CORRUPT_FILE


def test_flipped_bits_in_a_jpeg_header_never_escape_as_other_errors(tmp_path: Path) -> None:
    data = media_factory.image_bytes("JPEG", (64, 48), seed=9)
    header_end = data.index(b"\xff\xda")  # start of scan: the header is everything before it
    outcomes: set[str] = set()
    for offset in range(4, header_end, 3):
        damaged = bytearray(data)
        damaged[offset] ^= 0xA5
        path = write(tmp_path, bytes(damaged))
        try:
            image_info(path)
        except FileRejected as error:
            assert error.code in {
                ErrorCode.CORRUPT_FILE,
                ErrorCode.IMAGE_TOO_LARGE,
                ErrorCode.IMAGE_TOO_SMALL,
            }
            outcomes.add(error.code.value)
        else:
            outcomes.add("decoded")
    assert ErrorCode.CORRUPT_FILE.value in outcomes


# Images: size limits ---------------------------------------------------------


def test_declared_pillow_bomb_is_too_large(tmp_path: Path) -> None:
    data = png_with_declared_size(20_000, 20_000)
    assert len(data) < 1_000

    error = rejected_image(write(tmp_path, data))

    assert error.code is ErrorCode.IMAGE_TOO_LARGE


def test_header_over_max_pixels_is_too_large_without_decoding(tmp_path: Path) -> None:
    # 9000x9000 is under Pillow's own bomb limit, so only max_pixels refuses it.
    error = rejected_image(write(tmp_path, png_with_declared_size(9_000, 9_000)))

    assert error.code is ErrorCode.IMAGE_TOO_LARGE
    assert "9000x9000" in error.message
    assert "81000000" in error.message
    assert str(MAX_PIXELS) in error.message


def test_image_at_the_pixel_limit_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, media_factory.image_bytes("PNG", (64, 48)))

    assert image_info(path, max_pixels=64 * 48).width == 64
    assert rejected_image(path, max_pixels=64 * 48 - 1).code is ErrorCode.IMAGE_TOO_LARGE


def test_small_image_is_too_small(tmp_path: Path) -> None:
    path = write(tmp_path, media_factory.image_bytes("PNG", (64, 48)))

    error = rejected_image(path, min_side=100)

    assert error.code is ErrorCode.IMAGE_TOO_SMALL
    assert "64x48" in error.message


def test_min_side_applies_to_the_upright_size(tmp_path: Path) -> None:
    path = write(tmp_path, media_factory.image_bytes("JPEG", (64, 48), orientation=6))

    assert image_info(path, min_side=48).height == 64
    assert rejected_image(path, min_side=49).code is ErrorCode.IMAGE_TOO_SMALL


# Videos ----------------------------------------------------------------------


def test_mp4_is_measured(tmp_path: Path) -> None:
    info = inspect_video(write(tmp_path, media_factory.mp4_bytes(), "clip.mov"))

    assert (info.mime_type, info.extension) == ("video/mp4", "mp4")
    assert (info.width, info.height) == (64, 48)
    assert info.duration_seconds is not None
    assert info.duration_seconds == pytest.approx(1.0, abs=0.2)


def test_mp4_of_another_size_and_length(tmp_path: Path) -> None:
    info = inspect_video(write(tmp_path, media_factory.mp4_bytes(96, 32, seconds=2.0, fps=5)))

    assert (info.width, info.height) == (96, 32)
    assert info.duration_seconds == pytest.approx(2.0, abs=0.3)


def test_an_image_is_not_a_video(tmp_path: Path) -> None:
    error = rejected_video(write(tmp_path, media_factory.image_bytes("PNG"), "clip.mp4"))

    assert error.code is ErrorCode.UNSUPPORTED_FORMAT
    assert "PNG" in error.message


def test_empty_video_is_corrupt(tmp_path: Path) -> None:
    assert rejected_video(write(tmp_path, b"")).code is ErrorCode.CORRUPT_FILE


def test_mp4_truncated_to_half_is_corrupt_or_measured(tmp_path: Path) -> None:
    data = media_factory.mp4_bytes()
    path = write(tmp_path, data[: len(data) // 2])
    try:
        info = inspect_video(path)
    except FileRejected as error:
        assert error.code is ErrorCode.CORRUPT_FILE
    else:
        assert isinstance(info, VideoInfo)


def test_mp4_without_moov_is_corrupt(tmp_path: Path) -> None:
    data = media_factory.mp4_bytes()

    error = rejected_video(write(tmp_path, data[:40]))

    assert error.code is ErrorCode.CORRUPT_FILE


@pytest.mark.parametrize(
    "brands",
    [
        (b"heic", b"mif1", b"heic"),
        (b"mif1", b"mif1", b"heix"),
        (b"avif", b"avif", b"mif1", b"miaf"),
        (b"qt  ", b"qt  "),
        (b"3gp4", b"3gp4"),
    ],
)
def test_other_iso_media_brands_are_unsupported(tmp_path: Path, brands: tuple[bytes, ...]) -> None:
    data = ftyp(*brands) + box(b"moov", mvhd_v1(1000, 1000))

    error = rejected_video(write(tmp_path, data))

    assert error.code is ErrorCode.UNSUPPORTED_FORMAT
    assert "MP4" in error.message


def test_quicktime_with_an_mp4_compatible_brand_is_accepted(tmp_path: Path) -> None:
    data = ftyp(b"qt  ", b"qt  ", b"isom") + box(b"moov", mvhd_v1(600, 1500))

    info = inspect_video(write(tmp_path, data))

    assert info == VideoInfo("video/mp4", "mp4", None, None, 2.5)


def test_version_1_boxes_and_64_bit_sizes_are_read(tmp_path: Path) -> None:
    audio = track(b"soun", tkhd_v1(0, 0))
    video = track(b"vide", tkhd_v1(1920, 1080))
    moov = box(b"moov", mvhd_v1(1000, 3500) + audio + video, large=True)
    data = ftyp(b"mp42", b"mp42", b"isom") + moov + box(b"mdat", bytes(64), large=True)

    info = inspect_video(write(tmp_path, data))

    assert info == VideoInfo("video/mp4", "mp4", 1920, 1080, 3.5)


def test_a_last_box_of_size_zero_runs_to_the_end_of_the_file(tmp_path: Path) -> None:
    data = ftyp(b"isom") + box(b"moov", mvhd_v1(10, 5)) + struct.pack(">I4s", 0, b"mdat")

    assert inspect_video(write(tmp_path, data + bytes(100))).duration_seconds == 0.5


def test_unknown_duration_and_missing_video_track_give_none(tmp_path: Path) -> None:
    data = ftyp(b"isom") + box(b"moov", mvhd_v1(1000, 0xFFFF_FFFF_FFFF_FFFF))

    assert inspect_video(write(tmp_path, data)) == VideoInfo("video/mp4", "mp4", None, None, None)


@pytest.mark.parametrize(
    "tail",
    [
        struct.pack(">I4s", 4, b"free"),  # smaller than its header
        struct.pack(">I4s", 1_000, b"mdat") + bytes(10),  # past the end of the file
        struct.pack(">I4sQ", 1, b"mdat", 8),  # 64-bit size smaller than its header
        b"\x00\x00\x00",  # a partial box header
    ],
)
def test_malformed_boxes_are_corrupt(tmp_path: Path, tail: bytes) -> None:
    data = ftyp(b"isom") + box(b"moov", mvhd_v1(1000, 1000)) + tail

    assert rejected_video(write(tmp_path, data)).code is ErrorCode.CORRUPT_FILE


def test_a_child_box_past_the_end_of_moov_is_corrupt(tmp_path: Path) -> None:
    moov = box(b"moov", struct.pack(">I4s", 500, b"mvhd") + bytes(20))

    assert rejected_video(write(tmp_path, ftyp(b"isom") + moov)).code is ErrorCode.CORRUPT_FILE
