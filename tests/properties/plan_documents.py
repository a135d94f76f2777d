"""Random storefront documents for the compiled plans' tests: ``products`` and ``product`` with
aliases, named and inline fragments (with and without type conditions), ``@skip``/``@include``
on literals and variables, ``__typename``, arguments as literals or variables (defaults too),
values that the fields refuse, variables of the wrong type, and now and then a field that no
plan covers (``Image.product``, ``Product.downloadableImages``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

SCALARS = {
    "Product": ["id", "sku", "name", "createdAt", "updatedAt"],
    "Image": [
        *("id", "url", "position", "isMain", "imageType", "source", "option", "alt"),
        *("width", "height", "mimeType", "fileSize", "checksum", "createdAt", "updatedAt"),
    ],
    "Video": [
        *("id", "url", "position", "source", "mimeType", "fileSize", "checksum"),
        *("width", "height", "durationSeconds", "createdAt", "updatedAt"),
    ],
    "Rendition": ["size", "url", "url2x", "width", "height", "mimeType"],
    "ProductConnection": ["totalCount"],
    "ProductEdge": ["cursor"],
    "PageInfo": ["hasNextPage", "hasPreviousPage", "startCursor", "endCursor"],
    "DownloadableImage": ["id", "url", "position"],
    "Node": ["id"],
}
OBJECTS = {
    "Product": {"mainImage": "Image", "images": "Image", "videos": "Video"},
    "Image": {"renditions": "Rendition"},
    "ProductConnection": {"edges": "ProductEdge", "pageInfo": "PageInfo"},
    "ProductEdge": {"node": "Product"},
}
UNCOVERED = {
    "Image": {"product": "Product"},
    "Video": {"product": "Product"},
    "Product": {"downloadableImages": "DownloadableImage"},
}
"""Fields that no plan covers: a document with one runs normally."""

INTERFACES = {"Product": "Node", "Image": "Node", "Video": "Node"}
SIZES = ["THUMBNAIL", "SMALL", "MEDIUM", "LARGE", "ZOOM"]
FORMATS = ["JPEG", "PNG", "WEBP", "AVIF", "ORIGINAL"]


@dataclass(frozen=True)
class Store:
    """What the generated arguments may name: the seeded data."""

    product_ids: list[str]
    image_id: str
    skus: list[str]
    options: list[str]
    cursors: list[str]


@dataclass
class Document:
    data: st.DataObject
    store: Store
    variables: dict[str, tuple[str, Any]] = field(default_factory=dict)
    fragments: list[str] = field(default_factory=list)
    names: int = 0

    def draw(self, strategy: st.SearchStrategy[Any], label: str | None = None) -> Any:
        return self.data.draw(strategy, label)

    def fresh(self, prefix: str) -> str:
        self.names += 1
        return f"{prefix}{self.names}"

    def value(self, type_: str, literal: str, value: Any) -> str:
        """``literal`` in the document, or a variable of ``type_`` holding ``value``; a
        variable may instead be declared with the value as its default and sent absent."""
        how = self.draw(st.sampled_from(["literal", "variable", "default"]))
        if how == "literal":
            return literal
        name = self.fresh("v")
        if how == "default" and not type_.endswith("!"):
            self.variables[name] = (f"{type_} = {literal}", None)
        else:
            self.variables[name] = (type_, value)
        return f"${name}"

    def argument(
        self,
        name: str,
        type_: str,
        choices: list[tuple[str, Any]],
        refused: list[tuple[str, Any]] | None = None,
    ) -> str | None:
        """``name: value`` with a value among ``choices`` (literal, JSON), now and then one of
        ``refused`` (values the field answers with an error); None: absent."""
        if self.draw(st.booleans()):
            return None
        if refused and self.draw(st.integers(0, 9)) == 0:
            choices = refused
        literal, value = self.draw(st.sampled_from(choices))
        if self.draw(st.integers(0, 39)) == 0:
            # A variable whose value is of the wrong type: a variable error.
            name_ = self.fresh("v")
            self.variables[name_] = (type_, {"wrong": True})
            return f"{name}: ${name_}"
        return f"{name}: {self.value(type_, literal, value)}"

    def pair(self, values: list[str]) -> tuple[str, str]:
        value = self.draw(st.sampled_from(values))
        return json.dumps(value), value

    def arguments(self, *pairs: str | None) -> str:
        given = [p for p in pairs if p is not None]
        return f"({', '.join(given)})" if given else ""

    def directive(self) -> str:
        if self.draw(st.integers(0, 3)) != 0:
            return ""
        name = self.draw(st.sampled_from(["include", "skip"]))
        flag = self.draw(st.booleans())
        return f" @{name}(if: {self.value('Boolean!', json.dumps(flag), flag)})"

    # -- selections ------------------------------------------------------------------

    def selection(self, type_: str, depth: int) -> str:
        count = self.draw(st.integers(1, 5))
        return "{ " + " ".join(self.item(type_, depth) for _ in range(count)) + " }"

    def item(self, type_: str, depth: int) -> str:
        kinds = ["scalar", "scalar", "typename"]
        if depth < 6 and OBJECTS.get(type_):
            kinds += ["object"] * 6
        if depth < 6:
            kinds += ["inline", "spread"]
        if depth < 6 and type_ in UNCOVERED and self.draw(st.integers(0, 9)) == 0:
            kinds.append("uncovered")
        kind = self.draw(st.sampled_from(kinds))
        directive = self.directive()
        if kind == "scalar":
            return self.alias() + self.draw(st.sampled_from(SCALARS[type_])) + directive
        if kind == "typename":
            return self.alias() + "__typename" + directive
        if kind in ("object", "uncovered"):
            table = OBJECTS if kind == "object" else UNCOVERED
            name, child = self.draw(st.sampled_from(sorted(table[type_].items())))
            args = self.field_arguments(type_, name)
            alias = f"{self.fresh('a')}: " if args or self.draw(st.booleans()) else ""
            return f"{alias}{name}{args}{directive} {self.selection(child, depth + 1)}"
        condition = self.condition(type_)
        body = self.selection(condition or type_, depth + 1)
        if kind == "inline":
            on = f" on {condition}" if condition else ""
            return f"...{on}{directive} {body}"
        fragment = self.fresh("F")
        self.fragments.append(f"fragment {fragment} on {condition or type_} {body}")
        return f"...{fragment}{directive}"

    def alias(self) -> str:
        return f"{self.fresh('a')}: " if self.draw(st.integers(0, 3)) == 0 else ""

    def condition(self, type_: str) -> str | None:
        """The type condition of a fragment on ``type_``: itself, its interface, or none."""
        choices: list[str | None] = [type_, None]
        if type_ in INTERFACES:
            choices.append(INTERFACES[type_])
        return self.draw(st.sampled_from(choices))

    def field_arguments(self, type_: str, name: str) -> str:
        if (type_, name) == ("Product", "images"):
            options = [*self.store.options, "", " red "]
            return self.arguments(
                self.argument(
                    "option",
                    "String",
                    [(json.dumps(o), o) for o in options],
                    [(json.dumps("x" * 300), "x" * 300), ('"a\\u0000b"', "a\u0000b")],
                ),
                self.argument(
                    "imageType", "ImageType", [(t, t) for t in ("DEFAULT", "SWATCH", "PICTO")]
                ),
                self.argument("inDefaultGallery", "Boolean", [("true", True), ("false", False)]),
            )
        if (type_, name) == ("Image", "renditions"):
            lists = [[], ["SMALL", "LARGE"], ["THUMBNAIL"], ["ZOOM", "SMALL", "MEDIUM"]]
            sizes = [(f"[{', '.join(s)}]", s) for s in lists] + [("null", None)]
            repeated = [("[SMALL, SMALL]", ["SMALL", "SMALL"])]
            formats = [(f, f) for f in FORMATS] + [("null", None)]
            return self.arguments(
                self.argument("sizes", "[RenditionSize!]", sizes, repeated),
                self.argument("format", "RenditionFormat", formats),
            )
        return ""

    def root(self, first: bool) -> str:
        """A root field; all but the first have an alias (no two may conflict)."""
        if self.draw(st.integers(0, 9)) == 0:
            return self.alias() + "__typename"
        alias = f"{self.fresh('a')}: " if not first or self.draw(st.booleans()) else ""
        if self.draw(st.booleans()):
            return alias + self.products()
        return alias + self.product()

    def products(self) -> str:
        firsts = [1, 2, 3, 20, 100]
        afters = self.store.cursors
        skus = self.store.skus
        filters = [
            ('{search: "1"}', {"search": "1"}),
            ('{search: ""}', {"search": ""}),
            ('{search: "%"}', {"search": "%"}),
            (
                f'{{skus: [{json.dumps(skus[0])}, " {skus[1]} "]}}',
                {"skus": [skus[0], f" {skus[1]} "]},
            ),
            ("{hasImages: true}", {"hasImages": True}),
            ('{hasImages: false, search: "p"}', {"hasImages": False, "search": "p"}),
        ]
        backward = self.draw(st.integers(0, 3)) == 0
        arguments = self.arguments(
            self.argument(
                "first", "Int", [(str(n), n) for n in firsts], [("0", 0), ("101", 101), ("-1", -1)]
            ),
            self.argument(
                "after", "String", [(json.dumps(a), a) for a in afters], [('"bogus"', "bogus")]
            ),
            self.argument("filter", "ProductFilter", filters),
            self.argument("sortBy", "ProductSort", [(s, s) for s in ("SKU", "NAME", "CREATED_AT")]),
            self.argument("direction", "SortDirection", [("ASC", "ASC"), ("DESC", "DESC")]),
            # Backward pages run normally; with first or after they are an error.
            self.argument("last", "Int", [("2", 2), ("20", 20)], [("0", 0)]) if backward else None,
            self.argument(
                "before", "String", [(json.dumps(a), a) for a in afters], [('"bogus"', "bogus")]
            )
            if backward
            else None,
        )
        selection = self.selection("ProductConnection", 1)
        return f"products{arguments}{self.directive()} {selection}"

    def product(self) -> str:
        ids = [*self.store.product_ids, self.store.image_id, "bogus"]
        skus = [*self.store.skus, f" {self.store.skus[0]} ", "no-such-sku"]
        # Exactly one of id and sku, mostly: both or neither is an error.
        ways = ["id", "sku"] * 3 + ["both", "neither"]
        by = self.draw(st.sampled_from(ways))
        id_ = self.value("ID", *self.pair(ids)) if by in ("id", "both") else None
        sku = self.value("String", *self.pair(skus)) if by in ("sku", "both") else None
        arguments = self.arguments(
            None if id_ is None else f"id: {id_}", None if sku is None else f"sku: {sku}"
        )
        return f"product{arguments}{self.directive()} {self.selection('Product', 1)}"

    def request(self) -> dict[str, Any]:
        count = self.draw(st.integers(1, 2))
        roots = " ".join(self.root(first=index == 0) for index in range(count))
        definitions = ", ".join(f"${n}: {t}" for n, (t, _) in self.variables.items())
        head = f"query Storefront({definitions})" if definitions else "query Storefront"
        query = " ".join([f"{head} {{ {roots} }}", *self.fragments])
        variables = {n: v for n, (t, v) in self.variables.items() if "=" not in t}
        return {"query": query, "variables": variables}


def storefront_request(data: st.DataObject, store: Store) -> dict[str, Any]:
    """One random request body (``query`` and ``variables``)."""
    return Document(data, store).request()
