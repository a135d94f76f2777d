"""The Strawberry schema: types, inputs, queries, mutations, user errors, DataLoaders.

It translates GraphQL to calls of storage's use cases; it holds no SQL and touches no file."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import strawberry
from graphql import GraphQLError
from strawberry.extensions import MaskErrors, SchemaExtension
from strawberry.schema.config import BatchingConfig, StrawberryConfig

from schema.auth import Authorization
from schema.context import Context
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
        extensions=[RequireOperationName, Authorization, _MaskInternalErrors, *extensions],
        config=StrawberryConfig(batching_config=batching),
    )
