"""Plain read records: what the read path selects with SQLAlchemy Core, without ORM overhead."""

from __future__ import annotations

from dataclasses import Field, dataclass, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar, Self

import sqlalchemy as sa

from storage.sql.tables import downloadable_table, image_table, product_table, video_table


def as_utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every timestamp the gateway stores is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class Record:
    """Base for read records: ``columns()`` selects exactly the record's fields, in order."""

    __table__: ClassVar[sa.Table]
    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    if TYPE_CHECKING:
        # Each record is a dataclass whose fields are its columns, built from a row in order.
        def __init__(self, *values: Any) -> None: ...

    @classmethod
    def columns(cls) -> list[sa.ColumnElement[Any]]:
        return [cls.__table__.c[f.name] for f in fields(cls)]

    @classmethod
    def from_row(cls, row: sa.Row[Any]) -> Self:
        return cls(*row)


@dataclass(frozen=True, slots=True)
class ProductRecord(Record):
    __table__ = product_table

    id: int
    sku: str
    name: str
    options: list[str]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ImageRecord(Record):
    __table__ = image_table

    id: int
    product_id: int
    option: str | None
    position: int
    is_main: bool
    image_type: str
    source: str
    alt: str | None
    width: int
    height: int
    mime_type: str
    file_size: int
    checksum: str
    blob_key: str
    source_url: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class VideoRecord(Record):
    __table__ = video_table

    id: int
    product_id: int
    position: int
    source: str
    mime_type: str
    file_size: int
    checksum: str
    blob_key: str
    width: int | None
    height: int | None
    duration_seconds: float | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class DownloadableImageRecord(Record):
    __table__ = downloadable_table

    id: int
    product_id: int
    url: str
    position: int
    image_type: str
    status: str
    error: str | None
    image_id: int | None
    created_at: datetime
    updated_at: datetime


def main_image(gallery: list[ImageRecord]) -> ImageRecord | None:
    """The marked main image; else position 0 of the default gallery; else of any gallery.

    ``gallery`` is every image of one product in ``storage.sql.gallery.IMAGE_ORDER``.
    """
    for image in gallery:
        if image.is_main:
            return image
    return gallery[0] if gallery else None
