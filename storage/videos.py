"""Video use cases: upload (MP4, checked from the bytes; a file or a URL to download), move,
reorder, delete."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from storage import validation
from storage.backend import Backend, BlobChanges, ProductRef
from storage.enums import ErrorCode, MediaSource
from storage.errors import FieldPath, MediaFailure
from storage.receiving import (
    Content,
    FromUrl,
    done_with,
    receive_video,
    stored_source,
    url_problems,
)
from storage.sql.gallery import Gallery, insert_row
from storage.sql.tables import utcnow, video_table


@dataclass(frozen=True)
class NewVideo:
    product: ProductRef
    content: Content
    position: int | None = None
    source: MediaSource | None = None
    """None: URL for content downloaded from a URL, UPLOAD otherwise."""

    @property
    def stored_source(self) -> MediaSource:
        return stored_source(self.content, self.source)


async def upload_video(backend: Backend, video: NewVideo) -> int:
    if isinstance(video.content, FromUrl):
        wrong = url_problems(video.content.url, video.content.field)
        if wrong:
            raise MediaFailure(wrong)
    problems = validation.position(video.position, ("position",))
    problems += await backend.check_product(video.product)
    if problems:
        raise MediaFailure(problems)
    file = await receive_video(backend, video.content)
    temp, info, key = file.temp, file.info, file.key

    async def work(session: AsyncSession, changes: BlobChanges) -> int:
        product = await backend.lock_product(session, video.product)
        same = sa.select(video_table.c.id).where(
            video_table.c.product_id == product.id, video_table.c.checksum == temp.sha256
        )
        if (await session.execute(same)).first() is not None:
            raise MediaFailure.one(
                video.content.field,
                ErrorCode.DUPLICATE,
                "The product already has a video with these bytes.",
            )
        gallery = Gallery.videos(product.id)
        video_id = await insert_row(
            session,
            video_table,
            product_id=product.id,
            position=len(await gallery.order(session)),
            source=video.stored_source.value,
            mime_type=info.mime_type,
            file_size=temp.size,
            checksum=temp.sha256,
            blob_key=key,
            width=info.width,
            height=info.height,
            duration_seconds=info.duration_seconds,
        )
        await gallery.place(session, video_id, video.position)
        changes.store(key)
        return video_id

    try:
        video_id = await backend.blob_transaction(work, {key: temp})
    finally:
        await done_with(backend, file)
    backend.events.media_uploaded("video", temp.size)
    return video_id


async def update_video(backend: Backend, video_id: int, position: int) -> int:
    problems = validation.position(position, ("position",))
    if problems:
        raise MediaFailure(problems)
    async with backend.db.write() as session:
        product_id, _ = await backend.lock_members(
            session,
            video_table,
            [video_id],
            ("id",),
            indexed=False,
        )
        await session.execute(
            sa.update(video_table).where(video_table.c.id == video_id).values(updated_at=utcnow())
        )
        await Gallery.videos(product_id).place(session, video_id, position)
    return video_id


async def reorder_videos(backend: Backend, video_ids: Sequence[int]) -> int:
    """Returns the product's id."""
    field: FieldPath = ("videoIds",)
    validation.require_id_list(video_ids, field)
    async with backend.db.write() as session:
        product_id, _ = await backend.lock_members(
            session,
            video_table,
            video_ids,
            field,
        )
        await Gallery.videos(product_id).reorder(
            session, video_ids, field, "video(s) of the product"
        )
    return product_id


async def delete_videos(backend: Backend, video_ids: Sequence[int]) -> list[int]:
    field: FieldPath = ("ids",)
    validation.require_id_list(video_ids, field)

    async def work(session: AsyncSession, changes: BlobChanges) -> None:
        product_id, rows = await backend.lock_members(
            session,
            video_table,
            video_ids,
            field,
            columns=("id", "product_id", "blob_key"),
        )
        await session.execute(sa.delete(video_table).where(video_table.c.id.in_(video_ids)))
        await Gallery.videos(product_id).close_up(session)
        changes.drop(row.blob_key for row in rows)

    await backend.blob_transaction(work)
    return list(video_ids)
