"""The Strawberry schema: types, inputs, queries, mutations, user errors, DataLoaders.

It translates GraphQL to calls of storage's use cases; it holds no SQL and touches no file."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.schema.config import BatchingConfig, StrawberryConfig

from schema.auth import Authorization
from schema.context import Context
from schema.errors import BAD_USER_INPUT
from schema.mutations import Mutation
from schema.operation_choice import RequireOperationName
from schema.queries import Query
from schema.types import DownloadableImage, Image, Product, Video

__all__ = ["Context", "build_schema", "is_internal_error"]


def is_internal_error(error: GraphQLError) -> bool:
    """Errors raised by our code on purpose (GraphQLError) and validation errors are shown;
    anything else (a bug, a database fault) is masked and only logged."""
    return error.original_error is not None and not isinstance(error.original_error, GraphQLError)


class _MaskInternalErrors(MaskErrors):
    def __init__(self) -> None:
        super().__init__(
            should_mask_error=is_internal_error, error_message="Internal server error."
        )

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        masked = super().anonymise_error(error)
        masked.extensions = {"code": INTERNAL_SERVER_ERROR}
        return masked


INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
TOO_DEEP = "QUERY_TOO_DEEP"
TOO_MANY_ALIASES = "QUERY_TOO_MANY_ALIASES"
TOO_LARGE = "QUERY_TOO_LARGE"

_LIMIT_MESSAGES = (
    # graphql-core's parser under Strawberry's MaxTokensLimiter
    ("Syntax Error: Document contains more than ", TOO_LARGE),
    # Strawberry's QueryDepthLimiter and MaxAliasesLimiter (validation rules)
    ("exceeds maximum operation depth of", TOO_DEEP),
    ("aliases found. Allowed:", TOO_MANY_ALIASES),
)


def _set_codes(errors: Sequence[GraphQLError] | None, default: str | None) -> None:
    """Gives each error without a code one: a limit's (by its message), else ``default``."""
    for error in errors or ():
        if (error.extensions or {}).get("code"):
            continue
        code = next((c for text, c in _LIMIT_MESSAGES if text in error.message), default)
        if code is not None:
            error.extensions = {**(error.extensions or {}), "code": code}


class ErrorCodes(SchemaExtension):
    """``extensions.code`` on graphql-core's own request errors, as Apollo Server names them:
    parse errors GRAPHQL_PARSE_FAILED, validation errors GRAPHQL_VALIDATION_FAILED, variable
    values that do not coerce BAD_USER_INPUT; the limits of Strawberry's extensions
    QUERY_TOO_LARGE (tokens), QUERY_TOO_DEEP (depth), QUERY_TOO_MANY_ALIASES (aliases)."""

    def on_parse(self) -> Iterator[None]:
        yield
        _set_codes(self.execution_context.pre_execution_errors, PARSE_FAILED)

    def on_validate(self) -> Iterator[None]:
        yield
        _set_codes(self.execution_context.pre_execution_errors, VALIDATION_FAILED)

    def on_execute(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        for error in (result.errors if result is not None else None) or ():
            if error.path is None and error.message.startswith("Variable '$"):
                _set_codes([error], BAD_USER_INPUT)


def build_schema(
    extensions: Sequence[Callable[[], SchemaExtension]] = (),
    max_batch: int = 1,
) -> strawberry.Schema:
    """The schema; ``extensions`` are factories of further per-request extensions (limits).
    ``max_batch`` > 1 accepts batches (a JSON array of operations) of up to that many."""
    batching = BatchingConfig(max_operations=max_batch) if max_batch > 1 else None
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        types=[Product, Image, Video, DownloadableImage],
        extensions=[
            RequireOperationName,
            Authorization,
            ErrorCodes,
            _MaskInternalErrors,
            *extensions,
        ],
        config=StrawberryConfig(batching_config=batching),
    )
