"""Cursor connections (keyset pages from storage.sql.pages) in the contract's shapes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import strawberry

from schema.errors import bad_user_input
from schema.types import DownloadableImage, Image, Product, Video
from storage.sql.pages import Page

T = TypeVar("T")
N = TypeVar("N")
C = TypeVar("C")


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class ProductDownloadableImages:
    product_sku: str
    images: list[DownloadableImage]


@strawberry.type
class ProductEdge:
    node: Product
    cursor: str


@strawberry.type
class ProductConnection:
    edges: list[ProductEdge]
    page_info: PageInfo
    total_count: int


@strawberry.type
class ImageEdge:
    node: Image
    cursor: str


@strawberry.type
class ImageConnection:
    edges: list[ImageEdge]
    page_info: PageInfo
    total_count: int


@strawberry.type
class VideoEdge:
    node: Video
    cursor: str


@strawberry.type
class VideoConnection:
    edges: list[VideoEdge]
    page_info: PageInfo
    total_count: int


@strawberry.type
class DownloadableImageGroupEdge:
    node: ProductDownloadableImages
    cursor: str


@strawberry.type
class DownloadableImageGroupConnection:
    edges: list[DownloadableImageGroupEdge]
    page_info: PageInfo
    total_count: int = strawberry.field(description="Number of SKUs.")


def check_first(first: int | None, default: int, maximum: int) -> int:
    """``first`` (null means the default); out of range it is a GraphQL error, since a query
    has no payload for user errors."""
    if first is None:
        return default
    if not 1 <= first <= maximum:
        raise bad_user_input(f"first must be between 1 and {maximum}; it was {first}.")
    return first


def connection(connection_type: type[C], edge_type: type, page: Page[T], nodes: Sequence[N]) -> C:
    """One of the connection types above, from a page and the nodes built from its items."""
    info = PageInfo(
        has_next_page=page.has_next_page,
        has_previous_page=page.has_previous_page,
        start_cursor=page.cursors[0] if page.cursors else None,
        end_cursor=page.cursors[-1] if page.cursors else None,
    )
    edges = [edge_type(node=n, cursor=c) for n, c in zip(nodes, page.cursors, strict=True)]
    return connection_type(edges=edges, page_info=info, total_count=page.total_count)  # type: ignore[call-arg]
