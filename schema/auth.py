"""Authorisation of whole operations: nothing runs when it fails, and the failure is one
top-level error with ``extensions.code`` UNAUTHENTICATED or FORBIDDEN."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import ExecutionResult, GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types.graphql import OperationType

from schema.context import Context
from storage.enums import TokenScope


def refusal(context: Context, operation: OperationType) -> GraphQLError | None:
    if context.bad_token:
        return _error("UNAUTHENTICATED", "The token is unknown or revoked.")
    if operation == OperationType.MUTATION:
        if context.scope is None:
            return _error(
                "UNAUTHENTICATED", "Mutations need a token: Authorization: Bearer <token>."
            )
        if context.scope != TokenScope.WRITE:
            return _error("FORBIDDEN", "This token may read but not write.")
    elif context.scope is None and not context.public_read:
        return _error("UNAUTHENTICATED", "Queries need a token: Authorization: Bearer <token>.")
    return None


def _error(code: str, message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


class Authorization(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        execution = self.execution_context
        context = execution.context
        if isinstance(context, Context):
            error = refusal(context, execution.operation_type)
            if error is not None:
                execution.result = ExecutionResult(data=None, errors=[error])
        yield
