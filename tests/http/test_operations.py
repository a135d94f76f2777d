"""Operations: /metrics (Prometheus text, labelled by operation and route template, optionally
behind a token), request ids, JSON access logs, masked errors logged with their request id and
traceback, and /readyz."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from asgi_lifespan import LifespanManager
from prometheus_client.parser import text_string_to_metric_families

import gateway.graphql_view
from gateway.app import create_app
from gateway.observability import configure_logging, reset_logging
from gateway.settings import Settings
from support.api import Api
from support.media_factory import image_bytes

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

CREATE = (
    "mutation CreateProduct($i: ProductCreateInput!) { productCreate(input: $i) { "
    "product { id } userErrors { field code } } }"
)


class Logs:
    def __init__(self) -> None:
        self.stream = io.StringIO()

    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        """Every line, each parsed as JSON (a line that is not JSON fails the test)."""
        return [json.loads(line) for line in self.text().splitlines() if line.strip()]

    def access(self) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line.get("logger") == "gateway.access"]


@pytest.fixture
def logs() -> Iterator[Logs]:
    captured = Logs()
    configure_logging(captured.stream)
    try:
        yield captured
    finally:
        reset_logging()


async def scrape(client: httpx.AsyncClient, **headers: str) -> Samples:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def labels_of(samples: Samples, name: str) -> list[dict[str, str]]:
    return [dict(labels) for (sample, labels) in samples if sample == name]


# ---- /metrics ---------------------------------------------------------------------------------


async def test_metrics_count_operations_by_name_type_and_outcome(api: Api) -> None:
    body = await api.post("query Storefront { products(first: 5) { totalCount } }")
    assert "errors" not in body
    await api.post("{ products { totalCount } }")
    body = await api.post(CREATE, {"i": {"sku": "  ", "name": "Blank"}})
    assert body["data"]["productCreate"]["userErrors"][0]["code"] == "REQUIRED"
    body = await api.post(CREATE, {"i": {"sku": "OPS-1", "name": "Fine"}})
    assert body["data"]["productCreate"]["userErrors"] == []
    sneaky = 'mutation Sneaky { productCreate(input: {sku: "X", name: "X"}) { product { id } } }'
    body = await api.post(sneaky, token=False)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    body = await api.post("query Broken { products { edges { node { nope } } } }")
    assert "nope" in body["errors"][0]["message"]

    samples = await scrape(api.client)
    total = "graphql_requests_total"
    assert value(samples, total, operation="Storefront", type="query", outcome="ok") == 1
    assert value(samples, total, operation="anonymous", type="query", outcome="ok") == 1
    assert value(samples, total, operation="CreateProduct", type="mutation", outcome="ok") == 1
    assert (
        value(samples, total, operation="CreateProduct", type="mutation", outcome="user_error") == 1
    )
    assert value(samples, total, operation="Sneaky", type="mutation", outcome="refused") == 1
    assert value(samples, total, operation="Broken", type="query", outcome="error") == 1
    assert value(samples, "graphql_request_seconds_count", type="query") == 3
    assert value(samples, "graphql_request_seconds_count", type="mutation") == 3
    assert value(samples, "http_requests_total", route="/graphql", method="POST", status="200") == 6


async def test_metrics_count_uploads_and_media_requests_by_route_template(api: Api) -> None:
    product = await api.create_product("OPS-MEDIA")
    content = image_bytes("PNG", (40, 30))
    payload = await api.upload_image(product["id"], content)
    assert payload["userErrors"] == []
    path = httpx.URL(payload["image"]["url"]).path
    assert (await api.client.get(path)).status_code == 200
    assert (await api.client.get(path, headers={"Range": "bytes=0-9"})).status_code == 206
    assert (await api.client.get("/media/ab/not-a-key")).status_code == 404
    assert (await api.client.get("/no/such/route")).status_code == 404

    samples = await scrape(api.client)
    requests = "http_requests_total"
    media = "/media/{path}"
    assert value(samples, requests, route=media, method="GET", status="200") == 1
    assert value(samples, requests, route=media, method="GET", status="206") == 1
    assert value(samples, requests, route=media, method="GET", status="404") == 1
    assert value(samples, requests, route="unmatched", method="GET", status="404") == 1
    assert value(samples, "http_request_seconds_count", route=media) == 3
    routes = {labels["route"] for labels in labels_of(samples, requests)}
    assert routes == {"/graphql", media, "unmatched"}  # no key, no raw path
    assert value(samples, "media_uploaded_bytes_total", kind="image") == len(content)
    assert value(samples, "media_uploaded_bytes_total", kind="video") == 0
    assert ("renditions_generated_total", frozenset()) in samples


async def test_a_refused_upload_counts_no_bytes(api: Api) -> None:
    product = await api.create_product("OPS-BAD")
    payload = await api.upload_image(product["id"], b"not an image at all")
    assert payload["userErrors"]
    samples = await scrape(api.client)
    assert value(samples, "media_uploaded_bytes_total", kind="image") == 0
    assert (
        value(
            samples,
            "graphql_requests_total",
            operation="anonymous",
            type="mutation",
            outcome="user_error",
        )
        == 1
    )


async def test_apps_in_one_process_keep_their_own_registry(
    api: Api, settings: Settings, tmp_path: Path
) -> None:
    await api.post("query Mine { products { totalCount } }")
    other = create_app(settings.model_copy(update={"media_root": tmp_path / "other-media"}))
    async with LifespanManager(other):
        transport = httpx.ASGITransport(app=other)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            samples = await scrape(client)
    assert labels_of(samples, "graphql_requests_total") == []
    mine = await scrape(api.client)
    assert value(mine, "graphql_requests_total", operation="Mine", type="query", outcome="ok") == 1


@pytest.fixture
async def guarded_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update={"metrics_token": "metrics-s3cret"}))
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def test_metrics_token_guards_metrics(guarded_client: httpx.AsyncClient) -> None:
    refused = await guarded_client.get("/metrics")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Bearer")
    assert "graphql_requests_total" not in refused.text
    wrong = await guarded_client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    samples = await scrape(guarded_client, Authorization="Bearer metrics-s3cret")
    assert value(samples, "http_requests_total", route="/metrics", method="GET", status="401") == 2


def test_metrics_token_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIA_GATEWAY_METRICS_TOKEN", "from-env")
    assert Settings().metrics_token == "from-env"


# ---- request ids and logs ---------------------------------------------------------------------


async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient) -> None:
    given = await client.get("/healthz", headers={"X-Request-ID": "edge-42.a_B-c"})
    assert given.headers["x-request-id"] == "edge-42.a_B-c"

    generated = await client.get("/healthz")
    first = generated.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", first)
    again = await client.get("/healthz")
    assert again.headers["x-request-id"] != first

    for bad in ("has spaces in it", "x" * 65, "semi;colon", "ünïcode".encode()):
        replaced = await client.get("/healthz", headers={"X-Request-ID": bad})
        assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["x-request-id"]), bad

    missing = await client.get("/media/zz/none.png", headers={"X-Request-ID": "on-404"})
    assert missing.status_code == 404
    assert missing.headers["x-request-id"] == "on-404"


async def test_one_json_access_line_per_request(api: Api, logs: Logs) -> None:
    response = await api.client.post(
        "/graphql",
        json={"query": "query Shelf { products { totalCount } }"},
        headers={"X-Request-ID": "shelf-1"},
    )
    assert response.status_code == 200
    await api.client.get("/healthz", headers={"X-Request-ID": "health-1"})

    lines = logs.access()
    assert [line["request_id"] for line in lines] == ["shelf-1", "health-1"]
    shelf, health = lines
    assert shelf["event"] == "request" and shelf["level"] == "info"
    assert shelf["method"] == "POST" and shelf["route"] == "/graphql"
    assert shelf["status"] == 200
    assert isinstance(shelf["duration_ms"], float) and shelf["duration_ms"] >= 0
    assert shelf["operation"] == "Shelf"
    assert shelf["operation_type"] == "query" and shelf["outcome"] == "ok"
    assert "timestamp" in shelf
    assert health["route"] == "/healthz" and health["status"] == 200
    assert "operation" not in health


async def test_masked_error_is_logged_with_request_id_and_traceback(api: Api, logs: Logs) -> None:
    await api.create_product("FAULT-OPS")
    async with api.backend.db.write_engine.begin() as connection:
        await connection.execute(sa.text("ALTER TABLE video RENAME TO video_away"))
    try:
        response = await api.client.post(
            "/graphql",
            json={"query": "query Faulty { products { edges { node { videos { id } } } } }"},
            headers={**api.headers(), "X-Request-ID": "fault-7"},
        )
    finally:
        async with api.backend.db.write_engine.begin() as connection:
            await connection.execute(sa.text("ALTER TABLE video_away RENAME TO video"))

    assert response.status_code == 200
    assert response.headers["x-request-id"] == "fault-7"
    body = response.json()
    assert [error["message"] for error in body["errors"]] == ["Internal server error."]
    assert "video_away" not in response.text and "Traceback" not in response.text

    errors = [line for line in logs.lines() if line["event"] == "graphql.internal_error"]
    assert len(errors) == 1
    error = errors[0]
    assert error["request_id"] == "fault-7"
    assert error["level"] == "error"
    assert "Traceback" in error["exception"]
    assert "video" in error["exception"] and "video" in error["error"]
    access = [line for line in logs.access() if line["request_id"] == "fault-7"]
    assert len(access) == 1 and access[0]["outcome"] == "error"


async def test_client_errors_are_not_logged_as_faults(api: Api, logs: Logs) -> None:
    await api.post("{ products { edges { node { nope } } } }")
    await api.post(
        'mutation { productCreate(input: {sku: "X", name: "X"}) { product { id } } }', token=False
    )
    await api.post("{ products(first: 100000) { totalCount } }")
    assert [line for line in logs.lines() if line["level"] == "error"] == []
    assert len(logs.access()) == 3


async def test_unhandled_exception_is_a_bare_500_with_request_id(
    client: httpx.AsyncClient, logs: Logs, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object) -> None:
        raise RuntimeError("secret detail from deep inside")

    monkeypatch.setattr(gateway.graphql_view, "authenticate", broken)
    response = await client.post(
        "/graphql", json={"query": "{ products { totalCount } }"}, headers={"X-Request-ID": "boom"}
    )
    assert response.status_code == 500
    assert response.headers["x-request-id"] == "boom"
    assert "secret detail" not in response.text
    (line,) = logs.access()
    assert line["request_id"] == "boom" and line["status"] == 500 and line["level"] == "error"
    assert "secret detail from deep inside" in line["exception"]


async def test_tokens_never_reach_the_logs(api: Api, read_token: str, logs: Logs) -> None:
    await api.create_product("TOKENS-1")
    await api.post("{ products { totalCount } }", token=read_token)
    await api.post('mutation { productDelete(id: "x") { deletedIds } }', token=read_token)
    await api.client.post(
        "/graphql",
        json={"query": "{ products { totalCount } }"},
        headers={"Authorization": "Token not-a-real-token-value"},
    )
    text = logs.text()
    assert len(logs.access()) == 4
    assert api.token and api.token not in text
    assert read_token not in text and "not-a-real-token-value" not in text
    assert "authorization" not in text.lower()


def _swap(path: Path, *, directory: bool) -> None:
    """Put a directory where the file at ``path`` was (kept beside it), or the file back."""
    away = path.with_name(path.name + ".away")
    if directory:
        path.rename(away)
        path.mkdir()
    else:
        path.rmdir()
        away.rename(path)


# ---- /readyz ----------------------------------------------------------------------------------


async def test_readyz_when_everything_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


async def test_readyz_fails_when_the_blob_store_is_gone(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    root = settings.media_root
    shutil.rmtree(root)
    root.write_text("a file where the media directory was")  # a lost mount, say
    try:
        response = await client.get("/readyz")
    finally:
        root.unlink()
        root.mkdir()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert list(body["failed"]) == ["blobs"]
    assert str(root) not in response.text
    assert (await client.get("/readyz")).status_code == 200


@pytest.mark.skipif(
    os.environ.get("MEDIA_GATEWAY_TEST_POSTGRES") == "1", reason="breaks the SQLite file"
)
async def test_readyz_fails_when_the_database_is_gone(api: Api, settings: Settings) -> None:
    path = Path(settings.database_url.removeprefix("sqlite+aiosqlite:///"))
    await api.backend.db.dispose()
    _swap(path, directory=True)  # SQLite cannot open a directory (a missing file it would create)
    try:
        response = await api.client.get("/readyz")
    finally:
        await api.backend.db.dispose()
        _swap(path, directory=False)
    assert response.status_code == 503
    assert list(response.json()["failed"]) == ["database"]
    assert (await api.client.get("/readyz")).json() == {"status": "ready"}
