"""The tables. Enumerations are stored as short strings so both SQLite and PostgreSQL read them
without database enum types; ``records`` turns rows into plain read records."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def _timestamp() -> sa.Column[datetime]:
    return sa.Column(sa.DateTime(timezone=True), nullable=False)


class Product(SQLModel, table=True):
    __tablename__ = "product"
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    sku: str = Field(sa_type=sa.String(255), unique=True, index=True)
    name: str = Field(sa_type=sa.String(1000), index=True)
    options: list[str] = Field(
        default_factory=list,
        sa_column=sa.Column(sa.JSON, nullable=False, server_default=sa.text("'[]'")),
    )
    """The declared option galleries, in order; empty: any option name is accepted."""
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())


class Image(SQLModel, table=True):
    __tablename__ = "image"
    __table_args__ = (
        sa.UniqueConstraint("product_id", "checksum", name="uq_image_product_checksum"),
        sa.Index("ix_image_gallery", "product_id", "option", "position"),
        sa.Index(
            "uq_image_one_main",
            "product_id",
            unique=True,
            sqlite_where=sa.text("is_main"),
            postgresql_where=sa.text("is_main"),
        ),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    product_id: int = Field(foreign_key="product.id", ondelete="CASCADE")
    option: str | None = Field(default=None, sa_type=sa.String(255))
    position: int
    is_main: bool = False
    image_type: str = Field(sa_type=sa.String(16))
    source: str = Field(sa_type=sa.String(16))
    alt: str | None = Field(default=None, sa_type=sa.String(1000))
    width: int
    height: int
    mime_type: str = Field(sa_type=sa.String(64))
    file_size: int = Field(sa_type=sa.BigInteger)
    checksum: str = Field(sa_type=sa.String(64))
    blob_key: str = Field(sa_type=sa.String(128), index=True)
    source_url: str | None = Field(default=None, sa_type=sa.String(2048), index=True)
    """The URL the bytes were downloaded from (uploadImage(url), a sync); null for uploads."""
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())


class Video(SQLModel, table=True):
    __tablename__ = "video"
    __table_args__ = (
        sa.UniqueConstraint("product_id", "checksum", name="uq_video_product_checksum"),
        sa.Index("ix_video_product_position", "product_id", "position"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    product_id: int = Field(foreign_key="product.id", ondelete="CASCADE")
    position: int
    source: str = Field(sa_type=sa.String(16))
    mime_type: str = Field(sa_type=sa.String(64))
    file_size: int = Field(sa_type=sa.BigInteger)
    checksum: str = Field(sa_type=sa.String(64))
    blob_key: str = Field(sa_type=sa.String(128), index=True)
    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())


class DownloadableImage(SQLModel, table=True):
    __tablename__ = "downloadable_image"
    __table_args__ = (
        sa.UniqueConstraint("product_id", "url", name="uq_downloadable_product_url"),
        sa.Index("ix_downloadable_product_position", "product_id", "position"),
        {"sqlite_autoincrement": True},
    )

    id: int | None = Field(default=None, primary_key=True)
    product_id: int = Field(foreign_key="product.id", ondelete="CASCADE")
    url: str = Field(sa_type=sa.String(2048))
    position: int
    image_type: str = Field(sa_type=sa.String(16))
    status: str = Field(sa_type=sa.String(16))
    error: str | None = Field(default=None, sa_type=sa.Text)
    image_id: int | None = Field(default=None, foreign_key="image.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())


class ApiToken(SQLModel, table=True):
    __tablename__ = "api_token"
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_type=sa.String(255), index=True)
    token_hash: str = Field(sa_type=sa.String(64), unique=True)
    scope: str = Field(sa_type=sa.String(16))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_timestamp())
    revoked_at: datetime | None = Field(
        default=None, sa_column=sa.Column(sa.DateTime(timezone=True), nullable=True)
    )


class CatalogueVersion(SQLModel, table=True):
    """One row (``id`` 1): a number that every write transaction raises before it commits, so
    that an answer computed at a version is known to be current while the number is unchanged
    (the gateway's response cache, in every process)."""

    __tablename__ = "catalogue_version"

    id: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    version: int = Field(sa_type=sa.BigInteger)


CATALOGUE_VERSION_ID = 1

product_table: sa.Table = SQLModel.metadata.tables["product"]
image_table: sa.Table = SQLModel.metadata.tables["image"]
video_table: sa.Table = SQLModel.metadata.tables["video"]
downloadable_table: sa.Table = SQLModel.metadata.tables["downloadable_image"]
token_table: sa.Table = SQLModel.metadata.tables["api_token"]
catalogue_version_table: sa.Table = SQLModel.metadata.tables["catalogue_version"]
"""Typed handles of the tables above, for SQLAlchemy Core statements."""
