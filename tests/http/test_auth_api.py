"""Authentication and authorisation over HTTP: top-level UNAUTHENTICATED / FORBIDDEN errors
with nothing run, both header schemes, PUBLIC_READ off, and the plain HTTP routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager

from gateway.app import create_app
from gateway.settings import Settings
from storage import tokens
from storage.backend import Backend
from storage.enums import TokenScope
from support.api import ERRORS, PRODUCT_FIELDS, Api
from support.media_factory import image_bytes

pytestmark = pytest.mark.anyio

CREATE = (
    "mutation($i: ProductCreateInput!) { productCreate(input: $i) { "
    f"product {{ {PRODUCT_FIELDS} }} {ERRORS} }} }}"
)
DELETE = f"mutation($id: ID!) {{ productDelete(id: $id) {{ deletedIds {ERRORS} }} }}"
PRODUCTS = "{ products { totalCount edges { node { sku } } } }"


async def post(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    authorization: str | None = None,
) -> dict[str, Any]:
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def refused(body: dict[str, Any], code: str) -> None:
    assert body["data"] is None, body
    assert len(body["errors"]) == 1, body
    assert body["errors"][0]["extensions"]["code"] == code, body
    assert body["errors"][0]["message"]


def create_vars(sku: str = "AUTH-1") -> dict[str, Any]:
    return {"i": {"sku": sku, "name": "Auth"}}


# ---- mutations ---------------------------------------------------------------------------


async def test_mutation_without_token_is_unauthenticated(api: Api) -> None:
    refused(await post(api.client, CREATE, create_vars()), "UNAUTHENTICATED")
    assert await api.count_rows("product") == 0


async def test_mutation_with_read_token_is_forbidden(api: Api, read_token: str) -> None:
    body = await post(api.client, CREATE, create_vars(), f"Bearer {read_token}")
    refused(body, "FORBIDDEN")
    assert await api.count_rows("product") == 0


async def test_forbidden_delete_deletes_nothing(api: Api, read_token: str) -> None:
    product = await api.create_product("KEEP", "Keep")
    refused(
        await post(api.client, DELETE, {"id": product["id"]}, f"Bearer {read_token}"), "FORBIDDEN"
    )
    refused(await post(api.client, DELETE, {"id": product["id"]}), "UNAUTHENTICATED")
    assert await api.count_rows("product") == 1
    query = f'{{ product(sku: "KEEP") {{ {PRODUCT_FIELDS} }} }}'
    assert (await api.data(query))["product"] == product


async def test_mutation_with_write_token_works(api: Api, write_token: str) -> None:
    for scheme in ("Bearer", "bearer", "Token", "TOKEN"):
        sku = f"AUTH-{scheme}"
        body = await post(api.client, CREATE, create_vars(sku), f"{scheme} {write_token}")
        assert "errors" not in body, body
        assert body["data"]["productCreate"]["product"]["sku"] == sku
    assert await api.count_rows("product") == 4


async def test_revoked_token_is_unauthenticated_even_on_a_query(api: Api, backend: Backend) -> None:
    token, info = await tokens.create_token(backend.db, "soon-revoked", TokenScope.WRITE)
    body = await post(api.client, CREATE, create_vars("BEFORE"), f"Bearer {token}")
    assert body["data"]["productCreate"]["userErrors"] == []

    assert await tokens.revoke_token(backend.db, info.id)
    refused(
        await post(api.client, CREATE, create_vars("AFTER"), f"Bearer {token}"), "UNAUTHENTICATED"
    )
    refused(await post(api.client, PRODUCTS, authorization=f"Bearer {token}"), "UNAUTHENTICATED")
    refused(await post(api.client, PRODUCTS, authorization=f"Token {token}"), "UNAUTHENTICATED")
    assert await api.count_rows("product") == 1


async def test_revoked_read_token_is_unauthenticated(api: Api, backend: Backend) -> None:
    token, info = await tokens.create_token(backend.db, "reader", TokenScope.READ)
    body = await post(api.client, PRODUCTS, authorization=f"Bearer {token}")
    assert body == {"data": {"products": {"totalCount": 0, "edges": []}}}
    await tokens.revoke_token(backend.db, info.id)
    refused(await post(api.client, PRODUCTS, authorization=f"Bearer {token}"), "UNAUTHENTICATED")


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer mgw_not-a-real-token",
        "Token mgw_not-a-real-token",
        "Basic xyz",
        "Bearer",
        "Bearer ",
        "xyz",
    ],
)
async def test_bad_credentials_on_a_public_query_are_unauthenticated(
    api: Api, authorization: str
) -> None:
    await api.create_product("PUBLIC", "Public")
    refused(await post(api.client, PRODUCTS, authorization=authorization), "UNAUTHENTICATED")
    refused(
        await post(api.client, CREATE, create_vars("NEW"), authorization=authorization),
        "UNAUTHENTICATED",
    )
    assert await api.count_rows("product") == 1


async def test_public_query_needs_no_token(api: Api, read_token: str, write_token: str) -> None:
    await api.create_product("PUBLIC", "Public")
    expected = {"data": {"products": {"totalCount": 1, "edges": [{"node": {"sku": "PUBLIC"}}]}}}
    assert await post(api.client, PRODUCTS) == expected
    assert await post(api.client, PRODUCTS, authorization=f"Bearer {read_token}") == expected
    assert await post(api.client, PRODUCTS, authorization=f"Token {read_token}") == expected
    assert await post(api.client, PRODUCTS, authorization=f"Bearer {write_token}") == expected


async def test_refused_multipart_upload_stores_nothing(api: Api, read_token: str) -> None:
    product = await api.create_product("UPLOAD", "Upload")
    query = (
        "mutation($input: UploadImageInput!) { uploadImage(input: $input) { "
        f"image {{ id }} {ERRORS} }} }}"
    )
    files = {"variables.input.file": ("a.png", image_bytes(seed=1), "image/png")}
    variables = {"input": {"productId": product["id"], "file": None}}
    for token, code in ((None, "UNAUTHENTICATED"), (read_token, "FORBIDDEN")):
        response = await api.upload(query, variables, files, token=token)
        assert response.status_code == 200, response.text
        refused(response.json(), code)
    assert await api.count_rows("image") == 0
    assert api.blob_files() == set()


# ---- PUBLIC_READ false -------------------------------------------------------------------


@pytest.fixture
async def private_client(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Backend]]:
    application = create_app(settings.model_copy(update={"public_read": False}))
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c, application.state.backend


async def test_private_read_needs_a_token(
    private_client: tuple[httpx.AsyncClient, Backend],
) -> None:
    client, backend = private_client
    read, _ = await tokens.create_token(backend.db, "private-read", TokenScope.READ)
    write, _ = await tokens.create_token(backend.db, "private-write", TokenScope.WRITE)

    refused(await post(client, PRODUCTS), "UNAUTHENTICATED")
    refused(await post(client, '{ product(sku: "X") { id } }'), "UNAUTHENTICATED")
    refused(await post(client, '{ node(id: "x") { id } }'), "UNAUTHENTICATED")

    body = await post(client, CREATE, create_vars("PRIVATE"), f"Bearer {write}")
    assert body["data"]["productCreate"]["userErrors"] == []

    expected = {"data": {"products": {"totalCount": 1, "edges": [{"node": {"sku": "PRIVATE"}}]}}}
    assert await post(client, PRODUCTS, authorization=f"Bearer {read}") == expected
    assert await post(client, PRODUCTS, authorization=f"Token {read}") == expected
    assert await post(client, PRODUCTS, authorization=f"Bearer {write}") == expected
    refused(await post(client, CREATE, create_vars("NOPE"), f"Bearer {read}"), "FORBIDDEN")
    refused(await post(client, PRODUCTS, authorization="Bearer unknown"), "UNAUTHENTICATED")


# ---- plain HTTP routes -------------------------------------------------------------------


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_graphiql_page(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "graphiql" in response.text.lower()
