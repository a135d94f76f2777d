"""A client that stops sending its request body gets 408 instead of holding the request."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.applications import Starlette
from starlette.types import Message

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


async def test_a_client_that_disconnects_mid_body_is_a_400_not_a_500(
    app: Starlette, caplog: pytest.LogCaptureFixture
) -> None:
    """Slow clients cut off by the receipt deadline disconnect mid-body, routinely: the access
    line says 400, with no traceback of a server fault."""
    messages: list[Message] = [
        {"type": "http.request", "body": b'{"query": "{ __typ', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/graphql",
        "raw_path": b"/graphql",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json")],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }
    with caplog.at_level(logging.INFO):
        await app(scope, receive, send)
    assert sent[0]["type"] == "http.response.start"
    assert sent[0]["status"] == 400
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
