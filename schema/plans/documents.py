"""Parsing and validating a document once per query text rather than once per request.

Storefronts send the same few documents over and over (with different variables), and the
schema is static, so a document that parsed and validated once will again. Strawberry's own
``ParserCache`` and ``ValidationCache`` do not fit the gateway: the first raises a syntax error
from its hook, outside Strawberry's handling of parse errors (the error would lose its code
GRAPHQL_PARSE_FAILED); the second keys its cache by the document's AST (hashing it whole on
every request) and overwrites errors that gateway/limits.py set before validation. These caches
are keyed by the text, keep only successes (a syntax or validation error is produced again, as
normal), and leave a request that an earlier extension refused alone.
"""

from __future__ import annotations

from collections.abc import Iterator

from graphql import DocumentNode, GraphQLError, parse
from strawberry.extensions import SchemaExtension

from schema.plans.lru import Lru

DOCUMENTS = 512
"""Query texts whose parsed document and validation are kept."""


class Documents:
    """The documents parsed, and the (text, rules) pairs validated without error, for one
    schema; shared by every request of an app."""

    def __init__(self, size: int = DOCUMENTS) -> None:
        self.parsed: Lru[tuple[str, tuple[tuple[str, object], ...]], DocumentNode] = Lru(size)
        self.valid: Lru[tuple[str, tuple[str, ...]], bool] = Lru(size)
        """By the names of the rules: Strawberry's depth and alias limiters make a rule class
        per request, but the rules of one schema's requests are always the same."""


class DocumentCache(SchemaExtension):
    """Goes after gateway/limits.py's extensions: parsing reads their options (max tokens),
    and their refusal before validation stands."""

    def __init__(self, *, documents: Documents) -> None:
        self.documents = documents

    def on_parse(self) -> Iterator[None]:
        execution = self.execution_context
        query = execution.query
        if query is not None and execution.graphql_document is None:
            key = (query, tuple(sorted(execution.parse_options.items())))
            document = self.documents.parsed.get(key)
            if document is None:
                try:
                    document = parse(query, **execution.parse_options)
                except GraphQLError:
                    document = None  # Strawberry parses it again and reports the error
                else:
                    self.documents.parsed.put(key, document)
            execution.graphql_document = document
        yield

    def on_validate(self) -> Iterator[None]:
        execution = self.execution_context
        query = execution.query
        key = (query or "", tuple(rule.__qualname__ for rule in execution.validation_rules))
        known = (
            query is not None
            and execution.pre_execution_errors is None
            and self.documents.valid.get(key) is not None
        )
        if known:
            execution.pre_execution_errors = []  # Strawberry then skips its validation
        yield
        if query is not None and not known and execution.pre_execution_errors == []:
            self.documents.valid.put(key, True)
