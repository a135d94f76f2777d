"""The media manager at /manage in Debian's Chromium, with no network but the gateway's: sign
in with a token, open a product by SKU, upload two files through the file input (one GraphQL
multipart request each, with a progress bar), reorder them by drag and drop, make one the main
image and delete one; every step is checked through the API."""

from __future__ import annotations

import hashlib
from typing import Any

from playwright.sync_api import Page, expect

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

GALLERY = """query($sku: String!) {
  product(sku: $sku) { mainImage { id } images { id position isMain checksum } }
}"""

pytestmark = BROWSER_MARKS


def _gallery(gateway: Gateway, sku: str) -> dict[str, Any]:
    product: dict[str, Any] = gateway.graphql(GALLERY, {"sku": sku})["product"]
    return product


def test_manage_uploads_reorders_and_sets_main(
    gateway: Gateway, offline_page: tuple[Page, Traffic]
) -> None:
    page, traffic = offline_page
    gateway.create_product("MANAGE-1", "Canvas tote")
    red = image_bytes("PNG", (400, 300), (200, 40, 40), seed=1)
    blue = image_bytes("JPEG", (300, 400), (40, 60, 200), seed=2)
    checksums = {hashlib.sha256(red).hexdigest(): "red", hashlib.sha256(blue).hexdigest(): "blue"}

    page.goto(f"{gateway.base}/manage")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")

    # Sign in: the token is kept in sessionStorage and sent only in the Authorization header.
    page.get_by_label("API token").fill(gateway.token)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('media-gateway.token')") == gateway.token
    assert page.evaluate("document.cookie") == ""

    page.get_by_label("SKU").fill("MANAGE-1")
    page.get_by_role("button", name="Open").click()
    expect(page.locator("#product-title")).to_have_text("Canvas tote (MANAGE-1)")
    expect(page.locator("#product-summary")).to_have_text("No images yet.")

    # Upload two files through the file input.
    uploads: list[str] = []
    page.on(
        "request",
        lambda r: (
            uploads.append(r.headers.get("content-type", ""))
            if r.method == "POST" and "uploadImage" in (r.post_data or "")
            else None
        ),
    )
    page.locator("#files").set_input_files(
        [
            {"name": "red.png", "mimeType": "image/png", "buffer": red},
            {"name": "blue.jpg", "mimeType": "image/jpeg", "buffer": blue},
        ]
    )
    thumbs = page.locator("li.thumb")
    expect(thumbs).to_have_count(2)
    expect(page.locator("#messages")).to_contain_text("2 images uploaded.")
    expect(page.locator("#upload-progress")).to_have_js_property("value", 100)
    assert len(uploads) == 2 and all(t.startswith("multipart/form-data") for t in uploads)

    before = _gallery(gateway, "MANAGE-1")["images"]
    assert [checksums[i["checksum"]] for i in before] == ["red", "blue"]
    red_id, blue_id = before[0]["id"], before[1]["id"]
    assert thumbs.evaluate_all("els => els.map(e => e.dataset.id)") == [red_id, blue_id]

    # Drag the first picture onto the second: blue comes first.
    thumbs.nth(0).drag_to(thumbs.nth(1))
    expect(thumbs.first).to_have_attribute("data-id", blue_id)
    expect(page.locator("#messages")).to_contain_text("Reordering: done.")
    after = _gallery(gateway, "MANAGE-1")
    assert [(i["id"], i["position"]) for i in after["images"]] == [(blue_id, 0), (red_id, 1)]

    # Click the red picture (now second) to make it the main image.
    page.get_by_role("img", name="Canvas tote, image 2").click()
    expect(page.locator("li.thumb.main")).to_have_attribute("data-id", red_id)
    expect(page.locator("li.thumb.main .badge")).to_have_text("Main")
    product = _gallery(gateway, "MANAGE-1")
    assert product["mainImage"] == {"id": red_id}
    assert [(i["id"], i["isMain"]) for i in product["images"]] == [
        (blue_id, False),
        (red_id, True),
    ]

    # Every thumbnail (a THUMBNAIL rendition made on its first GET) is shown.
    page.wait_for_function(
        "() => [...document.querySelectorAll('li.thumb img')]"
        ".every(img => img.complete && img.naturalWidth > 0)"
    )
    screenshot(page, "manage.png")

    # Delete the blue one (after the browser's confirmation).
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete image 1").click()
    expect(thumbs).to_have_count(1)
    remaining = _gallery(gateway, "MANAGE-1")
    assert [(i["id"], i["position"]) for i in remaining["images"]] == [(red_id, 0)]

    traffic.assert_only_gateway()


def test_manage_shows_user_errors_and_bad_tokens(
    gateway: Gateway, offline_page: tuple[Page, Traffic]
) -> None:
    page, traffic = offline_page
    gateway.create_product("MANAGE-2", "Wool scarf")
    page.goto(f"{gateway.base}/manage")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")

    page.get_by_label("API token").fill("mgw_not-a-real-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#messages")).to_contain_text("UNAUTHENTICATED")
    expect(page.get_by_role("button", name="Sign out")).to_be_hidden()

    page.get_by_label("API token").fill(gateway.token)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("SKU").fill("NO-SUCH-SKU")
    page.get_by_role("button", name="Open").click()
    expect(page.locator("#messages")).to_contain_text("No product has the SKU “NO-SUCH-SKU”.")

    page.get_by_label("SKU").fill("MANAGE-2")
    page.get_by_role("button", name="Open").click()
    expect(page.locator("#product-title")).to_have_text("Wool scarf (MANAGE-2)")
    page.locator("#files").set_input_files(
        [{"name": "notes.png", "mimeType": "image/png", "buffer": b"this is not an image"}]
    )
    messages = page.locator("#messages")
    expect(messages).to_contain_text("1 file(s) were not stored.")
    expect(messages).to_contain_text("notes.png: ")
    assert _gallery(gateway, "MANAGE-2")["images"] == []

    # A file dropped on the drop zone is uploaded too.
    green = image_bytes("WEBP", (120, 90), (40, 160, 60), seed=3)
    dropped = page.evaluate_handle(
        """(bytes) => {
            const data = new DataTransfer();
            const file = new File([new Uint8Array(bytes)], "green.webp", {type: "image/webp"});
            data.items.add(file);
            return data;
        }""",
        list(green),
    )
    page.dispatch_event("#dropzone", "dragover", {"dataTransfer": dropped})
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": dropped})
    expect(page.locator("li.thumb")).to_have_count(1)
    expect(messages).to_contain_text("1 image uploaded.")
    (image,) = _gallery(gateway, "MANAGE-2")["images"]
    assert image["checksum"] == hashlib.sha256(green).hexdigest()
    # Chromium logs the sign-in with a bad token (HTTP 401) as a console error: that one only.
    assert len([e for e in traffic.errors if "status of 401" in e]) == 1, traffic.errors
    traffic.errors = [e for e in traffic.errors if "status of 401" not in e]
    traffic.assert_only_gateway()
