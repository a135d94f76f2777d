"""What every use case works with: the database, the blob store and the limits, plus the two
locks that keep concurrent writers correct (a product's lists, a shared blob)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from storage import models
from storage.blobs import BlobStore, sha256_of
from storage.database import Database
from storage.enums import ErrorCode
from storage.errors import FieldPath, MediaFailure, Problem
from storage.events import MediaEvents
from storage.fetcher import Fetcher
from storage.records import ProductRecord
from storage.rendition_service import Renditions

product_t: sa.Table = models.Product.__table__  # type: ignore[attr-defined]
image_t: sa.Table = models.Image.__table__  # type: ignore[attr-defined]
video_t: sa.Table = models.Video.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Limits:
    max_image_bytes: int = 10 * 1024 * 1024
    max_video_bytes: int = 500 * 1024 * 1024
    max_image_pixels: int = 50_000_000
    min_image_side: int = 1


@dataclass(frozen=True)
class ProductRef:
    """A product named by id or by SKU, and where in the input it was named."""

    id: int | None = None
    sku: str | None = None
    field: FieldPath = ("productId",)


def _no_product(ref: ProductRef) -> Problem:
    return Problem(ref.field, ErrorCode.NOT_FOUND, "The product does not exist.")


@dataclass
class Backend:
    db: Database
    blobs: BlobStore
    limits: Limits
    fetcher: Fetcher
    renditions: Renditions
    warm_renditions: bool = True
    """Render the default renditions in the background after images are stored."""
    events: MediaEvents = field(default_factory=MediaEvents)
    """Told what happened (uploads, renditions, failed fetches); the gateway counts it."""

    def images_stored(self, sha256s: Iterable[str]) -> None:
        if self.warm_renditions:
            self.renditions.warm_later(sha256s)

    async def lock_product(self, session: AsyncSession, ref: ProductRef) -> ProductRecord:
        """Load the product for a write and hold its lock until the transaction ends.

        On PostgreSQL this is ``SELECT … FOR UPDATE`` on the product row; SQLite write
        transactions are already serialised by ``BEGIN IMMEDIATE``."""
        condition = product_t.c.id == ref.id if ref.id is not None else product_t.c.sku == ref.sku
        query = sa.select(*ProductRecord.columns()).where(condition)
        if not self.db.sqlite:
            query = query.with_for_update()
        row = (await session.execute(query)).first()
        if row is None:
            raise MediaFailure([_no_product(ref)])
        return ProductRecord.from_row(row)

    async def check_product(self, ref: ProductRef) -> list[Problem]:
        """A cheap early check (before streaming a file); writers check again under the lock."""
        condition = product_t.c.id == ref.id if ref.id is not None else product_t.c.sku == ref.sku
        async with self.db.read() as connection:
            found = (await connection.execute(sa.select(product_t.c.id).where(condition))).first()
        return [] if found else [_no_product(ref)]

    async def lock_blob(self, session: AsyncSession, key: str) -> None:
        """Serialise "store a row that refers to key" with "delete key if unreferenced"."""
        if not self.db.sqlite:
            await session.execute(
                sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key}
            )

    async def release_blobs(self, keys: Iterable[str]) -> None:
        """Delete each blob that no row refers to any more (called after the rows are gone)."""
        for key in sorted(set(keys)):
            async with self.db.write() as session:
                await self.lock_blob(session, key)
                used = sa.union_all(
                    sa.select(image_t.c.id).where(image_t.c.blob_key == key),
                    sa.select(video_t.c.id).where(video_t.c.blob_key == key),
                ).limit(1)
                if (await session.execute(used)).first() is None:
                    async with self.renditions.exclusive(sha256_of(key)):
                        await self.blobs.delete(key)

    async def lock_members(
        self,
        session: AsyncSession,
        table: sa.Table,
        ids: Sequence[int],
        field: FieldPath,
        columns: Sequence[str] = ("id", "product_id"),
        indexed: bool = True,
    ) -> tuple[int, list[sa.Row[Any]]]:
        """Load rows of ``table`` that must all belong to one product, holding that product's lock
        before the rows are read for good. Rows come back in ``ids`` order.

        Raises NOT_FOUND (per missing id; the field path ends with the id's index when
        ``indexed``) and NOT_SAME_PRODUCT."""

        def not_found(index: int) -> Problem:
            path = (*field, str(index)) if indexed else field
            return Problem(path, ErrorCode.NOT_FOUND, f"There is no {table.name} with this id.")

        found = sa.select(table.c.id, table.c.product_id).where(table.c.id.in_(ids))
        owners = {row.id: row.product_id for row in await session.execute(found)}
        missing = [not_found(i) for i, item in enumerate(ids) if item not in owners]
        if missing:
            raise MediaFailure(missing)
        if len(set(owners.values())) > 1:
            raise MediaFailure.one(
                field, ErrorCode.NOT_SAME_PRODUCT, "The ids belong to more than one product."
            )
        product_id = next(iter(owners.values()))
        await self.lock_product(session, ProductRef(id=product_id, field=field))
        query = sa.select(*(table.c[c] for c in columns)).where(
            table.c.id.in_(ids), table.c.product_id == product_id
        )
        rows = {row.id: row for row in await session.execute(query)}
        gone = [not_found(i) for i, item in enumerate(ids) if item not in rows]
        if gone:
            raise MediaFailure(gone)
        return product_id, [rows[i] for i in ids]
