"""Input types of the contract. Free text is checked before any SQL by the rules of
``storage.validation``: at most the length its description gives, no control character
(Unicode Cc); SKUs and options are trimmed."""

from __future__ import annotations

from dataclasses import replace

import strawberry
from strawberry.file_uploads import Upload

from schema import arguments
from storage import enums
from storage.validation import (
    ALT_LENGTH,
    FILENAME_LENGTH,
    NAME_LENGTH,
    OPTION_LENGTH,
    SEARCH_LENGTH,
    SKU_LENGTH,
    URL_LENGTH,
)

TEXT = "no control characters"
SKU = f"At most {SKU_LENGTH} characters, {TEXT}; trimmed."
OPTION = f"At most {OPTION_LENGTH} characters, {TEXT}; trimmed."


@strawberry.input
class ProductFilter:
    skus: list[str] | None = strawberry.field(
        default=None, description=f"At most 100, each at most {SKU_LENGTH} characters."
    )
    search: str | None = strawberry.field(
        default=None,
        description=f"Case-insensitive substring of sku or name; at most {SEARCH_LENGTH} "
        f"characters, {TEXT}.",
    )
    has_images: bool | None = None

    def checked(self) -> ProductFilter:
        """This filter once its text is within its limits (else BAD_USER_INPUT), trimmed."""
        return replace(
            self,
            skus=arguments.trimmed_list(self.skus, "filter.skus", SKU_LENGTH),
            search=arguments.text(self.search, "filter.search", SEARCH_LENGTH),
        )


@strawberry.input
class ImageFilter:
    product_ids: list[strawberry.ID] | None = strawberry.field(
        default=None, description="At most 100."
    )
    product_skus: list[str] | None = strawberry.field(
        default=None, description=f"At most 100, each at most {SKU_LENGTH} characters."
    )
    option: str | None = strawberry.field(default=None, description=OPTION)
    image_type: enums.ImageType | None = None
    in_default_gallery: bool | None = strawberry.field(
        default=None,
        description="true: only images without an option; false: only option galleries.",
    )
    since_id: strawberry.ID | None = strawberry.field(
        default=None, description="Only images created after this one (an Image id)."
    )
    position: int | None = strawberry.field(
        default=None, description="Only images at this position of their gallery (0-based)."
    )
    source_urls: list[str] | None = strawberry.field(
        default=None,
        description=f"Only images downloaded from these URLs; at most 100, each at most "
        f"{URL_LENGTH} characters.",
    )

    def checked(self) -> ImageFilter:
        """This filter once its text is within its limits (else BAD_USER_INPUT), trimmed."""
        return replace(
            self,
            source_urls=arguments.text_list(self.source_urls, "filter.sourceUrls", URL_LENGTH),
            product_skus=arguments.trimmed_list(
                self.product_skus, "filter.productSkus", SKU_LENGTH
            ),
            option=arguments.trimmed(self.option, "filter.option", OPTION_LENGTH),
        )


@strawberry.input
class SyncImageItem:
    url: str = strawberry.field(description=f"At most {URL_LENGTH} characters, {TEXT}.")
    position: int | None = strawberry.field(default=0, description="Ties are broken by list order.")
    image_type: enums.ImageType | None = enums.ImageType.DEFAULT
    alt: str | None = strawberry.field(
        default=None,
        description=f"Set on the image when given; when null a new image gets none and an "
        f"image the product already has keeps its own. At most {ALT_LENGTH} characters, {TEXT}.",
    )
    option: str | None = strawberry.field(
        default=None,
        description="The image's gallery when given; when null a new image goes to the "
        f"default gallery and an image the product already has stays where it is. {OPTION}",
    )


OPTIONS = (
    f"The declared options (variant galleries), in order; at most 100, each {OPTION} "
    "Empty: any option name is accepted."
)


@strawberry.input
class ProductCreateInput:
    sku: str = strawberry.field(description=SKU)
    name: str = strawberry.field(description=f"At most {NAME_LENGTH} characters, {TEXT}; trimmed.")
    options: list[str] | None = strawberry.field(default=None, description=OPTIONS)
    images: list[SyncImageItem] | None = strawberry.field(
        default=None,
        description="Downloaded and stored like syncImages, with the product: when one item "
        'fails, no product is created and the errors name the item (["images", "2", "url"]).',
    )


@strawberry.input
class ProductUpdateInput:
    sku: str | None = strawberry.field(default=None, description=SKU)
    name: str | None = strawberry.field(
        default=None, description=f"At most {NAME_LENGTH} characters, {TEXT}; trimmed."
    )
    options: list[str] | None = strawberry.field(
        default=None,
        description=f"{OPTIONS} Removing an option whose gallery holds images is INVALID.",
    )


@strawberry.input(
    description="Exactly one of file, base64, url; exactly one of productId, productSku."
)
class UploadImageInput:
    product_id: strawberry.ID | None = None
    product_sku: str | None = strawberry.field(default=None, description=SKU)
    file: Upload | None = None
    base64: str | None = strawberry.field(
        default=None, description="File content, standard base64."
    )
    filename: str | None = strawberry.field(
        default=None,
        description=f"With base64; at most {FILENAME_LENGTH} letters, digits, - _ . only.",
    )
    url: str | None = strawberry.field(
        default=None,
        description=f"Fetched by the gateway; at most {URL_LENGTH} characters, {TEXT}.",
    )
    position: int | None = strawberry.field(
        default=None, description="Insert here (0-based); append when null."
    )
    image_type: enums.ImageType | None = enums.ImageType.DEFAULT
    source: enums.MediaSource | None = strawberry.field(
        default=None, description="UPLOAD for file/base64, URL for url, when null."
    )
    option: str | None = strawberry.field(default=None, description=OPTION)
    alt: str | None = strawberry.field(
        default=None, description=f"At most {ALT_LENGTH} characters, {TEXT}."
    )


@strawberry.input
class UploadImagesInput:
    product_id: strawberry.ID | None = None
    product_sku: str | None = strawberry.field(default=None, description=SKU)
    files: list[Upload] = strawberry.field(
        description="Appended in order; all or nothing. The same bytes twice are DUPLICATE."
    )
    image_type: enums.ImageType | None = enums.ImageType.DEFAULT
    option: str | None = strawberry.field(default=None, description=OPTION)


@strawberry.input(
    description="Exactly one of productId, productSku. The file is required: a video the "
    "gateway should fetch goes through uploadVideoFromUrl."
)
class UploadVideoInput:
    product_id: strawberry.ID | None = None
    product_sku: str | None = strawberry.field(default=None, description=SKU)
    file: Upload
    url: str | None = strawberry.field(
        default=None,
        description="Refused (INVALID) beside the required file: give the URL to "
        "uploadVideoFromUrl instead.",
    )
    position: int | None = None
    source: enums.MediaSource | None = None


@strawberry.input(description="Exactly one of productId, productSku.")
class UploadVideoFromUrlInput:
    product_id: strawberry.ID | None = None
    product_sku: str | None = strawberry.field(default=None, description=SKU)
    url: str = strawberry.field(
        description=f"Fetched by the gateway (the fetcher's rules and the video limit); at "
        f"most {URL_LENGTH} characters, {TEXT}."
    )
    position: int | None = None
    source: enums.MediaSource | None = strawberry.field(default=None, description="URL when null.")


@strawberry.input
class UpdateImageInput:
    position: int | None = strawberry.field(
        default=None, description="Move to this position; others shift."
    )
    image_type: enums.ImageType | None = None
    alt: str | None = strawberry.field(
        default=strawberry.UNSET,
        description=f"null clears it. At most {ALT_LENGTH} characters, {TEXT}.",
    )
    option: str | None = strawberry.field(
        default=strawberry.UNSET,
        description=f"null moves the image to the default gallery. {OPTION}",
    )


@strawberry.input
class SyncImagesInput:
    product_sku: str = strawberry.field(
        description=f"{SKU} In syncImagesBulk each SKU once (REPEATED_ID)."
    )
    images: list[SyncImageItem]
