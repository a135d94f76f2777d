"""Every error a client causes carries ``extensions.code``: argument mistakes BAD_USER_INPUT,
graphql-core's request errors the codes Apollo Server gives them, the gateway's limits their
own; statuses and messages stay what they were."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from gateway.graphql_http import APPLICATION_JSON, GRAPHQL_RESPONSE_JSON
from storage.sql.pages import encode_cursor
from support.api import Api

MANY_SKUS = ",".join(f'"S{i}"' for i in range(101))
DEEP = '{ product(sku: "A") { ' + "mainImage { product { " * 8 + "sku" + " } }" * 8 + " } }"
ALIASES = "{ " + " ".join(f"a{i}: __typename" for i in range(60)) + " }"
TOKENS = "{ " + "__typename " * 10_001 + "}"
FRAGMENTS = (
    "".join(f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }} " for i in range(20))
    + "fragment F20 on Query { __typename } query { ...F0 }"
)

MISTAKES: list[tuple[str, dict[str, Any], str | None, str, str]] = [
    # (name, body, token: "write" | "read" | "bad" | None, code, message)
    (
        "first zero",
        {"query": "{ products(first: 0) { totalCount } }"},
        "write",
        "BAD_USER_INPUT",
        "first must be between 1 and 100; it was 0.",
    ),
    (
        "first too big",
        {"query": "{ images(first: 5000) { totalCount } }"},
        "write",
        "BAD_USER_INPUT",
        "first must be between 1 and 1000; it was 5000.",
    ),
    (
        "product by id and sku",
        {"query": '{ product(id: "UHJvZHVjdDox", sku: "A") { id } }'},
        "write",
        "BAD_USER_INPUT",
        "Give exactly one of id and sku.",
    ),
    (
        "product by neither",
        {"query": "{ product { id } }"},
        "write",
        "BAD_USER_INPUT",
        "Give exactly one of id and sku.",
    ),
    (
        "101 skus",
        {"query": f"{{ products(filter: {{skus: [{MANY_SKUS}]}}) {{ totalCount }} }}"},
        "write",
        "BAD_USER_INPUT",
        "filter.skus holds 101 values; at most 100.",
    ),
    (
        "cursor of another list",
        {
            "query": "query($a: String) { products(after: $a) { totalCount } }",
            "variables": {"a": encode_cursor("videos", [1, 0, 1])},
        },
        "write",
        "BAD_USER_INPUT",
        "The cursor does not belong to this list.",
    ),
    (
        "cursor that is no cursor",
        {"query": '{ videos(after: "!!") { totalCount } }'},
        "write",
        "BAD_USER_INPUT",
        "The cursor is not valid.",
    ),
    (
        "product id of another type in a filter",
        {
            "query": "query($p: [ID!]) { videos(productIds: $p) { totalCount } }",
            "variables": {"p": [base64.b64encode(b"Image:1").decode()]},
        },
        "write",
        "BAD_USER_INPUT",
        "productIds holds a value that is not a Product id.",
    ),
    ("parse error", {"query": "{ products"}, "write", "GRAPHQL_PARSE_FAILED", ""),
    ("validation error", {"query": "{ nope }"}, "write", "GRAPHQL_VALIDATION_FAILED", ""),
    (
        "variable of the wrong type",
        {
            "query": "query($f: Int) { products(first: $f) { totalCount } }",
            "variables": {"f": "many"},
        },
        "write",
        "BAD_USER_INPUT",
        "",
    ),
    (
        "required variable missing",
        {"query": "query($id: ID!) { node(id: $id) { id } }"},
        "write",
        "BAD_USER_INPUT",
        "Variable '$id' has invalid value: Expected a value of non-null type 'ID!' to be provided.",
    ),
    (
        "unknown enum value in a variable",
        {
            "query": "query($s: [RenditionSize!]) { images { edges { node { "
            "renditions(sizes: $s) { url } } } } }",
            "variables": {"s": ["HUGE"]},
        },
        "write",
        "BAD_USER_INPUT",
        "",
    ),
    (
        "several operations, none named",
        {"query": "query A { __typename } query B { __typename }"},
        "write",
        "OPERATION_RESOLUTION_FAILURE",
        "Must provide operation name if query contains multiple operations.",
    ),
    (
        "unknown operation name",
        {"query": "query A { __typename }", "operationName": "B"},
        "write",
        "OPERATION_RESOLUTION_FAILURE",
        "",
    ),
    ("too deep", {"query": DEEP}, "write", "QUERY_TOO_DEEP", ""),
    ("too many aliases", {"query": ALIASES}, "write", "QUERY_TOO_MANY_ALIASES", ""),
    ("too many tokens", {"query": TOKENS}, "write", "QUERY_TOO_LARGE", ""),
    ("fragments expanding", {"query": FRAGMENTS}, "write", "QUERY_TOO_LARGE", ""),
    (
        "too costly",
        {
            "query": "{ images(first: 1000) { edges { node { product { "
            "images { renditions { url } } } } } } }"
        },
        "write",
        "QUERY_TOO_COSTLY",
        "",
    ),
    ("unknown token", {"query": "{ __typename }"}, "bad", "UNAUTHENTICATED", ""),
    (
        "read token writing",
        {"query": 'mutation { productDelete(id: "UHJvZHVjdDox") { deletedIds } }'},
        "read",
        "FORBIDDEN",
        "",
    ),
]


@pytest.mark.parametrize(
    ("body", "token", "code", "message"),
    [pytest.param(*m[1:], id=m[0]) for m in MISTAKES],
)
async def test_every_user_mistake_has_a_code(
    client: httpx.AsyncClient,
    write_token: str,
    read_token: str,
    body: dict[str, Any],
    token: str,
    code: str,
    message: str,
) -> None:
    value = {"write": write_token, "read": read_token, "bad": "mgw_unknown"}[token]
    for accept in (APPLICATION_JSON, GRAPHQL_RESPONSE_JSON):
        response = await client.post(
            "/graphql",
            content=json.dumps(body),
            headers={
                "Content-Type": "application/json",
                "Accept": accept,
                "Authorization": f"Bearer {value}",
            },
        )
        payload = response.json()
        assert payload["errors"], payload
        for error in payload["errors"]:
            assert error["extensions"]["code"] == code, error
            assert not message or error["message"] == message, error
        if accept == APPLICATION_JSON:
            assert response.status_code == 200, response.text
        else:
            assert response.status_code in (200, 400, 401, 403), response.text


async def test_request_errors_keep_their_graphql_core_messages(api: Api) -> None:
    body = await api.post("{ products")
    (error,) = body["errors"]
    assert error["message"] == "Syntax Error: Expected Name, found <EOF>."
    body = await api.post("{ nope }")
    (error,) = body["errors"]
    assert error["message"] == "Cannot query field 'nope' on type 'Query'. Did you mean 'node'?"
    assert error["locations"] == [{"line": 1, "column": 3}]
