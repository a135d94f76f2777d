"""Compiled plans (schema/plans/) answer exactly as normal execution does: random storefront
documents (tests/properties/plan_documents.py) sent to two apps over one seeded database, one
with plans and one with MEDIA_GATEWAY_COMPILED_PLANS=false, get the same status and the same
JSON, data and errors alike. Both run without the response cache, so every request executes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from asgi_lifespan import LifespanManager
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st
from plan_documents import Store, storefront_request
from property_support import fresh_database, settings_for
from starlette.applications import Starlette

from gateway.app import create_app
from gateway.settings import Settings
from storage import tokens
from storage.enums import TokenScope
from support.api import Api
from support.media_factory import image_bytes, mp4_bytes

EXAMPLES = 300


@dataclass
class Served:
    app: Starlette
    client: httpx.AsyncClient

    async def answer(self, body: dict[str, Any]) -> tuple[int, Any]:
        response = await self.client.post("/graphql", json=body)
        return response.status_code, response.json()

    def plan_hits(self) -> float:
        value = self.app.state.metrics.registry.get_sample_value(
            "graphql_compiled_plans_total", {"outcome": "hit"}
        )
        return float(value or 0.0)


@asynccontextmanager
async def served(settings: Settings, **overrides: Any) -> AsyncIterator[Served]:
    app = create_app(settings.model_copy(update={"response_cache": False, **overrides}))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield Served(app, c)


async def seed(api: Api) -> Store:
    """Four products: galleries with options, types, alts and a marked main image, a JPEG,
    videos, and one product without media."""
    products = [
        await api.create_product(sku, f"Product {sku}") for sku in ("p-1", "p-2", "p-3", "q-4")
    ]
    first, second, _, fourth = (p["id"] for p in products)
    images = []
    for index, fields in enumerate(
        [
            {},
            {"alt": "Front"},
            {"option": "red", "imageType": "SWATCH"},
            {"option": "red", "alt": "Red back"},
        ]
    ):
        payload = await api.upload_image(first, image_bytes(seed=index, size=(640, 480)), **fields)
        assert payload["userErrors"] == [], payload
        images.append(payload["image"])
    jpeg = image_bytes("JPEG", size=(2400, 1600), seed=9)
    assert (await api.upload_image(second, jpeg, filename="big.jpg"))["userErrors"] == []
    for index in range(2):
        payload = await api.upload_image(fourth, image_bytes(seed=20 + index))
        assert payload["userErrors"] == [], payload
    main = await api.data(
        "mutation($id: ID!) { setMainImage(imageId: $id) { userErrors { code } } }",
        {"id": images[1]["id"]},
    )
    assert main["setMainImage"]["userErrors"] == []
    for seconds in (1.0, 2.0):
        response = await api.upload(
            "mutation($input: UploadVideoInput!) { uploadVideo(input: $input) "
            "{ userErrors { code } } }",
            {"input": {"productId": first, "file": None}},
            {"variables.input.file": ("clip.mp4", mp4_bytes(seconds=seconds), "video/mp4")},
        )
        assert response.json()["data"]["uploadVideo"]["userErrors"] == [], response.text
    page = await api.data("{ products(first: 100) { edges { cursor } } }", token=False)
    cursors = [edge["cursor"] for edge in page["products"]["edges"]]
    return Store(
        product_ids=[p["id"] for p in products],
        image_id=images[0]["id"],
        skus=[p["sku"] for p in products],
        options=["red", "blue"],
        cursors=cursors[:2],
    )


@asynccontextmanager
async def seeded_apps(migrated_database: str, root: Path) -> AsyncIterator[Apps]:
    """The seeded store, the app with plans and the one without, on a fresh database."""
    settings = settings_for(await fresh_database(migrated_database, root), root)
    async with served(settings) as planned, served(settings, compiled_plans=False) as plain:
        app = planned.app
        token, _ = await tokens.create_token(app.state.backend.db, "seed", TokenScope.WRITE)
        api = Api(planned.client, token, app.state.backend, settings.media_root)
        store = await seed(api)
        await app.state.backend.renditions.drain()
        yield Apps(store, planned, plain)


@dataclass
class Apps:
    store: Store
    planned: Served
    plain: Served


@pytest.fixture
def apps(migrated_database: str, tmp_path: Path) -> Iterator[tuple[BlockingPortal, Apps]]:
    """Seeded once for all the examples (they only read), served from an event loop in a
    thread of its own: hypothesis drives the examples synchronously."""
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(seeded_apps(migrated_database, tmp_path)) as apps,
    ):
        yield portal, apps


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_plans_answer_as_execution_does(
    data: st.DataObject, apps: tuple[BlockingPortal, Apps]
) -> None:
    portal, served_apps = apps
    planned, plain = served_apps.planned, served_apps.plain
    body = storefront_request(data, served_apps.store)
    note(f"request: {body}")
    hits = planned.plan_hits()
    expected = portal.call(plain.answer, body)
    got = portal.call(planned.answer, body)
    used = planned.plan_hits() > hits
    event("answered by a plan" if used else "executed normally")
    event("with errors" if "errors" in expected[1] else "without errors")
    assert got == expected
    # A plan answers only what it can answer without error.
    assert not (used and "errors" in got[1])
