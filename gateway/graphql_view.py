"""The GraphQL endpoint: Strawberry's ASGI view with multipart uploads, request body limits
(uvicorn has none, and Starlette limits neither a file part's size nor the body), and the
request's Context."""

from __future__ import annotations

import json

from cross_web import HTTPException as ViewHTTPException
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import Message, Receive, Scope, Send
from strawberry.asgi import GraphQL

from gateway.auth import authenticate
from gateway.settings import Settings
from schema import Context
from storage.backend import Backend
from storage.blobs import format_size

OVER_LIMIT_MESSAGES = ("Too many files", "Too many fields", "Part exceeded", "Field exceeded")
"""How Starlette's multipart parser starts the messages of its limits (the rest is malformed)."""


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"The request body is over the limit of {format_size(limit)}.")


def _limited(receive: Receive, limit: int) -> Receive:
    """A ``receive`` that raises ``BodyTooLarge`` as soon as the body passes ``limit`` bytes."""
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(limit)
        return message

    return wrapped


class GatewayGraphQL(GraphQL[Context, None]):
    def __init__(self, schema: object, backend: Backend, settings: Settings) -> None:
        super().__init__(schema, multipart_uploads_enabled=True)  # type: ignore[arg-type]
        self.backend = backend
        self.settings = settings

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
        request = Request(scope, receive=_limited(receive, limit))
        response = await self._respond(request, headers, limit)
        try:
            await response(scope, receive, send)
        finally:
            await request.close()

    async def _respond(self, request: Request, headers: Headers, limit: int) -> Response:
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            return PlainTextResponse(str(BodyTooLarge(limit)), status_code=413)
        try:
            if request.method == "POST" and headers.get("content-type", "").startswith(
                "multipart/form-data"
            ):
                # Parsed here, with limits; the view then reads the cached form.
                try:
                    await request.form(
                        max_files=self.settings.max_files,
                        max_fields=self.settings.max_fields,
                        max_part_size=self.settings.max_text_part_bytes,
                    )
                except HTTPException as exc:
                    # Inside an app, Starlette turns the parser's MultiPartException into a 400.
                    raise MultiPartException(str(exc.detail)) from exc
            return await self.run(request)
        except BodyTooLarge as exc:
            return PlainTextResponse(str(exc), status_code=413)
        except MultiPartException as exc:
            status = 413 if str(exc).startswith(OVER_LIMIT_MESSAGES) else 400
            return PlainTextResponse(f"Malformed or over-limit multipart body: {exc}", status)
        except HTTPException as exc:
            return PlainTextResponse(exc.detail, status_code=exc.status_code)
        except ViewHTTPException as exc:
            # Strawberry's own (malformed JSON, files missing from a multipart map, ...).
            return PlainTextResponse(exc.reason, status_code=exc.status_code)

    async def get_context(self, request: Request, response: object) -> Context:  # type: ignore[override]
        credentials = await authenticate(request, self.backend.db)
        public_url = self.settings.public_url or str(request.base_url)
        return Context(
            backend=self.backend,
            public_url=public_url.rstrip("/"),
            scope=credentials.scope,
            bad_token=credentials.bad_token,
            public_read=self.settings.public_read,
        )
