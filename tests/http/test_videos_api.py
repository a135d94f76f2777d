"""Videos over HTTP: uploadVideo (multipart), updateVideo, reorderVideos, deleteVideos and the
media route's Range support, with a check after every error that nothing changed."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from gateway.app import create_app
from gateway.settings import Settings
from storage.backend import Backend
from support.api import ERRORS, VIDEO_FIELDS, Api
from support.media_factory import image_bytes, mp4_bytes

UPLOAD_VIDEO = (
    "mutation($input: UploadVideoInput!) { uploadVideo(input: $input) { "
    f"video {{ {VIDEO_FIELDS} }} {ERRORS} }} }}"
)
UPDATE_VIDEO = (
    "mutation($id: ID!, $position: Int!) { updateVideo(id: $id, position: $position) { "
    f"video {{ {VIDEO_FIELDS} }} {ERRORS} }} }}"
)
REORDER_VIDEOS = (
    "mutation($ids: [ID!]!) { reorderVideos(videoIds: $ids) { "
    f"product {{ id videos {{ id position }} }} {ERRORS} }} }}"
)
DELETE_VIDEOS = f"mutation($ids: [ID!]!) {{ deleteVideos(ids: $ids) {{ deletedIds {ERRORS} }} }}"

VIDEOS_OF = (
    "query($id: ID!) { node(id: $id) { ... on Product { videos { id position checksum } } } }"
)


async def upload_video(
    api: Api,
    product_id: str,
    content: bytes,
    filename: str = "clip.mp4",
    **fields: Any,
) -> dict[str, Any]:
    response = await api.upload(
        UPLOAD_VIDEO,
        {"input": {"productId": product_id, "file": None, **fields}},
        {"variables.input.file": (filename, content, "video/mp4")},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["uploadVideo"]
    return payload


async def uploaded(api: Api, product_id: str, content: bytes, **fields: Any) -> dict[str, Any]:
    payload = await upload_video(api, product_id, content, **fields)
    assert payload["userErrors"] == [], payload
    video: dict[str, Any] = payload["video"]
    return video


async def videos_of(api: Api, product_id: str) -> list[dict[str, Any]]:
    data = await api.data(VIDEOS_OF, {"id": product_id})
    videos: list[dict[str, Any]] = data["node"]["videos"]
    return videos


async def snapshot(api: Api, product_id: str) -> tuple[int, list[dict[str, Any]], set[str]]:
    return await api.count_rows("video"), await videos_of(api, product_id), api.blob_files()


def codes(payload: dict[str, Any]) -> list[tuple[list[str] | None, str]]:
    return [(e["field"], e["code"]) for e in payload["userErrors"]]


def path_of(url: str) -> str:
    return url.removeprefix("http://testserver")


@pytest.fixture(scope="module")
def clips() -> list[bytes]:
    """Three distinct small MP4s (encoded once per module)."""
    return [mp4_bytes(64, 48, 1.0, 10), mp4_bytes(32, 16, 0.5, 10), mp4_bytes(48, 32, 0.3, 10)]


async def test_upload_video_stores_container_facts(api: Api, clips: list[bytes]) -> None:
    product = await api.create_product("VID-1")
    video = await uploaded(api, product["id"], clips[0])
    assert video["mimeType"] == "video/mp4"
    assert video["fileSize"] == len(clips[0])
    assert video["checksum"] == hashlib.sha256(clips[0]).hexdigest()
    assert (video["width"], video["height"]) == (64, 48)
    assert video["durationSeconds"] == pytest.approx(1.0, abs=0.2)
    assert video["position"] == 0
    assert video["source"] == "UPLOAD"
    assert video["url"].endswith(".mp4")
    response = await api.client.get(path_of(video["url"]))
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    assert response.content == clips[0]
    assert await api.count_rows("video") == 1
    await api.assert_consistent()


async def test_upload_video_inserts_at_position(api: Api, clips: list[bytes]) -> None:
    product = await api.create_product("VID-POS")
    first = await uploaded(api, product["id"], clips[0])
    second = await uploaded(api, product["id"], clips[1])
    inserted = await uploaded(api, product["id"], clips[2], position=0, source="INTEGRATION")
    assert inserted["position"] == 0 and inserted["source"] == "INTEGRATION"
    order = await videos_of(api, product["id"])
    assert [v["id"] for v in order] == [inserted["id"], first["id"], second["id"]]
    assert [v["position"] for v in order] == [0, 1, 2]
    # Past the end means last.
    await api.data(DELETE_VIDEOS, {"ids": [inserted["id"]]})
    again = await uploaded(api, product["id"], clips[2], position=99)
    assert again["position"] == 2
    await api.assert_consistent()


@pytest.mark.parametrize(
    ("content", "filename"),
    [
        (image_bytes("PNG", (32, 32)), "clip.mp4"),
        (b"this is plain text, not a video\n" * 4, "clip.mp4"),
    ],
    ids=["png", "text"],
)
async def test_upload_video_rejects_other_formats(
    api: Api, clips: list[bytes], content: bytes, filename: str
) -> None:
    product = await api.create_product("VID-FMT")
    await uploaded(api, product["id"], clips[0])
    before = await snapshot(api, product["id"])
    payload = await upload_video(api, product["id"], content, filename)
    assert payload["video"] is None
    assert codes(payload) == [(["file"], "UNSUPPORTED_FORMAT")]
    assert await snapshot(api, product["id"]) == before
    await api.assert_consistent()


async def test_upload_truncated_mp4_is_corrupt(api: Api, clips: list[bytes]) -> None:
    product = await api.create_product("VID-CORRUPT")
    before = await snapshot(api, product["id"])
    payload = await upload_video(api, product["id"], clips[0][:40])
    assert payload["video"] is None
    assert codes(payload) == [(["file"], "CORRUPT_FILE")]
    assert await snapshot(api, product["id"]) == before
    await api.assert_consistent()


async def test_same_video_twice_is_duplicate(api: Api, clips: list[bytes]) -> None:
    product = await api.create_product("VID-DUP")
    await uploaded(api, product["id"], clips[0])
    before = await snapshot(api, product["id"])
    payload = await upload_video(api, product["id"], clips[0], "other-name.mp4")
    assert payload["video"] is None
    assert codes(payload) == [(["file"], "DUPLICATE")]
    assert await snapshot(api, product["id"]) == before
    await api.assert_consistent()


async def test_upload_video_to_unknown_product(api: Api, clips: list[bytes]) -> None:
    product = await api.create_product("VID-GONE")
    await api.data("mutation($id: ID!) { productDelete(id: $id) { deletedIds } }", product)
    payload = await upload_video(api, product["id"], clips[0])
    assert codes(payload) == [(["productId"], "NOT_FOUND")]
    assert await api.count_rows("video") == 0
    await api.assert_consistent()


@pytest.fixture
async def small_video_client(
    settings: Settings,
) -> AsyncIterator[tuple[httpx.AsyncClient, Backend]]:
    limited = settings.model_copy(update={"max_video_bytes": 1000})
    application = create_app(limited)
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client, application.state.backend


async def test_video_over_limit_is_too_large(
    api: Api, small_video_client: tuple[httpx.AsyncClient, Backend]
) -> None:
    client, backend = small_video_client
    limited = Api(client, api.token, backend, api.media_root)
    product = await limited.create_product("VID-BIG")
    big = mp4_bytes(64, 48, 1.0, 10)
    assert len(big) > 1000
    payload = await upload_video(limited, product["id"], big)
    assert payload["video"] is None
    assert codes(payload) == [(["file"], "FILE_TOO_LARGE")]
    assert await limited.count_rows("video") == 0
    await limited.assert_consistent()


async def test_update_video_position(api: Api, clips: list[bytes]) -> None:
    product = await api.create_product("VID-MOVE")
    ids = [(await uploaded(api, product["id"], clip))["id"] for clip in clips]
    data = await api.data(UPDATE_VIDEO, {"id": ids[0], "position": 2})
    assert data["updateVideo"]["userErrors"] == []
    assert data["updateVideo"]["video"]["position"] == 2
    order = await videos_of(api, product["id"])
    assert [v["id"] for v in order] == [ids[1], ids[2], ids[0]]
    assert [v["position"] for v in order] == [0, 1, 2]
    # Past the end means last; a negative position is invalid and changes nothing.
    data = await api.data(UPDATE_VIDEO, {"id": ids[1], "position": 50})
    assert data["updateVideo"]["video"]["position"] == 2
    before = await snapshot(api, product["id"])
    data = await api.data(UPDATE_VIDEO, {"id": ids[1], "position": -1})
    assert data["updateVideo"]["video"] is None
    assert codes(data["updateVideo"]) == [(["position"], "INVALID")]
    assert await snapshot(api, product["id"]) == before
    await api.data(DELETE_VIDEOS, {"ids": [ids[2]]})
    data = await api.data(UPDATE_VIDEO, {"id": ids[2], "position": 0})
    assert data["updateVideo"]["video"] is None
    assert codes(data["updateVideo"]) == [(["id"], "NOT_FOUND")]
    assert [v["id"] for v in await videos_of(api, product["id"])] == [ids[0], ids[1]]
    await api.assert_consistent()


async def test_reorder_videos(api: Api, clips: list[bytes]) -> None:
    product = await api.create_product("VID-ORDER")
    ids = [(await uploaded(api, product["id"], clip))["id"] for clip in clips]
    wanted = [ids[2], ids[0], ids[1]]
    data = await api.data(REORDER_VIDEOS, {"ids": wanted})
    payload = data["reorderVideos"]
    assert payload["userErrors"] == []
    assert payload["product"]["id"] == product["id"]
    assert [v["id"] for v in payload["product"]["videos"]] == wanted
    assert [v["position"] for v in payload["product"]["videos"]] == [0, 1, 2]
    assert [v["id"] for v in await videos_of(api, product["id"])] == wanted
    await api.assert_consistent()


async def test_reorder_videos_errors_change_nothing(api: Api, clips: list[bytes]) -> None:
    product = await api.create_product("VID-ORDER-ERR")
    other = await api.create_product("VID-ORDER-OTHER")
    ids = [(await uploaded(api, product["id"], clip))["id"] for clip in clips[:2]]
    foreign = (await uploaded(api, other["id"], clips[2]))["id"]
    await api.data(DELETE_VIDEOS, {"ids": [foreign]})
    foreign_alive = (await uploaded(api, other["id"], clips[2]))["id"]
    before = await snapshot(api, product["id"])
    before_other = await videos_of(api, other["id"])

    cases = [
        ([ids[1]], "INCOMPLETE_ORDER"),
        ([ids[1], ids[0], ids[1]], "REPEATED_ID"),
        ([ids[1], ids[0], foreign_alive], "NOT_SAME_PRODUCT"),
        ([ids[1], ids[0], foreign], "NOT_FOUND"),
    ]
    for order, code in cases:
        data = await api.data(REORDER_VIDEOS, {"ids": order})
        payload = data["reorderVideos"]
        assert payload["product"] is None, (code, payload)
        assert [c for _, c in codes(payload)] == [code], payload
        assert await snapshot(api, product["id"]) == before
        assert await videos_of(api, other["id"]) == before_other
    await api.assert_consistent()


async def test_delete_videos_closes_positions_and_removes_blob(
    api: Api, clips: list[bytes]
) -> None:
    product = await api.create_product("VID-DEL")
    videos = [await uploaded(api, product["id"], clip) for clip in clips]
    middle_key = path_of(videos[1]["url"]).removeprefix("/media/")
    assert middle_key in api.blob_files()
    data = await api.data(DELETE_VIDEOS, {"ids": [videos[1]["id"]]})
    assert data["deleteVideos"] == {"deletedIds": [videos[1]["id"]], "userErrors": []}
    order = await videos_of(api, product["id"])
    assert [v["id"] for v in order] == [videos[0]["id"], videos[2]["id"]]
    assert [v["position"] for v in order] == [0, 1]
    assert middle_key not in api.blob_files()
    assert (await api.client.get(path_of(videos[1]["url"]))).status_code == 404
    # Deleting it again: NOT_FOUND, nothing changes.
    before = await snapshot(api, product["id"])
    data = await api.data(DELETE_VIDEOS, {"ids": [videos[1]["id"]]})
    assert data["deleteVideos"]["deletedIds"] == []
    assert [c for _, c in codes(data["deleteVideos"])] == ["NOT_FOUND"]
    assert await snapshot(api, product["id"]) == before
    await api.assert_consistent()


async def test_video_media_supports_range(api: Api, clips: list[bytes]) -> None:
    product = await api.create_product("VID-RANGE")
    video = await uploaded(api, product["id"], clips[0])
    url = path_of(video["url"])
    response = await api.client.get(url, headers={"Range": "bytes=0-99"})
    assert response.status_code == 206
    assert response.content == clips[0][:100]
    assert response.headers["content-range"] == f"bytes 0-99/{len(clips[0])}"
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["accept-ranges"] == "bytes"
    assert "immutable" in response.headers["cache-control"]
    tail = await api.client.get(url, headers={"Range": "bytes=-10"})
    assert tail.status_code == 206 and tail.content == clips[0][-10:]


async def test_video_blob_shared_across_products(api: Api, clips: list[bytes]) -> None:
    first = await api.create_product("VID-SHARE-1")
    second = await api.create_product("VID-SHARE-2")
    a = await uploaded(api, first["id"], clips[0])
    b = await uploaded(api, second["id"], clips[0])
    assert a["url"] == b["url"]
    assert len(api.blob_files()) == 1
    await api.data(DELETE_VIDEOS, {"ids": [a["id"]]})
    response = await api.client.get(path_of(b["url"]))
    assert response.status_code == 200 and response.content == clips[0]
    await api.assert_consistent()
    await api.data(DELETE_VIDEOS, {"ids": [b["id"]]})
    assert api.blob_files() == set()
    await api.assert_consistent()
