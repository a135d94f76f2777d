"""The reference of bench/http_bench.py: an ideal in-memory GraphQL server over the same SDL.

Bare graphql-core and Starlette, one uvicorn worker on 127.0.0.1: ``build_schema`` of the
repo's schema.graphql, default resolvers over plain dicts loaded from a JSON snapshot of the
gateway's data (bench/http_store.py writes it), and resolvers only where a field takes
arguments the dicts cannot answer (``products``, ``product``, ``renditions``, and
``updateImage`` for the mixed scenario's writes). Every request is parsed, validated and
executed by graphql-core's async ``graphql()``. (``graphql_sync`` would need no awaiting
here, but graphql-core 3.3 runs it about twice as slowly inside a running event loop as
``graphql()``, although four times as fast outside one.) Answers are compact ``json.dumps``,
as the gateway encodes its own, so the bytes of both can match.

``POST /upload`` is the upload reference: ``await request.form()`` (python-multipart
spooling the file part) and a copy of the file to disk, then its size as JSON.

Usage: .venv/bin/python bench/reference_server.py --snapshot FILE --port N [--upload-dir D]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, BinaryIO

import uvicorn
from graphql import GraphQLResolveInfo, GraphQLSchema, build_schema, graphql
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

ROOT = Path(__file__).resolve().parents[1]
SDL = ROOT / "schema.graphql"
COPY_CHUNK = 1024 * 1024

Record = dict[str, Any]
Info = GraphQLResolveInfo[Any]


class Store:
    """The snapshot's products in SKU order, with lookups by SKU and by image id."""

    def __init__(self, products: list[Record]) -> None:
        self.products = products
        self.by_sku = {product["sku"]: product for product in products}
        self.images = {image["id"]: image for p in products for image in p["images"]}
        for product in products:
            main = product.pop("mainImageId", None)
            product["mainImage"] = self.images[main] if main else None

    @classmethod
    def load(cls, path: Path) -> Store:
        return cls(json.loads(path.read_text())["products"])


def _products(store: Store, info: Info, first: int = 20, **_: Any) -> Record:
    return {"edges": [{"node": product} for product in store.products[:first]]}


def _product(store: Store, info: Info, sku: str | None = None, **_: Any) -> Record | None:
    return store.by_sku.get(sku) if sku is not None else None


def _renditions(
    image: Record, info: Info, sizes: list[str] | None = None, **_: Any
) -> list[Record]:
    renditions: dict[str, Record] = image["renditions"]
    return list(renditions.values()) if sizes is None else [renditions[s] for s in sizes]


def _update_image(store: Store, info: Info, id: str, input: Record) -> Record:
    image = store.images.get(id)
    if image is None:
        return {
            "image": None,
            "userErrors": [{"field": ["id"], "code": "NOT_FOUND", "message": "No such image."}],
        }
    if "alt" in input:
        image["alt"] = input["alt"]
    return {"image": image, "userErrors": []}


def _copy_to_disk(source: BinaryIO, folder: Path) -> int:
    """Copies an uploaded file into ``folder`` and returns its size; the copy is then removed,
    so repeated uploads do not fill the disk."""
    with tempfile.NamedTemporaryFile(dir=folder) as sink:
        shutil.copyfileobj(source, sink, COPY_CHUNK)
        sink.flush()
        return os.fstat(sink.fileno()).st_size


def build(store: Store) -> GraphQLSchema:
    """The SDL with the few resolvers the plain dicts need; the root value is the store."""
    schema = build_schema(SDL.read_text())
    query = schema.query_type
    mutation = schema.mutation_type
    image = schema.type_map["Image"]
    assert query is not None and mutation is not None and hasattr(image, "fields")
    query.fields["products"].resolve = _products
    query.fields["product"].resolve = _product
    mutation.fields["updateImage"].resolve = _update_image
    image.fields["renditions"].resolve = _renditions
    return schema


def create_app(store: Store, upload_dir: Path) -> Starlette:
    schema = build(store)

    async def graphql_endpoint(request: Request) -> Response:
        body = await request.json()
        result = await graphql(
            schema,
            body["query"],
            root_value=store,
            variable_values=body.get("variables"),
            operation_name=body.get("operationName"),
        )
        answer: Record = {"data": result.data}
        if result.errors:
            answer["errors"] = [error.formatted for error in result.errors]
        return Response(json.dumps(answer, separators=(",", ":")), media_type="application/json")

    async def upload_endpoint(request: Request) -> Response:
        async with request.form() as form:
            part = form["file"]
            assert isinstance(part, UploadFile)
            await part.seek(0)
            size = await run_in_threadpool(_copy_to_disk, part.file, upload_dir)
        return JSONResponse({"size": size})

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route("/graphql", graphql_endpoint, methods=["POST"]),
            Route("/upload", upload_endpoint, methods=["POST"]),
            Route("/healthz", healthz),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--snapshot", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upload-dir", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args(argv)
    app = create_app(Store.load(args.snapshot), args.upload_dir)
    uvicorn.run(app, host="127.0.0.1", port=args.port, access_log=False, log_level="warning")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
