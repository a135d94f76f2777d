"""Credentials from the ``Authorization`` header (``Bearer <token>`` or ``Token <token>``).

Never a cookie: a cross-site form cannot set this header, which is what makes multipart
uploads safe without a CSRF token."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import HTTPConnection

from storage.enums import TokenScope
from storage.sql.database import Database
from storage.tokens import verify_token

SCHEMES = ("bearer", "token")


@dataclass(frozen=True)
class Credentials:
    scope: TokenScope | None
    bad_token: bool


ANONYMOUS = Credentials(scope=None, bad_token=False)


def token_from_header(value: str | None) -> str | None:
    """The token of a well-formed header; "" for a malformed one; None when absent."""
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() in SCHEMES and token else ""


async def authenticate(connection: HTTPConnection, db: Database) -> Credentials:
    token = token_from_header(connection.headers.get("authorization"))
    if token is None:
        return ANONYMOUS
    scope = await verify_token(db, token) if token else None
    return Credentials(scope=scope, bad_token=scope is None)
