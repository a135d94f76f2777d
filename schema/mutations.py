"""The Mutation root. Each mutation turns its input into a storage use case call; a
``MediaFailure`` becomes the payload's userErrors with a null result (nothing was changed)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import TypeVar

import strawberry

from schema.context import Info
from schema.errors import MediaError, errors_of
from schema.ids import decode, decode_list
from schema.ids import to_global_id as _gid
from schema.inputs import (
    ProductCreateInput,
    ProductUpdateInput,
    SyncImageItem,
    SyncImagesInput,
    UpdateImageInput,
    UploadImageInput,
    UploadImagesInput,
    UploadVideoFromUrlInput,
    UploadVideoInput,
)
from schema.types import DownloadableImage, Image, Product, Video, load_images, load_product
from schema.uploads import check_filename, from_base64, from_upload
from storage import enums, images, products, sync, validation, videos
from storage.backend import ProductRef
from storage.errors import MediaFailure
from storage.receiving import Content, FromUrl

T = TypeVar("T")


@strawberry.type
class ProductPayload:
    product: Product | None
    user_errors: list[MediaError]


@strawberry.type
class ImagePayload:
    image: Image | None
    user_errors: list[MediaError]


@strawberry.type
class ImagesPayload:
    images: list[Image] | None
    user_errors: list[MediaError]


@strawberry.type
class VideoPayload:
    video: Video | None
    user_errors: list[MediaError]


@strawberry.type
class DeletePayload:
    deleted_ids: list[strawberry.ID]
    user_errors: list[MediaError]


@strawberry.type
class SyncImagesPayload:
    product_sku: str
    images: list[DownloadableImage] | None = strawberry.field(
        description="The product's full list after the sync."
    )
    user_errors: list[MediaError]


async def run(info: Info, action: Callable[[], Awaitable[T]]) -> tuple[T | None, list[MediaError]]:
    """Run a use case. File parts stay open: another field of the request may use the same
    part; the GraphQL view closes them once the response is sent."""
    try:
        result = await action()
    except MediaFailure as failure:
        return None, errors_of(failure)
    info.context.loaders.clear()
    return result, []


def product_ref(product_id: strawberry.ID | None, product_sku: str | None) -> ProductRef:
    problems = validation.optional_text(product_sku, ("productSku",), validation.SKU_LENGTH)
    if problems:
        raise MediaFailure(problems)
    if product_id is None and validation.is_blank(product_sku):
        raise MediaFailure.one(
            ("productId",), enums.ErrorCode.REQUIRED, "Give one of productId and productSku."
        )
    if product_id is not None and product_sku is not None:
        raise MediaFailure.one(
            ("productSku",),
            enums.ErrorCode.INVALID,
            "Give only one of productId and productSku.",
        )
    if product_id is not None:
        return ProductRef(id=decode(product_id, "Product", ("productId",)), field=("productId",))
    return ProductRef(sku=(product_sku or "").strip(), field=("productSku",))


def _one_of(input: object, names: tuple[str, ...]) -> None:
    """Exactly one of the content fields ``names`` of an upload input."""
    given = [name for name in names if getattr(input, name) is not None]
    listed = ", ".join(names[:-1]) + f" and {names[-1]}"
    if not given:
        raise MediaFailure.one((names[0],), enums.ErrorCode.REQUIRED, f"Give one of {listed}.")
    if len(given) > 1:
        raise MediaFailure.one((given[1],), enums.ErrorCode.INVALID, f"Give only one of {listed}.")


def _image_content(input: UploadImageInput) -> Content:
    _one_of(input, ("file", "base64", "url"))
    if input.url is not None:
        return FromUrl(input.url, ("url",))
    if input.base64 is not None:
        check_filename(input.filename, ("filename",))
        return from_base64(input.base64, ("base64",))
    return from_upload(input.file, ("file",))


async def _upload_video(
    info: Info,
    input: UploadVideoInput | UploadVideoFromUrlInput,
    content: Callable[[], Content],
) -> VideoPayload:
    """The one path of both video uploads; ``content`` refuses inside the payload's errors."""
    backend = info.context.backend

    async def action() -> int:
        new = videos.NewVideo(
            product=product_ref(input.product_id, input.product_sku),
            content=content(),
            position=input.position,
            source=enums.MediaSource(input.source) if input.source else None,
        )
        return await videos.upload_video(backend, new)

    pk, errors = await run(info, action)
    return await _video_payload(info, pk, errors)


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def product_create(self, info: Info, input: ProductCreateInput) -> ProductPayload:
        backend = info.context.backend
        new = products.NewProduct(
            sku=input.sku,
            name=input.name,
            options=input.options,
            images=None if input.images is None else _sync_items(input.images),
        )
        pk, errors = await run(info, lambda: products.create_product(backend, new))
        return await _product_payload(info, pk, errors)

    @strawberry.mutation
    async def product_update(
        self, info: Info, id: strawberry.ID, input: ProductUpdateInput
    ) -> ProductPayload:
        backend = info.context.backend

        async def action() -> int:
            pk = decode(id, "Product", ("id",))
            return await products.update_product(backend, pk, input.sku, input.name, input.options)

        pk, errors = await run(info, action)
        return await _product_payload(info, pk, errors)

    @strawberry.mutation(description="Deletes the product with all its media.")
    async def product_delete(self, info: Info, id: strawberry.ID) -> DeletePayload:
        backend = info.context.backend

        async def action() -> list[strawberry.ID]:
            deleted = await products.delete_product(backend, decode(id, "Product", ("id",)))
            return [
                strawberry.ID(id),
                *(_gid("Image", pk) for pk in deleted.image_ids),
                *(_gid("Video", pk) for pk in deleted.video_ids),
                *(_gid("DownloadableImage", pk) for pk in deleted.downloadable_ids),
            ]

        ids, errors = await run(info, action)
        return DeletePayload(deleted_ids=ids or [], user_errors=errors)

    @strawberry.mutation
    async def upload_image(self, info: Info, input: UploadImageInput) -> ImagePayload:
        backend = info.context.backend

        async def action() -> int:
            ref = product_ref(input.product_id, input.product_sku)
            new = images.NewImage(
                product=ref,
                content=_image_content(input),
                position=input.position,
                image_type=enums.ImageType(input.image_type or enums.ImageType.DEFAULT),
                source=enums.MediaSource(input.source) if input.source else None,
                option=input.option,
                alt=input.alt,
            )
            return await images.upload_image(backend, new)

        pk, errors = await run(info, action)
        return await _image_payload(info, pk, errors)

    @strawberry.mutation(description="Appends several files to one gallery, all or nothing.")
    async def upload_images(self, info: Info, input: UploadImagesInput) -> ImagesPayload:
        backend = info.context.backend

        async def action() -> list[int]:
            ref = product_ref(input.product_id, input.product_sku)
            problems = validation.id_list(input.files, ("files",), item="file")
            if problems:
                raise MediaFailure(problems)
            new = [
                images.NewImage(
                    product=ref,
                    content=from_upload(upload, ("files", str(index))),
                    image_type=enums.ImageType(input.image_type or enums.ImageType.DEFAULT),
                    option=input.option,
                )
                for index, upload in enumerate(input.files)
            ]
            return await images.upload_images(backend, new)

        pks, errors = await run(info, action)
        return await _images_payload(info, pks, errors)

    @strawberry.mutation
    async def upload_video(self, info: Info, input: UploadVideoInput) -> VideoPayload:
        def content() -> Content:
            if input.url is not None:
                raise MediaFailure.one(
                    ("url",),
                    enums.ErrorCode.INVALID,
                    "uploadVideo takes the file; give a URL to uploadVideoFromUrl instead.",
                )
            return from_upload(input.file, ("file",))

        return await _upload_video(info, input, content)

    @strawberry.mutation(description="A video fetched by the gateway, with the fetcher's rules.")
    async def upload_video_from_url(
        self, info: Info, input: UploadVideoFromUrlInput
    ) -> VideoPayload:
        return await _upload_video(info, input, lambda: FromUrl(input.url, ("url",)))

    @strawberry.mutation
    async def update_image(
        self, info: Info, id: strawberry.ID, input: UpdateImageInput
    ) -> ImagePayload:
        backend = info.context.backend

        async def action() -> int:
            changes = images.ImageChanges(
                position=input.position,
                image_type=enums.ImageType(input.image_type) if input.image_type else None,
                alt=images.KEEP if input.alt is strawberry.UNSET else input.alt,
                option=images.KEEP if input.option is strawberry.UNSET else input.option,
            )
            return await images.update_image(backend, decode(id, "Image", ("id",)), changes)

        pk, errors = await run(info, action)
        return await _image_payload(info, pk, errors)

    @strawberry.mutation
    async def update_video(self, info: Info, id: strawberry.ID, position: int) -> VideoPayload:
        backend = info.context.backend

        async def action() -> int:
            return await videos.update_video(backend, decode(id, "Video", ("id",)), position)

        pk, errors = await run(info, action)
        return await _video_payload(info, pk, errors)

    @strawberry.mutation(
        description="imageIds: every image of one gallery (product + option), in the new order."
    )
    async def reorder_images(self, info: Info, image_ids: list[strawberry.ID]) -> ImagesPayload:
        backend = info.context.backend

        async def action() -> list[int]:
            pks = decode_list(image_ids, "Image", ("imageIds",))
            return await images.reorder_images(backend, pks)

        pks, errors = await run(info, action)
        return await _images_payload(info, pks, errors)

    @strawberry.mutation(description="videoIds: every video of one product, in the new order.")
    async def reorder_videos(self, info: Info, video_ids: list[strawberry.ID]) -> ProductPayload:
        backend = info.context.backend

        async def action() -> int:
            pks = decode_list(video_ids, "Video", ("videoIds",))
            return await videos.reorder_videos(backend, pks)

        pk, errors = await run(info, action)
        return await _product_payload(info, pk, errors)

    @strawberry.mutation(description="Marks this image main; the previous main is unmarked.")
    async def set_main_image(self, info: Info, image_id: strawberry.ID) -> ImagePayload:
        backend = info.context.backend

        async def action() -> int:
            return await images.set_main_image(backend, decode(image_id, "Image", ("imageId",)))

        pk, errors = await run(info, action)
        return await _image_payload(info, pk, errors)

    @strawberry.mutation(description="All ids must belong to one product; positions close up.")
    async def delete_images(self, info: Info, ids: list[strawberry.ID]) -> DeletePayload:
        backend = info.context.backend

        async def action() -> list[int]:
            return await images.delete_images(backend, decode_list(ids, "Image", ("ids",)))

        pks, errors = await run(info, action)
        return _deleted("Image", pks, errors)

    @strawberry.mutation(description="All ids must belong to one product; positions close up.")
    async def delete_videos(self, info: Info, ids: list[strawberry.ID]) -> DeletePayload:
        backend = info.context.backend

        async def action() -> list[int]:
            return await videos.delete_videos(backend, decode_list(ids, "Video", ("ids",)))

        pks, errors = await run(info, action)
        return _deleted("Video", pks, errors)

    @strawberry.mutation(description="Upsert of a SKU's image URLs; all or nothing.")
    async def sync_images(self, info: Info, input: SyncImagesInput) -> SyncImagesPayload:
        backend = info.context.backend
        (outcome,) = await sync.sync_images(backend, backend.fetcher, [_sync_request(input)])
        return await _sync_payload(info, outcome)

    @strawberry.mutation(
        description="Each SKU is its own all-or-nothing sync; at most 100, each SKU once. "
        'Error fields start at the input: ["inputs", "2", "images", "0", "url"].'
    )
    async def sync_images_bulk(
        self, info: Info, inputs: list[SyncImagesInput]
    ) -> list[SyncImagesPayload]:
        if len(inputs) > validation.MAX_LIST:
            error = MediaError(
                field=["inputs"],
                code=enums.ErrorCode.TOO_MANY,
                message=f"{len(inputs)} inputs; at most {validation.MAX_LIST}. None was run.",
            )
            return [
                SyncImagesPayload(product_sku=i.product_sku, images=None, user_errors=[error])
                for i in inputs
            ]
        backend = info.context.backend
        requests = [_sync_request(i) for i in inputs]
        outcomes = await sync.sync_images(backend, backend.fetcher, requests)
        return [
            await _sync_payload(info, outcome, ("inputs", str(index)))
            for index, outcome in enumerate(outcomes)
        ]

    @strawberry.mutation(description="Rebuilds the renditions of these images (at most 100).")
    async def regenerate_renditions(
        self, info: Info, image_ids: list[strawberry.ID]
    ) -> ImagesPayload:
        backend = info.context.backend

        async def action() -> list[int]:
            pks = decode_list(image_ids, "Image", ("imageIds",))
            return await images.regenerate_renditions(backend, pks)

        pks, errors = await run(info, action)
        return await _images_payload(info, pks, errors)


async def _product_payload(info: Info, pk: int | None, errors: list[MediaError]) -> ProductPayload:
    return ProductPayload(product=await load_product(info, pk) if pk else None, user_errors=errors)


async def _image_payload(info: Info, pk: int | None, errors: list[MediaError]) -> ImagePayload:
    image = (await load_images(info, [pk]))[0] if pk else None
    return ImagePayload(image=image, user_errors=errors)


async def _images_payload(
    info: Info, pks: list[int] | None, errors: list[MediaError]
) -> ImagesPayload:
    loaded = await load_images(info, pks) if pks else None
    return ImagesPayload(
        images=[i for i in loaded if i] if loaded is not None else None, user_errors=errors
    )


async def _video_payload(info: Info, pk: int | None, errors: list[MediaError]) -> VideoPayload:
    record = await info.context.loaders.video.load(pk) if pk else None
    return VideoPayload(video=Video.of(record, info) if record else None, user_errors=errors)


def _deleted(type_name: str, pks: list[int] | None, errors: list[MediaError]) -> DeletePayload:
    return DeletePayload(deleted_ids=[_gid(type_name, pk) for pk in pks or []], user_errors=errors)


def _sync_items(items: list[SyncImageItem]) -> list[sync.SyncItem]:
    return [
        sync.SyncItem(
            url=item.url,
            position=item.position,
            image_type=enums.ImageType(item.image_type or enums.ImageType.DEFAULT),
            alt=item.alt,
            option=item.option,
        )
        for item in items
    ]


def _sync_request(input: SyncImagesInput) -> sync.SyncRequest:
    return sync.SyncRequest(sku=input.product_sku, items=_sync_items(input.images))


async def _sync_payload(
    info: Info, outcome: sync.SyncOutcome, at: tuple[str, ...] = ()
) -> SyncImagesPayload:
    """``at``: where the input sits in the mutation's arguments (its errors' fields start there)."""
    if outcome.problems or outcome.product_id is None:
        return SyncImagesPayload(
            product_sku=outcome.sku,
            images=None,
            user_errors=[
                MediaError.of(replace(p, field=(*at, *p.field))) for p in outcome.problems
            ],
        )
    loaders = info.context.loaders
    loaders.clear()
    product = await load_product(info, outcome.product_id)
    records = await loaders.product_downloadables.load(outcome.product_id)
    return SyncImagesPayload(
        product_sku=product.sku,
        images=[DownloadableImage.of(r, product.sku) for r in records],
        user_errors=[],
    )
