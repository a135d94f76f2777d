"""The Query root."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import strawberry
from sqlalchemy.ext.asyncio import AsyncConnection

from schema import arguments
from schema.connections import (
    Connection,
    DownloadableImageGroupConnection,
    ProductDownloadableImages,
    named,
    page_window,
    window,
)
from schema.context import Info
from schema.errors import bad_user_input
from schema.ids import from_global_id, pk_of
from schema.inputs import ImageFilter, ProductFilter
from schema.types import (
    DownloadableImage,
    Image,
    Node,
    Product,
    Video,
    load_images,
)
from storage import enums, reads
from storage.sql.pages import InvalidCursor, Page
from storage.sql.records import ProductRecord, main_image
from storage.validation import SKU_LENGTH

T = TypeVar("T")

PAIRS = "first/after and last/before (Relay) are exclusive pairs."


def _product_pks(ids: list[strawberry.ID] | None) -> list[int] | None:
    """Its length is bounded before execution (schema/list_bounds.py)."""
    if ids is None:
        return None
    pks = [pk_of(i, "Product") for i in ids]
    if None in pks:
        raise bad_user_input("productIds holds a value that is not a Product id.")
    return [pk for pk in pks if pk is not None]


def _image_query(filter: ImageFilter) -> reads.ImageQuery:
    since = filter.since_id
    since_pk = pk_of(since, "Image") if since is not None else None
    if since is not None and since_pk is None:
        raise bad_user_input("filter.sinceId is not an Image id.")
    return reads.ImageQuery(
        product_ids=_product_pks(filter.product_ids),
        product_skus=filter.product_skus,
        option=filter.option,
        image_type=filter.image_type.value if filter.image_type else None,
        in_default_gallery=filter.in_default_gallery,
        since_id=since_pk,
        position=filter.position,
        source_urls=filter.source_urls,
    )


async def _page(read: Awaitable[Page[T]]) -> Page[T]:
    try:
        return await read
    except InvalidCursor as exc:
        raise bad_user_input(str(exc)) from None


@dataclass(frozen=True)
class ProductRef:
    """What ``product(id, sku)`` looks for: a pk (None: the id names no product) or a SKU."""

    pk: int | None
    sku: str | None


def product_ref(id: str | None, sku: str | None) -> ProductRef:
    """The product that ``product(id, sku)`` asks for, once its arguments are checked."""
    if (id is None) == (sku is None):
        raise bad_user_input("Give exactly one of id and sku.")
    if id is not None:
        return ProductRef(pk_of(id, "Product"), None)
    return ProductRef(None, arguments.trimmed(sku, "sku", SKU_LENGTH) or "")


@dataclass(frozen=True)
class ProductListing:
    """A ``products`` page to read, from the field's arguments once they are checked."""

    query: reads.ProductQuery
    window: dict[str, Any]
    """``first`` and ``after``, or ``last`` and ``before`` (``page_window``)."""


def product_listing(
    first: int | None = 20,
    after: str | None = None,
    filter: ProductFilter | None = None,
    sort_by: enums.ProductSort | None = enums.ProductSort.SKU,
    direction: enums.SortDirection | None = enums.SortDirection.ASC,
    last: int | None = None,
    before: str | None = None,
    *,
    first_named: Callable[[], bool],
) -> ProductListing:
    """The page that ``products`` reads; its keyword arguments are the field's, and
    ``first_named`` tells whether the request gave ``first`` a value."""
    window = page_window(first, after, last, before, 20, 100, first_named=first_named)
    if filter is not None:
        filter = filter.checked()
    query = reads.ProductQuery(
        skus=filter.skus if filter else None,
        search=filter.search if filter else None,
        has_images=filter.has_images if filter else None,
        sort=enums.ProductSort(sort_by or enums.ProductSort.SKU),
        descending=direction == enums.SortDirection.DESC,
    )
    return ProductListing(query, window)


async def product_page(c: AsyncConnection, listing: ProductListing) -> Page[ProductRecord]:
    return await _page(reads.product_page(c, listing.query, **listing.window))


async def node_by_id(info: Info, value: str) -> Node | None:
    decoded = from_global_id(value)
    if decoded is None:
        return None
    type_name, pk = decoded
    loaders = info.context.loaders
    if type_name == "Product":
        record = await loaders.product.load(pk)
        return Product.of(record) if record else None
    if type_name == "Image":
        return (await load_images(info, [pk]))[0]
    if type_name == "Video":
        video = await loaders.video.load(pk)
        return Video.of(video, info) if video else None
    if type_name == "DownloadableImage":
        item = await loaders.downloadable.load(pk)
        product = await loaders.product.load(item.product_id) if item else None
        return DownloadableImage.of(item, product.sku) if item and product else None
    return None


@strawberry.type
class Query:
    @strawberry.field(description="Any object by its global id.")
    async def node(self, info: Info, id: strawberry.ID) -> Node | None:
        return await node_by_id(info, id)

    @strawberry.field(description="Exactly one of id and sku.")
    async def product(
        self, info: Info, id: strawberry.ID | None = None, sku: str | None = None
    ) -> Product | None:
        ref = product_ref(id, sku)
        if ref.sku is None:
            record = await info.context.loaders.product.load(ref.pk) if ref.pk else None
        else:
            async with info.context.backend.db.read() as connection_:
                record = await reads.product_by_sku(connection_, ref.sku)
        return Product.of(record) if record else None

    @strawberry.field(description=f"first or last: 1..100. {PAIRS}")
    async def products(
        self,
        info: Info,
        first: int | None = 20,
        after: str | None = None,
        filter: ProductFilter | None = None,
        sort_by: enums.ProductSort | None = enums.ProductSort.SKU,
        direction: enums.SortDirection | None = enums.SortDirection.ASC,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Product]:
        listing = product_listing(
            first,
            after,
            filter,
            sort_by,
            direction,
            last,
            before,
            first_named=lambda: named(info, "first"),
        )
        async with info.context.backend.db.read() as c:
            page = await product_page(c, listing)
        for record in page.items:
            info.context.loaders.product.prime(record.id, record)
        nodes = [Product.of(r) for r in page.items]
        return Connection.of(page, nodes)

    @strawberry.field
    async def image(self, info: Info, id: strawberry.ID) -> Image | None:
        pk = pk_of(id, "Image")
        return (await load_images(info, [pk]))[0] if pk else None

    @strawberry.field(
        description="Ordered by product, option (nulls first), position. first or last: "
        f"1..1000. {PAIRS}"
    )
    async def images(
        self,
        info: Info,
        first: int | None = 100,
        after: str | None = None,
        filter: ImageFilter | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Image]:
        page_of = window(info, first, after, last, before, 100, 1000)
        query = _image_query(filter.checked()) if filter else reads.ImageQuery()
        async with info.context.backend.db.read() as c:
            page = await _page(reads.image_page(c, query, **page_of))
        product_pks = sorted({r.product_id for r in page.items})
        galleries = await info.context.loaders.product_images.load_many(product_pks)
        mains = {pk: main_image(g) for pk, g in zip(product_pks, galleries, strict=True)}
        nodes = [Image.of(r, mains[r.product_id], info) for r in page.items]
        return Connection.of(page, nodes)

    @strawberry.field
    async def video(self, info: Info, id: strawberry.ID) -> Video | None:
        pk = pk_of(id, "Video")
        record = await info.context.loaders.video.load(pk) if pk else None
        return Video.of(record, info) if record else None

    @strawberry.field(
        description="Ordered by product, position. first or last: 1..1000; productIds, "
        f"productSkus: at most 100. {PAIRS}"
    )
    async def videos(
        self,
        info: Info,
        first: int | None = 100,
        after: str | None = None,
        product_ids: list[strawberry.ID] | None = None,
        product_skus: list[str] | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> Connection[Video]:
        page_of = window(info, first, after, last, before, 100, 1000)
        pks = _product_pks(product_ids)
        skus = arguments.trimmed_list(product_skus, "productSkus", SKU_LENGTH)
        async with info.context.backend.db.read() as c:
            page = await _page(reads.video_page(c, pks, product_skus=skus, **page_of))
        nodes = [Video.of(r, info) for r in page.items]
        return Connection.of(page, nodes)

    @strawberry.field(description=f"Grouped by SKU, ordered by SKU. first or last: 1..100. {PAIRS}")
    async def downloadable_images(
        self,
        info: Info,
        product_sku: str | None = None,
        first: int | None = 20,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> DownloadableImageGroupConnection:
        page_of = window(info, first, after, last, before, 20, 100)
        product_sku = arguments.trimmed(product_sku, "productSku", SKU_LENGTH)
        async with info.context.backend.db.read() as c:
            page = await _page(reads.downloadable_group_page(c, product_sku, **page_of))
        products = page.items
        lists = await info.context.loaders.product_downloadables.load_many([p.id for p in products])
        nodes = [
            ProductDownloadableImages(
                product_sku=p.sku,
                images=[DownloadableImage.of(r, p.sku) for r in records],
            )
            for p, records in zip(products, lists, strict=True)
        ]
        return DownloadableImageGroupConnection.of(page, nodes)
