"""Product use cases: create, update, delete (with every media item and unreferenced blob)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage import validation
from storage.backend import Backend, BlobChanges, ProductRef
from storage.enums import ErrorCode
from storage.errors import MediaFailure, Problem
from storage.sql.gallery import IMAGE_ORDER, insert_row
from storage.sql.tables import downloadable_table, image_table, product_table, utcnow, video_table


@dataclass(frozen=True)
class DeletedProduct:
    """The ids that went: the product, then its images, videos and downloadable images."""

    product_id: int
    image_ids: list[int]
    video_ids: list[int]
    downloadable_ids: list[int]


def _sku_taken(sku: str) -> MediaFailure:
    return MediaFailure.one(
        ("sku",), ErrorCode.ALREADY_EXISTS, f"A product with SKU {sku!r} already exists."
    )


async def _sku_in_use(session: AsyncSession, sku: str, other_than: int | None = None) -> bool:
    query = sa.select(product_table.c.id).where(product_table.c.sku == sku)
    if other_than is not None:
        query = query.where(product_table.c.id != other_than)
    return (await session.execute(query)).first() is not None


async def create_product(backend: Backend, sku: str, name: str) -> int:
    problems = validation.required_text(sku, ("sku",), validation.SKU_LENGTH)
    problems += validation.required_text(name, ("name",), validation.NAME_LENGTH)
    if problems:
        raise MediaFailure(problems)
    sku, name = sku.strip(), name.strip()
    try:
        async with backend.db.write() as session:
            if await _sku_in_use(session, sku):
                raise _sku_taken(sku)
            return await insert_row(session, product_table, sku=sku, name=name)
    except IntegrityError:
        raise _sku_taken(sku) from None


async def update_product(
    backend: Backend, product_id: int, sku: str | None, name: str | None
) -> int:
    problems: list[Problem] = []
    if sku is not None:
        problems += validation.required_text(sku, ("sku",), validation.SKU_LENGTH)
    if name is not None:
        problems += validation.required_text(name, ("name",), validation.NAME_LENGTH)
    if problems:
        raise MediaFailure(problems)
    values: dict[str, object] = {}
    if sku is not None:
        values["sku"] = sku.strip()
    if name is not None:
        values["name"] = name.strip()
    try:
        async with backend.db.write() as session:
            await backend.lock_product(session, ProductRef(id=product_id, field=("id",)))
            if "sku" in values and await _sku_in_use(session, str(values["sku"]), product_id):
                raise _sku_taken(str(values["sku"]))
            if values:
                values["updated_at"] = utcnow()
                await session.execute(
                    sa.update(product_table)
                    .where(product_table.c.id == product_id)
                    .values(**values)
                )
    except IntegrityError:
        raise _sku_taken(str(values["sku"])) from None
    return product_id


async def delete_product(backend: Backend, product_id: int) -> DeletedProduct:
    async def work(session: AsyncSession, changes: BlobChanges) -> DeletedProduct:
        await backend.lock_product(session, ProductRef(id=product_id, field=("id",)))
        images = (
            await session.execute(
                sa.select(image_table.c.id, image_table.c.blob_key)
                .where(image_table.c.product_id == product_id)
                .order_by(*IMAGE_ORDER)
            )
        ).all()
        videos = (
            await session.execute(
                sa.select(video_table.c.id, video_table.c.blob_key)
                .where(video_table.c.product_id == product_id)
                .order_by(video_table.c.position, video_table.c.id)
            )
        ).all()
        downloadable_ids = list(
            (
                await session.execute(
                    sa.select(downloadable_table.c.id)
                    .where(downloadable_table.c.product_id == product_id)
                    .order_by(downloadable_table.c.position, downloadable_table.c.id)
                )
            ).scalars()
        )
        for table in (downloadable_table, image_table, video_table):
            await session.execute(sa.delete(table).where(table.c.product_id == product_id))
        await session.execute(sa.delete(product_table).where(product_table.c.id == product_id))
        changes.drop([r.blob_key for r in images] + [r.blob_key for r in videos])
        return DeletedProduct(
            product_id=product_id,
            image_ids=[r.id for r in images],
            video_ids=[r.id for r in videos],
            downloadable_ids=downloadable_ids,
        )

    return await backend.blob_transaction(work)
