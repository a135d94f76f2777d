"""Every list the schema takes as input has a bound (schema/list_bounds.py), checked before
anything runs on literals and variables alike, and a field whose output follows a list argument
is priced with that list's real length: a huge variable list can neither amplify the response
nor reach a resolver."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from graphql import (
    GraphQLInputObjectType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLType,
    parse,
)

from gateway.limits import TOO_COSTLY, document_costs
from schema import build_schema
from schema.errors import BAD_USER_INPUT
from schema.list_bounds import ARGUMENTS, INPUT_FIELDS
from support.api import ERRORS, Api
from support.media_factory import image_bytes

SCHEMA = build_schema()._schema
MANY_SKUS = ",".join(['"A"'] * 101)
SIZES = ["THUMBNAIL", "SMALL", "MEDIUM", "LARGE", "ZOOM"]
AMPLIFIER = (
    "query($s:[RenditionSize!]){images(first:1000){edges{node{"
    "renditions(sizes:$s,format:WEBP){url url2x width height}}}}}"
)
BULK = (
    "mutation($i: [SyncImagesInput!]!) { syncImagesBulk(inputs: $i) { productSku "
    "images { id url position imageType status error createdAt updatedAt } "
    f"{ERRORS} }} }}"
)


def _is_list(type_: GraphQLType) -> bool:
    return isinstance(type_.of_type if isinstance(type_, GraphQLNonNull) else type_, GraphQLList)


def test_every_list_argument_and_input_field_of_the_schema_has_a_bound() -> None:
    arguments = {
        (type_.name, field_name, arg_name)
        for type_ in SCHEMA.type_map.values()
        if isinstance(type_, GraphQLObjectType) and not type_.name.startswith("__")
        for field_name, field in type_.fields.items()
        for arg_name, argument in field.args.items()
        if _is_list(argument.type)
    }
    input_fields = {
        (type_.name, field_name)
        for type_ in SCHEMA.type_map.values()
        if isinstance(type_, GraphQLInputObjectType)
        for field_name, field in type_.fields.items()
        if _is_list(field.type)
    }
    assert arguments == set(ARGUMENTS)
    assert input_fields == set(INPUT_FIELDS)


async def _image(api: Api) -> dict[str, Any]:
    product = await api.create_product("BOUND-1")
    payload = await api.upload_image(product["id"], image_bytes("PNG", (64, 48), seed=1))
    image: dict[str, Any] = payload["image"]
    return image


async def _post(client: httpx.AsyncClient, api: Api, body: object) -> httpx.Response:
    return await client.post(
        "/graphql",
        content=json.dumps(body),
        headers={**api.headers(), "Content-Type": "application/json"},
    )


def _refused(response: httpx.Response, code: str = BAD_USER_INPUT) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body.get("data") is None, body
    (error,) = body["errors"]
    assert error["extensions"]["code"] == code, error
    assert "path" not in error, error  # refused before any field ran
    return dict(error)


async def test_the_amplification_request_is_refused_before_it_runs(
    client: httpx.AsyncClient, api: Api
) -> None:
    await _image(api)
    body = {"query": AMPLIFIER, "variables": {"s": ["ZOOM"] * 100_000}}
    response = await _post(client, api, body)
    error = _refused(response)
    assert error["message"] == "sizes holds 100000 values; at most 5."
    assert len(response.content) < 1_000


@pytest.mark.parametrize(
    ("query", "variables", "message"),
    [
        (
            "{ images { edges { node { renditions(sizes: [ZOOM, SMALL, ZOOM]) { url } } } } }",
            {},
            "sizes holds ZOOM more than once.",
        ),
        (AMPLIFIER, {"s": ["ZOOM", "ZOOM"]}, "sizes holds ZOOM more than once."),
        (AMPLIFIER, {"s": [*SIZES, "ZOOM"]}, "sizes holds 6 values; at most 5."),
        (
            "query($s: [RenditionSize!] = [SMALL, SMALL]) { images { edges { node { "
            "renditions(sizes: $s) { url } } } } }",
            {},
            "sizes holds SMALL more than once.",
        ),
        (
            f"{{ products(filter: {{skus: [{MANY_SKUS}]}}) {{ totalCount }} }}",
            {},
            "filter.skus holds 101 values; at most 100.",
        ),
        (
            "query($f: ProductFilter) { products(filter: $f) { totalCount } }",
            {"f": {"skus": ["A"] * 101}},
            "filter.skus holds 101 values; at most 100.",
        ),
        (
            "query($p: [ID!]) { images(filter: {productIds: $p}) { totalCount } }",
            {"p": ["UHJvZHVjdDox"] * 101},
            "filter.productIds holds 101 values; at most 100.",
        ),
        (
            "query($f: ImageFilter) { images(filter: $f) { totalCount } }",
            {"f": {"productSkus": ["A"] * 5000}},
            "filter.productSkus holds 5000 values; at most 100.",
        ),
        (
            "query($p: [ID!]) { videos(productIds: $p) { totalCount } }",
            {"p": ["UHJvZHVjdDox"] * 101},
            "productIds holds 101 values; at most 100.",
        ),
    ],
)
async def test_query_lists_over_their_bound_are_bad_user_input(
    client: httpx.AsyncClient, api: Api, query: str, variables: dict[str, Any], message: str
) -> None:
    await _image(api)
    error = _refused(await _post(client, api, {"query": query, "variables": variables}))
    assert error["message"] == message


async def test_sizes_within_the_bound_answer_one_rendition_each(api: Api) -> None:
    image = await _image(api)
    data = await api.data(
        "query($id: ID!, $s: [RenditionSize!]) { image(id: $id) { renditions(sizes: $s) "
        "{ size } } }",
        {"id": image["id"], "s": list(reversed(SIZES))},
    )
    assert [r["size"] for r in data["image"]["renditions"]] == list(reversed(SIZES))
    data = await api.data(
        "query($f: ProductFilter) { products(filter: $f) { totalCount } }",
        {"f": {"skus": [f"S{i}" for i in range(99)] + ["BOUND-1"]}},
    )
    assert data["products"]["totalCount"] == 1


def test_a_list_output_is_priced_with_the_length_of_its_list_argument() -> None:
    def cost(query: str, variables: dict[str, Any] | None = None) -> int:
        (value,) = document_costs(SCHEMA, parse(query), variables).values()
        return value

    one = '{ image(id: "x") { renditions(sizes: [ZOOM]) { url } } }'
    assert cost(one) == 1 + 1 * 2
    bulk = "mutation($i: [SyncImagesInput!]!) { syncImagesBulk(inputs: $i) { productSku } }"
    inputs = [{"productSku": f"S{i}", "images": []} for i in range(300)]
    assert cost(bulk, {"i": inputs}) == 300 * 2
    deleted = "mutation($i: [ID!]!) { deleteImages(ids: $i) { deletedIds } }"
    assert cost(deleted, {"i": ["x"] * 40}) == 1 + 40


async def test_mutation_id_lists_are_too_many_then_refused_far_over(
    client: httpx.AsyncClient, api: Api
) -> None:
    image = await _image(api)
    query = f"mutation($ids: [ID!]!) {{ deleteImages(ids: $ids) {{ deletedIds {ERRORS} }} }}"
    data = await api.data(query, {"ids": [image["id"]] * 101})
    assert [e["code"] for e in data["deleteImages"]["userErrors"]] == ["TOO_MANY"]
    response = await _post(client, api, {"query": query, "variables": {"ids": ["x"] * 100_000}})
    assert _refused(response)["message"] == "ids holds 100000 values; at most 100."
    assert await api.count_rows("image") == 1


async def test_bulk_sync_over_its_bound_runs_none_and_huge_lists_never_run(
    client: httpx.AsyncClient, api: Api
) -> None:
    await api.create_product("BULK-1")
    few = [{"productSku": "BULK-1", "images": []}] * 101
    data = await api.data(BULK, {"i": few})
    assert {p["userErrors"][0]["code"] for p in data["syncImagesBulk"]} == {"TOO_MANY"}
    # Its payloads are priced one per input: a thousand of them return too much.
    many = [{"productSku": "BULK-1", "images": []}] * 1000
    _refused(await _post(client, api, {"query": BULK, "variables": {"i": many}}), TOO_COSTLY)
    huge = [{"productSku": "BULK-1", "images": []}] * 100_000
    response = await _post(client, api, {"query": BULK, "variables": {"i": huge}})
    assert _refused(response)["message"] == "inputs holds 100000 values; at most 100."
    # Nested lists are bounded one by one, and all together.
    item = {"url": "https://example.com/a.jpg"}
    one_sync = (
        f"mutation($i: SyncImagesInput!) {{ syncImages(input: $i) {{ productSku {ERRORS} }} }}"
    )
    response = await _post(
        client,
        api,
        {"query": one_sync, "variables": {"i": {"productSku": "BULK-1", "images": [item] * 5000}}},
    )
    assert _refused(response)["message"] == "input.images holds 5000 values; at most 100."
    nested = [{"productSku": "BULK-1", "images": [item] * 1000}] * 100
    response = await _post(client, api, {"query": BULK, "variables": {"i": nested}})
    assert "list entries in all" in _refused(response)["message"]
    assert await api.count_rows("downloadable_image") == 0
