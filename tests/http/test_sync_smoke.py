from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from asgi_lifespan import LifespanManager

from api import Api
from gateway.app import create_app
from gateway.settings import Settings
from image_server import ImageServer, running_server
from media_factory import image_bytes
from storage import tokens
from storage.enums import TokenScope

SYNC = """mutation($input: SyncImagesInput!) { syncImages(input: $input) {
  productSku images { id url position imageType status image { id position url checksum } }
  userErrors { field code message } } }"""


@pytest.fixture
def server() -> Iterator[ImageServer]:
    yield from running_server()


@pytest.fixture
async def sync_api(settings: Settings) -> AsyncIterator[Api]:
    allowed = settings.model_copy(update={"fetch_allow_hosts": "127.0.0.1"})
    application = create_app(allowed)
    async with LifespanManager(application):
        backend = application.state.backend
        token, _ = await tokens.create_token(backend.db, "sync", TokenScope.WRITE)
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield Api(c, token, backend, allowed.media_root)


async def test_sync_creates_then_resyncs_without_downloads(
    sync_api: Api, server: ImageServer
) -> None:
    await sync_api.create_product("ERP-1")
    urls = [server.serve(f"/a{i}.png", image_bytes(seed=i)) for i in range(3)]
    items = [{"url": u, "position": i} for i, u in enumerate(urls)]
    first = (await sync_api.data(SYNC, {"input": {"productSku": "ERP-1", "images": items}}))[
        "syncImages"
    ]
    assert first["userErrors"] == []
    assert [i["url"] for i in first["images"]] == urls
    assert server.total_hits == 3
    again = (await sync_api.data(SYNC, {"input": {"productSku": "ERP-1", "images": items}}))[
        "syncImages"
    ]
    assert server.total_hits == 3
    assert [i["id"] for i in again["images"]] == [i["id"] for i in first["images"]]
    await sync_api.assert_consistent()
