from support.api import Api
from support.media_factory import image_bytes


async def test_create_upload_query(api: Api) -> None:
    product = await api.create_product("SKU-1")
    payload = await api.upload_image(product["id"], image_bytes("PNG", (64, 48)))
    assert payload["userErrors"] == []
    image = payload["image"]
    assert image["width"] == 64 and image["isMain"] and image["position"] == 0
    response = await api.client.get(image["url"].removeprefix("http://testserver"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    await api.assert_consistent()
