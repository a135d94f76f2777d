"""GraphiQL at /graphql in Debian's Chromium, with no network but the gateway's: the page
renders from the gateway's own copies of React and GraphiQL, opens with the default document
and the Headers hint, and a products query typed into it, sent with the Authorization header
set in its headers editor, shows the product in the result pane."""

from __future__ import annotations

import json

from playwright.sync_api import Page, Request

from support.browser import (  # noqa: F401 (the fixtures)
    BROWSER_MARKS,
    Gateway,
    Traffic,
    browser_fixture,
    gateway_fixture,
    offline_page_fixture,
    playwright_fixture,
    screenshot,
)
from support.media_factory import image_bytes

QUERY = """query BrowserProducts {
  products(first: 5, filter: {search: "BROWSER"}) {
    totalCount
    edges {
      node {
        sku
        name
        mainImage {
          width
          height
          renditions(sizes: [THUMBNAIL]) { url width }
        }
      }
    }
  }
}"""

pytestmark = BROWSER_MARKS


def _editor_text(page: Page, selector: str) -> str:
    text: str = page.locator(selector).first.inner_text()
    return text


def test_graphiql_runs_a_query_offline(
    gateway: Gateway, offline_page: tuple[Page, Traffic]
) -> None:
    page, traffic = offline_page
    product_id = gateway.create_product("BROWSER-1", "Browser boots")
    gateway.upload_image(product_id, image_bytes("PNG", (320, 240), seed=7), "boots.png")

    sent: list[Request] = []
    page.on("request", lambda r: sent.append(r) if r.url.endswith("/graphql") else None)

    with page.expect_response(
        lambda r: "IntrospectionQuery" in (r.request.post_data or "")
    ) as schema:
        page.goto(f"{gateway.base}/graphql")
    assert schema.value.status == 200
    query_editor = page.locator(".graphiql-query-editor .CodeMirror")
    query_editor.wait_for()
    # The default document: a storefront query and an example mutation.
    opening = _editor_text(page, ".graphiql-query-editor")
    assert "query StorefrontProducts" in opening
    # The Headers tab is open with the hint, which is not sent as a credential: the schema
    # introspection that GraphiQL makes on load goes out without an Authorization header.
    headers_editor = page.locator(".graphiql-editor-tool .CodeMirror").filter(
        has_text="Authorization"
    )
    headers_editor.wait_for()
    assert "Bearer <paste a token" in headers_editor.inner_text()

    # Type the query, replacing the default document.
    query_editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(QUERY)
    page.keyboard.press("Escape")  # an autocomplete popup, if any
    assert "BrowserProducts" in _editor_text(page, ".graphiql-query-editor")

    # Set the Authorization header in the headers editor.
    headers_editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(json.dumps({"Authorization": f"Bearer {gateway.token}"}, indent=2))
    page.keyboard.press("Escape")

    with page.expect_response(
        lambda r: r.url.endswith("/graphql") and "BrowserProducts" in (r.request.post_data or "")
    ) as answer:
        page.locator(".graphiql-execute-button").click()
    response = answer.value
    assert response.status == 200
    assert response.request.all_headers()["authorization"] == f"Bearer {gateway.token}"

    result = page.locator(".result-window")
    result.filter(has_text="BROWSER-1").wait_for()
    shown = result.inner_text()
    assert '"name": "Browser boots"' in shown
    assert '"totalCount": 1' in shown
    assert "/media/" in shown  # the thumbnail's URL
    assert '"errors"' not in shown
    screenshot(page, "graphiql.png")

    introspections = [r for r in sent if "IntrospectionQuery" in (r.post_data or "")]
    assert introspections, "GraphiQL did not load the schema"
    assert all("authorization" not in r.all_headers() for r in introspections)
    traffic.assert_only_gateway()
