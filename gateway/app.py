"""The Starlette application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Mount, Route
from starlette.types import ASGIApp
from strawberry.extensions import (
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
)

from gateway.assets import StaticAssets
from gateway.graphql_view import GatewayGraphQL
from gateway.health import liveness, readiness
from gateway.limits import QueryCostLimiter
from gateway.manage import manage_endpoint
from gateway.media import MediaFiles
from gateway.metrics import Metrics, OperationMetrics, metrics_endpoint
from gateway.observability import RequestObserver, configure_logging
from gateway.settings import Settings
from schema import build_schema
from schema.plans import CompiledPlans, DocumentCache, Documents, Plans
from storage.backend import Backend
from storage.blobs import BlobStore, LocalBlobStore
from storage.events import MediaEvents
from storage.fetch import Fetcher, FetchPolicy
from storage.media import DECODES
from storage.media.renditions import Renditions, parse_boxes
from storage.sql.database import Database
from storage.sync import DOWNLOADS_AT_ONCE

MediaApp = Callable[[Callable[[str], Awaitable[bool]]], ASGIApp]
"""The ``/media`` app of a store, given how to make a rendition on its first request."""


def build_backend(settings: Settings, events: MediaEvents | None = None) -> Backend:
    """The storage side of the gateway, as configured (also used by CLI commands); ``events``
    hears what storage does (the app passes its metrics')."""
    backend, _ = _build(settings, events)
    return backend


def _build(settings: Settings, events: MediaEvents | None) -> tuple[Backend, MediaApp]:
    """The backend and the ``/media`` app of its blob store."""
    events = events or MediaEvents()
    DECODES.limit = settings.decode_pixel_budget
    db = Database(settings.database_url)
    blobs, media = _blob_store(settings)
    renditions = Renditions(
        db, blobs, settings.media_root / ".locks", parse_boxes(settings.rendition_sizes), events
    )
    backend = Backend(
        db=db,
        blobs=blobs,
        limits=settings.limits(),
        fetcher=Fetcher(
            FetchPolicy.parse(settings.fetch_allow_hosts, settings.fetch_timeout),
            max_connections=DOWNLOADS_AT_ONCE,
        ),
        renditions=renditions,
        warm_renditions=settings.warm_renditions,
        events=events,
    )
    return backend, media


def _blob_store(settings: Settings) -> tuple[BlobStore, MediaApp]:
    """The configured store (``settings.storage_url``) and how ``/media`` serves it: the one
    place that decides which store is in use."""
    if settings.storage_url:
        # boto3 loads only when configured
        from gateway.media.s3 import S3MediaFiles
        from storage.blobs.s3 import S3BlobStore

        remote = S3BlobStore(settings.storage_url, settings.storage_work_dir or settings.media_root)
        return remote, lambda ensure: S3MediaFiles(remote, ensure=ensure)
    local = LocalBlobStore(settings.media_root)
    return local, lambda ensure: MediaFiles(directory=local.root, ensure=ensure)


async def close_backend(backend: Backend) -> None:
    await backend.renditions.drain()
    await backend.fetcher.aclose()
    await backend.db.dispose()


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings()
    metrics = Metrics()
    backend, media = _build(settings, metrics.events)
    schema = build_schema(
        extensions=[
            partial(QueryDepthLimiter, max_depth=settings.max_query_depth),
            partial(MaxAliasesLimiter, max_alias_count=settings.max_aliases),
            partial(MaxTokensLimiter, max_token_count=settings.max_tokens),
            partial(QueryCostLimiter, max_cost=settings.max_query_cost),
            *([] if settings.introspection else [DisableIntrospection]),
            partial(OperationMetrics, metrics=metrics),
            # After the limits: they bound what is parsed and refuse before validation.
            partial(DocumentCache, documents=Documents()),
            *(
                [partial(CompiledPlans, plans=Plans(metrics.count_plan))]
                if settings.compiled_plans
                else []
            ),
        ],
        max_batch=settings.max_batch,
    )
    graphql = GatewayGraphQL(schema, backend, settings, metrics)

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
            Route("/healthz", liveness(backend)),
            Route("/manage", manage_endpoint(settings.public_url)),
            Mount("/static", StaticAssets()),
            Route("/readyz", readiness(backend)),
            Route("/metrics", metrics_endpoint(metrics, settings.metrics_token)),
            Mount("/media", media(backend.renditions.ensure)),
        ],
        middleware=[Middleware(RequestObserver, metrics=metrics)],
        lifespan=lifespan,
    )
    app.state.backend = backend
    app.state.metrics = metrics
    app.state.settings = settings
    return app


def create_served_app() -> Starlette:
    """What ``media-gateway serve`` runs in each worker process: JSON logs, then the app."""
    configure_logging()
    return create_app()
