"""The object types of the contract. Scalar fields are plain attributes copied from the read
records (the cheapest way for the executor to resolve them); relations are resolvers that go
through the request's DataLoaders."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import strawberry

from schema import arguments
from schema.context import Context, Info
from schema.ids import to_global_id
from storage import enums, validation
from storage.media.renditions import RenditionView
from storage.sql.records import (
    DownloadableImageRecord,
    ImageRecord,
    ProductRecord,
    VideoRecord,
    as_utc,
    main_image,
)

# The storage enums, registered once as GraphQL enums of the same names; fields are
# annotated with the classes themselves.
strawberry.enum(enums.ImageType)
strawberry.enum(enums.MediaSource)
strawberry.enum(enums.DownloadStatus)
strawberry.enum(enums.RenditionSize)
strawberry.enum(enums.RenditionFormat)
strawberry.enum(enums.ProductSort)
strawberry.enum(enums.SortDirection)


@strawberry.interface(description="An object with an opaque global id.")
class Node:
    id: strawberry.ID


@strawberry.type
class Rendition:
    size: enums.RenditionSize
    url: str
    url2x: str | None
    width: int
    height: int
    mime_type: str


@strawberry.type
class Product(Node):
    id: strawberry.ID
    sku: str
    name: str
    options: list[str] = strawberry.field(
        description="The declared options (variant galleries), in the order given. Empty: any "
        "option name is accepted. Not empty: an image's option must be one of them (else "
        'INVALID at ["option"]).'
    )
    created_at: datetime
    updated_at: datetime
    pk: strawberry.Private[int]

    @classmethod
    def of(cls, record: ProductRecord) -> Product:
        return cls(
            id=to_global_id("Product", record.id),
            sku=record.sku,
            name=record.name,
            options=list(record.options),
            created_at=as_utc(record.created_at),
            updated_at=as_utc(record.updated_at),
            pk=record.id,
        )

    @strawberry.field(
        description="The image marked main; else the lowest position of the default gallery, "
        "then of any gallery; null when the product has no image."
    )
    async def main_image(self, info: Info) -> Image | None:
        gallery = await info.context.loaders.product_images.load(self.pk)
        main = main_image(gallery)
        return Image.of(main, main, info) if main else None

    @strawberry.field(
        description="Ordered by gallery then position. option: only that gallery. "
        "inDefaultGallery: true, only images without an option; false, only option galleries."
    )
    async def images(
        self,
        info: Info,
        option: str | None = None,
        image_type: enums.ImageType | None = None,
        in_default_gallery: bool | None = None,
    ) -> list[Image]:
        choose = gallery_filter(option, image_type, in_default_gallery)
        gallery = await info.context.loaders.product_images.load(self.pk)
        main = main_image(gallery)
        return [Image.of(record, main, info) for record in choose(gallery)]

    @strawberry.field(description="Ordered by position.")
    async def videos(self, info: Info) -> list[Video]:
        return [
            Video.of(record, info)
            for record in await info.context.loaders.product_videos.load(self.pk)
        ]

    @strawberry.field(description="Ordered by position.")
    async def downloadable_images(self, info: Info) -> list[DownloadableImage]:
        records = await info.context.loaders.product_downloadables.load(self.pk)
        return [DownloadableImage.of(record, self.sku) for record in records]


@strawberry.type
class Image(Node):
    id: strawberry.ID
    url: str = strawberry.field(description="Absolute URL of the stored original.")
    position: int = strawberry.field(description="0-based; a gallery's positions are 0..n-1.")
    is_main: bool
    image_type: enums.ImageType
    source: enums.MediaSource
    option: str | None
    alt: str | None
    source_url: str | None = strawberry.field(
        description="The URL it was downloaded from (uploadImage(url), a sync); null for uploads."
    )
    width: int
    height: int
    mime_type: str
    file_size: int
    checksum: str = strawberry.field(description="SHA-256 of the stored bytes, hex.")
    created_at: datetime
    updated_at: datetime
    product_pk: strawberry.Private[int]

    @classmethod
    def of(cls, record: ImageRecord, main: ImageRecord | None, info: Info) -> Image:
        return cls(
            **_stored_media("Image", record, info),
            is_main=main is not None and main.id == record.id,
            image_type=enums.ImageType(record.image_type),
            option=record.option,
            alt=record.alt,
            source_url=record.source_url,
            width=record.width,
            height=record.height,
        )

    @strawberry.field
    async def product(self, info: Info) -> Product:
        return await load_product(info, self.product_pk)

    @strawberry.field(
        description="One entry per requested size, in the order asked (each size at most "
        "once); all sizes when null."
    )
    def renditions(
        self,
        info: Info,
        sizes: list[enums.RenditionSize] | None = None,
        format: enums.RenditionFormat | None = enums.RenditionFormat.ORIGINAL,
    ) -> list[Rendition]:
        context = info.context
        views = rendition_views(
            context, self.checksum, self.width, self.height, self.mime_type, sizes, format
        )
        return [
            Rendition(
                size=view.size,
                url=context.media_url(view.key),
                url2x=context.media_url(view.key_2x) if view.key_2x else None,
                width=view.width,
                height=view.height,
                mime_type=view.mime_type,
            )
            for view in views
        ]


@strawberry.type
class Video(Node):
    id: strawberry.ID
    url: str
    position: int
    source: enums.MediaSource
    mime_type: str
    file_size: int
    checksum: str
    width: int | None
    height: int | None
    duration_seconds: float | None
    created_at: datetime
    updated_at: datetime
    product_pk: strawberry.Private[int]

    @classmethod
    def of(cls, record: VideoRecord, info: Info) -> Video:
        return cls(
            **_stored_media("Video", record, info),
            width=record.width,
            height=record.height,
            duration_seconds=record.duration_seconds,
        )

    @strawberry.field
    async def product(self, info: Info) -> Product:
        return await load_product(info, self.product_pk)


@strawberry.type(description="An image that an ERP integration asked for by URL.")
class DownloadableImage(Node):
    id: strawberry.ID
    product_sku: str
    url: str = strawberry.field(description="The source URL as sent.")
    position: int
    image_type: enums.ImageType
    status: enums.DownloadStatus
    error: str | None
    created_at: datetime
    updated_at: datetime
    image_pk: strawberry.Private[int | None]

    @classmethod
    def of(cls, record: DownloadableImageRecord, sku: str) -> DownloadableImage:
        return cls(
            id=to_global_id("DownloadableImage", record.id),
            product_sku=sku,
            url=record.url,
            position=record.position,
            image_type=enums.ImageType(record.image_type),
            status=enums.DownloadStatus(record.status),
            error=record.error,
            created_at=as_utc(record.created_at),
            updated_at=as_utc(record.updated_at),
            image_pk=record.image_id,
        )

    @strawberry.field(description="The stored image, once DOWNLOADED.")
    async def image(self, info: Info) -> Image | None:
        if self.image_pk is None:
            return None
        images = await load_images(info, [self.image_pk])
        return images[0]


def gallery_filter(
    option: str | None,
    image_type: enums.ImageType | None,
    in_default_gallery: bool | None = None,
) -> Callable[[list[ImageRecord]], list[ImageRecord]]:
    """What ``Product.images(option, imageType, inDefaultGallery)`` keeps of a gallery, once
    its arguments are checked."""
    option = arguments.trimmed(option, "option", validation.OPTION_LENGTH)

    def choose(gallery: list[ImageRecord]) -> list[ImageRecord]:
        return [
            record
            for record in gallery
            if (option is None or record.option == option)
            and (image_type is None or record.image_type == image_type.value)
            and (in_default_gallery is None or in_default_gallery == (record.option is None))
        ]

    return choose


def rendition_views(
    context: Context,
    checksum: str,
    width: int,
    height: int,
    mime_type: str,
    sizes: list[enums.RenditionSize] | None,
    format: enums.RenditionFormat | None,
) -> tuple[RenditionView, ...]:
    """What ``Image.renditions(sizes, format)`` lists for an image (null format: ORIGINAL)."""
    return context.backend.renditions.describe(
        checksum, width, height, mime_type, sizes, format or enums.RenditionFormat.ORIGINAL
    )


def _stored_media(type_name: str, record: ImageRecord | VideoRecord, info: Info) -> dict[str, Any]:
    """The fields that images and videos share, from either record."""
    return {
        "id": to_global_id(type_name, record.id),
        "url": info.context.media_url(record.blob_key),
        "position": record.position,
        "source": enums.MediaSource(record.source),
        "mime_type": record.mime_type,
        "file_size": record.file_size,
        "checksum": record.checksum,
        "created_at": as_utc(record.created_at),
        "updated_at": as_utc(record.updated_at),
        "product_pk": record.product_id,
    }


async def load_product(info: Info, pk: int) -> Product:
    record = await info.context.loaders.product.load(pk)
    if record is None:
        raise LookupError(f"product {pk} vanished")
    return Product.of(record)


async def load_images(info: Info, pks: list[int]) -> list[Image | None]:
    """Images by pk, with ``isMain`` computed from each one's product gallery."""
    loaders = info.context.loaders
    records = await loaders.image.load_many(pks)
    product_pks = sorted({r.product_id for r in records if r is not None})
    galleries = dict(
        zip(product_pks, await loaders.product_images.load_many(product_pks), strict=True)
    )
    return [
        Image.of(r, main_image(galleries[r.product_id]), info) if r is not None else None
        for r in records
    ]
