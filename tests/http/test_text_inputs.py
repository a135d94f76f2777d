"""Free-text inputs: every one has a maximum length checked before any SQL, and control
characters (Unicode Cc, NUL first: PostgreSQL refuses it) never reach a stored row. Query
arguments are GraphQL errors with ``extensions.code`` BAD_USER_INPUT; mutations answer INVALID
at the field. SKUs, names and options are trimmed wherever they are taken; one SKU twice in a
``syncImagesBulk`` runs only the first."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from gateway.settings import Settings
from schema.errors import BAD_USER_INPUT
from storage import validation
from support.api import ERRORS, IMAGE_FIELDS, Api, api_with
from support.image_server import ImageServer, running_server
from support.media_factory import image_bytes

CONTROLS = ["\x00", "\x07", "\t", "\n", "\x1b", "\x7f", "\x85", "\x9f"]
"""Characters of Unicode category Cc: C0 (NUL, bell, tab, line feed, escape), DEL and C1."""

UPLOAD_IMAGE = (
    "mutation($input: UploadImageInput!) { uploadImage(input: $input) { "
    f"image {{ {IMAGE_FIELDS} }} {ERRORS} }} }}"
)
UPDATE_IMAGE = (
    "mutation($id: ID!, $input: UpdateImageInput!) { updateImage(id: $id, input: $input) { "
    f"image {{ id option position }} {ERRORS} }} }}"
)
PRODUCT_CREATE = (
    f"mutation($input: ProductCreateInput!) {{ productCreate(input: $input) {{ "
    f"product {{ id sku name }} {ERRORS} }} }}"
)
PRODUCT_UPDATE = (
    "mutation($id: ID!, $input: ProductUpdateInput!) { productUpdate(id: $id, input: $input) "
    f"{{ product {{ id sku name }} {ERRORS} }} }}"
)
SYNC = (
    "mutation($input: SyncImagesInput!) { syncImages(input: $input) { "
    f"productSku images {{ url }} {ERRORS} }} }}"
)
SYNC_BULK = (
    "mutation($inputs: [SyncImagesInput!]!) { syncImagesBulk(inputs: $inputs) { "
    f"productSku images {{ url image {{ id }} }} {ERRORS} }} }}"
)

pytestmark = pytest.mark.anyio


def png(seed: int) -> bytes:
    return image_bytes("PNG", (40, 30), seed=seed)


def b64(content: bytes) -> str:
    return base64.b64encode(content).decode()


def only_error(payload: dict[str, Any]) -> dict[str, Any]:
    errors: list[dict[str, Any]] = payload["userErrors"]
    assert len(errors) == 1, errors
    return errors[0]


async def bad_user_input(api: Api, query: str, variables: dict[str, Any]) -> str:
    """The one error of a query refused for its arguments; returns its message."""
    body = await api.post(query, variables)
    assert "errors" in body, body
    (error,) = body["errors"]
    assert error["extensions"]["code"] == BAD_USER_INPUT, error
    message: str = error["message"]
    return message


# Query arguments -----------------------------------------------------------

SEARCH = "query($s: String) { products(filter: {search: $s}) { totalCount } }"


@pytest.mark.parametrize("search", ["x" * 50_000, "%" * 25_000, "_" * 1001, "%" * 1001])
async def test_a_search_over_its_limit_is_bad_user_input(api: Api, search: str) -> None:
    message = await bad_user_input(api, SEARCH, {"s": search})
    assert f"longer than {validation.SEARCH_LENGTH} characters" in message
    assert "filter.search" in message


async def test_a_search_at_its_limit_runs(api: Api) -> None:
    await api.create_product("PCT-1", "100% wool")
    for search in ("%" * validation.SEARCH_LENGTH, "\\" * validation.SEARCH_LENGTH):
        data = await api.data(SEARCH, {"s": search})
        assert data["products"]["totalCount"] == 0
    assert (await api.data(SEARCH, {"s": "0% w"}))["products"]["totalCount"] == 1


QUERY_ARGUMENTS = [
    ("query($v: String!) { product(sku: $v) { id } }", "sku", validation.SKU_LENGTH, False),
    (
        'query($v: String!) { products(filter: {skus: ["A", $v]}) { totalCount } }',
        "filter.skus[1]",
        validation.SKU_LENGTH,
        False,
    ),
    (
        "query($v: String!) { images(filter: {productSkus: [$v]}) { totalCount } }",
        "filter.productSkus[0]",
        validation.SKU_LENGTH,
        False,
    ),
    (
        "query($v: String!) { images(filter: {option: $v}) { totalCount } }",
        "filter.option",
        validation.OPTION_LENGTH,
        False,
    ),
    (
        "query($v: String!) { downloadableImages(productSku: $v) { totalCount } }",
        "productSku",
        validation.SKU_LENGTH,
        False,
    ),
    (
        "query($v: String!) { products { edges { node { images(option: $v) { id } } } } }",
        "option",
        validation.OPTION_LENGTH,
        True,
    ),
    (
        "query($v: String) { products(filter: {search: $v}) { totalCount } }",
        "filter.search",
        validation.SEARCH_LENGTH,
        False,
    ),
]


@pytest.mark.parametrize(("query", "name", "limit", "nested"), QUERY_ARGUMENTS)
async def test_query_text_arguments_have_a_length_limit(
    api: Api, query: str, name: str, limit: int, nested: bool
) -> None:
    if nested:
        await api.create_product("NESTED-1")
    assert "errors" not in await api.post(query, {"v": "a" * limit})
    message = await bad_user_input(api, query, {"v": "a" * (limit + 1)})
    assert message == f"{name} is longer than {limit} characters."


@pytest.mark.parametrize(("query", "name", "limit", "nested"), QUERY_ARGUMENTS)
@pytest.mark.parametrize("control", ["\x00", "\n", "\x85"])
async def test_query_text_arguments_refuse_control_characters(
    api: Api, query: str, name: str, limit: int, nested: bool, control: str
) -> None:
    if nested:
        await api.create_product("NESTED-1")
    message = await bad_user_input(api, query, {"v": f"A{control}B"})
    assert message.startswith(f"{name} must not hold control characters")


async def test_sku_arguments_are_trimmed_like_stored_skus(api: Api) -> None:
    await api.create_product("TRIM-1")
    data = await api.data(
        'query { product(sku: " TRIM-1 ") { sku } '
        'products(filter: {skus: [" TRIM-1\u3000"]}) { totalCount } }'
    )
    assert data == {"product": {"sku": "TRIM-1"}, "products": {"totalCount": 1}}


# Mutations -----------------------------------------------------------------


@pytest.mark.parametrize("control", CONTROLS)
async def test_product_text_with_control_characters_is_invalid(api: Api, control: str) -> None:
    for field in ("sku", "name"):
        values = {"sku": "CTL-1", "name": "Chair", field: f"CTL{control}2"}
        data = await api.data(PRODUCT_CREATE, {"input": values})
        error = only_error(data["productCreate"])
        assert (error["field"], error["code"]) == ([field], "INVALID")
        assert "control characters" in error["message"]
    assert await api.count_rows("product") == 0

    product = await api.create_product("CTL-3", "Table")
    for field in ("sku", "name"):
        data = await api.data(
            PRODUCT_UPDATE, {"id": product["id"], "input": {field: f"x{control}y"}}
        )
        error = only_error(data["productUpdate"])
        assert (error["field"], error["code"]) == ([field], "INVALID")
    read = await api.data('query { product(sku: "CTL-3") { sku name } }')
    assert read["product"] == {"sku": "CTL-3", "name": "Table"}


async def test_product_text_over_its_limit_is_invalid(api: Api) -> None:
    cases = [
        ("sku", "S" * (validation.SKU_LENGTH + 1), validation.SKU_LENGTH),
        ("name", "N" * (validation.NAME_LENGTH + 1), validation.NAME_LENGTH),
    ]
    for field, value, limit in cases:
        values = {"sku": "LEN-1", "name": "Chair", field: value}
        error = only_error((await api.data(PRODUCT_CREATE, {"input": values}))["productCreate"])
        assert (error["field"], error["code"]) == ([field], "INVALID")
        assert error["message"] == f"{field} is longer than {limit} characters."
    longest = {"sku": "S" * validation.SKU_LENGTH, "name": "N" * validation.NAME_LENGTH}
    assert (await api.data(PRODUCT_CREATE, {"input": longest}))["productCreate"]["userErrors"] == []


UPLOAD_TEXT_CASES = [
    ({"alt": "front\x00"}, ["alt"]),
    ({"alt": "a" * (validation.ALT_LENGTH + 1)}, ["alt"]),
    ({"option": "red\x00"}, ["option"]),
    ({"option": "r" * (validation.OPTION_LENGTH + 1)}, ["option"]),
    ({"productSku": "SKU\x00"}, ["productSku"]),
    ({"productSku": "S" * (validation.SKU_LENGTH + 1)}, ["productSku"]),
    ({"filename": "a.png\x00"}, ["filename"]),
    ({"base64": None, "url": "http://example.com/a\x00.png"}, ["url"]),
    ({"base64": None, "url": "http://example.com/" + "a" * validation.URL_LENGTH}, ["url"]),
]


@pytest.mark.parametrize(("fields", "path"), UPLOAD_TEXT_CASES)
async def test_upload_image_text_inputs_are_checked(
    api: Api, fields: dict[str, Any], path: list[str]
) -> None:
    product = await api.create_product("UP-1")
    before = await api.snapshot(product["id"])
    values: dict[str, Any] = {"productSku": "UP-1", "base64": b64(png(1)), "filename": "a.png"}
    values.update(fields)
    payload = (await api.data(UPLOAD_IMAGE, {"input": values}))["uploadImage"]
    assert payload["image"] is None
    error = only_error(payload)
    assert (error["field"], error["code"]) == (path, "INVALID"), error
    await api.assert_unchanged(before, product["id"])


async def test_a_long_base64_filename_is_refused_for_its_length(api: Api) -> None:
    await api.create_product("FN-1")
    values = {"productSku": "FN-1", "base64": b64(png(1)), "filename": "a" * 5000 + ".png"}
    error = only_error((await api.data(UPLOAD_IMAGE, {"input": values}))["uploadImage"])
    assert (error["field"], error["code"]) == (["filename"], "INVALID")
    assert error["message"] == f"filename is longer than {validation.FILENAME_LENGTH} characters."


@pytest.mark.parametrize(
    "fields",
    [{"alt": "x\x00"}, {"option": "blue\n"}, {"option": "o" * (validation.OPTION_LENGTH + 1)}],
)
async def test_update_image_text_inputs_are_checked(api: Api, fields: dict[str, Any]) -> None:
    product = await api.create_product("UPD-1")
    image = (await api.upload_image(product["id"], png(2)))["image"]
    before = await api.snapshot(product["id"])
    payload = (await api.data(UPDATE_IMAGE, {"id": image["id"], "input": fields}))["updateImage"]
    error = only_error(payload)
    assert (error["field"], error["code"]) == (list(fields), "INVALID")
    await api.assert_unchanged(before, product["id"])


@pytest.mark.parametrize(
    ("sku", "url", "path"),
    [
        ("SY\x00NC", "http://example.com/a.png", ["productSku"]),
        ("SYNC-1", "http://example.com/a\x00.png", ["images", "0", "url"]),
        ("SYNC-1", "http://example.com/a\r\n.png", ["images", "0", "url"]),
    ],
)
async def test_sync_text_inputs_refuse_control_characters(
    api: Api, sku: str, url: str, path: list[str]
) -> None:
    await api.create_product("SYNC-1")
    images = [{"url": url}]
    payload = await api.data(SYNC, {"input": {"productSku": sku, "images": images}})
    error = only_error(payload["syncImages"])
    assert (error["field"], error["code"]) == (path, "INVALID")
    assert await api.count_rows("downloadable_image") == 0


# Options are trimmed -------------------------------------------------------


async def test_options_are_trimmed_wherever_they_are_taken(api: Api) -> None:
    product = await api.create_product("OPT-1")
    spaced = (await api.upload_image(product["id"], png(3), option=" red "))["image"]
    plain = (await api.upload_image(product["id"], png(4), option="red"))["image"]
    assert (spaced["option"], plain["option"]) == ("red", "red")
    assert (spaced["position"], plain["position"]) == (0, 1)  # one gallery

    many = await api.upload(
        "mutation($input: UploadImagesInput!) { uploadImages(input: $input) { "
        f"images {{ option position }} {ERRORS} }} }}",
        {"input": {"productId": product["id"], "files": [None], "option": "red\u00a0"}},
        {"variables.input.files.0": ("c.png", png(5), "image/png")},
    )
    assert many.json()["data"]["uploadImages"]["images"] == [{"option": "red", "position": 2}]

    other = (await api.upload_image(product["id"], png(6), option="blue"))["image"]
    moved = await api.data(UPDATE_IMAGE, {"id": other["id"], "input": {"option": "  red"}})
    assert moved["updateImage"]["image"] == {"id": other["id"], "option": "red", "position": 3}

    found = await api.data(
        'query($id: ID!) { images(filter: {option: " red "}) { totalCount } '
        'node(id: $id) { ... on Product { images(option: "red ") { id } } } }',
        {"id": product["id"]},
    )
    assert found["images"]["totalCount"] == 4
    assert len(found["node"]["images"]) == 4


# syncImagesBulk: one SKU twice ---------------------------------------------


@pytest.fixture
def server() -> Iterator[ImageServer]:
    yield from running_server()


@pytest.fixture
async def erp(settings: Settings) -> AsyncIterator[Api]:
    """A gateway whose fetcher may reach the test image server on 127.0.0.1."""
    async with api_with(settings, "erp", fetch_allow_hosts="127.0.0.1") as api:
        yield api


async def test_a_sku_twice_in_one_bulk_runs_only_the_first(erp: Api, server: ImageServer) -> None:
    for sku in ("REP-A", "REP-B"):
        await erp.create_product(sku)
    first = server.serve("/a.png", png(10))
    other = server.serve("/b.png", png(11))
    payloads = (
        await erp.data(
            SYNC_BULK,
            {
                "inputs": [
                    {"productSku": "REP-A", "images": [{"url": first}]},
                    {"productSku": " REP-A ", "images": []},
                    {"productSku": "REP-B", "images": [{"url": other}]},
                    {"productSku": "REP-A", "images": [{"url": other}]},
                ]
            },
        )
    )["syncImagesBulk"]
    assert payloads[0]["userErrors"] == []
    assert [d["url"] for d in payloads[0]["images"]] == [first]
    assert payloads[2]["userErrors"] == []
    for index in (1, 3):
        assert payloads[index]["images"] is None
        error = only_error(payloads[index])
        assert error["field"] == ["inputs", str(index), "productSku"]
        assert error["code"] == "REPEATED_ID"
        assert "input 0 of this request" in error["message"]
    state = await erp.data(
        'query { a: product(sku: "REP-A") { downloadableImages { url } } '
        'b: product(sku: "REP-B") { downloadableImages { url } } }'
    )
    assert state["a"]["downloadableImages"] == [{"url": first}]
    assert state["b"]["downloadableImages"] == [{"url": other}]
    assert server.hits["/b.png"] == 1
    await erp.assert_consistent()


async def test_bulk_errors_name_their_input(erp: Api, server: ImageServer) -> None:
    await erp.create_product("PATH-1")
    payloads = (
        await erp.data(
            SYNC_BULK,
            {
                "inputs": [
                    {"productSku": "PATH-1", "images": [{"url": server.url("/gone.png")}]},
                    {"productSku": "PATH\x00", "images": []},
                ]
            },
        )
    )["syncImagesBulk"]
    first, second = (only_error(p) for p in payloads)
    assert (first["field"], first["code"]) == (
        ["inputs", "0", "images", "0", "url"],
        "DOWNLOAD_FAILED",
    )
    assert (second["field"], second["code"]) == (["inputs", "1", "productSku"], "INVALID")
