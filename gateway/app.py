"""The Starlette application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Mount, Route
from strawberry.extensions import MaxAliasesLimiter, MaxTokensLimiter, QueryDepthLimiter

from gateway.graphql_view import GatewayGraphQL
from gateway.media import MediaFiles
from gateway.settings import Settings
from schema import build_schema
from storage.backend import Backend
from storage.blobs import LocalBlobStore
from storage.database import Database


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    blobs = LocalBlobStore(settings.media_root)
    backend = Backend(db=Database(settings.database_url), blobs=blobs, limits=settings.limits())
    schema = build_schema(
        extensions=[
            partial(QueryDepthLimiter, max_depth=settings.max_query_depth),
            partial(MaxAliasesLimiter, max_alias_count=settings.max_aliases),
            partial(MaxTokensLimiter, max_token_count=settings.max_tokens),
        ]
    )
    graphql = GatewayGraphQL(schema, backend, settings)

    async def healthz(request: Request) -> JSONResponse:
        try:
            await backend.db.ping()
        except Exception as exc:  # any database fault means "not healthy"
            return JSONResponse({"status": "unavailable", "error": type(exc).__name__}, 503)
        return JSONResponse({"status": "ok"})

    async def home(request: Request) -> RedirectResponse:
        return RedirectResponse("/graphql")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await blobs.clean_temporary()
        yield
        await backend.db.dispose()

    app = Starlette(
        routes=[
            Route("/", home),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Route("/healthz", healthz),
            Mount("/media", MediaFiles(directory=blobs.root)),
        ],
        lifespan=lifespan,
    )
    app.state.backend = backend
    app.state.settings = settings
    return app
