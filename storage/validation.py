"""Checks of plain input values, each returning the problems it finds (never raising)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from storage.enums import ErrorCode
from storage.errors import FieldPath, MediaFailure, Problem

MAX_LIST = 100

# The longest text each free-text input may hold, in characters (checked before any SQL).
SKU_LENGTH = 255
NAME_LENGTH = 1000
SEARCH_LENGTH = NAME_LENGTH
ALT_LENGTH = 1000
OPTION_LENGTH = 255
URL_LENGTH = 2048
FILENAME_LENGTH = 255

CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
"""Unicode category Cc: C0 controls (NUL, tab and line breaks included), DEL and C1 controls.
PostgreSQL refuses NUL in text; none of them belongs in a SKU, a name or a URL."""


def is_blank(value: str | None) -> bool:
    return value is None or not value.strip()


def trimmed(value: str | None) -> str | None:
    """Text as it is stored and looked up: without surrounding whitespace."""
    return None if value is None else value.strip()


def field_name(field: FieldPath) -> str:
    """How a message names the value: ``skus[2]`` for an item of a list, else its name."""
    if len(field) > 1 and field[-1].isdigit():
        return f"{field[-2]}[{field[-1]}]"
    return field[-1]


def required_text(value: str | None, field: FieldPath, max_length: int) -> list[Problem]:
    if is_blank(value):
        return [Problem(field, ErrorCode.REQUIRED, f"{field_name(field)} must not be blank.")]
    return optional_text(value, field, max_length)


def optional_text(value: str | None, field: FieldPath, max_length: int) -> list[Problem]:
    """At most ``max_length`` characters and no control character."""
    if value is None:
        return []
    if len(value) > max_length:
        message = f"{field_name(field)} is longer than {max_length} characters."
        return [Problem(field, ErrorCode.INVALID, message)]
    if CONTROL.search(value):
        message = (
            f"{field_name(field)} must not hold control characters (such as NUL or a line break)."
        )
        return [Problem(field, ErrorCode.INVALID, message)]
    return []


def text_list(values: Sequence[str] | None, field: FieldPath, max_length: int) -> list[Problem]:
    """``optional_text`` of each item, at the item's index."""
    return [
        problem
        for index, value in enumerate(values or ())
        for problem in optional_text(value, (*field, str(index)), max_length)
    ]


def option_name(value: str | None, field: FieldPath) -> list[Problem]:
    """An option names a variant gallery; null is the default gallery, blank is a mistake.
    Options are stored trimmed (``trimmed``), like SKUs and names."""
    if value is not None and not value.strip():
        return [
            Problem(
                field,
                ErrorCode.INVALID,
                "option must not be blank; use null for the default gallery.",
            )
        ]
    return optional_text(value, field, OPTION_LENGTH)


def option_list(values: Sequence[str] | None, field: FieldPath) -> list[Problem]:
    """A product's declared options: at most ``MAX_LIST``, each a valid option name, none twice
    once trimmed."""
    if values is None:
        return []
    if len(values) > MAX_LIST:
        message = f"{field[-1]} holds {len(values)} options; at most {MAX_LIST}."
        return [Problem(field, ErrorCode.TOO_MANY, message)]
    problems: list[Problem] = []
    seen: set[str] = set()
    for index, value in enumerate(values):
        at = (*field, str(index))
        wrong = option_name(value, at)
        if not wrong and value.strip() in seen:
            wrong = [Problem(at, ErrorCode.INVALID, "This option appears earlier in the list.")]
        seen.add(value.strip())
        problems += wrong
    return problems


def declared_option(options: Sequence[str], value: str | None, field: FieldPath) -> list[Problem]:
    """An image's option (trimmed) must be one of its product's options when it declares any."""
    if not options or value is None or value in options:
        return []
    message = f"option {value!r} is not one of the product's options ({', '.join(options)})."
    return [Problem(field, ErrorCode.INVALID, message)]


def position(value: int | None, field: FieldPath) -> list[Problem]:
    if value is not None and value < 0:
        return [Problem(field, ErrorCode.INVALID, "position must be 0 or more.")]
    return []


def id_list(
    ids: Sequence[object], field: FieldPath, *, limit: int = MAX_LIST, item: str = "id"
) -> list[Problem]:
    if not ids:
        return [Problem(field, ErrorCode.REQUIRED, f"{field[-1]} must hold at least one {item}.")]
    if len(ids) > limit:
        return [
            Problem(
                field,
                ErrorCode.TOO_MANY,
                f"{field[-1]} holds {len(ids)} {item}s; at most {limit}.",
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
