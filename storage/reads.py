"""The read path: Core selects into plain records, batched by id for the DataLoaders."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.enums import ProductSort
from storage.sql.gallery import IMAGE_ORDER
from storage.sql.pages import Page, SortKey, fetch_page
from storage.sql.records import (
    DownloadableImageRecord,
    ImageRecord,
    ProductRecord,
    Record,
    VideoRecord,
)
from storage.sql.tables import downloadable_table, image_table, product_table, video_table

R = TypeVar("R", bound=Record)


class _Keyed(Protocol):
    @property
    def id(self) -> int: ...


class _OfProduct(Protocol):
    @property
    def product_id(self) -> int: ...


K = TypeVar("K", bound=_Keyed)
P = TypeVar("P", bound=_OfProduct)


_PRODUCT_SORT_COLUMN = {
    ProductSort.SKU: ("sku", str),
    ProductSort.NAME: ("name", str),
    ProductSort.CREATED_AT: ("created_at", datetime),
    ProductSort.UPDATED_AT: ("updated_at", datetime),
}


@dataclass(frozen=True)
class ProductQuery:
    skus: Sequence[str] | None = None
    search: str | None = None
    has_images: bool | None = None
    sort: ProductSort = ProductSort.SKU
    descending: bool = False


@dataclass(frozen=True)
class ImageQuery:
    product_ids: Sequence[int] | None = None
    product_skus: Sequence[str] | None = None
    option: str | None = None
    image_type: str | None = None
    in_default_gallery: bool | None = None
    since_id: int | None = None
    position: int | None = None
    source_urls: Sequence[str] | None = None


def _ids_of_skus(skus: Sequence[str]) -> sa.Select[Any]:
    return sa.select(product_table.c.id).where(product_table.c.sku.in_(list(skus)))


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def _by_ids(
    connection: AsyncConnection, record: type[R], column: str, ids: Sequence[int], *order: Any
) -> list[R]:
    if not ids:
        return []
    table = record.__table__
    query = sa.select(*record.columns()).where(table.c[column].in_(set(ids)))
    rows = await connection.execute(query.order_by(*order) if order else query)
    return [record.from_row(row) for row in rows]


def _group(records: Sequence[P], ids: Sequence[int]) -> list[list[P]]:
    grouped: dict[int, list[P]] = defaultdict(list)
    for item in records:
        grouped[item.product_id].append(item)
    return [grouped.get(i, []) for i in ids]


def _index(records: Sequence[K], ids: Sequence[int]) -> list[K | None]:
    found = {item.id: item for item in records}
    return [found.get(i) for i in ids]


_GALLERY_ORDER = (image_table.c.product_id, *IMAGE_ORDER)


async def products_by_id(c: AsyncConnection, ids: Sequence[int]) -> list[ProductRecord | None]:
    return _index(await _by_ids(c, ProductRecord, "id", ids), ids)


async def product_by_sku(c: AsyncConnection, sku: str) -> ProductRecord | None:
    row = (
        await c.execute(sa.select(*ProductRecord.columns()).where(product_table.c.sku == sku))
    ).first()
    return ProductRecord.from_row(row) if row else None


async def images_by_id(c: AsyncConnection, ids: Sequence[int]) -> list[ImageRecord | None]:
    return _index(await _by_ids(c, ImageRecord, "id", ids), ids)


async def images_by_product(c: AsyncConnection, ids: Sequence[int]) -> list[list[ImageRecord]]:
    """Each product's whole gallery list, in gallery order (``IMAGE_ORDER``)."""
    return _group(await _by_ids(c, ImageRecord, "product_id", ids, *_GALLERY_ORDER), ids)


async def videos_by_id(c: AsyncConnection, ids: Sequence[int]) -> list[VideoRecord | None]:
    return _index(await _by_ids(c, VideoRecord, "id", ids), ids)


async def videos_by_product(c: AsyncConnection, ids: Sequence[int]) -> list[list[VideoRecord]]:
    order = (video_table.c.product_id, video_table.c.position, video_table.c.id)
    return _group(await _by_ids(c, VideoRecord, "product_id", ids, *order), ids)


async def downloadables_by_id(
    c: AsyncConnection, ids: Sequence[int]
) -> list[DownloadableImageRecord | None]:
    return _index(await _by_ids(c, DownloadableImageRecord, "id", ids), ids)


async def downloadables_by_product(
    c: AsyncConnection, ids: Sequence[int]
) -> list[list[DownloadableImageRecord]]:
    t = downloadable_table
    order = (t.c.product_id, t.c.position, t.c.id)
    return _group(await _by_ids(c, DownloadableImageRecord, "product_id", ids, *order), ids)


def _product_conditions(q: ProductQuery) -> list[sa.ColumnElement[bool]]:
    conditions: list[sa.ColumnElement[bool]] = []
    if q.skus is not None:
        conditions.append(product_table.c.sku.in_(list(q.skus)))
    if q.search:
        pattern = f"%{_like_escape(q.search.lower())}%"
        conditions.append(
            sa.or_(
                sa.func.lower(product_table.c.sku).like(pattern, escape="\\"),
                sa.func.lower(product_table.c.name).like(pattern, escape="\\"),
            )
        )
    if q.has_images is not None:
        exists = sa.exists().where(image_table.c.product_id == product_table.c.id)
        conditions.append(exists if q.has_images else ~exists)
    return conditions


async def product_page(
    c: AsyncConnection,
    q: ProductQuery,
    *,
    first: int,
    after: str | None,
    last: int | None = None,
    before: str | None = None,
) -> Page[ProductRecord]:
    column, kind = _PRODUCT_SORT_COLUMN[q.sort]
    keys = [SortKey(product_table.c[column], kind), SortKey(product_table.c.id, int)]
    conditions = _product_conditions(q)
    return await fetch_page(
        c,
        name=f"products:{q.sort.value}:{'desc' if q.descending else 'asc'}",
        query=sa.select(*ProductRecord.columns()).where(*conditions),
        count_query=sa.select(sa.func.count()).select_from(product_table).where(*conditions),
        keys=keys,
        key_of=lambda p: (getattr(p, column), p.id),
        build=ProductRecord.from_row,
        first=first,
        after=after,
        descending=q.descending,
        last=last,
        before=before,
    )


async def image_page(
    c: AsyncConnection,
    q: ImageQuery,
    *,
    first: int,
    after: str | None,
    last: int | None = None,
    before: str | None = None,
) -> Page[ImageRecord]:
    conditions: list[sa.ColumnElement[bool]] = []
    if q.product_ids is not None:
        conditions.append(image_table.c.product_id.in_(list(q.product_ids)))
    if q.product_skus is not None:
        conditions.append(image_table.c.product_id.in_(_ids_of_skus(q.product_skus)))
    if q.option is not None:
        conditions.append(image_table.c.option == q.option)
    if q.image_type is not None:
        conditions.append(image_table.c.image_type == q.image_type)
    if q.in_default_gallery is not None:
        option = image_table.c.option
        conditions.append(option.is_(None) if q.in_default_gallery else option.is_not(None))
    if q.since_id is not None:
        conditions.append(image_table.c.id > q.since_id)
    if q.position is not None:
        conditions.append(image_table.c.position == q.position)
    if q.source_urls is not None:
        conditions.append(image_table.c.source_url.in_(list(q.source_urls)))
    keys = [
        SortKey(_GALLERY_ORDER[0]),
        SortKey(_GALLERY_ORDER[1]),
        SortKey(_GALLERY_ORDER[2], str),
        SortKey(_GALLERY_ORDER[3]),
        SortKey(_GALLERY_ORDER[4]),
    ]
    return await fetch_page(
        c,
        name="images",
        query=sa.select(*ImageRecord.columns()).where(*conditions),
        count_query=sa.select(sa.func.count()).select_from(image_table).where(*conditions),
        keys=keys,
        key_of=lambda i: (
            i.product_id,
            0 if i.option is None else 1,
            i.option or "",
            i.position,
            i.id,
        ),
        build=ImageRecord.from_row,
        first=first,
        after=after,
        last=last,
        before=before,
    )


async def video_page(
    c: AsyncConnection,
    product_ids: Sequence[int] | None,
    *,
    first: int,
    after: str | None,
    product_skus: Sequence[str] | None = None,
    last: int | None = None,
    before: str | None = None,
) -> Page[VideoRecord]:
    conditions = [] if product_ids is None else [video_table.c.product_id.in_(list(product_ids))]
    if product_skus is not None:
        conditions.append(video_table.c.product_id.in_(_ids_of_skus(product_skus)))
    keys = [
        SortKey(video_table.c.product_id),
        SortKey(video_table.c.position),
        SortKey(video_table.c.id),
    ]
    return await fetch_page(
        c,
        name="videos",
        query=sa.select(*VideoRecord.columns()).where(*conditions),
        count_query=sa.select(sa.func.count()).select_from(video_table).where(*conditions),
        keys=keys,
        key_of=lambda v: (v.product_id, v.position, v.id),
        build=VideoRecord.from_row,
        first=first,
        after=after,
        last=last,
        before=before,
    )


async def downloadable_group_page(
    c: AsyncConnection,
    sku: str | None,
    *,
    first: int,
    after: str | None,
    last: int | None = None,
    before: str | None = None,
) -> Page[ProductRecord]:
    """Products that have downloadable images (or the one SKU asked for), ordered by SKU."""
    has_any = sa.exists().where(downloadable_table.c.product_id == product_table.c.id)
    conditions = [product_table.c.sku == sku] if sku is not None else [has_any]
    return await fetch_page(
        c,
        name="downloadable-groups",
        query=sa.select(*ProductRecord.columns()).where(*conditions),
        count_query=sa.select(sa.func.count()).select_from(product_table).where(*conditions),
        keys=[SortKey(product_table.c.sku, str)],
        key_of=lambda p: (p.sku,),
        build=ProductRecord.from_row,
        first=first,
        after=after,
        last=last,
        before=before,
    )
