"""API tokens: random, stored only as SHA-256 hashes, scoped, revocable."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from storage.enums import TokenScope
from storage.sql.database import Database
from storage.sql.gallery import insert_row
from storage.sql.records import as_utc
from storage.sql.tables import token_table, utcnow

TOKEN_PREFIX = "mgw_"


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    scope: TokenScope
    created_at: datetime
    revoked_at: datetime | None


def hash_token(token: str) -> str:
    """Tokens carry 256 random bits, so a plain SHA-256 is as strong as a slow hash here."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _info(row: Any) -> TokenInfo:
    return TokenInfo(
        id=row[0],
        name=row[1],
        scope=TokenScope(row[2]),
        created_at=as_utc(row[3]),
        revoked_at=as_utc(row[4]) if row[4] else None,
    )


_COLUMNS = (
    token_table.c.id,
    token_table.c.name,
    token_table.c.scope,
    token_table.c.created_at,
    token_table.c.revoked_at,
)


async def create_token(
    db: Database, name: str, scope: TokenScope, token: str | None = None
) -> tuple[str, TokenInfo]:
    """Store a new token (random unless given) and return it with its record; the plain
    token is never stored."""
    token = token or new_token()
    async with db.write() as session:
        created_at = utcnow()
        token_id = await insert_row(
            session,
            token_table,
            name=name,
            token_hash=hash_token(token),
            scope=scope.value,
            created_at=created_at,
        )
        return token, TokenInfo(token_id, name, scope, created_at, None)


async def list_tokens(db: Database) -> list[TokenInfo]:
    async with db.read() as connection:
        rows = await connection.execute(sa.select(*_COLUMNS).order_by(token_table.c.id))
        return [_info(row) for row in rows]


async def revoke_token(db: Database, token_id: int) -> bool:
    async with db.write() as session:
        connection = await session.connection()
        result = await connection.execute(
            sa.update(token_table)
            .where(token_table.c.id == token_id, token_table.c.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        return bool(result.rowcount)


async def verify_token(db: Database, token: str) -> TokenScope | None:
    """The scope of a live token, or None for an unknown or revoked one."""
    digest = hash_token(token)
    async with db.read() as connection:
        row = (
            await connection.execute(
                sa.select(token_table.c.token_hash, token_table.c.scope).where(
                    token_table.c.token_hash == digest, token_table.c.revoked_at.is_(None)
                )
            )
        ).first()
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        return None
    return TokenScope(row.scope)


async def has_token_named(db: Database, name: str) -> bool:
    async with db.read() as connection:
        query = sa.select(token_table.c.id).where(
            token_table.c.name == name, token_table.c.revoked_at.is_(None)
        )
        return (await connection.execute(query)).first() is not None
