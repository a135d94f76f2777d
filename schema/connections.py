"""Cursor connections (keyset pages from storage.sql.pages) in the contract's shapes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Generic, Self, TypeVar

import strawberry
from strawberry.types.nodes import SelectedField

from schema.context import Info
from schema.errors import bad_user_input
from schema.types import DownloadableImage
from storage.sql.pages import Page

N = TypeVar("N")


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
class Edge(Generic[N]):
    node: N
    cursor: str


@strawberry.type
class Connection(Generic[N]):
    """``Connection[Product]`` is the contract's ProductConnection, with ProductEdge edges."""

    edges: list[Edge[N]]
    page_info: PageInfo
    total_count: int

    @classmethod
    def of(cls, page: Page[Any], nodes: Sequence[N]) -> Self:
        """The connection of a page, from the nodes built from its items."""
        info = PageInfo(
            has_next_page=page.has_next_page,
            has_previous_page=page.has_previous_page,
            start_cursor=page.cursors[0] if page.cursors else None,
            end_cursor=page.cursors[-1] if page.cursors else None,
        )
        edges = [Edge(node=n, cursor=c) for n, c in zip(nodes, page.cursors, strict=True)]
        return cls(edges=edges, page_info=info, total_count=page.total_count)


@strawberry.type
class DownloadableImageGroupEdge(Edge[ProductDownloadableImages]):
    """The contract names this edge after the group rather than after its node type."""


@strawberry.type
class DownloadableImageGroupConnection(Connection[ProductDownloadableImages]):
    edges: list[Edge[ProductDownloadableImages]] = strawberry.field(
        graphql_type=list[DownloadableImageGroupEdge]
    )
    total_count: int = strawberry.field(description="Number of SKUs.")


def check_first(first: int | None, default: int, maximum: int, name: str = "first") -> int:
    """``first`` (or ``last``; null means the default); out of range it is a GraphQL error,
    since a query has no payload for user errors."""
    if first is None:
        return default
    if not 1 <= first <= maximum:
        raise bad_user_input(f"{name} must be between 1 and {maximum}; it was {first}.")
    return first


def named(info: Info, argument: str) -> bool:
    """Whether the request gives the field's ``argument`` a value other than null."""
    (selected,) = info.selected_fields
    return isinstance(selected, SelectedField) and selected.arguments.get(argument) is not None


def window(
    info: Info,
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    default: int,
    maximum: int,
) -> dict[str, Any]:
    """The page a connection field of ``info`` asks for (see ``page_window``)."""
    return page_window(
        first, after, last, before, default, maximum, first_named=lambda: named(info, "first")
    )


def page_window(
    first: int | None,
    after: str | None,
    last: int | None,
    before: str | None,
    default: int,
    maximum: int,
    *,
    first_named: Callable[[], bool],
) -> dict[str, Any]:
    """The page a connection field asks for, as the read functions take it: ``first`` after
    a cursor, or ``last`` before one (Relay). The two pairs are exclusive; ``first`` has a
    default, so it counts as given only when the request names it (``first_named``: not
    null)."""
    if last is None and before is None:
        return {"first": check_first(first, default, maximum), "after": after}
    if after is not None or first_named():
        raise bad_user_input("Give first and after, or last and before, not both pairs.")
    return {
        "first": default,
        "after": None,
        "last": check_first(last, default, maximum, "last"),
        "before": before,
    }
