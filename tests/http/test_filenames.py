"""Client filenames never reach a path: multipart parts named like traversals, absolute paths
or Windows paths store their bytes under content-addressed keys only, and nothing appears
anywhere else on disk."""

from __future__ import annotations

import hashlib
import json
import re
from base64 import b64encode
from pathlib import Path

import pytest

from storage.backend import Backend
from storage.blobs import KEY_PATTERN, RENDITION_KEY_PATTERN
from support.api import Api
from support.media_factory import image_bytes, mp4_bytes

HOSTILE_NAMES = [
    "../../etc/passwd",
    "x/../../y.png",
    "/etc/passwd",
    "..\\..\\windows\\win.ini",
    "%2e%2e%2f%2e%2e%2fescape.png",
    "....//....//deep.png",
    ".tmp/../../planted.png",
    "ab/" + "ab" * 32 + ".png",  # shaped like a blob key
    "r/ab/" + "ab" * 32 + "/100.jpg",  # shaped like a rendition key
]
LOCK_FILE = re.compile(r"\A\.locks/[0-9a-f]{64}\.lock\Z")


PLANTED = ("passwd", "y.png", "win.ini", "escape.png", "deep.png", "planted.png", "clip.mp4")


def stored_files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())


def names_under(folder: Path) -> set[str]:
    return {p.name for p in folder.rglob("*")}


async def assert_only_content_addressed(api: Api, backend: Backend, tmp_path: Path) -> None:
    """Every file under the media root is a blob at the key of its own bytes, a rendition of a
    stored blob, or a rendition lock; no file anywhere under the test folder has a name the
    client sent."""
    await backend.renditions.drain()
    root = api.media_root
    blobs = set()
    for name in stored_files(root):
        if KEY_PATTERN.match(name):
            digest = hashlib.sha256((root / name).read_bytes()).hexdigest()
            assert name.split("/")[1].split(".")[0] == digest, name
            blobs.add(digest)
        elif match := RENDITION_KEY_PATTERN.match(name):
            assert match["sha256"] in {p.stem for p in root.glob("??/*")}, name
        else:
            assert LOCK_FILE.match(name), f"unexpected file in the media root: {name}"
    everything = names_under(tmp_path)
    for planted in PLANTED:
        assert planted not in everything
    await api.assert_consistent()


@pytest.mark.parametrize("filename", HOSTILE_NAMES)
async def test_upload_image_ignores_the_filename(
    api: Api, backend: Backend, tmp_path: Path, filename: str
) -> None:
    product = await api.create_product("NAMES-1")
    content = image_bytes("PNG", (40, 30), seed=7)
    payload = await api.upload_image(product["id"], content, filename=filename)
    assert payload["userErrors"] == [], payload
    digest = hashlib.sha256(content).hexdigest()
    assert payload["image"]["url"].endswith(f"/media/{digest[:2]}/{digest}.png")
    await assert_only_content_addressed(api, backend, tmp_path)


async def test_upload_images_and_video_ignore_filenames(
    api: Api, backend: Backend, tmp_path: Path
) -> None:
    product = await api.create_product("NAMES-2")
    contents = [image_bytes("JPEG", (32, 32), seed=n) for n in range(1, 4)]
    files = {
        f"variables.input.files.{n}": (HOSTILE_NAMES[n], content, "image/jpeg")
        for n, content in enumerate(contents)
    }
    response = await api.upload(
        "mutation($input: UploadImagesInput!) { uploadImages(input: $input) { "
        "images { id } userErrors { code } } }",
        {"input": {"productId": product["id"], "files": [None] * len(contents)}},
        files,
    )
    payload = response.json()["data"]["uploadImages"]
    assert payload["userErrors"] == [] and len(payload["images"]) == 3, payload
    response = await api.upload(
        "mutation($input: UploadVideoInput!) { uploadVideo(input: $input) { "
        "video { id } userErrors { code } } }",
        {"input": {"productId": product["id"], "file": None}},
        {"variables.input.file": ("../../clip.mp4", mp4_bytes(), "video/mp4")},
    )
    assert response.json()["data"]["uploadVideo"]["userErrors"] == [], response.text
    await assert_only_content_addressed(api, backend, tmp_path)


async def test_base64_filenames_are_checked_and_never_used(
    api: Api, backend: Backend, tmp_path: Path
) -> None:
    product = await api.create_product("NAMES-3")
    mutation = (
        "mutation($input: UploadImageInput!) { uploadImage(input: $input) { "
        "image { id } userErrors { field code } } }"
    )
    for n, filename in enumerate(["../../etc/passwd", "x/../../y.png", "a\\b.png"]):
        content = b64encode(image_bytes("PNG", (20, 20), seed=10 + n)).decode()
        data = await api.data(
            mutation,
            {"input": {"productId": product["id"], "base64": content, "filename": filename}},
        )
        assert data["uploadImage"] == {
            "image": None,
            "userErrors": [{"field": ["filename"], "code": "INVALID"}],
        }
    # Dots alone pass the character check; the name is still only a label.
    content = b64encode(image_bytes("PNG", (20, 20), seed=20)).decode()
    data = await api.data(
        mutation, {"input": {"productId": product["id"], "base64": content, "filename": ".."}}
    )
    assert data["uploadImage"]["userErrors"] == []
    await assert_only_content_addressed(api, backend, tmp_path)
    assert json.dumps(await api.gallery(product["id"])).count("..") == 0
