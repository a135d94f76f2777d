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
from storage.fetcher import Fetcher, FetchPolicy


def build_backend(settings: Settings) -> Backend:
    """The storage side of the gateway, as configured (also used by CLI commands)."""
    return Backend(
        db=Database(settings.database_url),
        blobs=LocalBlobStore(settings.media_root),
        limits=settings.limits(),
        fetcher=Fetcher(FetchPolicy.parse(settings.fetch_allow_hosts, settings.fetch_timeout)),
    )


async def close_backend(backend: Backend) -> None:
    await backend.fetcher.aclose()
    await backend.db.dispose()


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    backend = build_backend(settings)
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
        await backend.blobs.clean_temporary()
        yield
        await close_backend(backend)

    app = Starlette(
        routes=[
            Route("/", home),
            Route("/graphql", graphql, methods=["GET", "POST"]),
            Route("/healthz", healthz),
            Mount("/media", MediaFiles(directory=settings.media_root)),
        ],
        lifespan=lifespan,
    )
    app.state.backend = backend
    app.state.settings = settings
    return app
