"""Image uploads over HTTP: multipart (GraphQL multipart request spec) and base64 in JSON,
the user errors of bad input and bad files, uploadImages, and malformed or over-limit
HTTP bodies. Every refused request is checked to have changed nothing."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from PIL import Image as PILImage

from gateway.app import create_app
from gateway.settings import MIB, Settings
from schema.ids import to_global_id
from storage import tokens
from storage.enums import TokenScope
from support.api import ERRORS, IMAGE_FIELDS, Api
from support.media_factory import image_bytes

UPLOAD_IMAGE = (
    "mutation($input: UploadImageInput!) { uploadImage(input: $input) { "
    f"image {{ {IMAGE_FIELDS} }} {ERRORS} }} }}"
)
UPLOAD_IMAGES = (
    "mutation($input: UploadImagesInput!) { uploadImages(input: $input) { "
    f"images {{ {IMAGE_FIELDS} }} {ERRORS} }} }}"
)
pytestmark = pytest.mark.anyio

MIME = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}


# Helpers -------------------------------------------------------------------


def png(seed: int = 0, size: tuple[int, int] = (64, 48)) -> bytes:
    return image_bytes("PNG", size, seed=seed)


def noise_png(size: tuple[int, int], seed: int = 1) -> bytes:
    """A PNG of random pixels: it barely compresses, so its byte size follows its pixel count."""
    pixels = random.Random(seed).randbytes(size[0] * size[1] * 3)
    out = io.BytesIO()
    PILImage.frombytes("RGB", size, pixels).save(out, format="PNG")
    return out.getvalue()


def padded(content: bytes, total: int) -> bytes:
    """``content`` with bytes after its end marker, so the file is exactly ``total`` bytes."""
    assert len(content) <= total
    return content + b"\0" * (total - len(content))


def errors(payload: dict[str, Any]) -> list[tuple[str, list[str] | None]]:
    return [(error["code"], error["field"]) for error in payload["userErrors"]]


def b64(content: bytes) -> str:
    return base64.b64encode(content).decode()


def order(gallery: list[dict[str, Any]]) -> dict[str | None, list[str]]:
    """Each gallery's image ids in position order, after checking positions are 0..n-1."""
    galleries: dict[str | None, list[dict[str, Any]]] = {}
    for image in gallery:
        galleries.setdefault(image["option"], []).append(image)
    result = {}
    for option, members in galleries.items():
        members.sort(key=lambda image: image["position"])
        assert [m["position"] for m in members] == list(range(len(members))), (option, members)
        result[option] = [m["id"] for m in members]
    return result


async def upload(
    api: Api,
    input: dict[str, Any],
    content: bytes,
    filename: str = "image.png",
    content_type: str = "application/octet-stream",
) -> dict[str, Any]:
    """uploadImage by multipart with ``input`` as given (``file`` is added)."""
    response = await api.upload(
        UPLOAD_IMAGE,
        {"input": {**input, "file": None}},
        {"variables.input.file": (filename, content, content_type)},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["uploadImage"]
    return payload


async def upload_json(api: Api, input: dict[str, Any]) -> dict[str, Any]:
    """uploadImage by a JSON request (base64, or no content at all)."""
    payload: dict[str, Any] = (await api.data(UPLOAD_IMAGE, {"input": input}))["uploadImage"]
    return payload


async def upload_many(api: Api, input: dict[str, Any], contents: list[bytes]) -> dict[str, Any]:
    files = {
        f"variables.input.files.{index}": (f"f{index}.png", content, "image/png")
        for index, content in enumerate(contents)
    }
    response = await api.upload(
        UPLOAD_IMAGES, {"input": {**input, "files": [None] * len(contents)}}, files
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["uploadImages"]
    return payload


async def stored(api: Api, content: bytes, pid: str, **fields: Any) -> dict[str, Any]:
    payload = await api.upload_image(pid, content, **fields)
    assert payload["userErrors"] == [], payload
    image: dict[str, Any] = payload["image"]
    return image


def path_of(url: str) -> str:
    assert url.startswith("http://testserver/media/"), url
    return url.removeprefix("http://testserver")


@pytest.fixture
async def product(api: Api) -> str:
    """A product that already holds one image, so that refused uploads have something to keep."""
    created = await api.create_product("SKU-IMG")
    await stored(api, png(seed=100), created["id"])
    pid: str = created["id"]
    return pid


@pytest.fixture
async def small_api(settings: Settings) -> AsyncIterator[Api]:
    """An app with small limits: 2000 bytes, sides of at least 10, at most 10 000 pixels."""
    small = settings.model_copy(
        update={"max_image_bytes": 2000, "min_image_side": 10, "max_image_pixels": 10000}
    )
    application = create_app(small)
    async with LifespanManager(application):
        backend = application.state.backend
        token, _ = await tokens.create_token(backend.db, "small-write", TokenScope.WRITE)
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Api(client, token, backend, small.media_root)


# 1. uploadImage by multipart -----------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP"])
async def test_upload_each_format_stores_its_facts_and_serves_the_bytes(api: Api, fmt: str) -> None:
    pid = (await api.create_product("SKU-1"))["id"]
    content = image_bytes(fmt, (40, 30), seed=3)
    # The filename and the part's Content-Type lie: only the bytes count.
    payload = await upload(api, {"productId": pid}, content, "photo.bmp", "text/plain")
    assert payload["userErrors"] == []
    image = payload["image"]
    assert (image["width"], image["height"]) == (40, 30)
    assert image["mimeType"] == MIME[fmt]
    assert image["fileSize"] == len(content)
    assert image["checksum"] == hashlib.sha256(content).hexdigest()
    assert image["position"] == 0 and image["isMain"] is True
    assert image["imageType"] == "DEFAULT" and image["source"] == "UPLOAD"
    assert image["option"] is None and image["alt"] is None

    response = await api.client.get(path_of(image["url"]))
    assert response.status_code == 200
    assert response.content == content
    assert response.headers["content-type"] == MIME[fmt]
    assert await api.gallery(pid) == [image]
    assert api.blob_files() == {f"{image['checksum'][:2]}/{image['checksum']}.{path_ext(fmt)}"}
    await api.assert_consistent()


def path_ext(fmt: str) -> str:
    return {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp"}[fmt]


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
async def test_exif_orientation_6_reports_the_upright_size(api: Api, fmt: str) -> None:
    pid = (await api.create_product("SKU-1"))["id"]
    image = await stored(api, image_bytes(fmt, (64, 48), orientation=6), pid)
    assert (image["width"], image["height"]) == (48, 64)
    image = await stored(api, image_bytes(fmt, (64, 48), orientation=3, seed=1), pid)
    assert (image["width"], image["height"]) == (64, 48)


async def test_position_in_the_middle_shifts_the_others(api: Api) -> None:
    pid = (await api.create_product("SKU-1"))["id"]
    a, b, c = [(await stored(api, png(seed), pid))["id"] for seed in (1, 2, 3)]
    d = await stored(api, png(4), pid, position=1)
    assert d["position"] == 1
    assert order(await api.gallery(pid)) == {None: [a, d["id"], b, c]}
    e = await stored(api, png(5), pid, position=0)
    assert e["position"] == 0
    assert order(await api.gallery(pid)) == {None: [e["id"], a, d["id"], b, c]}
    await api.assert_consistent()


async def test_position_past_the_end_appends(api: Api) -> None:
    pid = (await api.create_product("SKU-1"))["id"]
    a = (await stored(api, png(1), pid, position=7))["id"]
    b = await stored(api, png(2), pid, position=99)
    assert b["position"] == 1
    c = await stored(api, png(3), pid, position=3)
    assert c["position"] == 2
    assert order(await api.gallery(pid)) == {None: [a, b["id"], c["id"]]}


async def test_option_galleries_are_numbered_separately(api: Api) -> None:
    pid = (await api.create_product("SKU-1"))["id"]
    default = [(await stored(api, png(seed), pid))["id"] for seed in (1, 2)]
    red = [(await stored(api, png(seed), pid, option="red"))["id"] for seed in (3, 4, 5)]
    blue = await stored(api, png(6), pid, option="blue")
    assert blue["position"] == 0 and blue["option"] == "blue"
    inserted = await stored(api, png(7), pid, option="red", position=1)
    assert inserted["position"] == 1
    assert order(await api.gallery(pid)) == {
        None: default,
        "red": [red[0], inserted["id"], *red[1:]],
        "blue": [blue["id"]],
    }
    data = await api.data(
        'query($id: ID!) { node(id: $id) { ... on Product { images(option: "red") '
        "{ id position option } } } }",
        {"id": pid},
    )
    assert [i["id"] for i in data["node"]["images"]] == [red[0], inserted["id"], *red[1:]]
    assert {i["option"] for i in data["node"]["images"]} == {"red"}
    await api.assert_consistent()


async def test_alt_image_type_and_source(api: Api) -> None:
    pid = (await api.create_product("SKU-1"))["id"]
    image = await stored(api, png(1), pid, alt="A red square", imageType="SWATCH")
    assert image["alt"] == "A red square"
    assert image["imageType"] == "SWATCH"
    assert image["source"] == "UPLOAD"
    image = await stored(api, png(2), pid, source="INTEGRATION", imageType="PICTO")
    assert image["source"] == "INTEGRATION" and image["imageType"] == "PICTO"
    assert image["alt"] is None
    image = await stored(api, png(3), pid, source="UNIFIED")
    assert (image["source"], image["imageType"]) == ("UNIFIED", "DEFAULT")


async def test_upload_by_product_sku(api: Api) -> None:
    pid = (await api.create_product("SKU-BY-SKU"))["id"]
    payload = await upload(api, {"productSku": "SKU-BY-SKU"}, png(1))
    assert payload["userErrors"] == []
    assert [i["id"] for i in await api.gallery(pid)] == [payload["image"]["id"]]
    await api.assert_consistent()


async def test_a_file_part_over_the_text_part_limit_is_accepted(api: Api) -> None:
    """The 1 MiB limit is for text parts; file parts are bound by MAX_IMAGE_BYTES only."""
    pid = (await api.create_product("SKU-1"))["id"]
    content = noise_png((700, 600))
    assert len(content) > MIB
    image = await stored(api, content, pid)
    assert image["fileSize"] == len(content)
    await api.assert_consistent()


# 2. uploadImage by base64, and input errors --------------------------------


async def test_upload_by_base64(api: Api) -> None:
    pid = (await api.create_product("SKU-1"))["id"]
    content = image_bytes("JPEG", (30, 20), seed=2)
    payload = await upload_json(
        api, {"productId": pid, "base64": b64(content), "filename": "Photo_1-a.jpg"}
    )
    assert payload["userErrors"] == []
    image = payload["image"]
    assert (image["width"], image["height"], image["mimeType"]) == (30, 20, "image/jpeg")
    assert image["checksum"] == hashlib.sha256(content).hexdigest()
    assert image["fileSize"] == len(content) and image["source"] == "UPLOAD"
    response = await api.client.get(path_of(image["url"]))
    assert response.content == content
    # Without a filename too, and with line breaks in the base64 (as MIME encoders write).
    other = png(3)
    wrapped = "\n".join(b64(other)[i : i + 76] for i in range(0, len(b64(other)), 76))
    payload = await upload_json(api, {"productId": pid, "base64": wrapped})
    assert payload["userErrors"] == [] and payload["image"]["position"] == 1
    await api.assert_consistent()


async def test_a_10_mib_image_fits_in_a_json_body_as_base64(api: Api) -> None:
    pid = (await api.create_product("SKU-1"))["id"]
    content = padded(png(1), 10 * MIB)
    payload = await upload_json(api, {"productId": pid, "base64": b64(content)})
    assert payload["userErrors"] == []
    assert payload["image"]["fileSize"] == 10 * MIB
    await api.assert_consistent()


@pytest.mark.parametrize(
    ("input", "expected"),
    [
        pytest.param({"base64": "not base64!"}, [("INVALID", ["base64"])], id="bad-base64"),
        pytest.param({"base64": "iVBORw0KGgo"}, [("INVALID", ["base64"])], id="bad-padding"),
        pytest.param(
            {"base64": b64(png(1)), "filename": "../x.png"},
            [("INVALID", ["filename"])],
            id="traversal-filename",
        ),
        pytest.param(
            {"base64": b64(png(1)), "filename": "a b.png"},
            [("INVALID", ["filename"])],
            id="space-in-filename",
        ),
        pytest.param({}, [("REQUIRED", ["file"])], id="no-content"),
        pytest.param({"base64": b64(png(1)), "position": -1}, [("INVALID", ["position"])]),
        pytest.param({"base64": b64(png(1)), "option": "  "}, [("INVALID", ["option"])]),
        pytest.param({"base64": b64(png(100))}, [("DUPLICATE", ["base64"])], id="duplicate"),
        pytest.param(
            {"base64": b64(b"<svg xmlns='http://www.w3.org/2000/svg'/>")},
            [("UNSUPPORTED_FORMAT", ["base64"])],
            id="svg",
        ),
    ],
)
async def test_base64_input_errors_change_nothing(
    api: Api, product: str, input: dict[str, Any], expected: list[tuple[str, list[str]]]
) -> None:
    before = await api.snapshot(product)
    payload = await upload_json(api, {"productId": product, **input})
    assert payload["image"] is None
    assert errors(payload) == expected
    await api.assert_unchanged(before, product)


@pytest.mark.parametrize(
    ("ref", "code", "field"),
    [
        pytest.param({}, "REQUIRED", None, id="neither"),
        pytest.param({"productSku": "   "}, "REQUIRED", None, id="blank-sku"),
        pytest.param({"productId": "P", "productSku": "SKU-IMG"}, "INVALID", None, id="both"),
        pytest.param({"productId": "nope"}, "INVALID", ["productId"], id="malformed"),
        pytest.param(
            {"productId": to_global_id("Image", 1)}, "INVALID", ["productId"], id="image-id"
        ),
        pytest.param(
            {"productId": to_global_id("Product", 9999)}, "NOT_FOUND", ["productId"], id="unknown"
        ),
        pytest.param({"productSku": "NO-SUCH-SKU"}, "NOT_FOUND", ["productSku"], id="unknown-sku"),
    ],
)
async def test_product_reference_errors_change_nothing(
    api: Api, product: str, ref: dict[str, Any], code: str, field: list[str] | None
) -> None:
    if ref.get("productId") == "P":
        ref = {**ref, "productId": product}
    before = await api.snapshot(product)
    for send in ("multipart", "base64"):
        if send == "multipart":
            payload = await upload(api, ref, png(1))
        else:
            payload = await upload_json(api, {**ref, "base64": b64(png(1))})
        assert payload["image"] is None
        [(got_code, got_field)] = errors(payload)
        assert got_code == code
        if field is not None:
            assert got_field == field
        else:
            assert got_field in (["productId"], ["productSku"])
        await api.assert_unchanged(before, product)


async def test_both_file_and_base64_is_invalid(api: Api, product: str) -> None:
    before = await api.snapshot(product)
    payload = await upload(api, {"productId": product, "base64": b64(png(2))}, png(1))
    assert payload["image"] is None
    [(code, field)] = errors(payload)
    assert code == "INVALID" and field in (["file"], ["base64"])
    await api.assert_unchanged(before, product)


async def test_multipart_input_errors_change_nothing(api: Api, product: str) -> None:
    before = await api.snapshot(product)
    cases = [
        ({"position": -1}, [("INVALID", ["position"])]),
        ({"option": "  "}, [("INVALID", ["option"])]),
        ({"option": "\t"}, [("INVALID", ["option"])]),
    ]
    for fields, expected in cases:
        payload = await upload(api, {"productId": product, **fields}, png(1))
        assert payload["image"] is None
        assert errors(payload) == expected
        await api.assert_unchanged(before, product)


# 3. File errors --------------------------------------------------------------

SVG = (
    b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
    b'<rect width="10" height="10"/></svg>'
)
HTML = b"<!DOCTYPE html>\n<html><body><img src=x onerror=alert(1)></body></html>"


@pytest.mark.parametrize(
    ("content", "filename", "code"),
    [
        pytest.param(image_bytes("BMP", (20, 20)), "image.bmp", "UNSUPPORTED_FORMAT", id="bmp"),
        pytest.param(SVG, "image.png", "UNSUPPORTED_FORMAT", id="svg"),
        pytest.param(HTML, "image.jpg", "UNSUPPORTED_FORMAT", id="html"),
        pytest.param(b"just some text\n", "image.gif", "UNSUPPORTED_FORMAT", id="text"),
        pytest.param(png(1)[: len(png(1)) // 2], "image.png", "CORRUPT_FILE", id="truncated"),
        pytest.param(b"", "image.png", "CORRUPT_FILE", id="empty"),
    ],
)
async def test_unacceptable_files_change_nothing(
    api: Api, product: str, content: bytes, filename: str, code: str
) -> None:
    before = await api.snapshot(product)
    payload = await upload(api, {"productId": product}, content, filename, "image/png")
    assert payload["image"] is None
    assert errors(payload) == [(code, ["file"])]
    await api.assert_unchanged(before, product)


async def test_same_bytes_twice_on_one_product_is_duplicate(api: Api, product: str) -> None:
    before = await api.snapshot(product)
    for fields in ({}, {"option": "red"}, {"position": 0, "imageType": "SWATCH"}):
        payload = await upload(api, {"productId": product, **fields}, png(100))
        assert payload["image"] is None
        assert errors(payload) == [("DUPLICATE", ["file"])]
        await api.assert_unchanged(before, product)


async def test_duplicate_across_galleries(api: Api) -> None:
    pid = (await api.create_product("SKU-1"))["id"]
    await stored(api, png(1), pid, option="red")
    before = await api.snapshot(pid)
    payload = await upload(api, {"productId": pid}, png(1))
    assert errors(payload) == [("DUPLICATE", ["file"])]
    payload = await upload(api, {"productId": pid, "option": "blue"}, png(1))
    assert errors(payload) == [("DUPLICATE", ["file"])]
    await api.assert_unchanged(before, pid)


async def test_same_bytes_on_two_products_share_one_blob(api: Api) -> None:
    first = (await api.create_product("SKU-1"))["id"]
    second = (await api.create_product("SKU-2"))["id"]
    content = png(7)
    one = await stored(api, content, first)
    two = await stored(api, content, second, option="red")
    assert one["id"] != two["id"]
    assert one["checksum"] == two["checksum"] == hashlib.sha256(content).hexdigest()
    assert one["url"] == two["url"]
    assert len(api.blob_files()) == 1
    assert await api.count_rows("image") == 2
    await api.assert_consistent()


async def test_file_too_large(small_api: Api) -> None:
    api = small_api
    pid = (await api.create_product("SKU-1"))["id"]
    await stored(api, padded(png(1, (20, 20)), 2000), pid)  # exactly the limit
    before = await api.snapshot(pid)
    payload = await upload(api, {"productId": pid}, padded(png(2, (20, 20)), 2001))
    assert errors(payload) == [("FILE_TOO_LARGE", ["file"])]
    await api.assert_unchanged(before, pid)
    payload = await upload(api, {"productId": pid}, noise_png((60, 60)))
    assert errors(payload) == [("FILE_TOO_LARGE", ["file"])]
    await api.assert_unchanged(before, pid)
    payload = await upload_json(api, {"productId": pid, "base64": b64(noise_png((60, 60)))})
    assert errors(payload) == [("FILE_TOO_LARGE", ["base64"])]
    await api.assert_unchanged(before, pid)


async def test_image_too_small(small_api: Api) -> None:
    api = small_api
    pid = (await api.create_product("SKU-1"))["id"]
    await stored(api, png(1, (10, 10)), pid)  # exactly the minimum
    before = await api.snapshot(pid)
    for size in ((9, 40), (40, 9), (5, 5)):
        payload = await upload(api, {"productId": pid}, png(2, size))
        assert errors(payload) == [("IMAGE_TOO_SMALL", ["file"])], size
        await api.assert_unchanged(before, pid)


async def test_image_too_large(small_api: Api) -> None:
    api = small_api
    pid = (await api.create_product("SKU-1"))["id"]
    await stored(api, png(1, (100, 100)), pid)  # exactly the pixel limit
    before = await api.snapshot(pid)
    # The last is a bomb: a small file whose header declares 16 million pixels.
    bomb = image_bytes("PNG", (4000, 4000))[:1500]
    for content in (png(2, (101, 100)), png(3, (200, 60)), bomb):
        assert len(content) <= 2000
        payload = await upload(api, {"productId": pid}, content)
        assert errors(payload) == [("IMAGE_TOO_LARGE", ["file"])]
        await api.assert_unchanged(before, pid)


async def test_upload_images_reports_every_file_over_a_limit(small_api: Api) -> None:
    api = small_api
    pid = (await api.create_product("SKU-1"))["id"]
    await stored(api, png(1, (20, 20)), pid)
    before = await api.snapshot(pid)
    contents = [png(2, (20, 20)), noise_png((60, 60)), png(3, (5, 20)), png(4, (20, 20))]
    payload = await upload_many(api, {"productId": pid}, contents)
    assert payload["images"] is None
    assert errors(payload) == [
        ("FILE_TOO_LARGE", ["files", "1"]),
        ("IMAGE_TOO_SMALL", ["files", "2"]),
    ]
    await api.assert_unchanged(before, pid)


# 4. uploadImages -------------------------------------------------------------


async def test_upload_images_appends_in_order(api: Api, product: str) -> None:
    [existing] = await api.gallery(product)
    contents = [png(1), image_bytes("JPEG", (30, 30), seed=2), image_bytes("GIF", seed=3)]
    payload = await upload_many(api, {"productId": product, "imageType": "SWATCH"}, contents)
    assert payload["userErrors"] == []
    images = payload["images"]
    assert [i["position"] for i in images] == [1, 2, 3]
    assert [i["checksum"] for i in images] == [hashlib.sha256(c).hexdigest() for c in contents]
    assert [i["mimeType"] for i in images] == ["image/png", "image/jpeg", "image/gif"]
    assert {i["imageType"] for i in images} == {"SWATCH"}
    assert order(await api.gallery(product)) == {None: [existing["id"], *(i["id"] for i in images)]}
    payload = await upload_many(api, {"productSku": "SKU-IMG", "option": "red"}, [png(4), png(5)])
    assert [(i["option"], i["position"]) for i in payload["images"]] == [("red", 0), ("red", 1)]
    await api.assert_consistent()


@pytest.mark.parametrize(
    ("contents", "expected"),
    [
        pytest.param(
            [png(1), image_bytes("BMP", (20, 20)), png(2)],
            [("UNSUPPORTED_FORMAT", ["files", "1"])],
            id="bmp-in-the-middle",
        ),
        pytest.param(
            [png(1), png(2), png(3)[:40]], [("CORRUPT_FILE", ["files", "2"])], id="truncated"
        ),
        pytest.param(
            [SVG, png(1), HTML],
            [("UNSUPPORTED_FORMAT", ["files", "0"]), ("UNSUPPORTED_FORMAT", ["files", "2"])],
            id="two-bad",
        ),
        pytest.param([png(1), png(2), png(1)], [("DUPLICATE", ["files", "2"])], id="twice"),
        pytest.param([png(1), png(100)], [("DUPLICATE", ["files", "1"])], id="already-stored"),
    ],
)
async def test_upload_images_all_or_nothing(
    api: Api, product: str, contents: list[bytes], expected: list[tuple[str, list[str]]]
) -> None:
    before = await api.snapshot(product)
    payload = await upload_many(api, {"productId": product}, contents)
    assert payload["images"] is None
    assert errors(payload) == expected
    await api.assert_unchanged(before, product)


async def test_upload_images_input_errors(api: Api, product: str) -> None:
    before = await api.snapshot(product)
    data = await api.data(UPLOAD_IMAGES, {"input": {"productId": product, "files": []}})
    assert data["uploadImages"]["images"] is None
    assert errors(data["uploadImages"]) == [("REQUIRED", ["files"])]
    await api.assert_unchanged(before, product)
    payload = await upload_many(api, {"productSku": "NOPE"}, [png(1)])
    assert errors(payload) == [("NOT_FOUND", ["productSku"])]
    payload = await upload_many(api, {"productId": product, "option": " "}, [png(1)])
    assert errors(payload) == [("INVALID", ["option"])]
    payload = await upload_many(api, {}, [png(1)])
    assert [code for code, _ in errors(payload)] == ["REQUIRED"]
    await api.assert_unchanged(before, product)


# 9. Malformed and over-limit HTTP requests -----------------------------------


async def test_multipart_map_naming_a_missing_file_is_400(api: Api, product: str) -> None:
    before = await api.snapshot(product)
    operations = json.dumps(
        {"query": UPLOAD_IMAGE, "variables": {"input": {"productId": product, "file": None}}}
    )
    response = await api.client.post(
        "/graphql",
        data={"operations": operations, "map": json.dumps({"0": ["variables.input.file"]})},
        files={"1": ("x.png", png(1), "image/png")},
        headers=api.headers(),
    )
    assert response.status_code == 400, response.text
    await api.assert_unchanged(before, product)


@pytest.mark.parametrize(
    "form",
    [
        pytest.param({"operations": "{not json", "map": "{}"}, id="operations-not-json"),
        pytest.param({"operations": "{}", "map": "[1, 2"}, id="map-not-json"),
        pytest.param({"map": json.dumps({"0": ["variables.input.file"]})}, id="no-operations"),
    ],
)
async def test_malformed_multipart_is_a_client_error(
    api: Api, product: str, form: dict[str, str]
) -> None:
    before = await api.snapshot(product)
    response = await api.client.post(
        "/graphql",
        data=form,
        files={"0": ("x.png", png(1), "image/png")},
        headers=api.headers(),
    )
    assert 400 <= response.status_code < 500, response.text
    await api.assert_unchanged(before, product)


async def test_json_body_over_16_mib_is_413(api: Api, product: str) -> None:
    before = await api.snapshot(product)
    body = json.dumps({"query": "{ __typename }", "variables": {"pad": "x" * (16 * MIB)}})
    response = await api.client.post(
        "/graphql",
        content=body.encode(),
        headers={**api.headers(), "Content-Type": "application/json"},
    )
    assert response.status_code == 413, response.text
    await api.assert_unchanged(before, product)


async def test_chunked_json_body_over_16_mib_is_413(api: Api, product: str) -> None:
    before = await api.snapshot(product)
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"query": "{ __typename }", "variables": {"pad": "'
        for _ in range(17):
            sent += MIB
            yield b"x" * MIB
        yield b'"}}'

    request = api.client.build_request(
        "POST",
        "/graphql",
        content=chunks(),
        headers={**api.headers(), "Content-Type": "application/json"},
    )
    assert "content-length" not in request.headers
    response = await api.client.send(request)
    assert response.status_code == 413, response.text
    await api.assert_unchanged(before, product)


async def test_json_body_just_under_the_limit_is_served(api: Api) -> None:
    pad = "x" * (16 * MIB - 200)
    query = "query($pad: String!) { __type(name: $pad) { name } }"
    body = json.dumps({"query": query, "variables": {"pad": pad}})
    assert len(body) <= 16 * MIB
    response = await api.client.post(
        "/graphql", content=body.encode(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"__type": None}}


async def test_more_than_20_files_in_one_multipart_is_413(api: Api, product: str) -> None:
    before = await api.snapshot(product)
    count = 21
    operations = json.dumps(
        {
            "query": UPLOAD_IMAGES,
            "variables": {"input": {"productId": product, "files": [None] * count}},
        }
    )
    file_map = {str(i): [f"variables.input.files.{i}"] for i in range(count)}
    response = await api.client.post(
        "/graphql",
        data={"operations": operations, "map": json.dumps(file_map)},
        files=[(str(i), (f"{i}.png", png(i + 1, (12, 12)), "image/png")) for i in range(count)],
        headers=api.headers(),
    )
    assert response.status_code == 413, response.text
    await api.assert_unchanged(before, product)


async def test_20_files_in_one_multipart_are_accepted(api: Api, product: str) -> None:
    payload = await upload_many(
        api, {"productId": product}, [png(i + 1, (12, 12)) for i in range(20)]
    )
    assert payload["userErrors"] == []
    assert [i["position"] for i in payload["images"]] == list(range(1, 21))
    await api.assert_consistent()


async def test_text_part_over_1_mib_is_413(api: Api, product: str) -> None:
    before = await api.snapshot(product)
    operations = json.dumps(
        {
            "query": UPLOAD_IMAGE + "\n#" + "x" * MIB,
            "variables": {"input": {"productId": product, "file": None}},
        }
    )
    response = await api.client.post(
        "/graphql",
        data={"operations": operations, "map": json.dumps({"0": ["variables.input.file"]})},
        files={"0": ("x.png", png(1), "image/png")},
        headers=api.headers(),
    )
    assert response.status_code == 413, response.text
    await api.assert_unchanged(before, product)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        pytest.param("application/json", b'{"query": ', id="truncated-json"),
        pytest.param("application/json", b"\xff\xfe not json", id="not-json"),
        pytest.param("application/json", b"[" * 100_000, id="deeply-nested-json"),
        pytest.param("multipart/form-data", b"--x\r\n\r\n", id="no-boundary"),
        pytest.param(
            "multipart/form-data; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="operations"\r\n\r\n{}\r\n--x--\r\n',
            id="no-map",
        ),
    ],
)
async def test_malformed_bodies_are_400(
    api: Api, product: str, content_type: str, body: bytes
) -> None:
    before = await api.snapshot(product)
    response = await api.client.post(
        "/graphql", content=body, headers={**api.headers(), "Content-Type": content_type}
    )
    assert response.status_code == 400, response.text
    await api.assert_unchanged(before, product)
