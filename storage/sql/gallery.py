"""Ordered lists of media: a product's image galleries (one per option), its videos and its
downloadable images. Every change loads the list's order, edits it in Python and writes back
the positions that moved, so positions are always exactly 0..n-1."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from storage.enums import ErrorCode
from storage.errors import FieldPath, MediaFailure
from storage.sql.tables import downloadable_table, image_table, utcnow, video_table

IMAGE_ORDER: tuple[sa.ColumnElement[object], ...] = (
    sa.case((image_table.c.option.is_(None), 0), else_=1),
    sa.func.coalesce(image_table.c.option, ""),
    image_table.c.position,
    image_table.c.id,
)
"""A product's images: the default gallery first, then option galleries by name, by position."""


@dataclass(frozen=True)
class Gallery:
    """One ordered list: the rows of ``table`` that match ``where``."""

    table: sa.Table
    where: sa.ColumnElement[bool]

    @classmethod
    def images(cls, product_id: int, option: str | None) -> Gallery:
        same_option = (
            image_table.c.option.is_(None) if option is None else image_table.c.option == option
        )
        return cls(image_table, sa.and_(image_table.c.product_id == product_id, same_option))

    @classmethod
    def videos(cls, product_id: int) -> Gallery:
        return cls(video_table, video_table.c.product_id == product_id)

    @classmethod
    def downloadables(cls, product_id: int) -> Gallery:
        return cls(downloadable_table, downloadable_table.c.product_id == product_id)

    async def order(self, session: AsyncSession) -> list[int]:
        """The ids in position order (ties, which only a crash could leave, by id)."""
        t = self.table
        query = sa.select(t.c.id).where(self.where).order_by(t.c.position, t.c.id)
        return list((await session.execute(query)).scalars())

    async def save(self, session: AsyncSession, ids: Sequence[int]) -> None:
        """Give ``ids`` the positions 0..n-1 in this order, writing only the rows that moved."""
        t = self.table
        query = sa.select(t.c.id, t.c.position).where(self.where)
        current = {row.id: row.position for row in await session.execute(query)}
        changed = [
            {"row_id": i, "new_position": p} for p, i in enumerate(ids) if current.get(i) != p
        ]
        if changed:
            statement = (
                sa.update(t)
                .where(t.c.id == sa.bindparam("row_id"))
                .values(position=sa.bindparam("new_position"))
            )
            connection = await session.connection()
            await connection.execute(statement, changed)

    async def place(self, session: AsyncSession, row_id: int, position: int | None) -> int:
        """Move ``row_id`` (already in this list) to ``position``; past the end, or None, means
        last. Returns the position it ends at."""
        ids = [i for i in await self.order(session) if i != row_id]
        at = len(ids) if position is None else min(position, len(ids))
        ids.insert(at, row_id)
        await self.save(session, ids)
        return at

    async def reorder(
        self, session: AsyncSession, ids: Sequence[int], field: FieldPath, noun: str
    ) -> None:
        """Save the order of ``ids``, which must be the whole list."""
        left_out = set(await self.order(session)) - set(ids)
        if left_out:
            raise MediaFailure.one(
                field,
                ErrorCode.INCOMPLETE_ORDER,
                f"The list leaves out {len(left_out)} {noun}; send every one of them.",
            )
        await self.save(session, ids)

    async def close_up(self, session: AsyncSession) -> None:
        """Renumber after rows left the list."""
        await self.save(session, await self.order(session))


async def insert_row(session: AsyncSession, table: sa.Table, **values: object) -> int:
    """Insert one row with Core (no ORM flush) and return its id; the timestamps the table
    has default to now."""
    now = utcnow()
    stamps = {name: now for name in ("created_at", "updated_at") if name in table.c}
    statement = sa.insert(table).values({**stamps, **values})
    return int((await session.execute(statement.returning(table.c.id))).scalar_one())
