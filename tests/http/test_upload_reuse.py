"""One multipart file used more than once in a request: every use reads the whole file
(aliases of one mutation, one part mapped to two variables, a batch), two uses in one
``uploadImages`` are DUPLICATE at the second; and the multipart edges around it: a map path
that leads nowhere in the operations, a long client filename, an empty ``files`` list."""

from __future__ import annotations

import hashlib
import io
import json
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from PIL import Image as PILImage
from python_multipart.multipart import DEFAULT_MAX_HEADER_SIZE

from gateway.settings import Settings
from storage.errors import format_size
from support.api import ERRORS, IMAGE_FIELDS, Api, api_with
from support.media_factory import image_bytes

pytestmark = pytest.mark.anyio

UPLOAD_TWICE = (
    "mutation($f: Upload!, $g: Upload!) { "
    f'a: uploadImage(input: {{productSku: "R-1", file: $f}}) {{ image {{ checksum }} {ERRORS} }} '
    f'b: uploadImage(input: {{productSku: "R-2", file: $g}}) {{ image {{ checksum }} {ERRORS} }} }}'
)
UPLOAD_IMAGES = (
    "mutation($input: UploadImagesInput!) { uploadImages(input: $input) { "
    f"images {{ {IMAGE_FIELDS} }} {ERRORS} }} }}"
)


def png(seed: int) -> bytes:
    return image_bytes("PNG", (40, 30), seed=seed)


async def multipart(
    api: Api,
    operations: Any,
    paths: dict[str, list[str]],
    files: dict[str, bytes],
    filename: str = "image.png",
) -> httpx.Response:
    """A GraphQL multipart request with the map given as is (a part may have several paths)."""
    return await api.client.post(
        "/graphql",
        data={"operations": json.dumps(operations), "map": json.dumps(paths)},
        files={name: (filename, content, "image/png") for name, content in files.items()},
        headers=api.headers(),
    )


def data_of(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


async def products(api: Api, *skus: str) -> list[str]:
    return [(await api.create_product(sku))["id"] for sku in skus]


def checksum(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


async def test_one_part_mapped_to_two_variables_is_read_by_both(api: Api) -> None:
    await products(api, "R-1", "R-2")
    content = png(1)
    response = await multipart(
        api,
        {"query": UPLOAD_TWICE, "variables": {"f": None, "g": None}},
        {"0": ["variables.f", "variables.g"]},
        {"0": content},
    )
    data = data_of(response)
    for alias in ("a", "b"):
        assert data[alias]["userErrors"] == []
        assert data[alias]["image"]["checksum"] == checksum(content)
    assert await api.count_rows("image") == 2
    await api.assert_consistent()


async def test_one_variable_in_two_aliased_mutations_is_read_by_both(api: Api) -> None:
    await products(api, "R-1", "R-2")
    content = png(2)
    query = UPLOAD_TWICE.replace("$g: Upload!", "").replace("file: $g", "file: $f")
    response = await multipart(
        api, {"query": query, "variables": {"f": None}}, {"0": ["variables.f"]}, {"0": content}
    )
    data = data_of(response)
    assert [data[a]["image"]["checksum"] for a in ("a", "b")] == [checksum(content)] * 2
    await api.assert_consistent()


async def test_a_file_read_by_a_refused_mutation_is_whole_for_the_next(api: Api) -> None:
    """The first use fails after reading the file (its product has these bytes already)."""
    (first,) = await products(api, "R-1")
    await products(api, "R-2")
    content = png(3)
    assert (await api.upload_image(first, content))["userErrors"] == []
    response = await multipart(
        api,
        {"query": UPLOAD_TWICE, "variables": {"f": None, "g": None}},
        {"0": ["variables.f", "variables.g"]},
        {"0": content},
    )
    body = response.json()
    assert body["data"]["a"]["userErrors"][0]["code"] == "DUPLICATE"
    assert body["data"]["b"]["image"]["checksum"] == checksum(content)
    await api.assert_consistent()


@pytest.fixture
async def batch_api(settings: Settings) -> AsyncIterator[Api]:
    """A gateway that takes batches of two operations (run concurrently by Strawberry)."""
    async with api_with(settings, "batch", max_batch=2) as api:
        yield api


def noise_png(side: int) -> bytes:
    """A PNG that does not compress: over 1 MiB, so the part is spooled to disk and read in
    many chunks (each in a worker thread, where two readers could interleave)."""
    pixels = random.Random(side).randbytes(side * side * 3)
    out = io.BytesIO()
    PILImage.frombytes("RGB", (side, side), pixels).save(out, format="PNG")
    return out.getvalue()


async def test_one_part_in_two_operations_of_a_batch_is_read_whole_by_each(
    batch_api: Api,
) -> None:
    await products(batch_api, "R-1", "R-2")
    content = noise_png(700)
    assert len(content) > 1024 * 1024
    operations = [
        {
            "query": (
                f'mutation($f: Upload!) {{ uploadImage(input: {{productSku: "{sku}", '
                f"file: $f}}) {{ image {{ checksum }} {ERRORS} }} }}"
            ),
            "variables": {"f": None},
        }
        for sku in ("R-1", "R-2")
    ]
    response = await multipart(
        batch_api, operations, {"0": ["0.variables.f", "1.variables.f"]}, {"0": content}
    )
    assert response.status_code == 200, response.text
    results = [item["data"]["uploadImage"] for item in response.json()]
    assert [r["userErrors"] for r in results] == [[], []]
    assert [r["image"]["checksum"] for r in results] == [checksum(content)] * 2
    await batch_api.assert_consistent()


async def test_one_part_twice_in_upload_images_is_duplicate_at_the_second(api: Api) -> None:
    (product,) = await products(api, "R-1")
    before = await api.snapshot(product)
    response = await multipart(
        api,
        {
            "query": UPLOAD_IMAGES,
            "variables": {"input": {"productId": product, "files": [None] * 3}},
        },
        {
            "0": ["variables.input.files.0", "variables.input.files.2"],
            "1": ["variables.input.files.1"],
        },
        {"0": png(4), "1": png(5)},
    )
    payload = data_of(response)["uploadImages"]
    assert payload["images"] is None
    (error,) = payload["userErrors"]
    assert (error["field"], error["code"]) == (["files", "2"], "DUPLICATE")
    assert error["message"] == "These bytes are also files[0] of this request."
    await api.assert_unchanged(before, product)


async def test_two_parts_with_the_same_bytes_are_duplicate_in_this_request(api: Api) -> None:
    (product,) = await products(api, "R-1")
    response = await api.upload(
        UPLOAD_IMAGES,
        {"input": {"productId": product, "files": [None, None]}},
        {
            "variables.input.files.0": ("a.png", png(6), "image/png"),
            "variables.input.files.1": ("b.png", png(6), "image/png"),
        },
    )
    (error,) = data_of(response)["uploadImages"]["userErrors"]
    assert (error["field"], error["code"]) == (["files", "1"], "DUPLICATE")
    assert "this request" in error["message"]
    assert await api.count_rows("image") == 0


async def test_an_upload_already_stored_is_duplicate_of_the_product(api: Api) -> None:
    (product,) = await products(api, "R-1")
    assert (await api.upload_image(product, png(7)))["userErrors"] == []
    payload = await api.upload_image(product, png(7))
    assert payload["userErrors"][0]["message"] == (
        "The product already has an image with these bytes."
    )


async def test_upload_images_with_no_file_says_file(api: Api) -> None:
    (product,) = await products(api, "R-1")
    data = await api.data(UPLOAD_IMAGES, {"input": {"productId": product, "files": []}})
    (error,) = data["uploadImages"]["userErrors"]
    assert (error["field"], error["code"]) == (["files"], "REQUIRED")
    assert error["message"] == "files must hold at least one file."


async def test_a_map_path_missing_from_the_operations_is_a_400(api: Api) -> None:
    (product,) = await products(api, "R-1")
    query = (
        'mutation($f: Upload) { uploadImage(input: {productSku: "R-1", file: $f}) '
        f"{{ image {{ id }} {ERRORS} }} }}"
    )
    for path in ("variables.nope", "variables.f.deeper", "variables.list.3", "nope.f"):
        response = await multipart(
            api,
            {"query": query, "variables": {"f": None, "list": [None]}},
            {"0": ["variables.f", path]},
            {"0": png(8)},
        )
        assert response.status_code == 400, (path, response.text)
        (error,) = response.json()["errors"]
        assert error["message"] == (
            f"The multipart map names {path!r}, which is not a value in the operations."
        )
    assert await api.count_rows("image") == 0
    assert product


async def test_a_map_path_into_a_batch_is_checked_too(api: Api) -> None:
    await products(api, "R-1")
    query = (
        'mutation($f: Upload) { uploadImage(input: {productSku: "R-1", file: $f}) '
        f"{{ image {{ id }} {ERRORS} }} }}"
    )
    response = await multipart(
        api,
        [{"query": query, "variables": {"f": None}}],
        {"0": ["0.variables.f", "1.variables.f"]},
        {"0": png(9)},
    )
    assert response.status_code == 400, response.text
    assert "'1.variables.f'" in response.json()["errors"][0]["message"]


async def test_a_long_client_filename_is_refused_naming_the_limit(api: Api) -> None:
    (product,) = await products(api, "R-1")
    response = await multipart(
        api,
        {
            "query": (
                'mutation($f: Upload) { uploadImage(input: {productSku: "R-1", file: $f}) '
                f"{{ image {{ id }} {ERRORS} }} }}"
            ),
            "variables": {"f": None},
        },
        {"0": ["variables.f"]},
        {"0": png(10)},
        filename="a" * 10_000 + ".png",
    )
    assert response.status_code == 413, response.text
    message = response.json()["errors"][0]["message"]
    assert format_size(DEFAULT_MAX_HEADER_SIZE) in message
    assert "filename" in message
    assert await api.count_rows("image") == 0
    assert product
