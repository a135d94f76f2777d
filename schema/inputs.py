"""Input types of the contract."""

from __future__ import annotations

import strawberry
from strawberry.file_uploads import Upload

from schema.types import ImageType, MediaSource
from storage import enums


@strawberry.input
class ProductFilter:
    skus: list[str] | None = strawberry.field(default=None, description="At most 100.")
    search: str | None = strawberry.field(
        default=None, description="Case-insensitive substring of sku or name."
    )
    has_images: bool | None = None


@strawberry.input
class ImageFilter:
    product_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="At most 100."
    )
    product_skus: list[str] | None = strawberry.field(default=None, description="At most 100.")
    option: str | None = None
    image_type: ImageType | None = None  # type: ignore[valid-type]


@strawberry.input
class ProductCreateInput:
    sku: str
    name: str


@strawberry.input
class ProductUpdateInput:
    sku: str | None = None
    name: str | None = None


@strawberry.input(
    description="Exactly one of file, base64, url; exactly one of productId, productSku."
)
class UploadImageInput:
    product_id: strawberry.ID | None = None
    product_sku: str | None = None
    file: Upload | None = None
    base64: str | None = strawberry.field(
        default=None, description="File content, standard base64."
    )
    filename: str | None = strawberry.field(
        default=None, description="With base64; letters, digits, - _ . only."
    )
    url: str | None = strawberry.field(default=None, description="Fetched by the gateway.")
    position: int | None = strawberry.field(
        default=None, description="Insert here (0-based); append when null."
    )
    image_type: ImageType | None = enums.ImageType.DEFAULT  # type: ignore[valid-type]
    source: MediaSource | None = strawberry.field(  # type: ignore[valid-type]
        default=None, description="UPLOAD for file/base64, URL for url, when null."
    )
    option: str | None = None
    alt: str | None = None


@strawberry.input
class UploadImagesInput:
    product_id: strawberry.ID | None = None
    product_sku: str | None = None
    files: list[Upload] = strawberry.field(description="Appended in order; all or nothing.")
    image_type: ImageType | None = enums.ImageType.DEFAULT  # type: ignore[valid-type]
    option: str | None = None


@strawberry.input
class UploadVideoInput:
    product_id: strawberry.ID | None = None
    product_sku: str | None = None
    file: Upload
    position: int | None = None
    source: MediaSource | None = None  # type: ignore[valid-type]


@strawberry.input
class UpdateImageInput:
    position: int | None = strawberry.field(
        default=None, description="Move to this position; others shift."
    )
    image_type: ImageType | None = None  # type: ignore[valid-type]
    alt: str | None = strawberry.field(default=strawberry.UNSET, description="null clears it.")
    option: str | None = strawberry.field(
        default=strawberry.UNSET, description="null moves the image to the default gallery."
    )


@strawberry.input
class SyncImageItem:
    url: str
    position: int | None = strawberry.field(default=0, description="Ties are broken by list order.")
    image_type: ImageType | None = enums.ImageType.DEFAULT  # type: ignore[valid-type]


@strawberry.input
class SyncImagesInput:
    product_sku: str
    images: list[SyncImageItem]
