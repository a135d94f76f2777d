"""Image use cases: upload (one or several, all or nothing), update, reorder, set main, delete."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from storage import validation
from storage.backend import Backend, BlobChanges, ProductRef
from storage.blobs import TempBlob, blob_key
from storage.enums import ErrorCode, ImageType, MediaSource
from storage.errors import FieldPath, MediaFailure, Problem
from storage.media import ImageInfo
from storage.receiving import Incoming, receive_image
from storage.sql.gallery import Gallery, insert_row
from storage.sql.tables import downloadable_table, image_table, utcnow


class Keep(Enum):
    """Marks an optional input field that was not sent (as opposed to sent as null)."""

    KEEP = "KEEP"


KEEP = Keep.KEEP


@dataclass(frozen=True)
class NewImage:
    product: ProductRef
    content: Incoming
    position: int | None = None
    image_type: ImageType = ImageType.DEFAULT
    source: MediaSource = MediaSource.UPLOAD
    option: str | None = None
    alt: str | None = None


@dataclass(frozen=True)
class ImageChanges:
    position: int | None = None
    image_type: ImageType | None = None
    alt: str | Literal[Keep.KEEP] | None = KEEP
    option: str | Literal[Keep.KEEP] | None = KEEP


@dataclass
class _Received:
    image: NewImage
    temp: TempBlob
    info: ImageInfo
    key: str = field(init=False)

    def __post_init__(self) -> None:
        self.key = blob_key(self.temp.sha256, self.info.extension)


def _check_new(image: NewImage) -> list[Problem]:
    return (
        validation.position(image.position, ("position",))
        + validation.option_name(image.option, ("option",))
        + validation.optional_text(image.alt, ("alt",), validation.ALT_LENGTH)
    )


async def upload_images(backend: Backend, images: Sequence[NewImage]) -> list[int]:
    """Store images of one product in one transaction: all of them, or none and every problem.

    The files are streamed and inspected before the transaction; the blobs are moved to their
    content-addressed keys inside it, and taken back if it fails."""
    problems = [p for image in images for p in _check_new(image)]
    problems += await backend.check_product(images[0].product)
    if problems:
        raise MediaFailure(problems)
    images = [replace(image, option=validation.trimmed(image.option)) for image in images]
    received: list[_Received] = []
    try:
        for image in images:
            try:
                temp, info = await receive_image(backend, image.content)
            except MediaFailure as failure:
                problems += failure.problems
                continue
            received.append(_Received(image, temp, info))
        problems += _repeated_bytes(received)
        if problems:
            raise MediaFailure(problems)
        ids = await _insert(backend, received)
        for item in received:
            backend.events.media_uploaded("image", item.temp.size)
        backend.images_stored(item.temp.sha256 for item in received)
        return ids
    finally:
        for item in received:
            await backend.blobs.discard(item.temp)


async def upload_image(backend: Backend, image: NewImage) -> int:
    return (await upload_images(backend, [image]))[0]


def _repeated_bytes(received: Sequence[_Received]) -> list[Problem]:
    """The same bytes twice in one request: DUPLICATE at each later one, naming the first."""
    first: dict[str, FieldPath] = {}
    problems = []
    for item in received:
        field = item.image.content.field
        if item.temp.sha256 in first:
            earlier = validation.field_name(first[item.temp.sha256])
            message = f"These bytes are also {earlier} of this request."
            problems.append(Problem(field, ErrorCode.DUPLICATE, message))
        first.setdefault(item.temp.sha256, field)
    return problems


def _duplicate(field: FieldPath) -> Problem:
    return Problem(field, ErrorCode.DUPLICATE, "The product already has an image with these bytes.")


async def _insert(backend: Backend, received: Sequence[_Received]) -> list[int]:
    async def work(session: AsyncSession, changes: BlobChanges) -> list[int]:
        product = await backend.lock_product(session, received[0].image.product)
        sums = [item.temp.sha256 for item in received]
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
            if item.temp.sha256 in existing
        ]
        if duplicates:
            raise MediaFailure(duplicates)
        ids = []
        for item in received:
            ids.append(await _insert_one(session, product.id, item))
            changes.store(item.key)
        return ids

    return await backend.blob_transaction(work, {item.key: item.temp for item in received})


async def _insert_one(session: AsyncSession, product_id: int, item: _Received) -> int:
    image, info, temp = item.image, item.info, item.temp
    gallery = Gallery.images(product_id, image.option)
    image_id = await insert_row(
        session,
        image_table,
        product_id=product_id,
        option=image.option,
        position=len(await gallery.order(session)),
        is_main=False,
        image_type=image.image_type.value,
        source=image.source.value,
        alt=None if validation.is_blank(image.alt) else image.alt,
        width=info.width,
        height=info.height,
        mime_type=info.mime_type,
        file_size=temp.size,
        checksum=temp.sha256,
        blob_key=item.key,
    )
    await gallery.place(session, image_id, image.position)
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
