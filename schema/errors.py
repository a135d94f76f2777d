"""User errors in payloads: the contract's MediaError and MediaErrorCode."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import strawberry

from storage.enums import ErrorCode
from storage.errors import MediaFailure, Problem

MediaErrorCode = strawberry.enum(ErrorCode, name="MediaErrorCode")

T = TypeVar("T")


@strawberry.type
class MediaError:
    field: list[str] | None = strawberry.field(
        description='Path into the input, e.g. ["images", "2", "url"].'
    )
    code: MediaErrorCode  # type: ignore[valid-type]
    message: str

    @classmethod
    def of(cls, problem: Problem) -> MediaError:
        return cls(field=list(problem.field) or None, code=problem.code, message=problem.message)


def errors_of(failure: MediaFailure) -> list[MediaError]:
    return [MediaError.of(p) for p in failure.problems]


async def attempt(call: Awaitable[T]) -> tuple[T | None, list[MediaError]]:
    """Run a use case; its user errors come back as MediaErrors, anything else propagates."""
    try:
        return await call, []
    except MediaFailure as failure:
        return None, errors_of(failure)
