"""Keyset (cursor) pagination: the cursor is the last row's sort key, and the next page is
``WHERE (key...) > (cursor...) ORDER BY key... LIMIT first + 1``, so every page costs the same."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

T = TypeVar("T")

MIN_INTEGER = -(2**31)
MAX_INTEGER = 2**31 - 1
"""The range of an INTEGER column (PostgreSQL's is 32-bit), every integer key's type."""


class InvalidCursor(ValueError):
    """The ``after`` (or ``before``) cursor was not made by this gateway for this list."""


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    cursors: list[str]
    has_next_page: bool
    has_previous_page: bool
    total_count: int


@dataclass(frozen=True)
class SortKey:
    """One column of a keyset: the expression, how to read its value from a row, its type."""

    expression: sa.ColumnElement[Any]
    kind: type = int


def encode_cursor(name: str, values: Sequence[Any]) -> str:
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    raw = json.dumps([name, plain], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(name: str, cursor: str, keys: Sequence[SortKey]) -> list[Any]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        kind, values = json.loads(raw)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise InvalidCursor("The cursor is not valid.") from exc
    if kind != name or not isinstance(values, list) or len(values) != len(keys):
        raise InvalidCursor("The cursor does not belong to this list.")
    decoded: list[Any] = []
    for key, value in zip(keys, values, strict=True):
        try:
            decoded.append(_key_value(key.kind, value))
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidCursor("The cursor is not valid.") from exc
    return decoded


def _key_value(kind: type, value: object) -> Any:
    """One value of a cursor as its column can take it; anything else raises. Keys are
    INTEGER columns, text, or UTC timestamps."""
    if kind is datetime:
        if not isinstance(value, str):
            raise TypeError
        moment = datetime.fromisoformat(value)
        return moment.astimezone(UTC) if moment.tzinfo else moment
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeError
    if isinstance(value, int) and not MIN_INTEGER <= value <= MAX_INTEGER:
        raise ValueError
    if isinstance(value, str) and "\x00" in value:
        raise ValueError  # PostgreSQL text holds no NUL
    return value


def after_clause(
    keys: Sequence[SortKey], values: Sequence[Any], descending: bool
) -> sa.ColumnElement[bool]:
    left = sa.tuple_(*(k.expression for k in keys))
    right = sa.tuple_(
        *(sa.bindparam(None, v, type_=k.expression.type) for k, v in zip(keys, values, strict=True))
    )
    return left < right if descending else left > right


async def fetch_page(
    connection: AsyncConnection,
    *,
    name: str,
    query: sa.Select[Any],
    count_query: sa.Select[Any],
    keys: Sequence[SortKey],
    key_of: Callable[[T], Sequence[Any]],
    build: Callable[[sa.Row[Any]], T],
    first: int,
    after: str | None,
    descending: bool = False,
    last: int | None = None,
    before: str | None = None,
) -> Page[T]:
    """Run one page query and its count. ``query`` selects the rows, filtered but unordered.

    With ``last`` the page is the last ``last`` rows before the ``before`` cursor (Relay's
    backward pagination): the same keyset walked the other way, handed back in list order."""
    backward = last is not None
    count = last if last is not None else first
    cursor = before if backward else after
    reverse = descending != backward
    if cursor is not None:
        query = query.where(after_clause(keys, decode_cursor(name, cursor, keys), reverse))
    order = [k.expression.desc() if reverse else k.expression.asc() for k in keys]
    rows = (await connection.execute(query.order_by(*order).limit(count + 1))).all()
    items = [build(row) for row in rows[:count]]
    if backward:
        items.reverse()
    total = (await connection.execute(count_query)).scalar_one()
    more = len(rows) > count
    return Page(
        items=items,
        cursors=[encode_cursor(name, key_of(item)) for item in items],
        has_next_page=cursor is not None if backward else more,
        has_previous_page=more if backward else cursor is not None,
        total_count=int(total),
    )
