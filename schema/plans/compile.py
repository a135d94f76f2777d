"""Compiling a validated query operation into a plan (schema/plans/run.py).

Fields are collected with graphql-core's own ``collect_fields`` / ``collect_subfields`` for
the values of the variables that directives use, so fragments (named, inline, type
conditions), ``@skip``/``@include``, aliases, merged fields and response key order are exactly
normal execution's. Each collected field becomes a getter from the table below, which serializes
its value as the schema's type would (IDs, enums by name, DateTime in ISO 8601, Float as float).
A field the table does not know (a field added to the schema later, ``Image.product``,
introspection...) makes the whole operation not covered: it runs normally.

Only values that cannot fail are produced here; whatever can (``first`` out of range, an
invalid cursor or option...) raises at run time and the request runs normally, errors and all.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Any

from graphql import (
    FragmentDefinitionNode,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    get_named_type,
)
from graphql.execution.collect_fields import (
    FieldDetails,
    FragmentDetails,
    collect_fields,
    collect_subfields,
)
from graphql.execution.values import VariableValues
from strawberry import Schema

from schema.ids import to_global_id
from schema.plans.run import (
    IMAGES,
    VIDEOS,
    ArgumentSlot,
    Getter,
    Plan,
    RootGetter,
    Run,
    Selection,
    strawberry_converter,
)
from schema.queries import product_listing, product_page, product_ref
from schema.types import gallery_filter, rendition_views
from storage import enums, reads
from storage.sql.records import ImageRecord, ProductRecord, VideoRecord, as_utc


class NotCovered(Exception):
    """The operation asks for something the plans do not build."""


Group = list[FieldDetails]
FieldCompiler = Callable[["Compiler", GraphQLObjectType, Group], Getter]


def _names(enum: type[StrEnum]) -> dict[str, str]:
    """A stored enum value -> its GraphQL name (a value not in the enum fails, as it would)."""
    return {member.value: member.name for member in enum}


_IMAGE_TYPES = _names(enums.ImageType)
_SOURCES = _names(enums.MediaSource)


def _time(value: Any) -> str:
    return as_utc(value).isoformat()


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)


def _leaf(get: Getter) -> FieldCompiler:
    return lambda compiler, parent, group: get


def _attribute(name: str) -> FieldCompiler:
    def get(source: Any, run: Run) -> Any:
        return getattr(source, name)

    return _leaf(get)


def _url(source: ImageRecord | VideoRecord, run: Run) -> str:
    return run.context.media_url(source.blob_key)


def _product_main_image(compiler: Compiler, parent: GraphQLObjectType, group: Group) -> Getter:
    image = compiler.child(parent, group)
    compiler.related.add(IMAGES)

    def get(product: ProductRecord, run: Run) -> Any:
        main = run.mains[product.id]
        return None if main is None else image.build(main, run)

    return get


def _product_images(compiler: Compiler, parent: GraphQLObjectType, group: Group) -> Getter:
    slot = compiler.slot(parent, group)
    image = compiler.child(parent, group)
    compiler.related.add(IMAGES)

    def get(product: ProductRecord, run: Run) -> Any:
        choose = gallery_filter(**run.arguments[slot])
        return [image.build(record, run) for record in choose(run.galleries[product.id])]

    return get


def _product_videos(compiler: Compiler, parent: GraphQLObjectType, group: Group) -> Getter:
    video = compiler.child(parent, group)
    compiler.related.add(VIDEOS)

    def get(product: ProductRecord, run: Run) -> Any:
        return [video.build(record, run) for record in run.videos[product.id]]

    return get


def _image_renditions(compiler: Compiler, parent: GraphQLObjectType, group: Group) -> Getter:
    slot = compiler.slot(parent, group)
    rendition = compiler.child(parent, group)

    def get(image: ImageRecord, run: Run) -> Any:
        arguments = run.arguments[slot]
        views = rendition_views(
            run.context,
            image.checksum,
            image.width,
            image.height,
            image.mime_type,
            arguments.get("sizes"),
            arguments.get("format", enums.RenditionFormat.ORIGINAL),
        )
        return [rendition.build(view, run) for view in views]

    return get


def _connection_edges(compiler: Compiler, parent: GraphQLObjectType, group: Group) -> Getter:
    edge = compiler.child(parent, group)

    def get(page: Any, run: Run) -> Any:
        return [edge.build(pair, run) for pair in zip(page.items, page.cursors, strict=True)]

    return get


def _object(get_source: Callable[[Any], Any]) -> FieldCompiler:
    """A non-null object field whose source derives from its parent's."""

    def compile_field(compiler: Compiler, parent: GraphQLObjectType, group: Group) -> Getter:
        selection = compiler.child(parent, group)
        return lambda source, run: selection.build(get_source(source), run)

    return compile_field


_MEDIA: dict[str, FieldCompiler] = {
    "url": _leaf(_url),
    "position": _attribute("position"),
    "source": _leaf(lambda r, run: _SOURCES[r.source]),
    "mimeType": _attribute("mime_type"),
    "fileSize": _attribute("file_size"),
    "checksum": _attribute("checksum"),
    "createdAt": _leaf(lambda r, run: _time(r.created_at)),
    "updatedAt": _leaf(lambda r, run: _time(r.updated_at)),
}

FIELDS: dict[str, dict[str, FieldCompiler]] = {
    "Product": {
        "id": _leaf(lambda r, run: to_global_id("Product", r.id)),
        "sku": _attribute("sku"),
        "name": _attribute("name"),
        "createdAt": _leaf(lambda r, run: _time(r.created_at)),
        "updatedAt": _leaf(lambda r, run: _time(r.updated_at)),
        "mainImage": _product_main_image,
        "images": _product_images,
        "videos": _product_videos,
    },
    "Image": {
        **_MEDIA,
        "id": _leaf(lambda r, run: to_global_id("Image", r.id)),
        "isMain": _leaf(lambda r, run: run.main_id(r.product_id) == r.id),
        "imageType": _leaf(lambda r, run: _IMAGE_TYPES[r.image_type]),
        "option": _attribute("option"),
        "alt": _attribute("alt"),
        "width": _attribute("width"),
        "height": _attribute("height"),
        "renditions": _image_renditions,
    },
    "Video": {
        **_MEDIA,
        "id": _leaf(lambda r, run: to_global_id("Video", r.id)),
        "width": _attribute("width"),
        "height": _attribute("height"),
        "durationSeconds": _leaf(lambda r, run: _float(r.duration_seconds)),
    },
    "Rendition": {
        "size": _leaf(lambda v, run: v.size.name),
        "url": _leaf(lambda v, run: run.context.media_url(v.key)),
        "url2x": _leaf(lambda v, run: run.context.media_url(v.key_2x) if v.key_2x else None),
        "width": _attribute("width"),
        "height": _attribute("height"),
        "mimeType": _attribute("mime_type"),
    },
    "ProductConnection": {
        "edges": _connection_edges,
        "pageInfo": _object(lambda page: page),
        "totalCount": _attribute("total_count"),
    },
    "ProductEdge": {
        "node": _object(lambda pair: pair[0]),
        "cursor": _leaf(lambda pair, run: pair[1]),
    },
    "PageInfo": {
        "hasNextPage": _attribute("has_next_page"),
        "hasPreviousPage": _attribute("has_previous_page"),
        "startCursor": _leaf(lambda page, run: page.cursors[0] if page.cursors else None),
        "endCursor": _leaf(lambda page, run: page.cursors[-1] if page.cursors else None),
    },
}
"""Type -> field -> how to build it. A type's ``__typename`` is always known."""


class Compiler:
    """Compiles one operation for fixed values of its directives' variables."""

    def __init__(
        self,
        schema: Schema,
        operation: OperationDefinitionNode,
        fragments: Sequence[FragmentDefinitionNode],
        variables: VariableValues,
    ) -> None:
        self.schema = schema
        self.graphql: GraphQLSchema = schema._schema
        self.operation = operation
        self.fragments = {f.name.value: FragmentDetails(f) for f in fragments}
        self.variables = variables
        self.slots: list[ArgumentSlot] = []
        self.related: set[str] = set()
        self.convert = strawberry_converter(schema.schema_converter.scalar_registry, schema.config)

    def plan(self) -> Plan:
        query = self.graphql.query_type
        assert query is not None
        collected = collect_fields(
            self.graphql, self.fragments, self.variables, query, self.operation
        )
        if collected.new_defer_usages:
            raise NotCovered
        root: list[tuple[str, RootGetter]] = []
        for key, group in collected.grouped_field_set.items():
            name = group[0].node.name.value
            compile_root = ROOT.get(name)
            if compile_root is None:
                raise NotCovered
            root.append((key, compile_root(self, query, group)))
        return Plan(tuple(root), tuple(self.slots), frozenset(self.related))

    def child(self, parent: GraphQLObjectType, group: Group) -> Selection:
        """The selection of the object type that the field ``group`` of ``parent`` returns."""
        definition = parent.fields[group[0].node.name.value]
        child = get_named_type(definition.type)
        if not isinstance(child, GraphQLObjectType):
            raise NotCovered
        return self.selection(child, group)

    def selection(self, type_: GraphQLObjectType, group: Group) -> Selection:
        known = FIELDS.get(type_.name)
        if known is None:
            raise NotCovered
        collected = collect_subfields(
            self.graphql, self.fragments, self.variables, self.operation, type_, group
        )
        if collected.new_defer_usages:
            raise NotCovered
        fields: list[tuple[str, Getter]] = []
        for key, subgroup in collected.grouped_field_set.items():
            name = subgroup[0].node.name.value
            if name == "__typename":
                fields.append((key, _constant(type_.name)))
                continue
            compile_field = known.get(name)
            if compile_field is None:
                raise NotCovered
            fields.append((key, compile_field(self, type_, subgroup)))
        return Selection(tuple(fields))

    def slot(self, parent: GraphQLObjectType, group: Group) -> int:
        """The index of the field's arguments in ``Run.arguments``."""
        node = group[0].node
        field = self.schema.get_field_for_type(node.name.value, parent.name)
        if field is None:
            raise NotCovered
        self.slots.append(
            ArgumentSlot(parent.fields[node.name.value], node, field.arguments, self.convert)
        )
        return len(self.slots) - 1


def _constant(value: str) -> Getter:
    return lambda source, run: value


def _root_typename(compiler: Compiler, parent: GraphQLObjectType, group: Group) -> RootGetter:
    async def get(run: Run) -> str:
        return parent.name

    return get


BACKWARD = frozenset({"last", "before"})
"""Arguments of a backward page, which plans leave to normal execution."""


def _root_products(compiler: Compiler, parent: GraphQLObjectType, group: Group) -> RootGetter:
    given = {argument.name.value for argument in group[0].node.arguments or ()}
    if given & BACKWARD:
        raise NotCovered
    slot = compiler.slot(parent, group)
    connection = compiler.child(parent, group)
    first_named = "first" in given

    async def get(run: Run) -> Any:
        listing = product_listing(**run.arguments[slot], first_named=lambda: first_named)
        page = await product_page(run.connection, listing)
        await run.load_related(page.items)
        return connection.build(page, run)

    return get


def _root_product(compiler: Compiler, parent: GraphQLObjectType, group: Group) -> RootGetter:
    slot = compiler.slot(parent, group)
    product = compiler.child(parent, group)

    async def get(run: Run) -> Any:
        ref = product_ref(**run.arguments[slot])
        if ref.sku is not None:
            record = await reads.product_by_sku(run.connection, ref.sku)
        elif ref.pk is not None:
            record = (await reads.products_by_id(run.connection, [ref.pk]))[0]
        else:
            record = None
        if record is None:
            return None
        await run.load_related([record])
        return product.build(record, run)

    return get


ROOT: dict[str, Callable[[Compiler, GraphQLObjectType, Group], RootGetter]] = {
    "__typename": _root_typename,
    "products": _root_products,
    "product": _root_product,
}
"""The Query fields that plans answer."""
