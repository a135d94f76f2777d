"""Prometheus metrics: one registry per app (never the process-wide default one, so several
apps in one process do not clash), the counters every part reports to, and ``/metrics``.

Who reports what:

- HTTP requests: :class:`gateway.observability.RequestObserver`, by route template.
- GraphQL operations: :class:`OperationMetrics`, a Strawberry extension (name, type, outcome,
  duration).
- Uploads, renditions, failed fetches: storage calls ``backend.events`` (a
  :class:`storage.events.MediaEvents`); :class:`MetricsEvents` is the one the gateway passes
  in. Storage never imports prometheus_client.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from strawberry.extensions import SchemaExtension

from gateway.request_context import note_operation
from storage.events import MediaEvents, MediaKind

ANONYMOUS = "anonymous"
OTHER = "other"
MAX_OPERATION_NAMES = 500
"""Distinct operation names kept as labels; later new names count as "other" (the names come
from clients, and every name is a new time series)."""

OPERATION_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,99}")
REFUSAL_CODES = frozenset({"UNAUTHENTICATED", "FORBIDDEN"})

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Metrics:
    """Every metric of one app, on the app's own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
        self.graphql_requests = Counter(
            "graphql_requests",
            "GraphQL operations by name, type and outcome (ok, user_error, error, refused).",
            ["operation", "type", "outcome"],
            registry=registry,
        )
        self.graphql_seconds = Histogram(
            "graphql_request_seconds",
            "Time to run a GraphQL operation, by operation type.",
            ["type"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.http_requests = Counter(
            "http_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=registry,
        )
        self.http_seconds = Histogram(
            "http_request_seconds",
            "Time from a request's arrival to the end of its response, by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.uploaded_bytes = Counter(
            "media_uploaded_bytes",
            "Bytes of uploaded files stored, by kind (image, video).",
            ["kind"],
            registry=registry,
        )
        self.renditions = Counter(
            "renditions_generated", "Renditions rendered and stored.", registry=registry
        )
        self.fetch_failures = Counter(
            "fetch_failures",
            "URL fetches that failed, by the error code they became.",
            ["code"],
            registry=registry,
        )
        self.cache_hits = Counter(
            "response_cache_hits",
            "Public queries answered from the response cache, or revalidated (304) by their ETag.",
            registry=registry,
        )
        self.cache_misses = Counter(
            "response_cache_misses",
            "Public queries that the response cache had no current answer for.",
            registry=registry,
        )
        self.cache_evictions = Counter(
            "response_cache_evictions",
            "Answers dropped from the response cache to stay within its bytes.",
            registry=registry,
        )
        self.compiled_plans = Counter(
            "graphql_compiled_plans",
            "Queries answered from a compiled plan (hit) or executed normally (fallback).",
            ["outcome"],
            registry=registry,
        )
        self.cache_bytes = Gauge(
            "response_cache_bytes", "Bytes the response cache holds.", registry=registry
        )
        for kind in ("image", "video"):
            self.uploaded_bytes.labels(kind=kind)
        for outcome_ in ("hit", "fallback"):
            self.compiled_plans.labels(outcome=outcome_)
        self.events = MetricsEvents(self)
        self._operation_names: set[str] = set()

    def count_plan(self, hit: bool) -> None:
        """Whether a query was answered by a compiled plan (schema/plans/)."""
        self.compiled_plans.labels(outcome="hit" if hit else "fallback").inc()

    def operation_label(self, name: str | None) -> str:
        """The label for a client's operation name: "anonymous" when there is none, "other"
        when it is not a GraphQL name or once too many distinct names were seen."""
        if not name:
            return ANONYMOUS
        if not OPERATION_NAME.fullmatch(name):
            return OTHER
        if name not in self._operation_names:
            if len(self._operation_names) >= MAX_OPERATION_NAMES:
                return OTHER
            self._operation_names.add(name)
        return name

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class MetricsEvents(MediaEvents):
    """Storage's events, counted."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def media_uploaded(self, kind: MediaKind, size: int) -> None:
        self.metrics.uploaded_bytes.labels(kind=kind).inc(size)

    def rendition_generated(self) -> None:
        self.metrics.renditions.inc()

    def fetch_failed(self, code: str) -> None:
        self.metrics.fetch_failures.labels(code=str(code)).inc()


def outcome(data: object, errors: list[Any] | None) -> str:
    """refused (authentication or authorisation), error (any other GraphQL error), user_error
    (a payload at the top level of a field has a non-empty ``userErrors``), else ok."""
    if errors:
        codes = {(getattr(e, "extensions", None) or {}).get("code") for e in errors}
        return "refused" if codes & REFUSAL_CODES else "error"
    if isinstance(data, dict):
        for value in data.values():
            payloads = value if isinstance(value, list) else [value]
            for payload in payloads:
                if isinstance(payload, dict) and payload.get("userErrors"):
                    return "user_error"
    return "ok"


class OperationMetrics(SchemaExtension):
    """Counts and times each GraphQL operation, and names it in the request's access log."""

    def __init__(self, *, metrics: Metrics) -> None:
        self.metrics = metrics

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        elapsed = time.perf_counter() - started
        execution = self.execution_context
        try:
            kind = execution.operation_type.value
        except Exception:  # no document (unparsable) or no such operation
            kind = "unknown"
        result = execution.result
        data = getattr(result, "data", None)
        errors = getattr(result, "errors", None) or execution.pre_execution_errors
        name = self.metrics.operation_label(execution.operation_name)
        verdict = outcome(data, errors)
        self.metrics.graphql_requests.labels(operation=name, type=kind, outcome=verdict).inc()
        self.metrics.graphql_seconds.labels(type=kind).observe(elapsed)
        note_operation(execution.operation_name, kind, verdict)


def metrics_endpoint(metrics: Metrics, token: str | None) -> Any:
    """``/metrics``: open, or only for ``Authorization: Bearer <token>`` when a token is set."""
    expected = f"Bearer {token}".encode() if token else None

    async def endpoint(request: Request) -> Response:
        if expected is not None:
            given = request.headers.get("authorization", "").encode("latin-1", "replace")
            if not secrets.compare_digest(given, expected):
                return PlainTextResponse(
                    "A metrics token is needed: Authorization: Bearer <token>.",
                    status_code=401,
                    headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
                )
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return endpoint
