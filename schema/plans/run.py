"""Running a compiled plan: one read connection, the page's rows in a fixed number of
statements (the root's, then every listed product's gallery and videos in one statement each),
and the response built from the records by plain function calls: no resolver, no awaitable
per field, no per-field completion as graphql-core does it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from graphql import FieldNode, GraphQLField
from graphql.execution.values import VariableValues, get_argument_values
from sqlalchemy.ext.asyncio import AsyncConnection
from strawberry.types.arguments import StrawberryArgument, convert_arguments

from schema.context import Context
from storage import reads
from storage.sql.records import ImageRecord, ProductRecord, VideoRecord, main_image

Getter = Callable[[Any, "Run"], Any]
"""A field's value (serialized, as it goes into the response) from its parent's source."""

RootGetter = Callable[["Run"], Awaitable[Any]]
"""A root field's value: the root fields are the ones that read."""

IMAGES = "images"
VIDEOS = "videos"
"""What a plan reads for the products it lists (``Plan.related``)."""


@dataclass(frozen=True, slots=True)
class Selection:
    """An object's selection set: its response keys in order, each with its getter."""

    fields: tuple[tuple[str, Getter], ...]

    def build(self, source: Any, run: Run) -> dict[str, Any]:
        return {key: get(source, run) for key, get in self.fields}


@dataclass(frozen=True)
class ArgumentSlot:
    """A field's arguments, coerced once per request as normal execution would: graphql-core's
    values (literals, variables, defaults), then Strawberry's conversion (enums, inputs)."""

    definition: GraphQLField
    node: FieldNode
    arguments: list[StrawberryArgument]
    convert: Callable[[dict[str, Any], list[StrawberryArgument]], dict[str, Any]]

    def values(self, variables: VariableValues) -> dict[str, Any]:
        return self.convert(
            get_argument_values(self.definition, self.node, variables), self.arguments
        )


def strawberry_converter(
    scalar_registry: Any, config: Any
) -> Callable[[dict[str, Any], list[StrawberryArgument]], dict[str, Any]]:
    def convert(values: dict[str, Any], arguments: list[StrawberryArgument]) -> dict[str, Any]:
        return convert_arguments(values, arguments, scalar_registry=scalar_registry, config=config)

    return convert


@dataclass
class Run:
    """One request's run of a plan: its context, connection, argument values (by slot), and
    the related rows of the products read so far."""

    context: Context
    connection: AsyncConnection
    arguments: list[dict[str, Any]]
    related: frozenset[str]
    galleries: dict[int, list[ImageRecord]] = field(default_factory=dict)
    mains: dict[int, ImageRecord | None] = field(default_factory=dict)
    videos: dict[int, list[VideoRecord]] = field(default_factory=dict)

    async def load_related(self, products: Sequence[ProductRecord]) -> None:
        """Every product's gallery and videos, one statement per kind the plan uses."""
        pks = [p.id for p in products if p.id not in self.mains]
        if not pks:
            return
        if IMAGES in self.related:
            galleries = await reads.images_by_product(self.connection, pks)
            for pk, gallery in zip(pks, galleries, strict=True):
                self.galleries[pk] = gallery
                self.mains[pk] = main_image(gallery)
        else:
            self.mains.update(dict.fromkeys(pks))
        if VIDEOS in self.related:
            lists = await reads.videos_by_product(self.connection, pks)
            self.videos.update(zip(pks, lists, strict=True))

    def main_id(self, product_pk: int) -> int | None:
        main = self.mains[product_pk]
        return main.id if main is not None else None


@dataclass(frozen=True)
class Plan:
    """A query's operation for given values of the variables its directives use."""

    root: tuple[tuple[str, RootGetter], ...]
    slots: tuple[ArgumentSlot, ...]
    related: frozenset[str]

    async def run(self, context: Context, variables: VariableValues) -> dict[str, Any] | None:
        """The response's ``data``; None when anything goes wrong (an argument refused, a bad
        cursor, a database error...): normal execution then answers, with its errors."""
        try:
            arguments = [slot.values(variables) for slot in self.slots]
            async with context.backend.db.read() as connection:
                run = Run(context, connection, arguments, self.related)
                return {key: await get(run) for key, get in self.root}
        except Exception:
            return None
