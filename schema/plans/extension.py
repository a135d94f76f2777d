"""Answering covered queries from a compiled plan instead of graphql-core's execution.

Its ``on_execute`` sets the operation's result before execution starts, which makes Strawberry
skip execution; by then parsing, validation, gateway/limits.py (cost, list bounds) and the
authorization (schema/auth.py, whose refusal is a result already set) have run. Extensions'
hooks around execution and the operation (metrics, error codes, the view's Queries) see the
result as if execution had produced it. A query the plan does not cover, or that would answer
with an error, runs normally.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from graphql import (
    DirectiveNode,
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLIncludeDirective,
    GraphQLSkipDirective,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
)
from graphql.execution.values import VariableValues, get_variable_values
from graphql.utilities import get_operation_ast
from strawberry import Schema
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import ExecutionContext
from strawberry.types.graphql import OperationType

from schema.context import Context
from schema.plans.compile import Compiler, NotCovered
from schema.plans.lru import Lru
from schema.plans.run import Plan

DOCUMENTS = 256
"""Operations (query text and operation name) whose plans are kept."""

VARIANTS = 8
"""Plans kept per operation, one per combination of its directives' variable values."""

_CONDITIONS = {GraphQLSkipDirective.name, GraphQLIncludeDirective.name}


@dataclass
class Operation:
    """One operation of a document, and its plans by the values of its directives' variables."""

    operation: OperationDefinitionNode
    fragments: list[FragmentDefinitionNode]
    conditions: tuple[str, ...]
    """The variables that ``@skip``/``@include`` read: the plan depends on their values."""
    plans: dict[tuple[object, ...], Plan | None] = field(default_factory=dict)

    def plan(self, schema: Schema, variables: VariableValues) -> Plan | None:
        key = tuple(variables.coerced.get(name) for name in self.conditions)
        if key in self.plans:
            return self.plans[key]
        try:
            plan: Plan | None = Compiler(schema, self.operation, self.fragments, variables).plan()
        except NotCovered:
            plan = None
        if len(self.plans) < VARIANTS:
            self.plans[key] = plan
        return plan


class Plans:
    """The compiled operations of one app; ``counted`` hears whether each query was answered
    by a plan (True) or ran normally (False)."""

    def __init__(self, counted: Callable[[bool], None] = lambda hit: None) -> None:
        self.counted = counted
        self._operations: Lru[tuple[str, str | None], Operation | bool] = Lru(DOCUMENTS)
        """False for an operation that no plan can answer."""

    async def answer(self, execution: ExecutionContext) -> ExecutionResult | None:
        """The result of the execution's query from its plan; None to execute it."""
        if execution.operation_type != OperationType.QUERY:
            return None
        result = await self._answer(execution)
        self.counted(result is not None)
        return result

    async def _answer(self, execution: ExecutionContext) -> ExecutionResult | None:
        context, document, query = execution.context, execution.graphql_document, execution.query
        raw = execution.variables if execution.variables is not None else {}
        if not isinstance(context, Context) or document is None or query is None:
            return None
        if not isinstance(raw, dict):
            return None
        operation = self._operation(query, execution.operation_name, document)
        if operation is None:
            return None
        schema = execution.schema
        assert isinstance(schema, Schema)
        variables = get_variable_values(
            schema._schema, operation.operation.variable_definitions or (), raw
        )
        if isinstance(variables, list):
            return None  # the variables' errors are execution's to report
        plan = operation.plan(schema, variables)
        data = await plan.run(context, variables) if plan is not None else None
        return ExecutionResult(data=data) if data is not None else None

    def _operation(self, query: str, name: str | None, document: DocumentNode) -> Operation | None:
        key = (query, name)
        known = self._operations.get(key)
        if known is None:
            known = _operation_of(document, name) or False
            self._operations.put(key, known)
        return known if isinstance(known, Operation) else None


def _operation_of(document: DocumentNode, name: str | None) -> Operation | None:
    """The operation to plan, when it uses no directive but ``@skip``/``@include`` and no
    fragment variables; None otherwise."""
    operation = get_operation_ast(document, name)
    if operation is None or operation.directives:
        return None
    if any(d.directives for d in operation.variable_definitions or ()):
        return None
    fragments = [d for d in document.definitions if isinstance(d, FragmentDefinitionNode)]
    conditions: set[str] = set()
    for fragment in fragments:
        if fragment.variable_definitions or fragment.directives:
            return None
        if not _conditions(fragment.selection_set, conditions):
            return None
    if not _conditions(operation.selection_set, conditions):
        return None
    return Operation(operation, fragments, tuple(sorted(conditions)))


def _conditions(selection_set: SelectionSetNode | None, found: set[str]) -> bool:
    """Adds the variables that the directives of ``selection_set`` read to ``found``; False
    when a directive is not ``@skip``/``@include``."""
    for selection in selection_set.selections if selection_set else ():
        assert isinstance(selection, FieldNode | FragmentSpreadNode | InlineFragmentNode)
        if not all(_condition(d, found) for d in selection.directives or ()):
            return False
        if not isinstance(selection, FragmentSpreadNode) and not _conditions(
            selection.selection_set, found
        ):
            return False
    return True


def _condition(directive: DirectiveNode, found: set[str]) -> bool:
    if directive.name.value not in _CONDITIONS:
        return False
    for argument in directive.arguments or ():
        if isinstance(argument.value, VariableNode):
            found.add(argument.value.name.value)
    return True


class CompiledPlans(SchemaExtension):
    """Goes after the authorization and the limits in the schema's extensions."""

    def __init__(self, *, plans: Plans) -> None:
        self.plans = plans

    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        if execution.result is None:
            result = await self.plans.answer(execution)
            if result is not None:
                execution.result = result
        yield
