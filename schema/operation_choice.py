"""A document with several operations must name the one to run (GraphQL spec, "GetOperation");
Strawberry would run the first one instead."""

from __future__ import annotations

from collections.abc import Iterator

from graphql import ExecutionResult, GraphQLError, OperationDefinitionNode
from strawberry.extensions import SchemaExtension

OPERATION_RESOLUTION_FAILURE = "OPERATION_RESOLUTION_FAILURE"
"""``extensions.code`` when the operation to run cannot be chosen (Apollo Server's name)."""


class RequireOperationName(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        execution = self.execution_context
        document = execution.graphql_document
        # Strawberry keeps the name the request gave apart from its fallback to the first one.
        given = getattr(execution, "_provided_operation_name", None)
        if document is not None and given is None and execution.result is None:
            operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            if len(operations) > 1:
                execution.result = ExecutionResult(
                    data=None,
                    errors=[
                        GraphQLError(
                            "Must provide operation name if query contains multiple operations.",
                            extensions={"code": OPERATION_RESOLUTION_FAILURE},
                        )
                    ],
                )
        yield
