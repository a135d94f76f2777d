"""What every use case works with: the database, the blob store and the limits, plus the two
locks that keep concurrent writers correct (a product's lists, a shared blob).

Lock order. On PostgreSQL a write transaction takes

1. the locks of every blob it may store or delete, all at once before anything else, ordered
   by lock number (``lock_blobs``: advisory locks, numbered by the key's hash);
2. then the row of at most one product (``lock_product``, ``lock_members``: FOR UPDATE);
3. then it reads and writes that product's rows;
4. last, just before the commit, the catalogue version row (``Database.write`` raises the
   version there). Every writer takes it after all its other locks and waits for nothing
   while holding it, so it adds no cycle; writers' commits queue on it, one at a time.

Every path keeps this order: uploads and syncs go through ``blob_transaction`` (which knows
their keys before the transaction starts), and releasing blobs or collecting garbage takes
blob locks only. So no two transactions can wait for each other in a cycle, whatever order
their requests name the bytes in. SQLite serialises whole write transactions instead
(``BEGIN IMMEDIATE``). A transaction that PostgreSQL aborts anyway is run again whole
(``Database.retrying``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from storage.blobs import BlobStore, TempBlob, sha256_of
from storage.enums import ErrorCode
from storage.errors import FieldPath, MediaFailure, Problem
from storage.events import MediaEvents
from storage.fetch import Fetcher
from storage.media.renditions import Renditions
from storage.sql.database import Database
from storage.sql.records import ProductRecord
from storage.sql.tables import image_table, product_table, video_table

T = TypeVar("T")


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
class BlobChanges:
    """What one transaction of ``Backend.blob_transaction`` does to blobs: which of the
    temporary blobs it was given it stores, and which keys its deleted rows referred to."""

    temps: Mapping[str, TempBlob]
    stored: set[str] = field(default_factory=set)
    dropped: set[str] = field(default_factory=set)

    def store(self, key: str) -> None:
        """Move the temporary blob of ``key`` to its key before the transaction commits."""
        if key not in self.temps:
            raise ValueError(f"No temporary blob was locked for {key!r}")
        self.stored.add(key)

    def drop(self, keys: Iterable[str]) -> None:
        """Delete these blobs once the transaction committed, unless still referenced."""
        self.dropped.update(keys)


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
        condition = (
            product_table.c.id == ref.id if ref.id is not None else product_table.c.sku == ref.sku
        )
        query = sa.select(*ProductRecord.columns()).where(condition)
        if not self.db.sqlite:
            query = query.with_for_update()
        row = (await session.execute(query)).first()
        if row is None:
            raise MediaFailure([_no_product(ref)])
        return ProductRecord.from_row(row)

    async def check_product(self, ref: ProductRef) -> list[Problem]:
        """A cheap early check (before streaming a file); writers check again under the lock."""
        condition = (
            product_table.c.id == ref.id if ref.id is not None else product_table.c.sku == ref.sku
        )
        async with self.db.read() as connection:
            found = (
                await connection.execute(sa.select(product_table.c.id).where(condition))
            ).first()
        return [] if found else [_no_product(ref)]

    async def lock_blobs(self, session: AsyncSession, keys: Iterable[str]) -> None:
        """Serialise "store a row that refers to key" with "delete key if unreferenced": hold
        the locks of ``keys`` until the transaction ends. Taken before any row lock and in
        the order of the lock numbers (two keys whose hashes collide share one lock)."""
        wanted = sorted(set(keys))
        if self.db.sqlite or not wanted:
            return
        numbers = await session.execute(
            sa.text("SELECT DISTINCT hashtextextended(k, 0) FROM unnest(CAST(:keys AS text[])) k"),
            {"keys": wanted},
        )
        for number in sorted(numbers.scalars()):
            await session.execute(sa.text("SELECT pg_advisory_xact_lock(:n)"), {"n": number})

    async def unreferenced(self, session: AsyncSession, keys: Iterable[str]) -> list[str]:
        """Those of ``keys`` that no image or video row refers to (ask under their locks)."""
        wanted = sorted(set(keys))
        used = sa.union(
            sa.select(image_table.c.blob_key).where(image_table.c.blob_key.in_(wanted)),
            sa.select(video_table.c.blob_key).where(video_table.c.blob_key.in_(wanted)),
        )
        referenced = set((await session.execute(used)).scalars())
        return [key for key in wanted if key not in referenced]

    async def release_blobs(self, keys: Iterable[str], *, dry_run: bool = False) -> list[str]:
        """Delete each blob that no row refers to any more (called after the rows are gone),
        with its renditions; return their keys. ``dry_run`` only returns them."""
        wanted = set(keys)
        if not wanted:
            return []

        async def attempt() -> list[str]:
            async with self.db.write() as session:
                await self.lock_blobs(session, wanted)
                released = await self.unreferenced(session, wanted)
                if not dry_run:
                    for key in released:
                        async with self.renditions.exclusive(sha256_of(key)):
                            await self.blobs.delete(key)
                return released

        return await self.db.retrying(attempt)

    async def blob_transaction(
        self,
        work: Callable[[AsyncSession, BlobChanges], Awaitable[T]],
        temps: Mapping[str, TempBlob] | None = None,
    ) -> T:
        """Run ``work`` in one write transaction that may store the temporary blobs ``temps``
        (by key) and drop blobs; the one way use cases store or delete blobs.

        The keys of ``temps`` are locked first (the lock order above). The blobs that ``work``
        stores are moved to their keys after it, before the commit, and given back when the
        transaction fails; the blobs it drops are released after the commit. A transaction
        that the database aborts as a conflict is run again whole, moves included, so the
        temporary blobs stay where they are: the caller discards them."""
        given = dict(temps or {})

        async def attempt() -> tuple[T, set[str]]:
            changes = BlobChanges(given)
            moved: list[str] = []
            try:
                async with self.db.write() as session:
                    await self.lock_blobs(session, given)
                    result = await work(session, changes)
                    for key in sorted(changes.stored):
                        moved.append(key)  # first: a move that fails half-way is taken back too
                        await self.blobs.commit(given[key], key)
            except BaseException:
                if moved:
                    await self.release_blobs(moved)
                raise
            return result, changes.dropped

        result, dropped = await self.db.retrying(attempt)
        await self.release_blobs(dropped)
        return result

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
