"""Checks of plain input values, each returning the problems it finds (never raising)."""

from __future__ import annotations

from collections.abc import Sequence

from storage.enums import ErrorCode
from storage.errors import FieldPath, MediaFailure, Problem

MAX_LIST = 100


def is_blank(value: str | None) -> bool:
    return value is None or not value.strip()


def required_text(value: str | None, field: FieldPath, max_length: int) -> list[Problem]:
    if is_blank(value):
        return [Problem(field, ErrorCode.REQUIRED, f"{field[-1]} must not be blank.")]
    return optional_text(value, field, max_length)


def optional_text(value: str | None, field: FieldPath, max_length: int) -> list[Problem]:
    if value is not None and len(value) > max_length:
        return [
            Problem(
                field, ErrorCode.INVALID, f"{field[-1]} is longer than {max_length} characters."
            )
        ]
    return []


def option_name(value: str | None, field: FieldPath) -> list[Problem]:
    """An option names a variant gallery; null is the default gallery, blank is a mistake."""
    if value is not None and not value.strip():
        return [
            Problem(
                field,
                ErrorCode.INVALID,
                "option must not be blank; use null for the default gallery.",
            )
        ]
    return optional_text(value, field, 255)


def position(value: int | None, field: FieldPath) -> list[Problem]:
    if value is not None and value < 0:
        return [Problem(field, ErrorCode.INVALID, "position must be 0 or more.")]
    return []


def id_list(ids: Sequence[object], field: FieldPath, *, limit: int = MAX_LIST) -> list[Problem]:
    if not ids:
        return [Problem(field, ErrorCode.REQUIRED, f"{field[-1]} must hold at least one id.")]
    if len(ids) > limit:
        return [
            Problem(
                field, ErrorCode.TOO_MANY, f"{field[-1]} holds {len(ids)} ids; at most {limit}."
            )
        ]
    return []


def repeated(ids: Sequence[int], field: FieldPath) -> list[Problem]:
    seen: set[int] = set()
    problems = []
    for index, item in enumerate(ids):
        if item in seen:
            problems.append(
                Problem(
                    (*field, str(index)), ErrorCode.REPEATED_ID, "This id appears more than once."
                )
            )
        seen.add(item)
    return problems


def require_id_list(ids: Sequence[int], field: FieldPath) -> None:
    """Raise unless ``ids`` is a non-empty list of at most 100 distinct ids."""
    problems = id_list(ids, field) or repeated(ids, field)
    if problems:
        raise MediaFailure(problems)
