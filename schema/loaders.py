"""Per-request DataLoaders: every product's images, videos and downloadable images come in one
query per kind, whatever the page size. Each batch opens its own read connection, because
sibling fields resolve concurrently."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection
from strawberry.dataloader import DataLoader

from storage import reads
from storage.sql.database import Database
from storage.sql.records import DownloadableImageRecord, ImageRecord, ProductRecord, VideoRecord

K = TypeVar("K")
V = TypeVar("V")


class SharedLoader(DataLoader[K, V]):
    """A DataLoader whose loads survive the cancellation of one of their waiters. Every
    field that asks for a key awaits the same future, and graphql-core cancels the fields
    beside one that failed: without the shield that cancels the future for the fields of
    other objects too, and the whole request fails with CancelledError."""

    def load(self, key: K) -> Awaitable[V]:
        return asyncio.shield(super().load(key))


class Loaders:
    def __init__(self, db: Database) -> None:
        def batch(
            read: Callable[[AsyncConnection, Sequence[int]], Awaitable[Sequence[V]]],
        ) -> DataLoader[int, V]:
            async def load(keys: list[int]) -> Sequence[V]:
                async with db.read() as connection:
                    return await read(connection, keys)

            return SharedLoader(load_fn=load)

        self.product: DataLoader[int, ProductRecord | None] = batch(reads.products_by_id)
        self.image: DataLoader[int, ImageRecord | None] = batch(reads.images_by_id)
        self.video: DataLoader[int, VideoRecord | None] = batch(reads.videos_by_id)
        self.downloadable: DataLoader[int, DownloadableImageRecord | None] = batch(
            reads.downloadables_by_id
        )
        self.product_images: DataLoader[int, list[ImageRecord]] = batch(reads.images_by_product)
        self.product_videos: DataLoader[int, list[VideoRecord]] = batch(reads.videos_by_product)
        self.product_downloadables: DataLoader[int, list[DownloadableImageRecord]] = batch(
            reads.downloadables_by_product
        )

    def clear(self) -> None:
        """Forget what was loaded: a mutation is about to change it."""
        for loader in vars(self).values():
            loader.clear_all()
