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


def too_large(limit: int) -> FileRejected:
    """The rejection of a file over ``limit`` bytes."""
    return FileRejected(
        ErrorCode.FILE_TOO_LARGE, f"The file is over the limit of {format_size(limit)}."
    )


def format_size(size: int) -> str:
    """``size`` bytes for people: ``"10 MiB"``, ``"1.5 KiB (1536 bytes)"``, ``"900 bytes"``."""
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor:
            if size % factor == 0:
                return f"{size // factor} {unit}"
            return f"{size / factor:.1f} {unit} ({size} bytes)"
    return "1 byte" if size == 1 else f"{size} bytes"
