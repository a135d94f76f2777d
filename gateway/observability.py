"""Structured logs, request ids, the access log and readiness.

Every log line is one JSON object on stderr (structlog, configured by
:func:`configure_logging`; the standard library's records, Strawberry's and uvicorn's
included, go through the same renderer). While a request is handled its id is bound in
structlog's context variables, so every line logged for it carries ``request_id``: the access
line, and the line of an error that GraphQL masks for the client (Strawberry logs the original
error with its traceback on ``strawberry.execution``).

Request ids come from a sane incoming ``X-Request-ID`` (at most 64 of ``[A-Za-z0-9._-]``) or
are generated; the response always carries the id in ``X-Request-ID``. Headers are never
logged, so neither are tokens.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, TextIO

import structlog
from graphql import GraphQLError
from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import PlainTextResponse
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from structlog.typing import EventDict, WrappedLogger

from gateway.metrics import Metrics
from gateway.request_context import RequestInfo, current, request_id_from
from schema import is_internal_error

REQUEST_ID_HEADER = "X-Request-ID"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"

access_log = structlog.stdlib.get_logger("gateway.access")
log = structlog.stdlib.get_logger("gateway")


# --- logging ---------------------------------------------------------------------------------


def _name_graphql_errors(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """Strawberry's error lines (the original of a masked error) get a stable event name."""
    record = event.get("_record")
    if record is not None and record.name == "strawberry.execution":
        event["error"] = event["event"]
        event["event"] = "graphql.internal_error"
    return event


class _InternalGraphQLErrorsOnly(logging.Filter):
    """Strawberry logs every GraphQL error; the client's own (validation, refusals, user
    mistakes) are no fault of the server and are seen in the response, so only the errors that
    are masked for the client (bugs, database faults) are kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "strawberry.execution" and isinstance(record.msg, GraphQLError):
            return is_internal_error(record.msg)
        return True


class _Stderr:
    """Whatever ``sys.stderr`` is when a line is written (test runners swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _GatewayHandler(logging.StreamHandler[TextIO | _Stderr]):
    """The handler :func:`configure_logging` installs (and replaces when called again)."""


def configure_logging(stream: TextIO | None = None, level: int = logging.INFO) -> None:
    """JSON lines on ``stream`` (stderr by default) for structlog and the standard library.

    Idempotent: a second call replaces the handler the first one installed."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, _name_graphql_errors],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )
    handler = _GatewayHandler(stream if stream is not None else _Stderr())
    handler.setFormatter(formatter)
    handler.addFilter(_InternalGraphQLErrorsOnly())
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _GatewayHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


def reset_logging() -> None:
    """Undo :func:`configure_logging` (for tests)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _GatewayHandler)]:
        root.removeHandler(old)
    structlog.reset_defaults()


# --- the request being handled -----------------------------------------------------------------


def route_template(scope: Scope, root_path: str) -> str:
    """The matched route as written in the app ("/graphql", "/media/{path}"), never the
    path that was asked for (a media key per series would have no end)."""
    route = scope.get("route")
    if route is None:
        return UNMATCHED
    prefix: str = scope.get("root_path", "")[len(root_path) :]
    if isinstance(route, Mount):
        return f"{prefix}/{{path}}"
    return prefix + str(getattr(route, "path", UNMATCHED))


class RequestObserver:
    """ASGI middleware: request id, access line, HTTP metrics, and a 500 for an exception that
    nothing handled (logged with its traceback; the client sees no detail)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(Headers(scope=scope).get(REQUEST_ID_HEADER))
        info = RequestInfo(request_id)
        root_path = scope.get("root_path", "")
        status: int | None = None

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        started = time.perf_counter()
        token = current.set(info)
        try:
            with structlog.contextvars.bound_contextvars(request_id=request_id):
                failure: BaseException | None = None
                try:
                    await self.app(scope, receive, observed_send)
                except Exception as exc:
                    failure = exc
                    if status is not None:  # too late for a 500: the response has begun
                        raise
                    await PlainTextResponse("Internal Server Error", status_code=500)(
                        scope, receive, observed_send
                    )
                finally:
                    self._observe(scope, root_path, info, status, started, failure)
        finally:
            current.reset(token)

    def _observe(
        self,
        scope: Scope,
        root_path: str,
        info: RequestInfo,
        status: int | None,
        started: float,
        failure: BaseException | None,
    ) -> None:
        elapsed = time.perf_counter() - started
        route = route_template(scope, root_path)
        method = scope["method"] if scope["method"] in METHODS else "OTHER"
        shown_status = status if status is not None else 500
        self.metrics.http_requests.labels(
            route=route, method=method, status=str(shown_status)
        ).inc()
        self.metrics.http_seconds.labels(route=route).observe(elapsed)
        fields: dict[str, Any] = {
            "method": scope["method"],
            "path": scope["path"],
            "route": route,
            "status": shown_status,
            "duration_ms": round(elapsed * 1000, 2),
        }
        if info.operation_type is not None:
            fields["operation"] = info.operation
            fields["operation_type"] = info.operation_type
            fields["outcome"] = info.outcome
        if failure is not None:
            access_log.error("request", exc_info=failure, **fields)
        elif shown_status >= 500:
            access_log.error("request", **fields)
        else:
            access_log.info("request", **fields)
