"""GraphQL limits beyond depth, tokens and aliases: the cost of list fields (``first``
multiplies, gateway/limits.py), documents whose fragments expand exponentially, batches of
operations in one request, and introspection switched off for production."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from graphql import get_introspection_query, parse

from gateway.app import create_app
from gateway.graphql_http import APPLICATION_JSON, GRAPHQL_RESPONSE_JSON
from gateway.limits import CEILING, TOO_COSTLY, TOO_LARGE, document_costs, expanded_size
from gateway.settings import Settings
from schema import build_schema
from support.api import Api

JSON = APPLICATION_JSON
GR = GRAPHQL_RESPONSE_JSON

SCHEMA = build_schema()._schema

# Image.product and Product.images make a cycle: each round multiplies by the list factor.
CYCLE = (
    "{ products(first: 100) { edges { node { images { product { images { product { "
    "images { url } } } } } } } } }"
)
STOREFRONT = """
query Storefront($first: Int) {
  products(first: $first) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges {
      cursor
      node {
        id sku name
        mainImage { url width height renditions(sizes: [THUMBNAIL]) { url url2x } }
        images { id url position isMain width height alt
                 renditions { size url url2x width height } }
        videos { url }
      }
    }
  }
}
"""


@asynccontextmanager
async def gateway(settings: Settings, **changes: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app with these settings changed."""
    app = create_app(settings.model_copy(update=changes))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


async def post(
    client: httpx.AsyncClient,
    body: object,
    accept: str = JSON,
    token: str | None = None,
) -> httpx.Response:
    headers = {"Content-Type": "application/json", "Accept": accept}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return await client.post("/graphql", content=json.dumps(body), headers=headers)


def refusal(response: httpx.Response, code: str) -> dict[str, Any]:
    """The one error of a document refused before it ran."""
    body = response.json()
    assert body.get("data") is None, body
    assert len(body["errors"]) == 1, body
    error: dict[str, Any] = body["errors"][0]
    assert error["extensions"]["code"] == code, error
    assert "Traceback" not in error["message"]
    return error


def cost(query: str, variables: dict[str, Any] | None = None) -> int:
    (value,) = document_costs(SCHEMA, parse(query), variables).values()
    return value


# ---- the estimate (pure) -----------------------------------------------------------------


def test_cost_counts_every_item_first_multiplies_the_edges_of_a_connection() -> None:
    # products 1 + totalCount 1 + pageInfo (1 + 1) + edges 3 x (1 + cursor 1 + node (1 + 1))
    query = (
        "{ products(first: 3) { totalCount pageInfo { hasNextPage } "
        "edges { cursor node { sku } } } }"
    )
    assert cost(query) == 1 + 1 + 2 + 3 * 4
    # A list without first counts 10: images 10 x (1 + url 1 + renditions 10 x (1 + url 1)).
    assert cost('{ product(sku: "A") { images { url renditions { url } } } }') == (
        1 + 10 * (1 + 1 + 10 * 2)
    )
    # The field's default when first is absent or null (products: 20), never below 0.
    assert cost("{ products { edges { node { sku } } } }") == 1 + 20 * 3
    assert cost("{ products(first: null) { edges { node { sku } } } }") == 1 + 20 * 3
    assert cost("{ products(first: -5) { edges { node { sku } } } }") == 1


def test_cost_takes_first_from_variables_then_their_defaults() -> None:
    query = "query($n: Int = 7) { images(first: $n) { edges { node { url } } } }"
    assert cost(query) == 1 + 7 * 3
    assert cost(query, {"n": 2}) == 1 + 2 * 3
    assert cost(query, {"n": None}) == 1 + 100 * 3  # null: the field's default (100)
    assert cost(query, {"n": "many"}) == 1 + 100 * 3  # coercion refuses it later


def test_cost_counts_aliases_fragments_and_not_introspection() -> None:
    plain = "{ products(first: 2) { edges { node { sku name } } } }"
    aliased = (
        "{ a: products(first: 2) { edges { node { sku name } } } "
        "b: products(first: 2) { edges { node { sku name } } } }"
    )
    assert cost(aliased) == 2 * cost(plain)
    spread = (
        "{ products(first: 2) { ...Page } } "
        "fragment Page on ProductConnection { edges { node { ...P } } } "
        "fragment P on Product { sku name }"
    )
    inline = "{ products(first: 2) { ... on ProductConnection { edges { node { sku name } } } } }"
    assert cost(spread) == cost(inline) == cost(plain)
    assert cost("{ __typename __schema { types { name fields { name } } } }") == 0


def test_cost_saturates_and_expansion_counts_spreads() -> None:
    deep = "{ products(first: 1000) { edges { node { " + "images { product { " * 12
    deep += "sku" + " } }" * 12 + " } } } }"
    assert cost(deep) == CEILING
    doubling = ['{ product(sku: "A") { ...F0 } }']
    doubling += [f"fragment F{i} on Product {{ ...F{i + 1} ...F{i + 1} }}" for i in range(60)]
    doubling.append("fragment F60 on Product { __typename }")
    started = time.perf_counter()
    assert expanded_size(parse("\n".join(doubling))) == CEILING
    assert time.perf_counter() - started < 1.0
    assert expanded_size(parse(STOREFRONT)) < 100
    assert expanded_size(parse(get_introspection_query(descriptions=True))) < 1_000


# ---- over HTTP ---------------------------------------------------------------------------


@pytest.mark.parametrize(("accept", "status"), [(JSON, 200), (GR, 400)])
async def test_a_costly_query_is_refused_before_it_runs(
    client: httpx.AsyncClient, accept: str, status: int
) -> None:
    response = await post(client, {"query": CYCLE}, accept)
    assert response.status_code == status, response.text
    error = refusal(response, TOO_COSTLY)
    assert error["extensions"] == {"code": TOO_COSTLY, "cost": cost(CYCLE), "maxCost": 100_000}
    assert "over the limit of 100000" in error["message"]


async def test_a_storefront_page_and_graphiql_introspection_pass_the_defaults(
    client: httpx.AsyncClient,
) -> None:
    assert cost(STOREFRONT, {"first": 100}) < 100_000
    response = await post(client, {"query": STOREFRONT, "variables": {"first": 100}})
    assert "errors" not in response.json(), response.text
    introspection = get_introspection_query(descriptions=True, directive_is_repeatable=True)
    response = await post(client, {"query": introspection})
    body = response.json()
    assert "errors" not in body and body["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_first_in_variables_counts(settings: Settings) -> None:
    query = "query($n: Int) { products(first: $n) { edges { node { sku images { url } } } } }"
    assert cost(query, {"n": 5}) <= 300 < cost(query, {"n": 50})
    async with gateway(settings, max_query_cost=300) as client:
        ok = await post(client, {"query": query, "variables": {"n": 5}})
        assert ok.json() == {"data": {"products": {"edges": []}}}
        refused = await post(client, {"query": query, "variables": {"n": 50}}, GR)
        assert refused.status_code == 400
        assert refusal(refused, TOO_COSTLY)["extensions"]["maxCost"] == 300
        # No value: the field's default (20) counts.
        assert cost(query) > 300
        refusal(await post(client, {"query": query}), TOO_COSTLY)


async def test_a_costly_mutation_changes_nothing(settings: Settings, write_token: str) -> None:
    mutation = (
        'mutation { productCreate(input: {sku: "COST-1", name: "Costly"}) { '
        "product { images { renditions { url } } } userErrors { code } } }"
    )
    assert cost(mutation) > 50
    async with gateway(settings, max_query_cost=50) as client:
        response = await post(client, {"query": mutation}, token=write_token)
        refusal(response, TOO_COSTLY)
        check = await post(client, {"query": '{ product(sku: "COST-1") { id } }'})
        assert check.json() == {"data": {"product": None}}


@pytest.mark.parametrize("leaf", ["sku", "__typename"])
async def test_exponential_fragments_are_refused_fast(client: httpx.AsyncClient, leaf: str) -> None:
    # 30 fragments each spreading the next twice: 2^30 selections from ~200 tokens. Without
    # the expansion check, Strawberry's depth limiter alone takes minutes on 2^24.
    lines = ['{ product(sku: "A") { ...F0 } }']
    lines += [f"fragment F{i} on Product {{ ...F{i + 1} ...F{i + 1} }}" for i in range(30)]
    lines.append(f"fragment F30 on Product {{ {leaf} }}")
    started = time.perf_counter()
    response = await post(client, {"query": "\n".join(lines)}, GR)
    assert time.perf_counter() - started < 2.0
    assert response.status_code == 400
    error = refusal(response, TOO_LARGE)
    assert error["extensions"]["maxSelections"] == 10_000


async def test_cyclic_fragments_still_get_the_validation_error(client: httpx.AsyncClient) -> None:
    query = (
        '{ product(sku: "A") { ...A } } '
        "fragment A on Product { images { product { ...B } } } "
        "fragment B on Product { ...A }"
    )
    response = await post(client, {"query": query}, GR)
    assert response.status_code == 400
    assert "Cannot spread fragment" in response.json()["errors"][0]["message"]


# ---- batches -----------------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 2, 10_000])
async def test_batches_are_refused_by_default(client: httpx.AsyncClient, count: int) -> None:
    started = time.perf_counter()
    response = await post(client, [{"query": "{ __typename }"}] * count, GR)
    assert time.perf_counter() - started < 2.0
    assert response.status_code == 400
    assert response.json() == {"errors": [{"message": "Batching is not enabled"}]}


async def test_a_multipart_batch_is_refused(api: Api) -> None:
    product = await api.create_product("BATCH-1")
    query = "mutation($input: UploadImageInput!) { uploadImage(input: $input) { image { id } } }"
    operations = [{"query": query, "variables": {"input": {"productId": product["id"]}}}] * 2
    response = await api.client.post(
        "/graphql",
        data={
            "operations": json.dumps(operations),
            "map": json.dumps({"0": ["0.variables.input.file"], "1": ["1.variables.input.file"]}),
        },
        files={"0": ("a.png", b"x", "image/png"), "1": ("b.png", b"y", "image/png")},
        headers=api.headers(),
    )
    assert response.status_code == 400, response.text
    assert await api.count_rows("image") == 0
    await api.assert_consistent()


async def test_max_batch_caps_the_operations_of_a_request(settings: Settings) -> None:
    async with gateway(settings, max_batch=3) as client:
        response = await post(client, [{"query": "{ __typename }"}] * 3)
        assert response.status_code == 200
        assert response.json() == [{"data": {"__typename": "Query"}}] * 3
        response = await post(client, [{"query": "{ __typename }"}] * 4)
        assert response.status_code == 400
        assert response.json() == {"errors": [{"message": "Too many operations"}]}
        # Each operation of a batch is held to the cost limit on its own.
        response = await post(client, [{"query": "{ __typename }"}, {"query": CYCLE}])
        first, second = response.json()
        assert first == {"data": {"__typename": "Query"}}
        assert second["errors"][0]["extensions"]["code"] == TOO_COSTLY


# ---- introspection -----------------------------------------------------------------------

SCHEMA_QUERY = "{ __schema { queryType { name } } }"
TYPE_QUERY = '{ __type(name: "Product") { fields { name } } }'


async def test_introspection_is_on_by_default(client: httpx.AsyncClient) -> None:
    response = await post(client, {"query": SCHEMA_QUERY})
    assert response.json() == {"data": {"__schema": {"queryType": {"name": "Query"}}}}


async def test_introspection_can_be_switched_off(settings: Settings) -> None:
    async with gateway(settings, introspection=False) as client:
        for query in (SCHEMA_QUERY, TYPE_QUERY, get_introspection_query()):
            response = await post(client, {"query": query}, GR)
            assert response.status_code == 400, response.text
            body = response.json()
            assert "data" not in body
            assert "introspection" in body["errors"][0]["message"].lower()
        # __typename is no introspection of the schema; ordinary queries work.
        response = await post(client, {"query": "{ __typename products { totalCount } }"})
        assert response.json() == {"data": {"__typename": "Query", "products": {"totalCount": 0}}}


def test_the_environment_switches_introspection_and_sets_the_limits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().introspection is True
    monkeypatch.setenv("MEDIA_GATEWAY_INTROSPECTION", "false")
    monkeypatch.setenv("MEDIA_GATEWAY_MAX_QUERY_COST", "5000")
    monkeypatch.setenv("MEDIA_GATEWAY_MAX_BATCH", "10")
    settings = Settings()
    assert (settings.introspection, settings.max_query_cost, settings.max_batch) == (
        False,
        5000,
        10,
    )
