"""Cost limits on GraphQL documents, checked before validation.

Depth, token and alias limits (Strawberry's extensions) bound the text of a document, not what
it asks for. Two more checks, both priced in one linear pass over the parsed document
(fragments are priced once and reused, so a hostile document costs time proportional to its
length whatever it multiplies to):

**Cost**: how many items an operation can make the server return. Each field counts 1 for
each time it can appear in the response, multiplied down the tree:

* a field with a ``first`` argument counts ``first`` times: a list field directly, a
  connection (``products``, ``images``, ``videos``, ``downloadableImages``) through the list
  fields right under it (``edges``), so its ``pageInfo`` and ``totalCount`` count once;
* a field whose output follows a list argument (``Image.renditions(sizes:)``,
  ``syncImagesBulk(inputs:)``, ``deleteImages(ids:)``, …: ``counts_output`` in
  schema/list_bounds.py) counts that list's real length, like a ``first``;
* any other list without ``first`` (``Product.images``, ``renditions`` without ``sizes``, a
  payload's list) counts ``list_factor`` times (10 by default): a generous guess of a
  gallery's size;
* ``first`` comes from the literal, else the variable's value, else the variable's default,
  else the argument's default; a negative ``first`` counts 0 (the field refuses it anyway);
* introspection fields (``__schema``, ``__type``, ``__typename``) cost nothing: they are
  bounded by the schema, and ``MEDIA_GATEWAY_INTROSPECTION=false`` turns them off;
* fragments count where they are spread; ``@skip``/``@include`` are ignored (an upper bound).

**List bounds**: every list argument, and every list inside an input object, has the bound
that schema/list_bounds.py declares, checked on literals and on variables' values (a variable
absent takes its default). A list over it, a repeated entry where entries are distinct, or an
argument holding more than ``MAX_ENTRIES`` entries in all is refused with code
``BAD_USER_INPUT``: nothing is coerced, validated or run.

**Expansion**: the number of selections once every fragment spread is replaced by its
fragment, introspection included. Ten fragments that each spread the next one twice are 40
tokens and 1024 selections; thirty are a billion. Strawberry's depth and alias limiters walk
that expansion (minutes of CPU for one request), so such documents are refused first.

A document with an operation over ``max_cost``, or expanding to more than ``max_selections``,
is refused before validation and before anything runs, with one GraphQL error whose
``extensions`` carry ``code`` (``QUERY_TOO_COSTLY`` or ``QUERY_TOO_LARGE``) and the figures.
Every operation of the document is checked, not only the one that would run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import (
    DocumentNode,
    EnumValueNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNamedType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    ListValueNode,
    NullValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    ValueNode,
    VariableNode,
    get_named_type,
)
from strawberry.extensions import SchemaExtension

from schema import TOO_LARGE
from schema.errors import bad_user_input
from schema.list_bounds import ARGUMENTS, INPUT_FIELDS, MAX_ENTRIES, ListBound

LIST_FACTOR = 10
"""What a list without ``first`` counts for (Product.images, Image.renditions, …)."""

MAX_SELECTIONS = 10_000
"""Default bound of a document's selections with its fragments expanded."""

CEILING = 10**15
"""Figures stop growing here (a figure this high reads "at least this much")."""

TOO_COSTLY = "QUERY_TOO_COSTLY"


class Refused(Exception):
    """A document refused while it is priced; ``error`` is what the client gets."""

    def __init__(self, error: GraphQLError) -> None:
        super().__init__(error.message)
        self.error = error


def _saturated(value: int) -> int:
    return min(value, CEILING)


def _fragments(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }


def _operations(document: DocumentNode) -> list[OperationDefinitionNode]:
    return [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]


@dataclass
class Expansion:
    """Counts selections with fragment spreads expanded (a spread counts 1, plus its
    fragment's selections); needs no schema, so it runs before anything else."""

    fragments: Mapping[str, FragmentDefinitionNode]
    _memo: dict[str, int] = field(default_factory=dict, init=False)

    def size(self, selection_set: SelectionSetNode | None, visiting: frozenset[str]) -> int:
        if selection_set is None:
            return 0
        total = 0
        for selection in selection_set.selections:
            total += 1
            if isinstance(selection, FieldNode | InlineFragmentNode):
                total += self.size(selection.selection_set, visiting)
            elif isinstance(selection, FragmentSpreadNode):
                total += self._spread(selection.name.value, visiting)
            if total >= CEILING:
                return CEILING
        return total

    def _spread(self, name: str, visiting: frozenset[str]) -> int:
        fragment = self.fragments.get(name)
        if fragment is None or name in visiting:  # unknown or cyclic: validation reports it
            return 0
        if name not in self._memo:
            self._memo[name] = self.size(fragment.selection_set, visiting | {name})
        return self._memo[name]


@dataclass
class ListArguments:
    """Checks the list bounds of one operation's arguments (schema/list_bounds.py) on literals
    and variables' values, before graphql-core coerces anything. A variable is measured once
    per place it fills, however often it is spread."""

    variables: Mapping[str, Any]
    defaults: Mapping[str, ValueNode | None]
    _measured: dict[tuple[str, int, int], int] = field(default_factory=dict, init=False)

    def check(self, node: FieldNode, parent: str, definition: GraphQLField) -> int | None:
        """Checks the field's arguments; the length of the list its output follows, if any."""
        follows: int | None = None
        for given in node.arguments or ():
            name = given.name.value
            argument = definition.args.get(name)
            if argument is None:
                continue  # unknown argument: validation reports it
            bound = ARGUMENTS.get((parent, node.name.value, name))
            entries = self._entries(given.value, argument.type, bound, name)
            if entries > MAX_ENTRIES:
                raise _too_many_entries(name, entries)
            if bound is not None and bound.counts_output:
                follows = len(self._items(given.value))
        return follows

    def _entries(
        self, value: object, type_: GraphQLInputType, bound: ListBound | None, path: str
    ) -> int:
        """The entries of the lists in ``value`` (a literal or JSON), each bound checked."""
        if isinstance(value, VariableNode):
            key = (value.name.value, id(type_), id(bound))
            if key not in self._measured:
                self._measured[key] = self._entries(self._variable(value), type_, bound, path)
            return self._measured[key]
        if isinstance(type_, GraphQLNonNull):
            type_ = type_.of_type
        if isinstance(type_, GraphQLList):
            items = self._items(value)
            if bound is not None:
                _check_bound(items, bound, path, self._plain)
            total = len(items)
            for index, item in enumerate(items):
                total += self._entries(item, type_.of_type, None, f"{path}.{index}")
                if total > MAX_ENTRIES:
                    raise _too_many_entries(path, total)
            return total
        if isinstance(type_, GraphQLInputObjectType):
            total = 0
            for name, item in self._fields(value).items():
                field_ = type_.fields.get(name)
                if field_ is not None:
                    bound = INPUT_FIELDS.get((type_.name, name))
                    total += self._entries(item, field_.type, bound, f"{path}.{name}")
            return total
        return 0

    def _variable(self, node: VariableNode) -> object:
        name = node.name.value
        return self.variables[name] if name in self.variables else self.defaults.get(name)

    def _resolved(self, value: object) -> object:
        return self._variable(value) if isinstance(value, VariableNode) else value

    def _items(self, value: object) -> list[object]:
        """The entries of a list value; a single value is a list of one (input coercion)."""
        value = self._resolved(value)
        if value is None or isinstance(value, NullValueNode):
            return []
        if isinstance(value, ListValueNode):
            return list(value.values)
        return list(value) if isinstance(value, list) else [value]

    def _fields(self, value: object) -> dict[str, object]:
        value = self._resolved(value)
        if isinstance(value, ObjectValueNode):
            return {f.name.value: f.value for f in value.fields}
        return dict(value) if isinstance(value, dict) else {}

    def _plain(self, value: object) -> object:
        """An entry as a comparable value (an enum's or string's text), or None."""
        value = self._resolved(value)
        if isinstance(value, EnumValueNode | StringValueNode):
            return value.value
        return value if isinstance(value, str | int) else None


def _check_bound(
    items: list[object], bound: ListBound, path: str, plain: Callable[[object], object]
) -> None:
    if len(items) > bound.refused_over:
        raise Refused(bad_user_input(f"{path} holds {len(items)} values; at most {bound.maximum}."))
    if bound.distinct:
        seen: set[object] = set()
        for item in items:
            value = plain(item)
            if value is not None and value in seen:
                raise Refused(bad_user_input(f"{path} holds {value} more than once."))
            seen.add(value)


def _too_many_entries(path: str, entries: int) -> Refused:
    return Refused(
        bad_user_input(f"{path} holds {entries} list entries in all; at most {MAX_ENTRIES}.")
    )


@dataclass
class CostEstimator:
    """Prices the operations of one document against one set of variable values."""

    schema: GraphQLSchema
    fragments: Mapping[str, FragmentDefinitionNode]
    variables: Mapping[str, Any] = field(default_factory=dict)
    list_factor: int = LIST_FACTOR
    _defaults: dict[str, Any] = field(default_factory=dict, init=False)
    _lists: ListArguments = field(init=False)
    _memo: dict[tuple[str, int | None], int] = field(default_factory=dict, init=False)

    def operation(self, operation: OperationDefinitionNode) -> int:
        root = self.schema.get_root_type(operation.operation)
        if root is None:
            return 0
        self._defaults = {
            definition.variable.name.value: definition.default_value
            for definition in operation.variable_definitions or ()
        }
        self._lists = ListArguments(self.variables, self._defaults)
        self._memo = {}
        return self._selections(operation.selection_set, root, None, frozenset())

    def _selections(
        self,
        selection_set: SelectionSetNode,
        parent: GraphQLNamedType,
        pending: int | None,
        visiting: frozenset[str],
    ) -> int:
        """``pending``: the ``first`` of the connection whose fields these are, counted by
        its list fields."""
        total = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                total += self._field(selection, parent, pending, visiting)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self.schema.get_type(condition.name.value) if condition else parent
                if target is not None:
                    total += self._selections(selection.selection_set, target, pending, visiting)
            elif isinstance(selection, FragmentSpreadNode):
                total += self._spread(selection.name.value, pending, visiting)
            if total >= CEILING:
                return CEILING
        return total

    def _spread(self, name: str, pending: int | None, visiting: frozenset[str]) -> int:
        fragment = self.fragments.get(name)
        if fragment is None or name in visiting:  # unknown or cyclic: validation reports it
            return 0
        key = (name, pending)
        if key not in self._memo:
            target = self.schema.get_type(fragment.type_condition.name.value)
            self._memo[key] = (
                0
                if target is None
                else self._selections(fragment.selection_set, target, pending, visiting | {name})
            )
        return self._memo[key]

    def _field(
        self,
        node: FieldNode,
        parent: GraphQLNamedType,
        pending: int | None,
        visiting: frozenset[str],
    ) -> int:
        name = node.name.value
        if name.startswith("__") or not isinstance(
            parent, GraphQLObjectType | GraphQLInterfaceType
        ):
            return 0
        definition = parent.fields.get(name)
        if definition is None:
            return 0  # unknown field: validation reports it
        first = self._first(node, definition)
        follows = self._lists.check(node, parent.name, definition)
        if first is None:
            first = follows
        output = definition.type
        if isinstance(output, GraphQLNonNull):
            output = output.of_type
        below: int | None = None
        if isinstance(output, GraphQLList):
            if pending is not None:
                count = pending
            elif first is not None:
                count = first
            else:
                count = self.list_factor
        else:
            count, below = 1, first
        children = 0
        if node.selection_set is not None:
            children = self._selections(node.selection_set, get_named_type(output), below, visiting)
        return _saturated(count * (1 + children))

    def _first(self, node: FieldNode, definition: GraphQLField) -> int | None:
        """The field's ``first`` (None when it has no such argument), never negative."""
        argument = definition.args.get("first")
        if argument is None:
            return None
        value: Any = None
        for given in node.arguments or ():
            if given.name.value != "first":
                continue
            if isinstance(given.value, IntValueNode):
                value = int(given.value.value)
            elif isinstance(given.value, VariableNode):
                variable = given.value.name.value
                if variable in self.variables:
                    value = self.variables[variable]
                elif isinstance(self._defaults.get(variable), IntValueNode):
                    value = int(self._defaults[variable].value)
        if not _is_int(value):
            value = argument.default_value  # null or absent: the field's default
        if not _is_int(value):
            return self.list_factor
        return max(0, _saturated(int(value)))


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def document_costs(
    schema: GraphQLSchema,
    document: DocumentNode,
    variables: Mapping[str, Any] | None = None,
    list_factor: int = LIST_FACTOR,
) -> dict[str | None, int]:
    """The estimated cost of each operation of ``document``, by operation name; raises
    ``Refused`` when an argument is over its list bound."""
    estimator = CostEstimator(schema, _fragments(document), variables or {}, list_factor)
    return {
        (operation.name.value if operation.name else None): estimator.operation(operation)
        for operation in _operations(document)
    }


def expanded_size(document: DocumentNode) -> int:
    """The selections of the document's operations with every fragment spread expanded."""
    expansion = Expansion(_fragments(document))
    total = sum(expansion.size(op.selection_set, frozenset()) for op in _operations(document))
    return _saturated(total)


def check_document(
    schema: GraphQLSchema,
    document: DocumentNode,
    variables: Mapping[str, Any] | None,
    *,
    max_cost: int,
    max_selections: int = MAX_SELECTIONS,
    list_factor: int = LIST_FACTOR,
) -> GraphQLError | None:
    """The error refusing ``document``, or None when it is within the limits."""
    size = expanded_size(document)
    if size > max_selections:
        amount = f"at least {size}" if size >= CEILING else str(size)
        return GraphQLError(
            f"The document expands to {amount} selections once its fragments are spread, "
            f"over the limit of {max_selections}.",
            extensions={"code": TOO_LARGE, "selections": size, "maxSelections": max_selections},
        )
    try:
        costs = document_costs(schema, document, variables, list_factor)
    except Refused as refused:
        return refused.error
    for name, cost in costs.items():
        if cost > max_cost:
            which = f"Operation '{name}'" if name else "The operation"
            amount = f"at least {cost}" if cost >= CEILING else f"up to {cost}"
            return GraphQLError(
                f"{which} could return {amount} items, over the limit of {max_cost}: ask for "
                "fewer (a smaller `first`) or nest fewer lists.",
                extensions={"code": TOO_COSTLY, "cost": cost, "maxCost": max_cost},
            )
    return None


class QueryCostLimiter(SchemaExtension):
    """Refuses over-limit documents (see the module) before validation runs: the error is set
    as the operation's pre-execution error, so Strawberry skips validation and execution."""

    def __init__(
        self,
        *,
        max_cost: int,
        max_selections: int = MAX_SELECTIONS,
        list_factor: int = LIST_FACTOR,
    ) -> None:
        self.max_cost = max_cost
        self.max_selections = max_selections
        self.list_factor = list_factor

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.pre_execution_errors is None:
            variables = context.variables if isinstance(context.variables, dict) else {}
            error = check_document(
                context.schema._schema,
                document,
                variables,
                max_cost=self.max_cost,
                max_selections=self.max_selections,
                list_factor=self.list_factor,
            )
            if error is not None:
                context.pre_execution_errors = [error]
        yield


__all__ = [
    "CEILING",
    "LIST_FACTOR",
    "MAX_SELECTIONS",
    "TOO_COSTLY",
    "TOO_LARGE",
    "CostEstimator",
    "ListArguments",
    "QueryCostLimiter",
    "Refused",
    "check_document",
    "document_costs",
    "expanded_size",
]
