"""``Range`` fields read as RFC 9110 has it, for both media routes: a field the gateway cannot
use is ignored (the whole body), one whose ranges all start past the end is 416."""

from __future__ import annotations

import re

MAX_RANGES = 100
"""More ranges than this in one field: the field is ignored (whole body)."""

RANGE_SPEC = re.compile(r"[ \t]*(?:([0-9]+)-([0-9]*)|-([0-9]+))[ \t]*")
"""One range-spec of RFC 9110: ``first-last``, ``first-`` or ``-suffix_length``."""

HUGE = 10**18
"""A position of more digits than this is past the end of any file."""

RangeSpec = tuple[int | None, int | None]
"""``(first, last)``, ``(first, None)`` from ``first`` to the end, ``(None, n)`` the last n."""


def parse_range(field: str) -> list[RangeSpec] | None:
    """The byte ranges of a ``Range`` field, or None when it is to be ignored: another unit,
    a malformed or reversed range-spec, no range, or more than ``MAX_RANGES``."""
    unit, equals, specs = field.partition("=")
    if not equals or unit.strip().lower() != "bytes":
        return None
    parts = [part for part in specs.split(",") if part.strip()]  # empty list elements
    if not parts or len(parts) > MAX_RANGES:
        return None
    ranges: list[RangeSpec] = []
    for part in parts:
        match = RANGE_SPEC.fullmatch(part)
        if match is None:
            return None
        first, last, suffix = (_number(group) for group in match.groups())
        if first is not None and last is not None and last < first:
            return None
        ranges.append((None, suffix) if suffix is not None else (first, last))
    return ranges


def satisfiable(ranges: list[RangeSpec], size: int) -> list[tuple[int, int]]:
    """The ranges that select bytes of a ``size``-byte file, as ``(start, end)`` with ``end``
    exclusive, overlapping ones merged; none: 416."""
    spans: list[tuple[int, int]] = []
    for first, last in ranges:
        if first is None:
            if last and size:
                spans.append((max(size - last, 0), size))
        elif first < size:
            spans.append((first, size if last is None else min(last + 1, size)))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _number(digits: str | None) -> int | None:
    if not digits:
        return None
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= 18 else HUGE
