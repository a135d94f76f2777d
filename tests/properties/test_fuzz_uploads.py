"""Fuzzing uploads: random bytes and damaged real files (truncated at random offsets, bits
flipped, bytes overwritten, tails replaced by noise) of JPEG, PNG, GIF and WebP images made by
media_factory, and MP4 videos from mp4_bytes, through uploadImage, uploadImages (multipart)
and uploadVideo.

Whatever the bytes: the HTTP status is 200 (never a 5xx), the answer is either a stored item
with sane fields, which the media route then serves (its renditions too), or exactly one
userError with an expected code; and a refused upload leaves no row and no file
(``assert_consistent`` after every example)."""

from __future__ import annotations

import hashlib
import io
import itertools
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from PIL import Image

from support.api import ERRORS, IMAGE_FIELDS, VIDEO_FIELDS, Api
from support.media_factory import image_bytes, mp4_bytes

pytestmark = pytest.mark.anyio

IMAGE_CODES = {"UNSUPPORTED_FORMAT", "CORRUPT_FILE", "IMAGE_TOO_SMALL", "IMAGE_TOO_LARGE"}
VIDEO_CODES = {"UNSUPPORTED_FORMAT", "CORRUPT_FILE"}
"""What damaged bytes may be refused with; DUPLICATE too, when a mutation happens to give
bytes that the product already has (two flips of one bit, a replayed example)."""

IMAGE_MIME = {"image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp"}

IMAGE_SEEDS = {
    "JPEG": image_bytes("JPEG", (40, 30), seed=3),
    "JPEG+EXIF": image_bytes("JPEG", (40, 30), orientation=6, seed=4),
    "PNG": image_bytes("PNG", (40, 30), seed=5),
    "PNG+EXIF": image_bytes("PNG", (40, 30), orientation=8, seed=6),
    "APNG": image_bytes("PNG", (40, 30), frames=3, seed=7),
    "GIF": image_bytes("GIF", (40, 30), seed=8),
    "GIF animated": image_bytes("GIF", (40, 30), frames=3, seed=9),
    "WEBP": image_bytes("WEBP", (40, 30), seed=10),
    "WEBP animated": image_bytes("WEBP", (40, 30), frames=3, seed=11),
    "WEBP lossy": image_bytes("WEBP", (40, 30), mode="RGBA", seed=12),
}
VIDEO_SEEDS = {
    "MP4": mp4_bytes(),
    "MP4 short": mp4_bytes(32, 24, seconds=0.3),
}

UPLOAD_IMAGE = (
    "mutation($input: UploadImageInput!) { uploadImage(input: $input) { "
    f"image {{ {IMAGE_FIELDS} renditions(sizes: [THUMBNAIL]) {{ url url2x width height }} }} "
    f"{ERRORS} }} }}"
)
UPLOAD_IMAGES = (
    "mutation($input: UploadImagesInput!) { uploadImages(input: $input) { "
    f"images {{ id checksum position }} {ERRORS} }} }}"
)
UPLOAD_VIDEO = (
    "mutation($input: UploadVideoInput!) { uploadVideo(input: $input) { "
    f"video {{ {VIDEO_FIELDS} }} {ERRORS} }} }}"
)
BATCHES = itertools.count()

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# Strategies ------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    origin: str
    """The seed file's name, or "random"."""
    kinds: tuple[str, ...]
    """The mutations applied, in order (for the statistics)."""
    detail: str
    """The mutations with their parameters (for a failure's report)."""
    content: bytes

    @property
    def kind(self) -> str:
        return "+".join(self.kinds) or "intact"

    def __repr__(self) -> str:  # what hypothesis prints for a failing example
        return f"Case({self.origin!r}, {self.detail!r}, {self.content!r})"


@st.composite
def damaged(draw: st.DrawFn, seeds: dict[str, bytes]) -> Case:
    """A seed file damaged in one or two ways."""
    origin = draw(st.sampled_from(sorted(seeds)))
    content = bytearray(seeds[origin])
    applied: list[str] = []
    kinds: list[str] = []
    for _ in range(draw(st.integers(1, 2))):
        kind = draw(st.sampled_from(["truncate", "flip", "overwrite", "noise tail"]))
        if not content:
            break
        kinds.append(kind)
        if kind == "truncate":
            at = draw(st.integers(0, len(content) - 1))
            del content[at:]
            applied.append(f"truncate@{at}")
        elif kind == "flip":
            flips = draw(
                st.lists(st.tuples(st.integers(0, len(content) - 1), st.integers(0, 7)), max_size=8)
            )
            flips = flips or [(draw(st.integers(0, len(content) - 1)), 0)]
            for offset, bit in flips:
                content[offset] ^= 1 << bit
            applied.append(f"flip{flips}")
        elif kind == "overwrite":
            # Bytes of a header field (a width, a box size) set to extremes or random values.
            at = draw(st.integers(0, len(content) - 1))
            value = draw(
                st.sampled_from([b"\x00" * 4, b"\xff" * 4, b"\x7f\xff\xff\xff"])
                | st.binary(min_size=1, max_size=4)
            )
            content[at : at + len(value)] = value
            applied.append(f"overwrite@{at}={value!r}")
        else:
            at = draw(st.integers(0, len(content)))
            content[at:] = draw(st.binary(min_size=1, max_size=512))
            applied.append(f"noise@{at}")
    return Case(origin, tuple(kinds), " ".join(applied), bytes(content))


def random_bytes(prefixes: list[bytes]) -> st.SearchStrategy[Case]:
    """Noise, sometimes behind a real magic number (so it gets past the sniffing)."""
    return st.builds(
        lambda prefix, noise: Case("random", ("noise",), f"{prefix!r} + noise", prefix + noise),
        st.sampled_from([b"", *prefixes]),
        st.binary(max_size=2048),
    )


IMAGE_MAGIC = [
    b"\xff\xd8\xff",
    b"\x89PNG\r\n\x1a\n",
    b"GIF89a",
    b"RIFF\x00\x00\x00\x00WEBP",
    b"<svg xmlns='http://www.w3.org/2000/svg'>",
]
VIDEO_MAGIC = [b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2", b"\x00\x00\x00\x08ftyp"]

image_cases = damaged(IMAGE_SEEDS) | damaged(IMAGE_SEEDS) | random_bytes(IMAGE_MAGIC)
intact_images = st.sampled_from(sorted(IMAGE_SEEDS)).map(
    lambda name: Case(name, (), "", IMAGE_SEEDS[name])
)
video_cases = (
    damaged(VIDEO_SEEDS) | damaged(VIDEO_SEEDS) | random_bytes(VIDEO_MAGIC) | damaged(IMAGE_SEEDS)
)


# Helpers ---------------------------------------------------------------------


@pytest.fixture
async def product_id(api: Api) -> str:
    product = await api.create_product("FUZZ")
    return str(product["id"])


async def snapshot(api: Api) -> tuple[int, int, set[str]]:
    return await api.count_rows("image"), await api.count_rows("video"), api.blob_files()


def graphql_payload(response: httpx.Response, name: str) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"][name]
    return payload


def refused_with(payload: dict[str, Any], allowed: set[str]) -> str:
    """The code of the one userError of a refused upload."""
    assert len(payload["userErrors"]) == 1, payload
    code: str = payload["userErrors"][0]["code"]
    assert code in allowed | {"DUPLICATE"}, payload
    return code


async def fetch(api: Api, url: str, **headers: str) -> httpx.Response:
    assert url.startswith("http://testserver/media/"), url
    response = await api.client.get(url, headers=headers)
    assert response.status_code in (200, 206), (url, response.status_code, response.text)
    return response


def decoded_size(content: bytes) -> tuple[int, int]:
    """What Pillow makes of bytes the gateway stored: they must decode whole."""
    with Image.open(io.BytesIO(content)) as img:
        img.load()
        return img.size


# Tests -----------------------------------------------------------------------


@FUZZ
@given(case=image_cases)
async def test_damaged_images(api: Api, product_id: str, case: Case) -> None:
    note(repr(case))
    before = await snapshot(api)
    response = await api.upload(
        UPLOAD_IMAGE,
        {"input": {"productId": product_id, "file": None}},
        {"variables.input.file": ("upload.jpg", case.content, "image/jpeg")},
    )
    payload = graphql_payload(response, "uploadImage")
    image = payload["image"]
    if image is None:
        event(f"{case.kind}: {refused_with(payload, IMAGE_CODES)}")
        assert await snapshot(api) == before
    else:
        event(f"{case.kind}: stored")
        assert payload["userErrors"] == [], payload
        assert image["mimeType"] in IMAGE_MIME, image
        assert image["fileSize"] == len(case.content)
        assert image["checksum"] == hashlib.sha256(case.content).hexdigest()
        assert image["url"].endswith("." + IMAGE_MIME[image["mimeType"]]), image
        width, height = decoded_size(case.content)
        assert (image["width"], image["height"]) in ((width, height), (height, width)), image
        assert await api.count_rows("image") == before[0] + 1
        stored = await fetch(api, image["url"])
        assert stored.content == case.content
        (thumbnail,) = image["renditions"]
        rendition = await fetch(api, thumbnail["url"])
        assert decoded_size(rendition.content) == (thumbnail["width"], thumbnail["height"])
    await api.assert_consistent()


@FUZZ
@given(case=video_cases)
async def test_damaged_videos(api: Api, product_id: str, case: Case) -> None:
    note(repr(case))
    before = await snapshot(api)
    response = await api.upload(
        UPLOAD_VIDEO,
        {"input": {"productId": product_id, "file": None}},
        {"variables.input.file": ("clip.mp4", case.content, "video/mp4")},
    )
    payload = graphql_payload(response, "uploadVideo")
    video = payload["video"]
    if video is None:
        event(f"{case.kind}: {refused_with(payload, VIDEO_CODES)}")
        assert await snapshot(api) == before
    else:
        event(f"{case.kind}: stored")
        assert payload["userErrors"] == [], payload
        assert video["mimeType"] == "video/mp4"
        assert video["url"].endswith(".mp4")
        assert video["fileSize"] == len(case.content)
        assert video["checksum"] == hashlib.sha256(case.content).hexdigest()
        for side in ("width", "height"):
            assert video[side] is None or video[side] > 0, video
        assert video["durationSeconds"] is None or video["durationSeconds"] >= 0, video
        assert await api.count_rows("video") == before[1] + 1
        assert (await fetch(api, video["url"])).content == case.content
        ranged = await fetch(api, video["url"], range="bytes=0-7")
        assert ranged.status_code == 206 and ranged.content == case.content[:8]
    await api.assert_consistent()


@settings(FUZZ, max_examples=30)
@given(
    cases=st.lists(
        st.integers(0, 3).flatmap(lambda n: image_cases if n == 3 else intact_images),
        min_size=2,
        max_size=4,
        unique_by=lambda case: case.content,
    )
)
async def test_damaged_batches_store_all_or_nothing(api: Api, cases: list[Case]) -> None:
    """uploadImages with intact and damaged files: every file stored, or none."""
    note(repr(cases))
    # A product per example, so that intact files are not DUPLICATEs of an earlier example's.
    product_id = (await api.create_product(f"BATCH-{next(BATCHES)}"))["id"]
    before = await snapshot(api)
    response = await api.upload(
        UPLOAD_IMAGES,
        {"input": {"productId": product_id, "files": [None] * len(cases)}},
        {
            f"variables.input.files.{index}": (f"f{index}.png", case.content, "image/png")
            for index, case in enumerate(cases)
        },
    )
    payload = graphql_payload(response, "uploadImages")
    if payload["images"] is None:
        assert payload["userErrors"], payload
        for error in payload["userErrors"]:
            assert error["code"] in IMAGE_CODES | {"DUPLICATE"}, payload
            assert error["field"][0] == "files" and error["field"][1].isdigit(), payload
        event(f"refused: {len(payload['userErrors'])} error(s)")
        assert await snapshot(api) == before
    else:
        event("stored")
        assert payload["userErrors"] == [], payload
        assert [i["checksum"] for i in payload["images"]] == [
            hashlib.sha256(case.content).hexdigest() for case in cases
        ]
        assert await api.count_rows("image") == before[0] + len(cases)
    await api.assert_consistent()
