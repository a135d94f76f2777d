"""The GraphQL endpoint: Strawberry's ASGI view with multipart uploads, request body limits
(uvicorn has none, and Starlette limits neither a file part's size nor the body), the
request's Context, and GraphQL over HTTP as the spec has it (gateway/graphql_http.py): the
response media type negotiated from ``Accept``, 4xx statuses for requests that never executed
when the client accepts ``application/graphql-response+json``, and cacheable GET queries;
public queries answered from the response cache (gateway/response_cache.py)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field, replace

import orjson
from cross_web import AsyncHTTPRequestAdapter
from cross_web import HTTPException as ViewHTTPException
from graphql import GraphQLError
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import DEFAULT_MAX_HEADER_COUNT, DEFAULT_MAX_HEADER_SIZE
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import ClientDisconnect, HTTPConnection, Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send
from strawberry.asgi import GraphQL
from strawberry.extensions import SchemaExtension
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData
from strawberry.schema import Schema
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.types import ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType

from gateway.auth import authenticate
from gateway.graphiql import graphiql_response
from gateway.graphql_http import (
    APPLICATION_JSON,
    GRAPHQL_RESPONSE_JSON,
    NO_STORE,
    SUPPORTED,
    VARY,
    Outcome,
    cache_control,
    content_type,
    etag,
    matches_if_none_match,
    negotiate,
    outcome,
)
from gateway.metrics import Metrics
from gateway.multipart import MultipartLimits, StreamedFormAdapter, close_form, receive_form
from gateway.request_context import note_operation
from gateway.response_cache import Answer, ResponseCache, request_key, version_etag
from gateway.settings import Settings
from schema import Context
from schema.operation_choice import OPERATION_RESOLUTION_FAILURE
from storage.backend import Backend
from storage.errors import format_size
from storage.sql.database import DatabaseBusy

OVER_LIMIT_MESSAGES = ("Too many files", "Too many fields", "Part exceeded", "Field exceeded")
"""How the multipart parsers (Starlette's and gateway/multipart.py) start the messages of
their limits (the rest is malformed)."""

PART_HEADERS_LIMIT = (
    f"The headers of a multipart part are over the limit: at most {DEFAULT_MAX_HEADER_COUNT} "
    f"headers of at most {format_size(DEFAULT_MAX_HEADER_SIZE)} each. The gateway never uses "
    "the filename of a file part (media are stored under the hash of their bytes): send a "
    "short one."
)
"""The multipart parser (gateway/multipart.py) keeps python-multipart's default header limits;
a long client filename is the usual way past them."""

EXCHANGE = "media_gateway.graphql"
"""The scope key of the request's ``Exchange``."""

WWW_AUTHENTICATE = 'Bearer realm="media-gateway"'

UNAVAILABLE = "SERVICE_UNAVAILABLE"
"""The code of the error of an operation that the database kept aborting: answered 503 with
``Retry-After`` (nothing was applied), not masked as an internal error."""


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"The request body is over the limit of {format_size(limit)}.")


class Refusal(ViewHTTPException):
    """An HTTP error with headers of its own (``Allow`` of a 405)."""

    def __init__(self, status_code: int, reason: str, headers: dict[str, str]) -> None:
        super().__init__(status_code, reason)
        self.headers = headers


ANONYMOUS_READER = "anonymous"
"""The read scope of the answers the response cache keeps: only anonymous public reads."""


@dataclass(frozen=True)
class Keeping:
    """Where a public query's answer may go in the response cache: its request key and the
    catalogue version read before it ran."""

    key: str
    version: int


@dataclass
class Exchange:
    """What the view learns about one HTTP request on the way: the negotiated media type,
    what became of the GraphQL request(s) it carried, and how its answer may be cached."""

    media_type: str
    outcomes: list[Outcome] = field(default_factory=list)
    errors: bool = False
    unavailable: bool = False
    queries: list[str | None] = field(default_factory=list)
    """The names of the queries that ran without error."""
    keeping: Keeping | None = None
    tag: str | None = None
    """The version ETag of a GET that may be cached; None: the tag of the body."""

    @property
    def status(self) -> int:
        if self.unavailable and len(self.outcomes) == 1:
            return 503
        if self.media_type != GRAPHQL_RESPONSE_JSON or len(self.outcomes) != 1:
            return 200  # application/json: 200 for every well-formed request (legacy rules)
        return self.outcomes[0].value


_exchange: ContextVar[Exchange | None] = ContextVar("gateway_exchange", default=None)


class Queries(SchemaExtension):
    """Notes each query that ran without error in the request's ``Exchange``: only the
    answer of such a query may be cached."""

    def on_operation(self) -> Iterator[None]:
        yield
        exchange = _exchange.get()
        execution = self.execution_context
        if exchange is None or execution.pre_execution_errors or execution.result is None:
            return
        if not execution.result.errors and execution.operation_type == OperationType.QUERY:
            exchange.queries.append(execution.operation_name)


class Unavailable(SchemaExtension):
    """Turns ``DatabaseBusy`` into an error with the code ``UNAVAILABLE`` before errors are
    masked (the last extension's operation hook runs first once the operation ended)."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None and result.errors:
            result.errors = [_unavailable(error) for error in result.errors]


def _unavailable(error: GraphQLError) -> GraphQLError:
    if not isinstance(error.original_error, DatabaseBusy):
        return error
    return GraphQLError(
        str(error.original_error),
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        extensions={"code": UNAVAILABLE},
    )


class BodyStalled(Exception):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"The request body stalled: no bytes for {seconds:g} s.")


def _limited(receive: Receive, limit: int, idle: float) -> Receive:
    """A ``receive`` that raises ``BodyTooLarge`` as soon as the body passes ``limit`` bytes,
    and ``BodyStalled`` when the client sends nothing for ``idle`` seconds (a slow client
    must not hold the request forever; uvicorn has no body timeout of its own)."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        try:
            async with asyncio.timeout(idle):  # no task per message, as wait_for makes
                message = await receive()
        except TimeoutError:
            raise BodyStalled(idle) from None
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(limit)
        return message

    return wrapped


def error_response(
    status: int, message: str, media_type: str, headers: dict[str, str] | None = None
) -> Response:
    """A request that is no well-formed GraphQL request: a GraphQL response with only
    ``errors`` (no ``data``: nothing ran), in the negotiated media type, with a 4xx status."""
    body = json.dumps({"errors": [{"message": message}]}, separators=(",", ":"))
    response = Response(body, status_code=status, headers=headers)
    response.headers["content-type"] = content_type(media_type)
    return response


class GatewayGraphQL(GraphQL[Context, None]):
    request_adapter_class = StreamedFormAdapter

    def __init__(
        self, schema: object, backend: Backend, settings: Settings, metrics: Metrics
    ) -> None:
        assert isinstance(schema, Schema)
        schema.extensions = (*schema.extensions, Queries, Unavailable)
        super().__init__(schema, multipart_uploads_enabled=True)
        self.backend = backend
        self.settings = settings
        self.metrics = metrics
        self.multipart_limits = MultipartLimits(
            max_files=settings.max_files,
            max_fields=settings.max_fields,
            max_text_part_bytes=settings.max_text_part_bytes,
            max_file_bytes=settings.max_file_bytes,
        )
        self.cache = (
            ResponseCache(settings.response_cache_bytes, metrics)
            if settings.response_cache
            else None
        )

    async def render_graphql_ide(self, request: Request) -> Response:
        return graphiql_response(request)  # served offline from /static (gateway/graphiql.py)

    def encode_json(self, data: object) -> bytes:
        # orjson: the answer of a storefront listing is tens of KiB, which json.dumps spends a
        # good share of a cold read on. Same JSON (UTF-8 rather than \u escapes).
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        # json.loads raises more than JSONDecodeError (which Strawberry turns into a 400):
        # UnicodeDecodeError for bytes that look like UTF-16/32, RecursionError for deep nesting.
        try:
            return json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise ViewHTTPException(400, "Unable to parse request body as JSON") from exc

    def body_limit(self, headers: Headers) -> int:
        if headers.get("content-type", "").startswith("multipart/"):
            return self.settings.max_multipart_bytes
        return self.settings.max_json_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        headers = Headers(scope=scope)
        limit = self.body_limit(headers)
        request = Request(scope, receive=_limited(receive, limit, self.settings.body_idle_timeout))
        response = await self._respond(request, headers, limit)
        try:
            await response(scope, receive, send)
        finally:
            close_form(scope)
            await request.close()

    async def _respond(self, request: Request, headers: Headers, limit: int) -> Response:
        media_type = negotiate(headers.get("accept"))
        exchange = Exchange(media_type or APPLICATION_JSON)
        request.scope[EXCHANGE] = exchange
        token = _exchange.set(exchange)
        try:
            return await self._answer(request, headers, limit, media_type, exchange)
        finally:
            _exchange.reset(token)

    async def _answer(
        self,
        request: Request,
        headers: Headers,
        limit: int,
        media_type: str | None,
        exchange: Exchange,
    ) -> Response:
        if media_type is None and not self.should_render_graphql_ide(
            self.request_adapter_class(request)
        ):
            return self._for_get(
                request,
                error_response(
                    406, f"Acceptable media types: {', '.join(SUPPORTED)}.", APPLICATION_JSON
                ),
            )
        response = await self._run(request, headers, limit, exchange)
        return self._for_get(request, response)

    async def _run(
        self, request: Request, headers: Headers, limit: int, exchange: Exchange
    ) -> Response:
        def refused(status: int, message: str, extra: dict[str, str] | None = None) -> Response:
            return error_response(status, message, exchange.media_type, extra)

        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            return refused(413, str(BodyTooLarge(limit)))
        try:
            if request.method == "POST" and headers.get("content-type", "").startswith(
                "multipart/form-data"
            ):
                # Streamed here, with limits (gateway/multipart.py); the view then reads it.
                await receive_form(request, self.backend.blobs, self.multipart_limits)
            cached = await self._cached(request, headers, exchange)
            if cached is not None:
                return cached
            response = await self.run(request)
        except BodyTooLarge as exc:
            return refused(413, str(exc))
        except BodyStalled as exc:
            return refused(408, str(exc))
        except ClientDisconnect:
            # The client (or the receipt deadline, gateway/receipt.py) closed the connection
            # before the body ended: a client's doing, answered to nobody, never a 500.
            return refused(400, "The connection closed before the request body ended.")
        except MultiPartException as exc:
            if _over_header_limits(exc):
                return refused(413, PART_HEADERS_LIMIT)
            status = 413 if str(exc).startswith(OVER_LIMIT_MESSAGES) else 400
            return refused(status, f"Malformed or over-limit multipart body: {exc}")
        except HTTPException as exc:
            return refused(exc.status_code, exc.detail)
        except Refusal as exc:
            return refused(exc.status_code, exc.reason, exc.headers)
        except ViewHTTPException as exc:
            # Strawberry's own (malformed JSON, files missing from a multipart map, ...).
            extra = {"Allow": "GET, POST"} if exc.status_code == 405 else None
            return refused(exc.status_code, exc.reason, extra)
        if response.media_type != APPLICATION_JSON:
            return response  # GraphiQL's page
        # A GraphQL response (Strawberry's create_response): its media type and status.
        response.status_code = exchange.status
        response.headers["content-type"] = content_type(exchange.media_type)
        if response.status_code == 401:
            response.headers["www-authenticate"] = WWW_AUTHENTICATE
        if response.status_code == 503:
            response.headers["retry-after"] = str(DatabaseBusy.retry_after)
        self._keep(response, exchange)
        return response

    async def _cached(
        self, request: Request, headers: Headers, exchange: Exchange
    ) -> Response | None:
        """Before running a public query (GET, or POST of JSON): its cached answer, or for a
        GET whose ``If-None-Match`` names the current version's tag an empty answer that
        ``_for_get`` turns into 304; None to run it, noting where its answer may be kept."""
        if self.cache is None or not self._public(request):
            return None
        if request.method == "GET":
            if self.should_render_graphql_ide(self.request_adapter_class(request)):
                return None
            raw = request.scope["query_string"]
        elif headers.get("content-type", "").startswith(APPLICATION_JSON):
            raw = await request.body()
        else:
            return None
        key = request_key(
            request.method,
            headers.get("content-type", ""),
            raw,
            exchange.media_type,
            self._public_url(request),
            ANONYMOUS_READER,
        )
        version = await self.backend.db.version()
        exchange.keeping = Keeping(key, version)
        if request.method == "GET":
            exchange.tag = version_etag(version, key)
            if matches_if_none_match(headers.get("if-none-match"), exchange.tag):
                self.metrics.cache_hits.inc()
                self._count_hit(request.query_params.get("operationName"))
                return Response(status_code=200)
        answer = self.cache.get(key, version)
        if answer is None:
            return None
        self._count_hit(answer.operation)
        return Response(answer.body, headers={"content-type": content_type(exchange.media_type)})

    def _count_hit(self, operation: str | None) -> None:
        """A query answered without running counts as an executed one that went well."""
        label = self.metrics.operation_label(operation)
        kind = OperationType.QUERY.value
        self.metrics.graphql_requests.labels(operation=label, type=kind, outcome="ok").inc()
        note_operation(operation, kind, "ok")

    def _keep(self, response: Response, exchange: Exchange) -> None:
        """Cache the answer of one query that ran without error; any other answer gets no
        version ETag either."""
        keeping = exchange.keeping
        if keeping is None or self.cache is None:
            return
        if response.status_code != 200 or exchange.errors or len(exchange.queries) != 1:
            exchange.tag = None
            return
        answer = Answer(keeping.version, bytes(response.body), exchange.queries[0])
        self.cache.put(keeping.key, answer)

    def _public(self, request: Request) -> bool:
        """Whether the answer to this request may be the same for everyone: an anonymous
        read with PUBLIC_READ on, whose media URLs name no untrusted host."""
        return (
            self.settings.public_read
            and "authorization" not in request.headers
            and self.settings.host_is_trusted(request.headers.get("host"))
        )

    def _public_url(self, request: HTTPConnection) -> str:
        """The base of the answer's media URLs."""
        return (self.settings.public_url or str(request.base_url)).rstrip("/")

    def _for_get(self, request: Request, response: Response) -> Response:
        """Caching headers of a GET query: public for an anonymous query answered without
        error when PUBLIC_READ is on and its media URLs name no untrusted host (PUBLIC_URL or
        TRUSTED_HOSTS), private otherwise; an ETag (of the catalogue version and the request
        for an answer the response cache may keep, else of the body), and 304 for a match."""
        if request.method != "GET" or response.media_type == "text/html":
            return response
        response.headers["vary"] = VARY
        if response.status_code != 200:
            response.headers["cache-control"] = NO_STORE
            return response
        exchange: Exchange = request.scope[EXCHANGE]
        public = self._public(request) and not exchange.errors
        response.headers["cache-control"] = cache_control(
            public=public, max_age=self.settings.graphql_get_max_age
        )
        tag = exchange.tag or etag(exchange.media_type, bytes(response.body))
        response.headers["etag"] = tag
        if matches_if_none_match(request.headers.get("if-none-match"), tag):
            kept = ("etag", "cache-control", "vary")
            return Response(status_code=304, headers={k: response.headers[k] for k in kept})
        return response

    async def parse_multipart(self, request: AsyncHTTPRequestAdapter) -> dict[str, str]:
        """Strawberry's, once every path of the ``map`` leads to a value in the operations
        (Strawberry would add a key for a path that leads nowhere and go on without it)."""
        form = await request.get_form_data()
        operations, files_map = (form.form.get(name, "{}") for name in ("operations", "map"))
        path = missing_map_path(
            self.parse_json(operations) if isinstance(operations, str | bytes) else operations,
            self.parse_json(files_map) if isinstance(files_map, str | bytes) else files_map,
        )
        if path is not None:
            raise ViewHTTPException(
                400, f"The multipart map names {path!r}, which is not a value in the operations."
            )
        return await super().parse_multipart(request)

    async def parse_http_body(
        self, request: AsyncHTTPRequestAdapter
    ) -> GraphQLRequestData | list[GraphQLRequestData]:
        try:
            parsed = await super().parse_http_body(request)
        except (AttributeError, IndexError, TypeError, ValueError) as exc:
            # Well-formed JSON of the wrong shape, where Strawberry fails with a 500: a body or
            # multipart `operations` that is no object (null, 42, "text"), a `map` that is no
            # object of path lists, or a map path that does not lead into the operations.
            raise ViewHTTPException(
                400,
                "The request must be a JSON object (multipart: an `operations` object and a "
                "`map` from file fields to lists of paths into it).",
            ) from exc
        items = parsed if isinstance(parsed, list) else [parsed]
        for item in items:
            if not isinstance(item.operation_name, str | None):
                raise ViewHTTPException(
                    400, "The GraphQL operation's `operationName` must be a string or null."
                )
        return parsed

    async def execute_single(
        self,
        request: Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        if request_data.operation_name == "":
            # The spec: an empty operationName is the same as none.
            request_data = replace(request_data, operation_name=None)
        try:
            return await super().execute_single(
                request=request,
                request_adapter=request_adapter,
                sub_response=sub_response,
                context=context,
                root_value=root_value,
                request_data=request_data,
            )
        except ViewHTTPException as exc:
            cause = exc.__cause__
            if (
                isinstance(cause, InvalidOperationTypeError)
                and cause.operation_type == OperationType.MUTATION
                and request_adapter.method == "GET"
            ):
                raise Refusal(
                    405, "Mutations need a POST request, never GET.", {"Allow": "POST"}
                ) from exc
            if isinstance(cause, CannotGetOperationTypeError):
                # GetOperation() failed: a GraphQL request error, not a malformed request.
                error = GraphQLError(exc.reason, extensions={"code": OPERATION_RESOLUTION_FAILURE})
                return PreExecutionError(data=None, errors=[error])
            raise

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        data = await super().process_result(request, result)
        exchange: Exchange | None = request.scope.get(EXCHANGE)
        if exchange is not None:
            verdict = outcome(result.data, result.errors)
            exchange.outcomes.append(verdict)
            exchange.errors = exchange.errors or bool(result.errors)
            exchange.unavailable = exchange.unavailable or any(
                (error.extensions or {}).get("code") == UNAVAILABLE for error in result.errors or ()
            )
            if verdict is not Outcome.EXECUTED and exchange.media_type == GRAPHQL_RESPONSE_JSON:
                # Nothing ran: no data entry (the spec's rule for a 4xx in this media type).
                data.pop("data", None)
        return data

    async def get_context(self, request: HTTPConnection, response: object) -> Context:
        credentials = await authenticate(request, self.backend.db)
        return Context(
            backend=self.backend,
            public_url=self._public_url(request),
            scope=credentials.scope,
            bad_token=credentials.bad_token,
            public_read=self.settings.public_read,
        )


def _over_header_limits(exc: BaseException) -> bool:
    """Whether python-multipart's header limits are what the parser's "Invalid multipart data."
    stands for."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, MultipartParseError) and str(cause).startswith("Maximum header"):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def missing_map_path(operations: object, files_map: object) -> str | None:
    """The first path of a multipart ``map`` that names no value in the operations (the spec's
    paths lead to the placeholders of the files); None when all do. A map of the wrong shape
    is left to the shape check of ``parse_http_body``."""
    if not isinstance(files_map, dict):
        return None
    for paths in files_map.values():
        for path in paths if isinstance(paths, list) else ():
            if isinstance(path, str) and not _leads_to_value(operations, path.split(".")):
                return path
    return None


def _leads_to_value(target: object, keys: list[str]) -> bool:
    for key in keys:
        if isinstance(target, dict) and key in target:
            target = target[key]
        elif isinstance(target, list) and key.isdigit() and int(key) < len(target):
            target = target[int(key)]
        else:
            return False
    return True


__all__ = ["EXCHANGE", "Exchange", "GatewayGraphQL", "error_response"]
