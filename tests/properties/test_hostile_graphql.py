"""Hostile requests to /graphql: deep nesting, thousands of aliases, a megabyte of fields,
huge lists, malformed JSON, wrong content types, a mutation over GET, unknown operation names,
variables of the wrong type, fragment bombs and over-limit bodies. Each gets a 4xx or a GraphQL
error (never a 5xx, never data it should not have), and the server stays up.

The requests go over TCP to a real uvicorn server running the app in a thread of its own, so
that the client's httpx timeout bounds every request: a request that hangs (or a server loop
blocked by one request) fails its test instead of hanging the run. Nothing here measures time;
the performance figures live in bench/."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import anyio
import httpx
import pytest
from property_support import fresh_database, settings_for

from gateway.app import create_app
from schema.ids import to_global_id
from storage import tokens
from storage.enums import TokenScope
from storage.sql.database import Database
from support.threaded_server import serving

TIMEOUT = httpx.Timeout(30.0)
"""Per request: generous for a loaded CI machine, and still a failure instead of a hang."""

START_TIMEOUT = 20.0
MIB = 1024 * 1024
GRAPHQL_RESPONSE = "application/graphql-response+json"


# A real server in a thread -------------------------------------------------------------


@dataclass
class Gateway:
    base_url: str
    token: str


async def _write_token(database_url: str) -> str:
    db = Database(database_url)
    try:
        token, _ = await tokens.create_token(db, "hostile", TokenScope.WRITE)
    finally:
        await db.dispose()
    return token


@pytest.fixture(scope="module")
def gateway(migrated_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    root = tmp_path_factory.mktemp("hostile")
    database_url = anyio.run(fresh_database, migrated_database, root)
    token = anyio.run(_write_token, database_url)
    app = create_app(settings_for(database_url, root))
    with serving(app, timeout=START_TIMEOUT, loop="asyncio", lifespan="on") as port:
        yield Gateway(f"http://127.0.0.1:{port}", token)


@pytest.fixture
def client(gateway: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.base_url, timeout=TIMEOUT) as c:
        yield c
    # After every hostile request the server still answers a plain query.
    with httpx.Client(base_url=gateway.base_url, timeout=TIMEOUT) as c:
        response = c.post("/graphql", json={"query": "{ __typename }"})
        assert response.status_code == 200 and response.json() == {"data": {"__typename": "Query"}}


@pytest.fixture
def auth(gateway: Gateway) -> dict[str, str]:
    return {"Authorization": f"Bearer {gateway.token}"}


# Checks --------------------------------------------------------------------------------


def body_of(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def assert_refused(response: httpx.Response) -> dict[str, Any] | None:
    """A 4xx, or a 200 whose GraphQL response has errors and no data (or only nulls, from a
    field error); never a 5xx."""
    assert response.status_code < 500, (response.status_code, response.text[:2000])
    body = body_of(response)
    if 400 <= response.status_code < 500:
        return body
    assert response.status_code == 200, (response.status_code, response.text[:2000])
    assert body is not None and body.get("errors"), response.text[:2000]
    data = body.get("data")
    assert data is None or set(data.values()) == {None}, response.text[:2000]
    for error in body["errors"]:
        assert "Traceback" not in json.dumps(error), error
    return body


def assert_client_error(response: httpx.Response) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:2000])


def post(
    client: httpx.Client,
    query: str,
    variables: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )


def user_error_codes(response: httpx.Response, field: str) -> set[str]:
    assert response.status_code == 200, response.text[:2000]
    body = response.json()
    assert "errors" not in body, str(body)[:2000]
    return {error["code"] for error in body["data"][field]["userErrors"]}


# Documents -----------------------------------------------------------------------------


def nested_images(levels: int) -> str:
    return (
        '{ product(sku: "X") { ' + "images { product { " * levels + "id" + " } }" * levels + " } }"
    )


@pytest.mark.parametrize("levels", [8, 40, 400])
@pytest.mark.parametrize("accept", [None, GRAPHQL_RESPONSE])
def test_deep_nesting(client: httpx.Client, levels: int, accept: str | None) -> None:
    headers = {"Accept": accept} if accept else {}
    assert_refused(post(client, nested_images(levels), headers=headers))


@pytest.mark.parametrize("levels", [3000, 50_000])
def test_deeply_nested_selection_sets_and_values(client: httpx.Client, levels: int) -> None:
    """Nesting that recursive descent parsers choke on: selections and list values."""
    assert_refused(post(client, "{" + " a {" * levels + " b" + " }" * levels + " }"))
    value = "[" * levels + "]" * levels
    assert_refused(post(client, f"{{ products(filter: {{skus: {value}}}) {{ totalCount }} }}"))


@pytest.mark.parametrize("count", [51, 3000, 10_000])
def test_many_aliases(client: httpx.Client, count: int) -> None:
    query = "{ " + " ".join(f"a{i}: __typename" for i in range(count)) + " }"
    assert_refused(post(client, query))


def test_a_megabyte_of_repeated_fields(client: httpx.Client) -> None:
    fields = "totalCount " * (MIB // len("totalCount "))
    assert_refused(post(client, f"{{ products {{ {fields} }} }}"))


def test_fragment_bomb(client: httpx.Client) -> None:
    """Each fragment spreads the next twice: 2^40 fields once expanded."""
    levels = 40
    fragments = " ".join(
        f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(levels)
    )
    query = f"query {{ ...F0 }} {fragments} fragment F{levels} on Query {{ __typename }}"
    response = post(client, query)
    # Valid GraphQL (every field merges into one); what matters is a bounded, sane answer.
    assert response.status_code < 500, response.text[:2000]
    body = body_of(response)
    assert body is not None and (body.get("errors") or body["data"] == {"__typename": "Query"})


def test_fragment_cycle(client: httpx.Client) -> None:
    query = "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A __typename }"
    assert_refused(post(client, query))


def test_many_operations_in_one_document(client: httpx.Client) -> None:
    query = " ".join(f"query Q{i} {{ __typename }}" for i in range(2000))
    response = client.post("/graphql", json={"query": query, "operationName": "Q1999"})
    assert response.status_code == 200 and response.json() == {"data": {"__typename": "Query"}}
    response = client.post("/graphql", json={"query": query, "operationName": "Q2000"})
    assert_refused(response)


# Huge lists ----------------------------------------------------------------------------

HUGE = 100_000


@pytest.mark.parametrize(
    ("mutation", "field", "argument"),
    [
        ("deleteImages(ids: $ids) { deletedIds userErrors { code } }", "deleteImages", "ids"),
        (
            "reorderImages(imageIds: $ids) { images { id } userErrors { code } }",
            "reorderImages",
            "imageIds",
        ),
        (
            "regenerateRenditions(imageIds: $ids) { images { id } userErrors { code } }",
            "regenerateRenditions",
            "imageIds",
        ),
    ],
)
def test_huge_id_lists(
    client: httpx.Client, auth: dict[str, str], mutation: str, field: str, argument: str
) -> None:
    query = f"mutation($ids: [ID!]!) {{ {mutation} }}"
    # Over the maximum: the contract's TOO_MANY; far over it: refused before it runs.
    ids = [to_global_id("Image", pk) for pk in range(1, 1001)]
    assert user_error_codes(post(client, query, {"ids": ids}, headers=auth), field) == {"TOO_MANY"}
    ids = [to_global_id("Image", pk) for pk in range(1, HUGE + 1)]
    body = assert_refused(post(client, query, {"ids": ids}, headers=auth))
    assert body is not None and body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_huge_inline_list(client: httpx.Client, auth: dict[str, str]) -> None:
    ids = ", ".join(json.dumps(to_global_id("Image", pk)) for pk in range(1, HUGE + 1))
    query = f"mutation {{ deleteImages(ids: [{ids}]) {{ deletedIds }} }}"
    assert_refused(post(client, query, headers=auth))  # over the token limit


def test_huge_filter_lists(client: httpx.Client) -> None:
    skus = [f"SKU-{i}" for i in range(HUGE)]
    query = "query($skus: [String!]) { products(filter: {skus: $skus}) { totalCount } }"
    assert_refused(post(client, query, {"skus": skus}))
    product_ids = [to_global_id("Product", pk) for pk in range(1, HUGE + 1)]
    query = "query($ids: [ID!]) { images(filter: {productIds: $ids}) { totalCount } }"
    assert_refused(post(client, query, {"ids": product_ids}))


def test_huge_bulk_sync(client: httpx.Client, auth: dict[str, str]) -> None:
    query = (
        "mutation($inputs: [SyncImagesInput!]!) { syncImagesBulk(inputs: $inputs) "
        "{ userErrors { code } } }"
    )
    inputs = [{"productSku": f"S{i}", "images": []} for i in range(1000)]
    response = post(client, query, {"inputs": inputs}, headers=auth)
    assert response.status_code == 200, response.text[:2000]
    payloads = response.json()["data"]["syncImagesBulk"]
    assert {e["code"] for p in payloads for e in p["userErrors"]} == {"TOO_MANY"}
    inputs = [{"productSku": f"S{i}", "images": []} for i in range(HUGE)]
    body = assert_refused(post(client, query, {"inputs": inputs}, headers=auth))
    assert body is not None and body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


# Malformed requests --------------------------------------------------------------------

MALFORMED_JSON = [
    b"",
    b"{",
    b"[",
    b"null",
    b"42",
    b'"{ __typename }"',
    b"[]",
    b"{}",
    b'{"query": 1}',
    b'{"query": null}',
    b'{"query": ["{ __typename }"]}',
    b'{"query": "{ __typename }", "variables": "x"}',
    b'{"query": "{ __typename }", "variables": [1]}',
    b'{"query": "{ __typename }", "operationName": 5}',
    b'{"query": "{ __typename }", "extensions": 5}',
    b'{"query": "{ __typename }"} trailing',
    b'{"query": "{ __typename }", "query": {"a": 1}}',
    b'{"query": "{ __typename \\ud800 }"}',
    b'{"query": "\\u0000{ __typename }"}',
    b"\xff\xfe{\x00}\x00",
    b"\x00\x00\x00{",
    b"\xef\xbb\xbf{",
    b"\xc3\x28",
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
    b'{"query": "' + b"\\" * 10_001 + b'"}',
]


@pytest.mark.parametrize("body", MALFORMED_JSON, ids=lambda b: repr(b[:24]))
@pytest.mark.parametrize("accept", [None, GRAPHQL_RESPONSE])
def test_malformed_json(client: httpx.Client, body: bytes, accept: str | None) -> None:
    headers = {"Content-Type": "application/json"}
    if accept:
        headers["Accept"] = accept
    assert_refused(client.post("/graphql", content=body, headers=headers))


def test_many_batched_operations(client: httpx.Client) -> None:
    batch = [{"query": "{ __typename }"}] * 10_000
    assert_refused(client.post("/graphql", json=batch))


OPERATIONS = json.dumps({"query": "{ __typename }", "variables": {}})


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", OPERATIONS.encode()),
        ("application/xml", b"<query>{ __typename }</query>"),
        ("application/x-www-form-urlencoded", b"query=%7B+__typename+%7D"),
        ("application/graphql", b"{ __typename }"),
        ("", OPERATIONS.encode()),
        ("multipart/form-data", b"--x\r\n\r\n--x--\r\n"),
        ("multipart/form-data; boundary=", b"--\r\n\r\n----\r\n"),
        ("multipart/form-data; boundary=x", b"garbage"),
        ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data\r\n\r\n"),
    ],
    ids=lambda value: repr(value[:40]) if isinstance(value, bytes) else repr(value),
)
def test_wrong_content_types(client: httpx.Client, content_type: str, body: bytes) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/graphql", content=body, headers=headers)
    assert_client_error(response)


UPLOAD = (
    "mutation($input: UploadImageInput!) { uploadImage(input: $input) { image { id } "
    "userErrors { code } } }"
)
UPLOAD_OPERATIONS = json.dumps(
    {"query": UPLOAD, "variables": {"input": {"productSku": "X", "file": None, "list": [1]}}}
)


@pytest.mark.parametrize(
    "parts",
    [
        {"map": "{}"},  # no operations
        {"operations": "{not json", "map": "{}"},
        {"operations": "null", "map": "{}"},
        {"operations": "5", "map": "{}"},
        {"operations": "[]", "map": "{}"},
        {"operations": UPLOAD_OPERATIONS, "map": "[1]"},
        {"operations": UPLOAD_OPERATIONS, "map": "null"},
        {"operations": UPLOAD_OPERATIONS, "map": '{"x": 5}'},
        {"operations": UPLOAD_OPERATIONS, "map": '{"x": [5]}'},
        {"operations": UPLOAD_OPERATIONS, "map": '{"x": "variables.input.file"}'},
        {"operations": UPLOAD_OPERATIONS, "map": '{"0": ["variables.input.file"]}'},
        {"operations": UPLOAD_OPERATIONS, "map": '{"x": ["variables.nothing.here.at.all"]}'},
        {"operations": UPLOAD_OPERATIONS, "map": '{"x": ["variables.input.productSku.0"]}'},
        {"operations": UPLOAD_OPERATIONS, "map": '{"x": ["variables.input.file.deeper"]}'},
        {"operations": UPLOAD_OPERATIONS, "map": '{"x": ["variables.input.list.one"]}'},
        {"operations": UPLOAD_OPERATIONS, "map": '{"x": ["variables.input.list.9"]}'},
        {"operations": UPLOAD_OPERATIONS, "map": '{"x": ["query.0"]}'},
        {"operations": UPLOAD_OPERATIONS, "map": '{"x": [""]}'},
    ],
)
def test_malformed_multipart(
    client: httpx.Client, auth: dict[str, str], parts: dict[str, str]
) -> None:
    response = client.post("/graphql", data=parts, files={"x": ("x", b"x")}, headers=auth)
    assert_refused(response)


def test_multipart_without_a_map(client: httpx.Client) -> None:
    """No file to place: Strawberry reads a missing map as an empty one (lenient, harmless)."""
    response = client.post("/graphql", data={"operations": OPERATIONS}, files={"x": ("x", b"")})
    assert response.status_code < 500, response.text


def test_multipart_with_a_file_that_is_not_mapped(
    client: httpx.Client, auth: dict[str, str]
) -> None:
    operations = json.dumps({"query": UPLOAD, "variables": {"input": {"productSku": "X"}}})
    response = client.post(
        "/graphql",
        data={"operations": operations, "map": json.dumps({"7": ["variables.input.file"]})},
        files={"0": ("a.png", b"\x89PNG")},
        headers=auth,
    )
    assert_refused(response)


# GET, operation names, variables -------------------------------------------------------


def test_mutation_over_get(client: httpx.Client, auth: dict[str, str]) -> None:
    query = 'mutation { productCreate(input: {sku: "GET", name: "x"}) { product { id } } }'
    response = client.get("/graphql", params={"query": query}, headers=auth)
    assert response.status_code == 405, response.text
    check = post(client, '{ product(sku: "GET") { id } }')
    assert check.json() == {"data": {"product": None}}


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"query": ""},
        {"query": "{ __typename }", "variables": "{not json"},
        {"query": "{ __typename }", "variables": "[1]"},
        {"query": "{ __typename }", "extensions": "5"},
        {"query": "{ " * 2000},
        {"query": "{ __typename }", "operationName": "Nope"},
    ],
)
def test_malformed_get(client: httpx.Client, params: dict[str, str]) -> None:
    response = client.get("/graphql", params=params, headers={"Accept": "application/json"})
    assert_refused(response)


def test_a_long_url(client: httpx.Client) -> None:
    """60 KB of query string (httpx sends at most 64 KiB), over the token limit."""
    fields = "x " * 30_000
    assert_refused(client.get("/graphql", params={"query": f"{{ {fields} }}"}))


@pytest.mark.parametrize(
    ("query", "operation_name"),
    [
        ("query A { __typename }", "B"),
        ("query A { __typename } query B { __typename }", None),
        ("query A { __typename } query B { __typename }", "C"),
        ("{ __typename }", "A"),
        ("query A { __typename } query A { __typename }", "A"),
        ("fragment F on Query { __typename }", None),
    ],
)
def test_unknown_or_ambiguous_operation(
    client: httpx.Client, query: str, operation_name: str | None
) -> None:
    response = client.post("/graphql", json={"query": query, "operationName": operation_name})
    assert_refused(response)


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("query($id: ID!) { node(id: $id) { id } }", {"id": {"nested": [1, 2]}}),
        ("query($id: ID!) { node(id: $id) { id } }", {"id": [1]}),
        ("query($id: ID!) { node(id: $id) { id } }", {"id": None}),
        ("query($id: ID!) { node(id: $id) { id } }", {}),
        ("query($id: ID!) { node(id: $id) { id } }", {"id": 1.5}),
        ("query($n: Int) { products(first: $n) { totalCount } }", {"n": 2**40}),
        ("query($n: Int) { products(first: $n) { totalCount } }", {"n": "3"}),
        ("query($n: Int) { products(first: $n) { totalCount } }", {"n": 1e300}),
        ("query($n: Int) { products(first: $n) { totalCount } }", {"n": 0}),
        ("query($n: Int) { products(first: $n) { totalCount } }", {"n": 10**9}),
        ("query($s: ProductSort) { products(sortBy: $s) { totalCount } }", {"s": "NOPE"}),
        ("query($f: ProductFilter) { products(filter: $f) { totalCount } }", {"f": {"x": 1}}),
        ("query($f: ProductFilter) { products(filter: $f) { totalCount } }", {"f": "skus"}),
        ("query($n: Int) { products(first: $n) { totalCount } }", {"n": True}),
        ("query($x: Nope) { __typename }", {"x": 1}),
        ("query($x: Int, $x: Int) { __typename }", {"x": 1}),
        ("query { products(first: $undefined) { totalCount } }", {"undefined": 1}),
        ("query { product { id } }", {}),
        ('query { product(id: "x", sku: "y") { id } }', {}),
    ],
)
def test_variables_and_arguments_of_the_wrong_type(
    client: httpx.Client, query: str, variables: dict[str, Any]
) -> None:
    assert_refused(post(client, query, variables))


@pytest.mark.parametrize(
    "variables",
    [
        {"id": "x", "input": {"position": 2**31}},
        {"id": "x", "input": {"position": -(2**31) - 1}},
        {"id": "x", "input": {"imageType": "HUGE"}},
        {"id": "x", "input": {"unknown": 1}},
        {"id": "x", "input": []},
        {"id": "x", "input": None},
    ],
)
def test_mutation_inputs_of_the_wrong_type(
    client: httpx.Client, auth: dict[str, str], variables: dict[str, Any]
) -> None:
    query = (
        "mutation($id: ID!, $input: UpdateImageInput!) { updateImage(id: $id, input: $input) "
        "{ image { id } userErrors { code } } }"
    )
    assert_refused(post(client, query, variables, headers=auth))


# Bodies over the limit -----------------------------------------------------------------


def big_body(size: int) -> bytes:
    padding = "x" * (size - 100)
    return json.dumps({"query": "{ __typename }", "variables": {"pad": padding}}).encode()


def test_a_20_mib_json_body(client: httpx.Client) -> None:
    response = client.post(
        "/graphql", content=big_body(20 * MIB), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413, response.text[:2000]


def test_a_20_mib_json_body_without_a_length(client: httpx.Client) -> None:
    body = big_body(20 * MIB)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    response = client.post(
        "/graphql", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413, response.text[:2000]


def test_a_huge_string_variable(client: httpx.Client, auth: dict[str, str]) -> None:
    """10 MiB of SKU: within the body limit, so a userError, never a stored product."""
    query = (
        "mutation($i: ProductCreateInput!) { productCreate(input: $i) { product { id } "
        "userErrors { code } } }"
    )
    response = post(client, query, {"i": {"sku": "S" * 10 * MIB, "name": "x"}}, headers=auth)
    assert user_error_codes(response, "productCreate") == {"INVALID"}
