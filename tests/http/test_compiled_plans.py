"""Compiled plans (schema/plans/): the storefront documents are answered by a plan, with the
answer normal execution gives; what plans do not cover runs normally, errors and all; the
setting turns them off. Counted in /metrics (graphql_compiled_plans_total by outcome)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from gateway.settings import Settings
from support.api import Api, api_with
from support.media_factory import image_bytes

pytestmark = pytest.mark.anyio

STOREFRONT = (
    "query { products(first: 20) { edges { node { id sku name mainImage { url width height } "
    "images { id url width height position renditions(sizes: [SMALL, LARGE]) "
    "{ url width height } } } } } }"
)
PRODUCT_PAGE = (
    "query($sku: String!) { product(sku: $sku) { id sku name mainImage { url width height } "
    "images { id url width height position alt renditions "
    "{ size url url2x width height mimeType } } "
    "videos { id url position mimeType fileSize width height durationSeconds } } }"
)


async def plan_counts(api: Api) -> dict[str, float]:
    text = (await api.client.get("/metrics")).text
    found = re.findall(r'^graphql_compiled_plans_total\{outcome="(\w+)"\} (\S+)$', text, re.M)
    return {outcome: float(value) for outcome, value in found}


async def seed(api: Api) -> None:
    for sku in ("sku-a", "sku-b"):
        product = await api.create_product(sku)
        for index in range(2):
            payload = await api.upload_image(
                product["id"], image_bytes(seed=index, size=(800, 600))
            )
            assert payload["userErrors"] == [], payload


async def answer(api: Api, query: str, variables: dict[str, Any] | None = None) -> Any:
    return await api.post(query, variables, token=False)


@pytest.fixture
async def pair(settings: Settings) -> Any:
    """Two apps on one seeded database, without the response cache: with plans, without."""
    async with (
        api_with(settings, "planned", response_cache=False) as planned,
        api_with(settings, "plain", response_cache=False, compiled_plans=False) as plain,
    ):
        await seed(planned)
        yield planned, plain


async def test_storefront_documents_are_answered_by_plans(pair: tuple[Api, Api]) -> None:
    planned, plain = pair
    for query, variables in ((STOREFRONT, None), (PRODUCT_PAGE, {"sku": "sku-b"})):
        before = await plan_counts(planned)
        expected = await answer(plain, query, variables)
        assert "errors" not in expected
        assert await answer(planned, query, variables) == expected
        after = await plan_counts(planned)
        assert after["hit"] == before["hit"] + 1
        assert after["fallback"] == before["fallback"]
    assert await plan_counts(plain) == {"hit": 0.0, "fallback": 0.0}


NOT_COVERED = [
    '{ node(id: "UHJvZHVjdDox") { id } }',
    "{ images(first: 2) { edges { node { id } } } }",
    "{ products(first: 2) { edges { node { images { product { sku } } } } } }",
    "{ products(first: 2) { edges { node { downloadableImages { id } } } } }",
    "{ __schema { queryType { name } } products { totalCount } }",
    "query($d: Boolean! = true) { products @defer(if: $d) { totalCount } }",
]
REFUSED = [
    "{ products(first: 101) { totalCount } }",
    '{ products(after: "bogus") { totalCount } }',
    '{ product(id: "UHJvZHVjdDox", sku: "sku-a") { sku } }',
    '{ product(sku: "sku-a") { images(option: "%s") { id } } }' % ("x" * 300),
    "query($first: Int) { products(first: $first) { totalCount } }",
]


@pytest.mark.parametrize("query", NOT_COVERED + REFUSED)
async def test_what_plans_do_not_answer_runs_normally(pair: tuple[Api, Api], query: str) -> None:
    planned, plain = pair
    variables = {"first": "many"} if "$first" in query else None
    before = await plan_counts(planned)
    expected = await answer(plain, query, variables)
    assert await answer(planned, query, variables) == expected
    after = await plan_counts(planned)
    assert after["hit"] == before["hit"]
    if query in REFUSED:
        assert expected.get("errors"), expected
        assert after["fallback"] == before["fallback"] + 1


async def test_mutations_and_refused_reads_are_not_counted(settings: Settings) -> None:
    async with api_with(settings, "private", public_read=False) as api:
        await api.create_product("sku-m")
        refused = await answer(api, STOREFRONT)
        assert refused["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert await plan_counts(api) == {"hit": 0.0, "fallback": 0.0}
        assert "errors" not in await api.post(STOREFRONT)
        assert (await plan_counts(api))["hit"] == 1
