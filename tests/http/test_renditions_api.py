"""Renditions through the API: URLs and sizes in the schema, files made on first GET (once,
however many ask at the same time), background warm-up, regenerateRenditions."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from PIL import Image

from gateway.app import create_app
from gateway.settings import Settings
from storage import tokens
from storage.enums import TokenScope
from support.api import ERRORS, Api
from support.media_factory import image_bytes

RENDITIONS = """query($id: ID!, $sizes: [RenditionSize!], $format: RenditionFormat) {
  image(id: $id) { width height renditions(sizes: $sizes, format: $format) {
    size url url2x width height mimeType } } }"""

REGENERATE = f"""mutation($ids: [ID!]!) {{ regenerateRenditions(imageIds: $ids) {{
  images {{ id }} {ERRORS} }} }}"""


@pytest.fixture
async def cold_api(settings: Settings) -> AsyncIterator[Api]:
    """An app that does not warm renditions up, so the first GET makes them."""
    cold = settings.model_copy(update={"warm_renditions": False})
    application = create_app(cold)
    async with LifespanManager(application):
        backend = application.state.backend
        token, _ = await tokens.create_token(backend.db, "renditions", TokenScope.WRITE)
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield Api(c, token, backend, cold.media_root)


async def _image(api: Api, fmt: str, size: tuple[int, int], **kwargs: Any) -> dict[str, Any]:
    product = await api.create_product(f"R-{fmt}-{size[0]}x{size[1]}")
    payload = await api.upload_image(product["id"], image_bytes(fmt, size, **kwargs))
    assert payload["userErrors"] == [], payload
    image: dict[str, Any] = payload["image"]
    return image


async def _renditions(api: Api, image_id: str, **variables: Any) -> list[dict[str, Any]]:
    data = await api.data(RENDITIONS, {"id": image_id, **variables})
    renditions: list[dict[str, Any]] = data["image"]["renditions"]
    return renditions


async def _get(api: Api, url: str) -> httpx.Response:
    return await api.client.get(url.removeprefix("http://testserver"))


async def test_all_sizes_in_enum_order_with_exact_dimensions(cold_api: Api) -> None:
    image = await _image(cold_api, "JPEG", (3000, 2000))
    renditions = await _renditions(cold_api, image["id"])
    assert [r["size"] for r in renditions] == ["THUMBNAIL", "SMALL", "MEDIUM", "LARGE", "ZOOM"]
    assert [(r["width"], r["height"]) for r in renditions] == [
        (100, 67),
        (250, 167),
        (500, 333),
        (800, 533),
        (1600, 1067),
    ]
    for rendition in renditions:
        response = await _get(cold_api, rendition["url"])
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/jpeg"
        assert "immutable" in response.headers["cache-control"]
        with Image.open(io.BytesIO(response.content)) as decoded:
            assert decoded.size == (rendition["width"], rendition["height"])
            assert not decoded.getexif()
    zoom = renditions[-1]
    assert zoom["url2x"] is None  # 3000 < 2 * 1600
    thumbnail = renditions[0]
    response = await _get(cold_api, thumbnail["url2x"])
    with Image.open(io.BytesIO(response.content)) as decoded:
        assert decoded.size == (200, 133)


@pytest.mark.parametrize(
    ("requested", "mime", "pillow"),
    [("JPEG", "image/jpeg", "JPEG"), ("PNG", "image/png", "PNG"), ("WEBP", "image/webp", "WEBP")],
)
async def test_formats(cold_api: Api, requested: str, mime: str, pillow: str) -> None:
    image = await _image(cold_api, "PNG", (600, 400), color=(10, 200, 30, 128))
    (small,) = await _renditions(cold_api, image["id"], sizes=["SMALL"], format=requested)
    assert small["mimeType"] == mime and (small["width"], small["height"]) == (250, 167)
    response = await _get(cold_api, small["url"])
    assert response.headers["content-type"] == mime
    with Image.open(io.BytesIO(response.content)) as decoded:
        assert decoded.format == pillow and decoded.size == (250, 167)


async def test_original_format_of_gif_is_png_and_sizes_follow_the_request(cold_api: Api) -> None:
    image = await _image(cold_api, "GIF", (300, 300))
    renditions = await _renditions(cold_api, image["id"], sizes=["ZOOM", "THUMBNAIL"])
    assert [r["size"] for r in renditions] == ["ZOOM", "THUMBNAIL"]
    assert renditions[0]["mimeType"] == "image/png"
    assert (renditions[0]["width"], renditions[0]["height"]) == (300, 300)  # never upscaled
    assert renditions[1]["url2x"] is not None  # 300 >= 2 * 100


async def test_concurrent_first_gets_generate_once(cold_api: Api) -> None:
    image = await _image(cold_api, "JPEG", (2000, 1500))
    (large,) = await _renditions(cold_api, image["id"], sizes=["LARGE"])
    renditions = cold_api.backend.renditions
    before = renditions.generated
    responses = await asyncio.gather(*(_get(cold_api, large["url"]) for _ in range(20)))
    assert {r.status_code for r in responses} == {200}
    assert len({r.content for r in responses}) == 1
    assert renditions.generated - before == 1
    again = await _get(cold_api, large["url"])
    assert again.status_code == 200 and renditions.generated - before == 1
    etag = again.headers["etag"]
    cached = await cold_api.client.get(
        large["url"].removeprefix("http://testserver"), headers={"If-None-Match": etag}
    )
    assert cached.status_code == 304


async def test_unknown_sources_and_boxes_are_404(cold_api: Api) -> None:
    image = await _image(cold_api, "JPEG", (400, 300))
    (small,) = await _renditions(cold_api, image["id"], sizes=["SMALL"])
    odd_box = small["url"].replace("/250.jpg", "/251.jpg")
    assert (await _get(cold_api, odd_box)).status_code == 404
    unknown = (
        small["url"]
        .replace(image["checksum"], "ab" + "0" * 62)
        .replace(f"/r/{image['checksum'][:2]}/", "/r/ab/")
    )
    assert (await _get(cold_api, unknown)).status_code == 404
    assert cold_api.backend.renditions.generated == 0


async def test_deleting_the_last_image_removes_its_renditions(cold_api: Api) -> None:
    image = await _image(cold_api, "PNG", (500, 500))
    (thumb,) = await _renditions(cold_api, image["id"], sizes=["THUMBNAIL"])
    assert (await _get(cold_api, thumb["url"])).status_code == 200
    deleted = await cold_api.data(
        f"mutation($ids: [ID!]!) {{ deleteImages(ids: $ids) {{ deletedIds {ERRORS} }} }}",
        {"ids": [image["id"]]},
    )
    assert deleted["deleteImages"]["userErrors"] == []
    assert not (cold_api.media_root / "r" / image["checksum"][:2] / image["checksum"]).exists()
    assert (await _get(cold_api, thumb["url"])).status_code == 404


async def test_upload_warms_default_renditions(api: Api) -> None:
    image = await _image(api, "JPEG", (1200, 900))
    await api.backend.renditions.drain()
    folder = api.media_root / "r" / image["checksum"][:2] / image["checksum"]
    made = sorted(p.name for p in folder.iterdir())
    # 100, 250, 500, 800 at 1x; 200, 500, 1000 at 2x (1600 fits the 1200 original as is)
    assert made == sorted(
        ["100.jpg", "200.jpg", "250.jpg", "500.jpg", "800.jpg", "1000.jpg", "1600.jpg"]
    )
    before = api.backend.renditions.generated
    for rendition in await _renditions(api, image["id"]):
        assert (await _get(api, rendition["url"])).status_code == 200
    assert api.backend.renditions.generated == before


async def test_regenerate_renditions(cold_api: Api) -> None:
    image = await _image(cold_api, "PNG", (900, 600))
    folder = cold_api.media_root / "r" / image["checksum"][:2] / image["checksum"]
    stray = folder / "100.png"
    folder.mkdir(parents=True)
    stray.write_bytes(b"stale")
    payload = (await cold_api.data(REGENERATE, {"ids": [image["id"]]}))["regenerateRenditions"]
    assert payload["userErrors"] == [] and payload["images"] == [{"id": image["id"]}]
    with Image.open(stray) as rebuilt:
        assert rebuilt.size == (100, 67)
    errors = (await cold_api.data(REGENERATE, {"ids": []}))["regenerateRenditions"]["userErrors"]
    assert errors[0]["code"] == "REQUIRED"
    too_many = {"ids": [image["id"]] * 101}
    errors = (await cold_api.data(REGENERATE, too_many))["regenerateRenditions"]["userErrors"]
    assert errors[0]["code"] == "TOO_MANY"
    unknown = {"ids": ["SW1hZ2U6OTk5OQ=="]}  # Image:9999
    errors = (await cold_api.data(REGENERATE, unknown))["regenerateRenditions"]["userErrors"]
    assert errors == [
        {
            "field": ["imageIds", "0"],
            "code": "NOT_FOUND",
            "message": "There is no image with this id.",
        }
    ]
