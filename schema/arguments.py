"""Free-text query arguments, checked before any SQL by the rules of ``storage.validation``:
a refused argument is a GraphQL error with ``extensions.code`` BAD_USER_INPUT (a query has no
payload for userErrors). Names in messages are the argument paths (``filter.skus[2]``)."""

from __future__ import annotations

from collections.abc import Sequence

from schema.errors import bad_user_input
from storage import validation
from storage.errors import Problem


def _refuse(problems: Sequence[Problem]) -> None:
    if problems:
        raise bad_user_input(problems[0].message)


def text(value: str | None, name: str, max_length: int) -> str | None:
    """``value`` as given, once it is within ``max_length`` and free of control characters."""
    _refuse(validation.optional_text(value, (name,), max_length))
    return value


def trimmed(value: str | None, name: str, max_length: int) -> str | None:
    """A SKU or an option as it is stored: checked, then trimmed."""
    return validation.trimmed(text(value, name, max_length))


def text_list(values: list[str] | None, name: str, max_length: int) -> list[str] | None:
    """Each item of a list of text, checked at its index."""
    _refuse(validation.text_list(values, (name,), max_length))
    return values


def trimmed_list(values: list[str] | None, name: str, max_length: int) -> list[str] | None:
    """Each item of a list of SKUs, checked at its index, then trimmed."""
    text_list(values, name, max_length)
    return None if values is None else [value.strip() for value in values]
