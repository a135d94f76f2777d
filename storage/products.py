"""Product use cases: create (with its images, like a sync), update (its declared options
included), delete (with every media item and unreferenced blob)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage import sync, validation
from storage.backend import Backend, BlobChanges, ProductRef
from storage.enums import ErrorCode
from storage.errors import MediaFailure, Problem
from storage.sql.gallery import IMAGE_ORDER, insert_row
from storage.sql.tables import downloadable_table, image_table, product_table, utcnow, video_table
from storage.sync import SyncItem


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


@dataclass(frozen=True)
class NewProduct:
    sku: str
    name: str
    options: Sequence[str] | None = None
    images: Sequence[SyncItem] | None = None
    """Downloaded and stored like a sync, in the same transaction as the product."""


def _trimmed_options(options: Sequence[str] | None) -> list[str] | None:
    return None if options is None else [option.strip() for option in options]


async def _insert(session: AsyncSession, sku: str, name: str, options: list[str]) -> int:
    if await _sku_in_use(session, sku):
        raise _sku_taken(sku)
    return await insert_row(session, product_table, sku=sku, name=name, options=options)


async def create_product(backend: Backend, product: NewProduct) -> int:
    """The product, with its images when given: all of it or nothing."""
    problems = validation.required_text(product.sku, ("sku",), validation.SKU_LENGTH)
    problems += validation.required_text(product.name, ("name",), validation.NAME_LENGTH)
    problems += validation.option_list(product.options, ("options",))
    if product.images is not None:
        problems += sync.item_problems(product.images)
    if problems:
        raise MediaFailure(problems)
    sku, name = product.sku.strip(), product.name.strip()
    options = _trimmed_options(product.options) or []
    try:
        if product.images:
            return await sync.sync_new_product(
                backend,
                backend.fetcher,
                product.images,
                options,
                lambda session: _insert(session, sku, name, options),
            )
        async with backend.db.write() as session:
            return await _insert(session, sku, name, options)
    except IntegrityError:
        raise _sku_taken(sku) from None


async def _check_options(session: AsyncSession, product_id: int, options: list[str]) -> None:
    """Declared options may leave out no option gallery that holds images."""
    if not options:
        return
    used = (
        await session.execute(
            sa.select(image_table.c.option)
            .where(image_table.c.product_id == product_id, image_table.c.option.is_not(None))
            .distinct()
        )
    ).scalars()
    left_out = sorted(option for option in used if option not in options)
    if left_out:
        raise MediaFailure.one(
            ("options",),
            ErrorCode.INVALID,
            f"The galleries of {', '.join(map(repr, left_out))} still hold images; move or "
            "delete them before removing the option.",
        )


async def update_product(
    backend: Backend,
    product_id: int,
    sku: str | None,
    name: str | None,
    options: Sequence[str] | None = None,
) -> int:
    problems: list[Problem] = []
    if sku is not None:
        problems += validation.required_text(sku, ("sku",), validation.SKU_LENGTH)
    if name is not None:
        problems += validation.required_text(name, ("name",), validation.NAME_LENGTH)
    problems += validation.option_list(options, ("options",))
    if problems:
        raise MediaFailure(problems)
    values: dict[str, object] = {}
    if sku is not None:
        values["sku"] = sku.strip()
    if name is not None:
        values["name"] = name.strip()
    declared = _trimmed_options(options)
    if declared is not None:
        values["options"] = declared
    try:
        async with backend.db.write() as session:
            await backend.lock_product(session, ProductRef(id=product_id, field=("id",)))
            if "sku" in values and await _sku_in_use(session, str(values["sku"]), product_id):
                raise _sku_taken(str(values["sku"]))
            if declared is not None:
                await _check_options(session, product_id, declared)
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
