"""GraphQL operations generated from an SDL by hypothesis-graphql, with ``Upload`` values sent
the only way the GraphQL multipart request spec allows: as variables whose file parts the
``map`` of a multipart body fills.

hypothesis-graphql writes every argument as a literal. An ``Upload`` position gets the
placeholder variable ``$upload`` (see :func:`upload_values`); :func:`finish` numbers the
placeholders (``$upload0``, ``$upload1``, ...) and declares them on the operation, so the
test can attach one file part to each."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import graphql
import hypothesis_graphql
from graphql import (
    DocumentNode,
    NamedTypeNode,
    NameNode,
    NonNullTypeNode,
    OperationDefinitionNode,
    ValueNode,
    VariableDefinitionNode,
    VariableNode,
    Visitor,
)
from hypothesis import strategies as st

PLACEHOLDER = "upload"
UPLOAD_SCALAR = "Upload"


@dataclass(frozen=True)
class Operation:
    document: str
    uploads: tuple[str, ...]
    """The names of the ``Upload!`` variables the document declares, in document order."""


@dataclass(frozen=True)
class FilePart:
    filename: str
    content: bytes
    content_type: str

    def __repr__(self) -> str:  # a failure's report shows the start of the bytes only
        return f"FilePart({self.filename!r}, {self.content[:32]!r}+{len(self.content)}B)"


class _NumberUploads(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: list[str] = []

    def enter_variable(self, node: VariableNode, *_: Any) -> VariableNode | None:
        if node.name.value != PLACEHOLDER:
            return None
        name = f"{PLACEHOLDER}{len(self.names)}"
        self.names.append(name)
        return VariableNode(name=NameNode(value=name))

    def leave_operation_definition(
        self, node: OperationDefinitionNode, *_: Any
    ) -> OperationDefinitionNode:
        definitions = tuple(
            VariableDefinitionNode(
                variable=VariableNode(name=NameNode(value=name)),
                type=NonNullTypeNode(type=NamedTypeNode(name=NameNode(value=UPLOAD_SCALAR))),
                directives=(),
            )
            for name in self.names
        )
        return OperationDefinitionNode(
            operation=node.operation,
            name=node.name,
            variable_definitions=definitions,
            directives=node.directives,
            selection_set=node.selection_set,
        )


def finish(document: DocumentNode) -> Operation:
    """Number the ``$upload`` placeholders of a generated document and declare them."""
    numbering = _NumberUploads()
    edited = graphql.visit(document, numbering)
    return Operation(graphql.print_ast(edited), tuple(numbering.names))


def upload_values() -> st.SearchStrategy[ValueNode]:
    """What an ``Upload`` position holds: mostly a file part's variable, sometimes a literal
    (which no client can make a file of)."""
    placeholder = VariableNode(name=NameNode(value=PLACEHOLDER))
    literals = st.sampled_from(["", "file", "0"]).map(hypothesis_graphql.nodes.String)
    return st.one_of(st.just(placeholder), st.just(placeholder), literals)


def operations(
    sdl: str,
    kind: Literal["query", "mutation"],
    field: str,
    custom_scalars: dict[str, st.SearchStrategy[ValueNode]],
) -> st.SearchStrategy[Operation]:
    """Valid operations of one root field of ``sdl``."""
    build: Callable[..., st.SearchStrategy[Operation]] = (
        hypothesis_graphql.queries if kind == "query" else hypothesis_graphql.mutations
    )
    return build(
        sdl,
        fields=[field],
        custom_scalars={UPLOAD_SCALAR: upload_values(), **custom_scalars},
        print_ast=finish,
    )


def multipart(
    operation: Operation, parts: Iterable[tuple[FilePart, tuple[str, ...]]]
) -> tuple[dict[str, str], dict[str, tuple[str, bytes, str]]]:
    """The form fields and files of a multipart request: each part fills the variables named
    beside it (one part may fill several, as the spec allows)."""
    entries = list(parts)
    body = {"query": operation.document, "variables": dict.fromkeys(operation.uploads)}
    mapping = {
        str(index): [f"variables.{name}" for name in names]
        for index, (_, names) in enumerate(entries)
    }
    files = {
        str(index): (part.filename, part.content, part.content_type)
        for index, (part, _) in enumerate(entries)
    }
    return {"operations": json.dumps(body), "map": json.dumps(mapping)}, files
