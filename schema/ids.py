"""Opaque global ids (Relay style): base64 of "Type:pk", stable across restarts."""

from __future__ import annotations

import base64
import binascii

import strawberry

from storage.enums import ErrorCode
from storage.errors import FieldPath, MediaFailure, Problem


def to_global_id(type_name: str, pk: int) -> strawberry.ID:
    return strawberry.ID(base64.b64encode(f"{type_name}:{pk}".encode()).decode())


MAX_PK = 2**31 - 1
"""Primary keys are INTEGER columns (PostgreSQL's is 32-bit): an id past it names no row, and
the database would refuse it as a parameter."""


def from_global_id(value: str) -> tuple[str, int] | None:
    """The (type, pk) of a global id, or None when it is not one of ours: its pk must be
    written as we write it (ASCII digits, no sign, no leading zero) and lie in 1..MAX_PK."""
    try:
        type_name, _, pk = base64.b64decode(value.encode(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeError, ValueError):
        return None
    if not type_name or not pk.isascii() or not pk.isdigit() or len(pk) > len(str(MAX_PK)):
        return None
    number = int(pk)
    if str(number) != pk or not 1 <= number <= MAX_PK:
        return None
    return type_name, number


def pk_of(value: str, type_name: str) -> int | None:
    decoded = from_global_id(value)
    return decoded[1] if decoded and decoded[0] == type_name else None


def decode(value: str, type_name: str, field: FieldPath) -> int:
    """The pk of a global id of ``type_name``; an INVALID user error otherwise."""
    pk = pk_of(value, type_name)
    if pk is None:
        raise MediaFailure.one(field, ErrorCode.INVALID, f"This is not a valid {type_name} id.")
    return pk


def decode_list(values: list[strawberry.ID], type_name: str, field: FieldPath) -> list[int]:
    pks: list[int] = []
    problems: list[Problem] = []
    for index, value in enumerate(values):
        pk = pk_of(value, type_name)
        if pk is None:
            problems.append(
                Problem(
                    (*field, str(index)), ErrorCode.INVALID, f"This is not a valid {type_name} id."
                )
            )
        else:
            pks.append(pk)
    if problems:
        raise MediaFailure(problems)
    return pks
