"""Engines and transactions.

SQLite gets two engines over the same file: readers use the driver's default (no transaction
for a plain SELECT, so WAL readers never wait), writers open every transaction with
``BEGIN IMMEDIATE`` so that concurrent read-then-write transactions serialise instead of
failing with "database is locked". PostgreSQL uses one engine; writers lock the product row
instead (see ``Repository.lock_product``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine

SQLITE_BUSY_TIMEOUT_MS = 30_000


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _unicode_lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()
    # SQLite's built-in lower() folds ASCII only; the case-insensitive product search needs
    # Unicode (as PostgreSQL's lower() does).
    dbapi_connection.create_function("lower", 1, _unicode_lower, deterministic=True)


def _sqlite_writer_connect(dbapi_connection: Any, record: Any) -> None:
    _sqlite_pragmas(dbapi_connection, record)
    # Let SQLAlchemy, not the driver, say when a transaction begins.
    dbapi_connection.isolation_level = None


def _sqlite_begin_immediate(connection: Connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE")


class Database:
    """The gateway's engines: ``read()`` for plain selects, ``write()`` for one transaction."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.sqlite = is_sqlite(url)
        if self.sqlite:
            self.read_engine = create_async_engine(url, pool_size=8, max_overflow=8)
            self.write_engine = create_async_engine(url, pool_size=4, max_overflow=12)
            event.listen(self.read_engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(self.write_engine.sync_engine, "connect", _sqlite_writer_connect)
            event.listen(self.write_engine.sync_engine, "begin", _sqlite_begin_immediate)
        else:
            engine = create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
            self.read_engine = engine
            self.write_engine = engine

    @property
    def engines(self) -> tuple[AsyncEngine, ...]:
        if self.read_engine is self.write_engine:
            return (self.read_engine,)
        return (self.read_engine, self.write_engine)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        async with self.read_engine.connect() as connection:
            yield connection

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """One transaction: committed when the block ends, rolled back when it raises."""
        session = AsyncSession(self.write_engine, expire_on_commit=False)
        async with session, session.begin():
            yield session

    async def ping(self) -> None:
        async with self.read() as connection:
            await connection.exec_driver_sql("SELECT 1")

    async def dispose(self) -> None:
        for engine in self.engines:
            await engine.dispose()
