"""Failures that use cases report to callers as user errors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from storage.enums import ErrorCode

FieldPath = tuple[str, ...]


@dataclass(frozen=True)
class Problem:
    """One user mistake: where in the input (a path of names and indexes), what kind, why."""

    field: FieldPath
    code: ErrorCode
    message: str


class MediaFailure(Exception):
    """A use case refused its input; nothing was changed."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("; ".join(p.message for p in problems))
        self.problems = list(problems)

    @classmethod
    def one(cls, field: FieldPath, code: ErrorCode, message: str) -> MediaFailure:
        return cls([Problem(field, code, message)])


class FileRejected(Exception):
    """The bytes of an upload or download are not acceptable (format, size, pixels)."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
