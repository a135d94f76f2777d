"""Each merchant task of /manage in Debian's Chromium, checked through the API, with a
screenshot per task in test-artifacts/: option galleries (declare one, upload into it, drag a
picture from one gallery to another), alt text and image type edited in place, reordering
with the keyboard only, videos (upload with progress, reorder, play, delete), ERP images (badge,
source URL) and a re-sync's outcome, and product search with clear error messages at a phone's
390 px width."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
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
from support.image_server import ImageServer, running_server
from support.media_factory import image_bytes, mp4_bytes

pytestmark = BROWSER_MARKS

STATE = """query($sku: String!) {
  product(sku: $sku) {
    options
    images { id position option alt imageType sourceUrl }
    videos { id position checksum }
    downloadableImages { url status }
  }
}"""


@pytest.fixture
def server() -> Iterator[ImageServer]:
    yield from running_server()


def state(gateway: Gateway, sku: str) -> dict[str, Any]:
    product: dict[str, Any] = gateway.graphql(STATE, {"sku": sku})["product"]
    return product


def gallery(product: dict[str, Any], option: str | None) -> list[str]:
    images = [i for i in product["images"] if i["option"] == option]
    return [i["id"] for i in sorted(images, key=lambda i: i["position"])]


def png(seed: int, size: tuple[int, int] = (160, 120)) -> bytes:
    return image_bytes("PNG", size, seed=seed)


def open_product(page: Page, gateway: Gateway, text: str) -> None:
    page.goto(f"{gateway.base}/manage")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    page.get_by_label("API token").fill(gateway.token)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("SKU or name").fill(text)
    page.get_by_role("button", name="Open", exact=True).click()


def done(page: Page, text: str) -> None:
    expect(page.locator("#messages")).to_contain_text(text)


def wait_for_thumbnails(page: Page) -> None:
    page.wait_for_function(
        "() => [...document.querySelectorAll('li.thumb img')]"
        ".every(img => img.complete && img.naturalWidth > 0)"
    )


def test_option_galleries(gateway: Gateway, offline_page: tuple[Page, Traffic]) -> None:
    page, traffic = offline_page
    page.set_viewport_size({"width": 1400, "height": 1600})  # both galleries in view to drag
    product_id = gateway.create_product("OPT-1", "Linen shirt")
    first = gateway.upload_image(product_id, png(1), "a.png")["id"]
    second = gateway.upload_image(product_id, png(2), "b.png")["id"]
    open_product(page, gateway, "OPT-1")
    expect(page.locator("#product-title")).to_have_text("Linen shirt (OPT-1)")

    # Declare an option: its gallery appears, empty.
    page.get_by_label("New option gallery").fill(" red ")
    page.get_by_role("button", name="Add gallery").click()
    done(page, "Adding the gallery “red”: done.")
    assert state(gateway, "OPT-1")["options"] == ["red"]
    red = page.locator("section.gallery[data-option='red']")
    expect(red.locator("h3")).to_have_text("Option “red”")

    # Upload into it.
    red.get_by_label("Upload images into Option “red”").set_input_files(
        [{"name": "red.png", "mimeType": "image/png", "buffer": png(3)}]
    )
    done(page, "1 image uploaded.")
    expect(red.locator("li.thumb")).to_have_count(1)
    product = state(gateway, "OPT-1")
    (uploaded,) = gallery(product, "red")

    # Drag the main gallery's first picture onto the red gallery's picture: it moves before it.
    main = page.locator("section.gallery[data-option='']")
    main.locator(f"li.thumb[data-id='{first}']").drag_to(
        red.locator(f"li.thumb[data-id='{uploaded}']")
    )
    done(page, "Moving to Option “red”: done.")
    expect(red.locator("li.thumb")).to_have_count(2)
    product = state(gateway, "OPT-1")
    assert gallery(product, "red") == [first, uploaded]
    assert gallery(product, None) == [second]
    wait_for_thumbnails(page)
    screenshot(page, "manage-option-galleries.png")

    # An empty declared gallery can be removed; one with pictures offers no such button.
    expect(red.get_by_role("button", name="Remove the gallery")).to_have_count(0)
    traffic.assert_only_gateway()


def test_alt_type_and_keyboard_reorder(
    gateway: Gateway, offline_page: tuple[Page, Traffic]
) -> None:
    page, traffic = offline_page
    product_id = gateway.create_product("EDIT-1", "Wool cap")
    ids = [gateway.upload_image(product_id, png(10 + i), f"{i}.png")["id"] for i in range(3)]
    open_product(page, gateway, "EDIT-1")
    expect(page.locator("li.thumb")).to_have_count(3)

    alt = page.get_by_label("Alt text of image 1 of Main gallery")
    alt.fill("Front view, navy")
    alt.press("Enter")
    done(page, "Saving the alt text: done.")
    page.get_by_label("Type of image 2 of Main gallery").select_option("SWATCH")
    done(page, "Saving the image type: done.")
    product = state(gateway, "EDIT-1")
    by_id = {i["id"]: i for i in product["images"]}
    assert by_id[ids[0]]["alt"] == "Front view, navy"
    assert by_id[ids[1]]["imageType"] == "SWATCH"
    expect(page.get_by_role("img", name="Front view, navy")).to_be_visible()

    # Keyboard only: Tab to the first picture's "later" button and press Enter, twice; focus
    # follows the picture, so the second Enter moves it again.
    later = page.get_by_role("button", name="Move image 1 of Main gallery later")
    later.focus()
    page.keyboard.press("Enter")
    done(page, "Reordering: done.")
    assert gallery(state(gateway, "EDIT-1"), None) == [ids[1], ids[0], ids[2]]
    expect(page.locator(":focus")).to_have_attribute(
        "aria-label", "Move image 2 of Main gallery later"
    )
    page.keyboard.press("Enter")
    expect(page.locator("li.thumb").last).to_have_attribute("data-id", ids[0])
    assert gallery(state(gateway, "EDIT-1"), None) == [ids[1], ids[2], ids[0]]
    # Alt+ArrowLeft on any control of a picture moves it earlier.
    page.get_by_label("Alt text of image 3 of Main gallery").focus()
    page.keyboard.press("Alt+ArrowLeft")
    expect(page.locator("li.thumb").nth(1)).to_have_attribute("data-id", ids[0])
    assert gallery(state(gateway, "EDIT-1"), None) == [ids[1], ids[0], ids[2]]
    wait_for_thumbnails(page)
    screenshot(page, "manage-alt-type-keyboard.png")
    traffic.assert_only_gateway()


def test_videos(gateway: Gateway, offline_page: tuple[Page, Traffic]) -> None:
    page, traffic = offline_page
    gateway.create_product("VID-1", "Trail shoe")
    open_product(page, gateway, "VID-1")
    expect(page.locator("#videos")).to_contain_text("No videos yet.")
    clips = [mp4_bytes(seconds=1.0), mp4_bytes(width=48, height=64, seconds=1.5)]
    page.locator("#video-files").set_input_files(
        [
            {"name": f"clip{i}.mp4", "mimeType": "video/mp4", "buffer": clip}
            for i, clip in enumerate(clips)
        ]
    )
    done(page, "2 videos uploaded.")
    expect(page.locator("#upload-progress")).to_have_js_property("value", 100)
    videos = page.locator("li.video")
    expect(videos).to_have_count(2)
    first, second = (v["id"] for v in sorted(state(gateway, "VID-1")["videos"], key=pos))

    page.get_by_role("button", name="Move video 1 later").click()
    done(page, "Reordering the videos: done.")
    expect(videos.first).to_have_attribute("data-id", second)
    assert [v["id"] for v in sorted(state(gateway, "VID-1")["videos"], key=pos)] == [
        second,
        first,
    ]

    # It plays: the browser fetches the stored MP4 and its playhead moves.
    page.get_by_label("Video 1", exact=True).evaluate(
        "video => { video.muted = true; return video.play(); }"
    )
    page.wait_for_function(
        "() => document.querySelector('li.video video').currentTime > 0", timeout=15_000
    )
    screenshot(page, "manage-videos.png")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete video 2").click()
    done(page, "Deleting the video: done.")
    expect(videos).to_have_count(1)
    assert [v["id"] for v in state(gateway, "VID-1")["videos"]] == [second]
    traffic.assert_only_gateway()


def pos(item: dict[str, Any]) -> int:
    position: int = item["position"]
    return position


def test_erp_images_and_resync(
    gateway: Gateway, offline_page: tuple[Page, Traffic], server: ImageServer
) -> None:
    page, traffic = offline_page
    gateway.create_product("ERP-1", "Rain jacket")
    front = server.serve("/front.png", png(20))
    back = server.serve("/back.png", png(21))
    synced = gateway.graphql(
        "mutation($i: SyncImagesInput!) { syncImages(input: $i) { userErrors { code } } }",
        {"i": {"productSku": "ERP-1", "images": [{"url": front}, {"url": back, "position": 1}]}},
    )
    assert synced["syncImages"]["userErrors"] == []
    open_product(page, gateway, "ERP-1")
    expect(page.locator("li.thumb .badge.erp")).to_have_count(2)
    expect(page.locator("li.thumb .source").first).to_have_text(front)
    expect(page.locator("#erp-summary")).to_contain_text("2 URLs from the ERP")

    # The merchant edits an ERP image; a re-sync keeps the edit and reports its outcome.
    alt = page.get_by_label("Alt text of image 1 of Main gallery")
    alt.fill("Front, hood up")
    alt.press("Enter")
    done(page, "Saving the alt text: done.")
    page.get_by_role("button", name="Re-sync the ERP list").click()
    expect(page.locator("#sync-outcome")).to_contain_text(
        "Re-sync: done. 2 of 2 images are downloaded."
    )
    product = state(gateway, "ERP-1")
    assert [i["alt"] for i in sorted(product["images"], key=pos)] == ["Front, hood up", None]
    assert [i["sourceUrl"] for i in sorted(product["images"], key=pos)] == [front, back]
    wait_for_thumbnails(page)
    screenshot(page, "manage-erp-resync.png")

    # The ERP's own next sync drops a URL: the page shows the list it left.
    gateway.graphql(
        "mutation($i: SyncImagesInput!) { syncImages(input: $i) { userErrors { code } } }",
        {"i": {"productSku": "ERP-1", "images": [{"url": front}]}},
    )
    page.get_by_role("button", name="Open", exact=True).click()
    expect(page.locator("#erp-summary")).to_contain_text("1 URL from the ERP")
    expect(page.locator("#erp-list li")).to_have_count(1)
    expect(page.locator("li.thumb")).to_have_count(1)
    assert [i["alt"] for i in state(gateway, "ERP-1")["images"]] == ["Front, hood up"]
    traffic.assert_only_gateway()


def test_search_and_errors_at_phone_width(
    gateway: Gateway, offline_page: tuple[Page, Traffic]
) -> None:
    page, traffic = offline_page
    page.set_viewport_size({"width": 390, "height": 844})
    for sku, name in (("JKT-1", "Storm jacket"), ("JKT-2", "Down jacket"), ("CAP-1", "Cap")):
        product_id = gateway.create_product(sku, name)
    gateway.upload_image(product_id, png(30), "cap.png")
    open_product(page, gateway, "jacket")
    results = page.get_by_role("list", name="Matching products")
    expect(results.get_by_role("button")).to_have_count(2)
    done(page, "2 products match “jacket”.")
    page.get_by_role("button", name="Open JKT-2").click()
    expect(page.locator("#product-title")).to_have_text("Down jacket (JKT-2)")

    # A refused upload says what is wrong; the next action clears it and the upload status.
    page.locator("#files").set_input_files(
        [{"name": "notes.png", "mimeType": "image/png", "buffer": b"not an image"}]
    )
    messages = page.locator("#messages")
    expect(messages).to_contain_text("1 file(s) were not stored.")
    expect(messages).to_contain_text("notes.png: UNSUPPORTED_FORMAT (file)")
    expect(page.locator("#upload-label")).to_have_text("Uploaded 0 of 1.")
    page.get_by_label("New option gallery").fill("red")
    page.get_by_role("button", name="Add gallery").click()
    done(page, "Adding the gallery “red”: done.")
    expect(messages).not_to_contain_text("notes.png")
    expect(page.locator("#upload")).to_be_hidden()
    assert state(gateway, "JKT-2")["options"] == ["red"]

    # Searching by an exact SKU opens it; the page fits the phone's width.
    page.get_by_label("SKU or name").fill("CAP-1")
    page.get_by_role("button", name="Open", exact=True).click()
    expect(page.locator("#product-title")).to_have_text("Cap (CAP-1)")
    expect(page.locator("li.thumb")).to_have_count(1)
    wait_for_thumbnails(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "manage-390px.png")
    traffic.assert_only_gateway()
