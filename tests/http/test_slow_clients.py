"""A client that stops sending its request body gets 408 instead of holding the request."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
from asgi_lifespan import LifespanManager

from gateway.app import create_app
from gateway.settings import Settings


async def test_a_stalled_body_gets_408(settings: Settings) -> None:
    impatient = settings.model_copy(update={"body_idle_timeout": 0.3})
    application = create_app(impatient)

    async def stalling() -> AsyncIterator[bytes]:
        yield b'{"query": "{ __typ'
        await asyncio.sleep(3)
        yield b'ename }"}'

    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            response = await client.post(
                "/graphql",
                content=stalling(),
                headers={"Content-Type": "application/json"},
                timeout=10,
            )
            assert response.status_code == 408
            assert "stalled" in response.text
            fine = await client.post("/graphql", json={"query": "{ __typename }"})
            assert fine.status_code == 200
