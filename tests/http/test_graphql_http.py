"""GraphQL over HTTP: the response media type negotiated from Accept, status codes per media
type (4xx for requests that never executed only under application/graphql-response+json),
authentication refusals, GET queries (never mutations) with Cache-Control, ETag and 304."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from graphql import GraphQLError

from gateway.app import create_app
from gateway.graphql_http import (
    APPLICATION_JSON,
    GRAPHQL_RESPONSE_JSON,
    Outcome,
    etag,
    matches_if_none_match,
    negotiate,
    outcome,
    parse_accept,
)
from gateway.settings import Settings
from support.api import Api
from support.media_factory import image_bytes

pytestmark = pytest.mark.anyio

JSON = APPLICATION_JSON
GR = GRAPHQL_RESPONSE_JSON
SPEC_RECOMMENDED = f"{GR}; charset=utf-8, {JSON}; charset=utf-8"

CREATE = "mutation($i: ProductCreateInput!) { productCreate(input: $i) { product { sku } } }"
PRODUCTS = "{ products(first: 5) { edges { node { sku } } } }"


def media_type(response: httpx.Response) -> str:
    return response.headers["content-type"].split(";")[0].strip()


async def post(
    client: httpx.AsyncClient,
    body: dict[str, Any] | list[Any],
    accept: str | None,
    token: str | None = None,
) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if accept is not None:
        headers["Accept"] = accept
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return await client.post("/graphql", content=json.dumps(body), headers=headers)


async def get(
    client: httpx.AsyncClient,
    params: dict[str, str],
    accept: str | None = JSON,
    **headers: str,
) -> httpx.Response:
    sent = {k.replace("_", "-"): v for k, v in headers.items()}
    if accept is not None:
        sent["Accept"] = accept
    return await client.get("/graphql", params=params, headers=sent)


# ---- negotiation (pure) ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        pytest.param(None, JSON, id="no-header"),
        pytest.param("", JSON, id="empty"),
        pytest.param(JSON, JSON, id="json"),
        pytest.param(f"{JSON}; charset=utf-8", JSON, id="json-utf8"),
        pytest.param(GR, GR, id="graphql-response"),
        pytest.param(SPEC_RECOMMENDED, GR, id="spec-recommended"),
        pytest.param(f"{GR},{JSON};q=0.9", GR, id="apollo-style"),
        pytest.param(f"{JSON};q=0.5, {GR}", GR, id="higher-q-wins"),
        pytest.param(f"{JSON}, {GR}", JSON, id="tie-first-listed"),
        pytest.param(f"{GR}, {JSON}", GR, id="tie-first-listed-gr"),
        pytest.param("*/*", JSON, id="any"),
        pytest.param("application/*", JSON, id="application-any"),
        pytest.param(f"*/*;q=0.8, {GR}", GR, id="wildcard-and-explicit"),
        pytest.param(f"{JSON}, */*", JSON, id="explicit-beats-wildcard"),
        pytest.param(f"{GR};q=0, */*", JSON, id="refused-gr"),
        pytest.param("text/html,application/xhtml+xml,*/*;q=0.8", JSON, id="browser"),
        pytest.param("application/json, multipart/mixed", JSON, id="graphiql-fetcher"),
        pytest.param("text/plain", None, id="text"),
        pytest.param("application/xml, text/html", None, id="xml-html"),
        pytest.param(f"{JSON};q=0", None, id="json-q0"),
        pytest.param(f"{JSON}; charset=latin1", None, id="other-charset"),
        pytest.param("application/graphql+json", None, id="withdrawn-type"),
        pytest.param("nonsense, */*;q=x", None, id="malformed"),
    ],
)
def test_negotiate(accept: str | None, expected: str | None) -> None:
    assert negotiate(accept) == expected


def test_parse_accept_reads_weights_and_skips_garbage() -> None:
    ranges = parse_accept('text/html;level=1;q=0.3, */x, foo, application/JSON;Q="0.7"')
    assert [(r.type, r.subtype, r.q, r.index) for r in ranges] == [
        ("text", "html", 0.3, 0),
        ("application", "json", 0.7, 3),
    ]


def test_if_none_match_uses_weak_comparison() -> None:
    tag = etag(JSON, b"{}")
    assert matches_if_none_match(tag, tag)
    assert matches_if_none_match(f'"other", W/{tag}', tag)
    assert matches_if_none_match("*", tag)
    assert not matches_if_none_match('"other"', tag)
    assert not matches_if_none_match(None, tag)
    assert etag(JSON, b"{}") != etag(GR, b"{}")


def test_outcome_of_results() -> None:
    field_error = GraphQLError("boom", path=["products"])
    assert outcome({"x": 1}, None) is Outcome.EXECUTED
    assert outcome(None, [field_error]) is Outcome.EXECUTED
    assert outcome(None, [GraphQLError("Syntax Error")]) is Outcome.REQUEST_ERROR
    refused = GraphQLError("no", extensions={"code": "UNAUTHENTICATED"})
    assert outcome(None, [refused]) is Outcome.UNAUTHENTICATED
    forbidden = GraphQLError("no", extensions={"code": "FORBIDDEN"})
    assert outcome(None, [forbidden]) is Outcome.FORBIDDEN


# ---- POST: Accept x kind of result --------------------------------------------------------

NOT_EXECUTED = {
    "parse-error": {"query": "{"},
    "validation-error": {"query": "{ noSuchField }"},
    "variable-coercion": {
        "query": "query($id: ID!) { node(id: $id) { id } }",
        "variables": {"id": None},
    },
    "unknown-operation": {"query": "query A { __typename }", "operationName": "B"},
    "over-depth-limit": {
        "query": '{ product(sku: "x") {' + " mainImage { product {" * 8 + " sku" + " }" * 17
    },
}

ACCEPT_JSON = [None, JSON, "*/*", f"{JSON}, {GR}", "text/html, */*;q=0.1"]
ACCEPT_GR = [GR, SPEC_RECOMMENDED, f"{GR},{JSON};q=0.9", f"{JSON};q=0.1, {GR}"]


@pytest.mark.parametrize("accept", ACCEPT_JSON + ACCEPT_GR)
async def test_success_is_200_in_the_negotiated_type(
    client: httpx.AsyncClient, accept: str | None
) -> None:
    response = await post(client, {"query": "{ __typename }"}, accept)
    assert response.status_code == 200, response.text
    assert media_type(response) == negotiate(accept)
    assert response.headers["content-type"].endswith("charset=utf-8")
    assert response.json() == {"data": {"__typename": "Query"}}


@pytest.mark.parametrize("case", NOT_EXECUTED)
@pytest.mark.parametrize("accept", ACCEPT_JSON)
async def test_request_errors_are_200_with_data_null_under_application_json(
    client: httpx.AsyncClient, accept: str | None, case: str
) -> None:
    response = await post(client, NOT_EXECUTED[case], accept)
    assert response.status_code == 200, response.text
    assert media_type(response) == JSON
    body = response.json()
    assert body["data"] is None
    assert body["errors"] and body["errors"][0]["message"]


@pytest.mark.parametrize("case", NOT_EXECUTED)
@pytest.mark.parametrize("accept", ACCEPT_GR)
async def test_request_errors_are_400_without_data_under_graphql_response_json(
    client: httpx.AsyncClient, accept: str, case: str
) -> None:
    response = await post(client, NOT_EXECUTED[case], accept)
    assert response.status_code == 400, response.text
    assert media_type(response) == GR
    body = response.json()
    assert "data" not in body
    assert body["errors"] and body["errors"][0]["message"]


@pytest.mark.parametrize("accept", [JSON, GR])
async def test_field_errors_are_executed_results_in_both_types(
    client: httpx.AsyncClient, accept: str
) -> None:
    # A nullable field's error: partial data.
    partial = await post(client, {"query": '{ product(id: "x", sku: "y") { sku } }'}, accept)
    assert partial.status_code == 200, partial.text
    assert partial.json()["data"] == {"product": None}
    assert partial.json()["errors"][0]["path"] == ["product"]
    # A non-null root field's error nulls all data, but execution ran: still 200.
    nulled = await post(client, {"query": "{ products(first: 0) { edges { cursor } } }"}, accept)
    assert nulled.status_code == 200, nulled.text
    assert media_type(nulled) == accept
    assert nulled.json()["data"] is None
    assert nulled.json()["errors"][0]["path"] == ["products"]


@pytest.mark.parametrize("accept", ["text/plain", "application/xml", f"{JSON};q=0, {GR};q=0"])
async def test_unsupported_accept_is_406(client: httpx.AsyncClient, accept: str) -> None:
    response = await post(client, {"query": "{ __typename }"}, accept)
    assert response.status_code == 406, response.text
    assert GR in response.json()["errors"][0]["message"]
    refused = await get(client, {"query": "{ __typename }"}, accept=accept)
    assert refused.status_code == 406


@pytest.mark.parametrize(
    ("accept", "expected"),
    [(JSON, JSON), (GR, GR), (None, JSON)],
)
@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        pytest.param(b'{"query": ', JSON, id="broken-json"),
        pytest.param(b'{"qeury": "{ __typename }"}', JSON, id="no-query"),
        pytest.param(b'{"query": "{ __typename }", "variables": [7]}', JSON, id="bad-variables"),
        pytest.param(b'{"query": "{ __typename }", "operationName": 0}', JSON, id="bad-opname"),
        pytest.param(b'{"query": "{ __typename }"}', "text/plain", id="content-type"),
        pytest.param(b'{"query": "{ __typename }"}', None, id="no-content-type"),
    ],
)
async def test_malformed_requests_are_400_in_both_types(
    client: httpx.AsyncClient,
    accept: str | None,
    expected: str,
    content: bytes,
    content_type: str | None,
) -> None:
    headers = {}
    if accept:
        headers["Accept"] = accept
    if content_type:
        headers["Content-Type"] = content_type
    response = await client.post("/graphql", content=content, headers=headers)
    assert response.status_code == 400, response.text
    assert media_type(response) == expected
    body = response.json()
    assert "data" not in body
    assert body["errors"][0]["message"]


@pytest.mark.parametrize("accept", [JSON, GR])
async def test_batches_are_not_supported(client: httpx.AsyncClient, accept: str) -> None:
    response = await post(client, [{"query": "{ __typename }"}] * 2, accept)
    assert response.status_code == 400, response.text
    assert media_type(response) == accept
    assert response.json() == {"errors": [{"message": "Batching is not enabled"}]}


async def test_empty_operation_name_is_no_operation_name(client: httpx.AsyncClient) -> None:
    response = await post(client, {"query": "{ __typename }", "operationName": ""}, GR)
    assert response.status_code == 200, response.text
    response = await get(client, {"query": "query Q { __typename }", "operationName": ""})
    assert response.json() == {"data": {"__typename": "Query"}}


async def test_multipart_upload_answers_in_the_negotiated_type(api: Api) -> None:
    product = await api.create_product("GQL-HTTP-1")
    operations = {
        "query": "mutation($input: UploadImageInput!) { uploadImage(input: $input) { "
        "image { position } userErrors { code } } }",
        "variables": {"input": {"productId": product["id"], "file": None}},
    }
    response = await api.client.post(
        "/graphql",
        data={"operations": json.dumps(operations), "map": '{"0": ["variables.input.file"]}'},
        files={"0": ("a.png", image_bytes("PNG"), "image/png")},
        headers={**api.headers(), "Accept": SPEC_RECOMMENDED},
    )
    assert response.status_code == 200, response.text
    assert media_type(response) == GR
    assert response.json()["data"]["uploadImage"] == {"image": {"position": 0}, "userErrors": []}


# ---- authentication refusals ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "query", "code", "status"),
    [
        pytest.param("unknown", PRODUCTS, "UNAUTHENTICATED", 401, id="unknown-token-query"),
        pytest.param(None, CREATE, "UNAUTHENTICATED", 401, id="anonymous-mutation"),
        pytest.param("read", CREATE, "FORBIDDEN", 403, id="read-token-mutation"),
    ],
)
async def test_refusals_are_401_403_under_graphql_response_json_and_200_under_json(
    client: httpx.AsyncClient,
    read_token: str,
    who: str | None,
    query: str,
    code: str,
    status: int,
) -> None:
    token = {"unknown": "mgw_unknown", "read": read_token, None: None}[who]
    body = {"query": query, "variables": {"i": {"sku": "REFUSED", "name": "No"}}}

    legacy = await post(client, body, JSON, token)
    assert legacy.status_code == 200, legacy.text
    assert legacy.json()["data"] is None
    assert legacy.json()["errors"][0]["extensions"]["code"] == code
    assert "www-authenticate" not in legacy.headers

    modern = await post(client, body, GR, token)
    assert modern.status_code == status, modern.text
    assert media_type(modern) == GR
    assert "data" not in modern.json()
    assert modern.json()["errors"][0]["extensions"]["code"] == code
    assert ("www-authenticate" in modern.headers) == (status == 401)

    products = await post(client, {"query": PRODUCTS}, JSON)
    assert products.json() == {"data": {"products": {"edges": []}}}  # nothing was created


@pytest.fixture
async def private_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update={"public_read": False}))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


async def test_anonymous_query_without_public_read(private_client: httpx.AsyncClient) -> None:
    modern = await post(private_client, {"query": PRODUCTS}, GR)
    assert modern.status_code == 401, modern.text
    legacy = await get(private_client, {"query": PRODUCTS})
    assert legacy.status_code == 200, legacy.text
    assert legacy.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert legacy.headers["cache-control"] == "private, no-store"


# ---- GET -----------------------------------------------------------------------------------


@pytest.mark.parametrize("accept", [None, JSON, GR, "*/*"])
async def test_get_mutation_is_405_allow_post_and_runs_nothing(
    client: httpx.AsyncClient, write_token: str, accept: str | None
) -> None:
    params = {"query": CREATE, "variables": json.dumps({"i": {"sku": "VIA-GET", "name": "No"}})}
    response = await get(client, params, accept, authorization=f"Bearer {write_token}")
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == "POST"
    assert response.headers["cache-control"] == "private, no-store"
    assert "errors" in response.json()
    products = await post(client, {"query": PRODUCTS}, JSON)
    assert products.json() == {"data": {"products": {"edges": []}}}


async def test_get_selects_a_query_of_a_document_that_also_holds_a_mutation(
    client: httpx.AsyncClient,
) -> None:
    document = 'query Q { __typename } mutation M { productDelete(id: "x") { id } }'
    response = await get(client, {"query": document, "operationName": "Q"})
    assert response.status_code == 200, response.text
    mutation = await get(client, {"query": document, "operationName": "M"})
    assert mutation.status_code == 405


@pytest.mark.parametrize("accept", [JSON, GR])
async def test_anonymous_get_query_is_publicly_cacheable(
    client: httpx.AsyncClient, api: Api, accept: str
) -> None:
    await api.create_product("CACHE-1")
    params = {"query": PRODUCTS}
    response = await get(client, params, accept)
    assert response.status_code == 200, response.text
    assert media_type(response) == accept
    assert response.json() == {"data": {"products": {"edges": [{"node": {"sku": "CACHE-1"}}]}}}
    assert response.headers["cache-control"] == "public, max-age=60"
    assert response.headers["vary"] == "Accept, Authorization"
    tag = response.headers["etag"]
    assert tag.startswith('"') and tag.endswith('"')  # strong: of the catalogue version

    again = await get(client, params, accept, if_none_match=tag)
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == tag
    assert again.headers["cache-control"] == "public, max-age=60"
    assert again.headers["vary"] == "Accept, Authorization"

    stale = await get(client, params, accept, if_none_match='"not-it"')
    assert stale.status_code == 200

    # Data changed: a new body, a new ETag, and the old one no longer matches.
    await api.create_product("CACHE-2")
    changed = await get(client, params, accept, if_none_match=tag)
    assert changed.status_code == 200
    assert changed.headers["etag"] != tag


async def test_etag_differs_per_media_type(client: httpx.AsyncClient) -> None:
    params = {"query": "{ __typename }"}
    as_json = await get(client, params, JSON)
    as_gr = await get(client, params, GR)
    assert as_json.content == as_gr.content
    assert as_json.headers["etag"] != as_gr.headers["etag"]
    assert (await get(client, params, GR, if_none_match=as_json.headers["etag"])).status_code == 200


async def test_get_with_a_token_is_private(client: httpx.AsyncClient, read_token: str) -> None:
    response = await get(client, {"query": PRODUCTS}, authorization=f"Bearer {read_token}")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "private, no-store"
    assert "etag" in response.headers


@pytest.mark.parametrize(
    ("params", "accept", "status"),
    [
        pytest.param({"query": "{ noSuchField }"}, JSON, 200, id="validation-json"),
        pytest.param({"query": "{ noSuchField }"}, GR, 400, id="validation-gr"),
        pytest.param({"query": "{"}, GR, 400, id="parse-gr"),
        pytest.param(
            {"query": "query($id: ID!) { node(id: $id) { id } }", "variables": "{}"},
            GR,
            400,
            id="variables-gr",
        ),
        pytest.param({"query": "{ products(first: 0) { edges { cursor } } }"}, GR, 200, id="field"),
        pytest.param({"query": "{ __typename }", "variables": "{nope"}, JSON, 400, id="bad-json"),
        pytest.param({}, JSON, 400, id="no-query"),
    ],
)
async def test_get_errors_are_never_cached(
    client: httpx.AsyncClient, params: dict[str, str], accept: str, status: int
) -> None:
    response = await get(client, params, accept)
    assert response.status_code == status, response.text
    assert media_type(response) == accept
    assert response.headers["cache-control"] == "private, no-store"
    assert "errors" in response.json()


async def test_get_with_variables(client: httpx.AsyncClient, api: Api) -> None:
    await api.create_product("VAR-1")
    params = {
        "query": "query($sku: String) { product(sku: $sku) { sku } }",
        "variables": json.dumps({"sku": "VAR-1"}),
    }
    response = await get(client, params, GR)
    assert response.status_code == 200, response.text
    assert response.json() == {"data": {"product": {"sku": "VAR-1"}}}


async def test_max_age_zero_turns_public_caching_off(settings: Settings) -> None:
    app = create_app(settings.model_copy(update={"graphql_get_max_age": 0}))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            response = await get(c, {"query": "{ __typename }"})
    assert response.headers["cache-control"] == "private, no-store"


async def test_graphiql_is_still_served_to_browsers(client: httpx.AsyncClient) -> None:
    for accept in ("text/html", "text/html,application/xhtml+xml,*/*;q=0.8"):
        response = await client.get("/graphql", headers={"Accept": accept})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        assert "graphiql" in response.text.lower()


async def test_other_methods_are_405(client: httpx.AsyncClient) -> None:
    head = await client.head("/graphql")
    assert head.status_code == 405
    assert head.headers["allow"] == "GET, POST"
    put = await client.put("/graphql", content=b"{}")
    assert put.status_code == 405


# ---- the request's host in cached answers --------------------------------------------------

IMAGE_URLS = '{ product(sku: "HOST-1") { images { url } } }'


@pytest.fixture
async def host_client(
    settings: Settings, api: Api, request: pytest.FixtureRequest
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app over the same data, with the settings of the test's parameter."""
    product = await api.create_product("HOST-1")
    await api.upload_image(product["id"], image_bytes("PNG", (40, 30), seed=5))
    app = create_app(settings.model_copy(update=request.param))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


async def image_url(client: httpx.AsyncClient, host: str) -> tuple[str, httpx.Response]:
    response = await get(client, {"query": IMAGE_URLS}, host=host)
    assert response.status_code == 200, response.text
    (image,) = response.json()["data"]["product"]["images"]
    url: str = image["url"]
    return url, response


@pytest.mark.parametrize(
    "host_client",
    [{"public_url": None}, {"public_url": None, "trusted_hosts": "shop.example"}],
    indirect=True,
)
@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "shop.example.evil"])
async def test_an_answer_built_on_an_untrusted_host_is_never_public(
    host_client: httpx.AsyncClient, host: str
) -> None:
    url, response = await image_url(host_client, host)
    assert url.startswith(f"http://{host}/media/"), url
    assert response.headers["cache-control"] == "private, no-store"
    again = await get(host_client, {"query": IMAGE_URLS}, host=host, if_none_match="*")
    assert again.headers["cache-control"] == "private, no-store"


@pytest.mark.parametrize(
    "host_client",
    [{"public_url": None, "trusted_hosts": "shop.example, *.cdn.example"}],
    indirect=True,
)
@pytest.mark.parametrize(
    "host", ["shop.example", "SHOP.example", "shop.example:8000", "img.cdn.example"]
)
async def test_an_answer_built_on_a_trusted_host_is_public(
    host_client: httpx.AsyncClient, host: str
) -> None:
    url, response = await image_url(host_client, host)
    assert url.startswith(f"http://{host}/media/"), url
    assert response.headers["cache-control"] == "public, max-age=60"


@pytest.mark.parametrize(
    "host_client",
    [{"public_url": None, "trusted_hosts": "shop.example, *.cdn.example"}],
    indirect=True,
)
@pytest.mark.parametrize("host", ["cdn.example", "evilcdn.example", "shop.example.cdn"])
async def test_a_wildcard_trusts_subdomains_only(host_client: httpx.AsyncClient, host: str) -> None:
    _, response = await image_url(host_client, host)
    assert response.headers["cache-control"] == "private, no-store"


@pytest.mark.parametrize(
    "host_client", [{"public_url": "https://media.shop.example"}], indirect=True
)
async def test_with_public_url_the_host_is_not_used_and_the_answer_public(
    host_client: httpx.AsyncClient,
) -> None:
    url, response = await image_url(host_client, "evil.example")
    assert url.startswith("https://media.shop.example/media/"), url
    assert response.headers["cache-control"] == "public, max-age=60"
