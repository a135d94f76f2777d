"""Image use cases: upload (one or several, all or nothing), update, reorder, set main, delete."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from storage import validation
from storage.backend import Backend, BlobChanges, ProductRef
from storage.enums import ErrorCode, ImageType, MediaSource
from storage.errors import FieldPath, MediaFailure, Problem
from storage.media import ImageInfo
from storage.receiving import (
    Content,
    FromUrl,
    Received,
    done_with,
    receive_image,
    stored_source,
    url_problems,
)
from storage.sql.gallery import Gallery, insert_row
from storage.sql.tables import downloadable_table, image_table, product_table, utcnow


class Keep(Enum):
    """Marks an optional input field that was not sent (as opposed to sent as null)."""

    KEEP = "KEEP"


KEEP = Keep.KEEP


@dataclass(frozen=True)
class NewImage:
    product: ProductRef
    content: Content
    position: int | None = None
    image_type: ImageType = ImageType.DEFAULT
    source: MediaSource | None = None
    """None: URL for content downloaded from a URL, UPLOAD otherwise."""
    option: str | None = None
    alt: str | None = None

    @property
    def stored_source(self) -> MediaSource:
        return stored_source(self.content, self.source)

    @property
    def source_url(self) -> str | None:
        return self.content.url if isinstance(self.content, FromUrl) else None


@dataclass(frozen=True)
class ImageChanges:
    position: int | None = None
    image_type: ImageType | None = None
    alt: str | Literal[Keep.KEEP] | None = KEEP
    option: str | Literal[Keep.KEEP] | None = KEEP


@dataclass(frozen=True)
class _Received:
    image: NewImage
    file: Received[ImageInfo]


def _check_urls(images: Sequence[NewImage]) -> None:
    """URLs are checked before anything else of the request, and reported alone."""
    problems = [
        problem
        for image in images
        if isinstance(image.content, FromUrl)
        for problem in url_problems(image.content.url, image.content.field)
    ]
    if problems:
        raise MediaFailure(problems)


def _check_new(image: NewImage) -> list[Problem]:
    return (
        validation.position(image.position, ("position",))
        + validation.option_name(image.option, ("option",))
        + validation.optional_text(image.alt, ("alt",), validation.ALT_LENGTH)
    )


async def upload_images(backend: Backend, images: Sequence[NewImage]) -> list[int]:
    """Store images of one product in one transaction: all of them, or none and every problem.

    The files are streamed and inspected before the transaction; the blobs are moved to their
    content-addressed keys inside it, and taken back if it fails. Content from a URL is
    downloaded with the backend's fetcher."""
    _check_urls(images)
    problems = [p for image in images for p in _check_new(image)]
    problems += await backend.check_product(images[0].product)
    if problems:
        raise MediaFailure(problems)
    images = [replace(image, option=validation.trimmed(image.option)) for image in images]
    received: list[_Received] = []
    try:
        for image in images:
            try:
                file = await receive_image(backend, image.content)
            except MediaFailure as failure:
                problems += failure.problems
                continue
            received.append(_Received(image, file))
        problems += _repeated_bytes(received)
        if problems:
            raise MediaFailure(problems)
        ids = await _insert(backend, received)
        for item in received:
            backend.events.media_uploaded("image", item.file.temp.size)
        backend.images_stored(item.file.temp.sha256 for item in received)
        return ids
    finally:
        for item in received:
            await done_with(backend, item.file)


async def upload_image(backend: Backend, image: NewImage) -> int:
    return (await upload_images(backend, [image]))[0]


def _repeated_bytes(received: Sequence[_Received]) -> list[Problem]:
    """The same bytes twice in one request: DUPLICATE at each later one, naming the first."""
    first: dict[str, FieldPath] = {}
    problems = []
    for item in received:
        field, sha256 = item.image.content.field, item.file.temp.sha256
        if sha256 in first:
            earlier = validation.field_name(first[sha256])
            message = f"These bytes are also {earlier} of this request."
            problems.append(Problem(field, ErrorCode.DUPLICATE, message))
        first.setdefault(sha256, field)
    return problems


def _duplicate(field: FieldPath) -> Problem:
    return Problem(field, ErrorCode.DUPLICATE, "The product already has an image with these bytes.")


async def _insert(backend: Backend, received: Sequence[_Received]) -> list[int]:
    async def work(session: AsyncSession, changes: BlobChanges) -> list[int]:
        product = await backend.lock_product(session, received[0].image.product)
        sums = [item.file.temp.sha256 for item in received]
        existing = set(
            (
                await session.execute(
                    sa.select(image_table.c.checksum).where(
                        image_table.c.product_id == product.id, image_table.c.checksum.in_(sums)
                    )
                )
            ).scalars()
        )
        duplicates = [
            _duplicate(item.image.content.field)
            for item in received
            if item.file.temp.sha256 in existing
        ]
        if duplicates:
            raise MediaFailure(duplicates)
        undeclared = [
            problem
            for item in received
            for problem in validation.declared_option(
                product.options, item.image.option, ("option",)
            )
        ]
        if undeclared:
            raise MediaFailure(undeclared[:1])
        return [
            await insert_image(
                session,
                changes,
                product.id,
                item.file,
                option=item.image.option,
                position=item.image.position,
                image_type=item.image.image_type,
                source=item.image.stored_source,
                alt=item.image.alt,
                source_url=item.image.source_url,
            )
            for item in received
        ]

    return await backend.blob_transaction(work, {i.file.key: i.file.temp for i in received})


async def insert_image(
    session: AsyncSession,
    changes: BlobChanges,
    product_id: int,
    file: Received[ImageInfo],
    *,
    option: str | None,
    position: int | None,
    image_type: ImageType,
    source: MediaSource,
    alt: str | None,
    source_url: str | None = None,
) -> int:
    """Insert the image row of a received file at ``position`` of its gallery (None: last)
    and store the file's blob with the transaction."""
    gallery = Gallery.images(product_id, option)
    image_id = await insert_row(
        session,
        image_table,
        product_id=product_id,
        option=option,
        position=len(await gallery.order(session)),
        is_main=False,
        image_type=image_type.value,
        source=source.value,
        alt=None if validation.is_blank(alt) else alt,
        width=file.info.width,
        height=file.info.height,
        mime_type=file.info.mime_type,
        file_size=file.temp.size,
        checksum=file.temp.sha256,
        blob_key=file.key,
        source_url=source_url,
    )
    await gallery.place(session, image_id, position)
    changes.store(file.key)
    return image_id


async def update_image(backend: Backend, image_id: int, changes: ImageChanges) -> int:
    problems = validation.position(changes.position, ("position",))
    if changes.option is not KEEP:
        problems += validation.option_name(changes.option, ("option",))
        changes = replace(changes, option=validation.trimmed(changes.option))
    if changes.alt is not KEEP:
        problems += validation.optional_text(changes.alt, ("alt",), validation.ALT_LENGTH)
    if problems:
        raise MediaFailure(problems)
    async with backend.db.write() as session:
        product_id, (row,) = await backend.lock_members(
            session,
            image_table,
            [image_id],
            ("id",),
            columns=("id", "product_id", "option"),
            indexed=False,
        )
        values: dict[str, object] = {"updated_at": utcnow()}
        if changes.image_type is not None:
            values["image_type"] = changes.image_type.value
        if changes.alt is not KEEP:
            values["alt"] = None if validation.is_blank(changes.alt) else changes.alt
        old = Gallery.images(product_id, row.option)
        target = old
        if changes.option is not KEEP and changes.option != row.option:
            options = (
                await session.execute(
                    sa.select(product_table.c.options).where(product_table.c.id == product_id)
                )
            ).scalar_one()
            undeclared = validation.declared_option(options, changes.option, ("option",))
            if undeclared:
                raise MediaFailure(undeclared)
            values["option"] = changes.option
            target = Gallery.images(product_id, changes.option)
        await session.execute(
            sa.update(image_table).where(image_table.c.id == image_id).values(**values)
        )
        if target is not old:
            await old.close_up(session)
            await target.place(session, image_id, changes.position)
        elif changes.position is not None:
            await old.place(session, image_id, changes.position)
    return image_id


async def reorder_images(backend: Backend, image_ids: Sequence[int]) -> list[int]:
    field: FieldPath = ("imageIds",)
    validation.require_id_list(image_ids, field)
    async with backend.db.write() as session:
        product_id, rows = await backend.lock_members(
            session,
            image_table,
            image_ids,
            field,
            columns=("id", "product_id", "option"),
        )
        options = {row.option for row in rows}
        if len(options) > 1:
            raise MediaFailure.one(
                field, ErrorCode.INVALID, "The ids belong to more than one gallery (option)."
            )
        gallery = Gallery.images(product_id, rows[0].option)
        await gallery.reorder(session, image_ids, field, "image(s) of the gallery")
    return list(image_ids)


async def set_main_image(backend: Backend, image_id: int) -> int:
    async with backend.db.write() as session:
        product_id, _ = await backend.lock_members(
            session,
            image_table,
            [image_id],
            ("imageId",),
            indexed=False,
        )
        await session.execute(
            sa.update(image_table)
            .where(image_table.c.product_id == product_id, image_table.c.is_main)
            .values(is_main=False)
        )
        await session.execute(
            sa.update(image_table).where(image_table.c.id == image_id).values(is_main=True)
        )
    return image_id


async def delete_images(backend: Backend, image_ids: Sequence[int]) -> list[int]:
    field: FieldPath = ("ids",)
    validation.require_id_list(image_ids, field)

    async def work(session: AsyncSession, changes: BlobChanges) -> None:
        product_id, rows = await backend.lock_members(
            session,
            image_table,
            image_ids,
            field,
            columns=("id", "product_id", "option", "blob_key"),
        )
        await session.execute(
            sa.delete(downloadable_table).where(downloadable_table.c.image_id.in_(image_ids))
        )
        await session.execute(sa.delete(image_table).where(image_table.c.id.in_(image_ids)))
        for option in {row.option for row in rows}:
            await Gallery.images(product_id, option).close_up(session)
        await Gallery.downloadables(product_id).close_up(session)
        changes.drop(row.blob_key for row in rows)

    await backend.blob_transaction(work)
    return list(image_ids)


async def regenerate_renditions(backend: Backend, image_ids: Sequence[int]) -> list[int]:
    """Throw away and rebuild every rendition of these images (at most 100)."""
    validation.require_id_list(image_ids, ("imageIds",))
    async with backend.db.read() as connection:
        rows = {
            row.id: row.checksum
            for row in await connection.execute(
                sa.select(image_table.c.id, image_table.c.checksum).where(
                    image_table.c.id.in_(image_ids)
                )
            )
        }
    missing = [
        Problem(("imageIds", str(i)), ErrorCode.NOT_FOUND, "There is no image with this id.")
        for i, pk in enumerate(image_ids)
        if pk not in rows
    ]
    if missing:
        raise MediaFailure(missing)
    await backend.renditions.rebuild(rows[pk] for pk in image_ids)
    return list(image_ids)
