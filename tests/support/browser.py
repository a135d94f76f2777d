"""Browser tests: the real server (``media-gateway serve`` on a free port of 127.0.0.1, its own
SQLite file and media root) driven by Debian's Chromium through Playwright, with no network
but the gateway's.

Chromium is Debian's (``apt-get install chromium``), never a browser that Playwright downloads:
without ``/usr/bin/chromium`` these tests are skipped. Its host resolver answers NOTFOUND for
every host but 127.0.0.1, and every request a page makes goes through a route that lets only
the gateway's origin through and records (and aborts) anything else; each test asserts that
nothing else was even attempted, and that the page logged no error (a CSP violation is one).
Screenshots go to ``test-artifacts/``.

The fixtures are defined here, not in a tests/browser/conftest.py (a second module named
``conftest`` would shadow the root one that other tests import from): a browser test module
imports them by name (``gateway_fixture`` and so on, registered as ``gateway``, ...) and sets
``pytestmark = BROWSER_MARKS``."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    Page,
    Playwright,
    Request,
    Route,
    sync_playwright,
)

from support import server_process
from support.server_process import TOKEN_LINE

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]


BROWSER_MARKS = [
    pytest.mark.live,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"{CHROMIUM} is missing: install Debian's chromium and chromium-driver "
        "(apt-get install -y chromium chromium-driver) to run the browser tests",
    ),
    pytest.mark.skipif(
        os.environ.get("MEDIA_GATEWAY_TEST_POSTGRES") == "1",
        # The served gateway always runs on its own SQLite file: the PostgreSQL run would
        # repeat exactly the same browser tests.
        reason="the browser tests run once, in the SQLite run",
    ),
]
"""``pytestmark`` of every browser test module."""


@dataclass
class Gateway:
    """A running ``media-gateway serve`` and a small client for setting up and checking."""

    base: str
    token: str
    log: Path

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = httpx.post(
            f"{self.base}/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=20.0,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data

    def create_product(self, sku: str, name: str) -> str:
        payload = self.graphql(
            "mutation($i: ProductCreateInput!) { productCreate(input: $i) { "
            "product { id } userErrors { code message } } }",
            {"i": {"sku": sku, "name": name}},
        )["productCreate"]
        assert payload["userErrors"] == [], payload
        product_id: str = payload["product"]["id"]
        return product_id

    def upload_image(self, product_id: str, content: bytes, filename: str) -> dict[str, Any]:
        operations = {
            "query": "mutation($input: UploadImageInput!) { uploadImage(input: $input) { "
            "image { id url } userErrors { code message } } }",
            "variables": {"input": {"productId": product_id, "file": None}},
        }
        response = httpx.post(
            f"{self.base}/graphql",
            data={
                "operations": json.dumps(operations),
                "map": json.dumps({"0": ["variables.input.file"]}),
            },
            files={"0": (filename, content, "application/octet-stream")},
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=20.0,
        )
        assert response.status_code == 200, response.text
        payload: dict[str, Any] = response.json()["data"]["uploadImage"]
        assert payload["userErrors"] == [], payload
        image: dict[str, Any] = payload["image"]
        return image

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def running_gateway(tmp_path: Path) -> Iterator[Gateway]:
    """``media-gateway serve`` on a free port of 127.0.0.1 with its own SQLite file and media
    root; waits for /healthz and reads the admin token it prints; always stopped on the way out.
    It may download from 127.0.0.1 (the tests' image servers)."""
    with server_process.running_gateway(
        tmp_path, "server", fetch_allow_hosts="127.0.0.1"
    ) as server:
        tokens = TOKEN_LINE.findall(server.stdout())
        assert len(tokens) == 1, server.stdout()
        yield Gateway(server.base, tokens[0], server.log)


@dataclass
class Traffic:
    """What a page asked for: every request, the ones to other origins (aborted), and the
    JavaScript errors and console errors (a CSP violation is one)."""

    origin: str
    requests: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def assert_only_gateway(self) -> None:
        assert self.requests, "the page made no request at all"
        assert self.foreign == [], f"requests to other hosts: {self.foreign}"
        assert all(origin_of(url) == self.origin for url in self.requests), self.requests
        assert self.errors == [], self.errors


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=False)
    return path


@pytest.fixture(name="gateway")
def gateway_fixture(tmp_path: Path) -> Iterator[Gateway]:
    with running_gateway(tmp_path) as server:
        yield server


@pytest.fixture(name="playwright")
def playwright_fixture() -> Iterator[Playwright]:
    # Per test, not per session: the sync API keeps an asyncio loop running in this thread
    # while it is open, which the anyio-driven async tests that follow could not share.
    with sync_playwright() as p:
        yield p


@pytest.fixture(name="browser")
def browser_fixture(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(
        executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
    )
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture(name="offline_page")
def offline_page_fixture(browser: Browser, gateway: Gateway) -> Iterator[tuple[Page, Traffic]]:
    """A fresh browser context whose page may reach the gateway's origin and nothing else."""
    traffic = Traffic(origin=gateway.base)
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(20_000)

    def route(route: Route, request: Request) -> None:
        if origin_of(request.url) == traffic.origin:
            route.continue_()
        else:
            traffic.foreign.append(request.url)
            route.abort("blockedbyclient")

    def record(request: Request) -> None:
        if not request.url.startswith(("data:", "blob:")):
            traffic.requests.append(request.url)

    def console(message: object) -> None:
        if getattr(message, "type", None) == "error":
            traffic.errors.append(f"console error: {getattr(message, 'text', message)}")

    context.route("**/*", route)
    page = context.new_page()
    page.on("request", record)
    page.on("pageerror", lambda error: traffic.errors.append(f"page error: {error}"))
    page.on("console", console)
    try:
        yield page, traffic
    finally:
        context.close()
