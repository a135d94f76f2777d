"""User errors in payloads: the contract's MediaError and MediaErrorCode."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError

from storage.enums import ErrorCode
from storage.errors import MediaFailure, Problem

# The contract names the error code enum MediaErrorCode.
strawberry.enum(ErrorCode, name="MediaErrorCode")

BAD_USER_INPUT = "BAD_USER_INPUT"
"""``extensions.code`` of a top-level error caused by an argument the client sent (the name
Apollo Server and most GraphQL servers use)."""


def bad_user_input(message: str) -> GraphQLError:
    """A query argument the client got wrong: there is no payload for userErrors in a query,
    so it is a GraphQL error, with a code a client can branch on."""
    return GraphQLError(message, extensions={"code": BAD_USER_INPUT})


@strawberry.type
class MediaError:
    field: list[str] | None = strawberry.field(
        description='Path into the input, e.g. ["images", "2", "url"].'
    )
    code: ErrorCode
    message: str

    @classmethod
    def of(cls, problem: Problem) -> MediaError:
        return cls(field=list(problem.field) or None, code=problem.code, message=problem.message)


def errors_of(failure: MediaFailure) -> list[MediaError]:
    return [MediaError.of(p) for p in failure.problems]
