"""A small GraphQL client for the tests: queries, multipart uploads (GraphQL multipart request
spec), and checks of what is stored in the database and on disk."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from asgi_lifespan import LifespanManager

from gateway.app import create_app
from gateway.settings import Settings
from storage import tokens
from storage.backend import Backend
from storage.enums import TokenScope

PRODUCT_FIELDS = "id sku name createdAt updatedAt"
IMAGE_FIELDS = (
    "id url position isMain imageType source option alt width height mimeType fileSize "
    "checksum createdAt updatedAt"
)
VIDEO_FIELDS = (
    "id url position source mimeType fileSize checksum width height durationSeconds "
    "createdAt updatedAt"
)
ERRORS = "userErrors { field code message }"


@dataclass
class Api:
    client: httpx.AsyncClient
    token: str | None
    backend: Backend
    media_root: Path

    def headers(self, token: str | bool | None = True) -> dict[str, str]:
        value = self.token if token is True else token
        return {"Authorization": f"Bearer {value}"} if value else {}

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, token: str | bool | None = True
    ) -> dict[str, Any]:
        response = await self.client.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers=self.headers(token),
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(
        self, query: str, variables: dict[str, Any] | None = None, token: str | bool | None = True
    ) -> dict[str, Any]:
        body = await self.post(query, variables, token)
        assert "errors" not in body, body
        data: dict[str, Any] = body["data"]
        return data

    async def upload(
        self,
        query: str,
        variables: dict[str, Any],
        files: dict[str, tuple[str, bytes, str]],
        token: str | bool | None = True,
    ) -> httpx.Response:
        """``files`` maps a variable path like "variables.input.file" to (name, bytes, type)."""
        names = {str(i): path for i, path in enumerate(files)}
        operations = json.dumps({"query": query, "variables": variables})
        parts = {str(i): files[path] for i, path in names.items()}
        return await self.client.post(
            "/graphql",
            data={"operations": operations, "map": json.dumps({k: [v] for k, v in names.items()})},
            files=parts,
            headers=self.headers(token),
        )

    async def create_product(self, sku: str, name: str | None = None) -> dict[str, Any]:
        data = await self.data(
            f"mutation($i: ProductCreateInput!) {{ productCreate(input: $i) {{ "
            f"product {{ {PRODUCT_FIELDS} }} {ERRORS} }} }}",
            {"i": {"sku": sku, "name": name or f"Product {sku}"}},
        )
        payload = data["productCreate"]
        assert payload["userErrors"] == [], payload
        product: dict[str, Any] = payload["product"]
        return product

    async def upload_image(
        self, product_id: str, content: bytes, filename: str = "image.png", **fields: Any
    ) -> dict[str, Any]:
        """Upload through multipart; returns the payload (image and userErrors)."""
        response = await self.upload(
            f"mutation($input: UploadImageInput!) {{ uploadImage(input: $input) {{ "
            f"image {{ {IMAGE_FIELDS} }} {ERRORS} }} }}",
            {"input": {"productId": product_id, "file": None, **fields}},
            {"variables.input.file": (filename, content, "application/octet-stream")},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert "errors" not in body, body
        payload: dict[str, Any] = body["data"]["uploadImage"]
        return payload

    async def gallery(self, product_id: str) -> list[dict[str, Any]]:
        data = await self.data(
            "query($id: ID!) { node(id: $id) { ... on Product { images { "
            f"{IMAGE_FIELDS} }} }} }} }}",
            {"id": product_id},
        )
        images: list[dict[str, Any]] = data["node"]["images"]
        return images

    async def count_rows(self, table: str) -> int:
        async with self.backend.db.read() as connection:
            result = await connection.execute(sa.text(f"SELECT count(*) FROM {table}"))
            return int(result.scalar_one())

    def blob_files(self) -> set[str]:
        """Keys of every stored blob on disk (not temporary files)."""
        return {
            str(p.relative_to(self.media_root)) for p in self.media_root.glob("??/*") if p.is_file()
        }

    async def blob_keys_in_db(self) -> set[str]:
        async with self.backend.db.read() as connection:
            result = await connection.execute(
                sa.text("SELECT blob_key FROM image UNION SELECT blob_key FROM video")
            )
            return {row[0] for row in result}

    async def assert_consistent(self) -> None:
        """No row without its blob, no blob without a row, no leftover temporary file."""
        await self.backend.renditions.drain()
        assert self.blob_files() == await self.blob_keys_in_db()
        assert list((self.media_root / ".tmp").glob("*")) == []

    async def snapshot(self, *product_ids: str) -> tuple[Any, ...]:
        """What a refused image mutation must leave as it was: rows, files, galleries."""
        return (
            await self.count_rows("image"),
            self.blob_files(),
            [await self.gallery(pid) for pid in product_ids],
        )

    async def assert_unchanged(self, before: tuple[Any, ...], *product_ids: str) -> None:
        assert await self.snapshot(*product_ids) == before
        await self.assert_consistent()


@asynccontextmanager
async def api_with(settings: Settings, token_name: str, **overrides: Any) -> AsyncIterator[Api]:
    """An app on the test's database with ``overrides`` over its settings, run through its
    lifespan, with an HTTP client and a write token named ``token_name``."""
    configured = settings.model_copy(update=overrides)
    application = create_app(configured)
    async with LifespanManager(application):
        backend: Backend = application.state.backend
        token, _ = await tokens.create_token(backend.db, token_name, TokenScope.WRITE)
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield Api(c, token, backend, configured.media_root)
