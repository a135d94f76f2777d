"""Engines and transactions.

SQLite gets two engines over the same file: readers use the driver's default (no transaction
for a plain SELECT, so WAL readers never wait), writers open every transaction with
``BEGIN IMMEDIATE`` so that concurrent read-then-write transactions serialise instead of
failing with "database is locked". PostgreSQL uses one engine; writers lock the product row
and the blobs they store instead (``Backend.lock_blobs`` and ``Backend.lock_product``, in that
order). A transaction that PostgreSQL aborts anyway (a deadlock, a serialization failure) is
run again whole by ``Database.retrying``.

Every write transaction raises the catalogue version (``catalogue_version``, one row) as its
last statement before the commit, so the new version becomes visible with its changes and
only with them: whoever reads the version, in any process, knows whether anything changed.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine

from storage.sql.tables import CATALOGUE_VERSION_ID, catalogue_version_table

SQLITE_BUSY_TIMEOUT_MS = 30_000

TRANSACTION_ATTEMPTS = 4
RETRY_BACKOFF = 0.05
"""Seconds; the n-th retry waits a random time below ``RETRY_BACKOFF * 2**n`` (jitter, so
that transactions that deadlocked each other do not meet again)."""

CONFLICT_STATES = frozenset({"40P01", "40001"})
"""PostgreSQL's deadlock_detected and serialization_failure: the transaction was aborted and
changed nothing, and running it again can succeed."""

T = TypeVar("T")


class DatabaseBusy(Exception):
    """A transaction was aborted by every attempt (deadlocks, serialization failures); nothing
    of it was applied, and the client may try again after ``retry_after`` seconds."""

    retry_after = 1

    def __init__(self) -> None:
        super().__init__("The database is busy; nothing was changed. Try again.")


def is_conflict(error: BaseException) -> bool:
    """Whether the database aborted a transaction because of other transactions."""
    return isinstance(error, DBAPIError) and getattr(error.orig, "sqlstate", None) in (
        CONFLICT_STATES
    )


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


_VERSION_ROW = catalogue_version_table.c.id == CATALOGUE_VERSION_ID
_BUMP_VERSION = (
    sa.update(catalogue_version_table)
    .where(_VERSION_ROW)
    .values(version=catalogue_version_table.c.version + 1)
)
_READ_VERSION = sa.select(catalogue_version_table.c.version).where(_VERSION_ROW)


async def current_version(connection: AsyncConnection) -> int:
    """The catalogue version: one primary-key row."""
    return int((await connection.execute(_READ_VERSION)).scalar_one())


class Database:
    """The gateway's engines: ``read()`` for plain selects, ``write()`` for one transaction."""

    def __init__(self, url: str, attempts: int = TRANSACTION_ATTEMPTS) -> None:
        self.url = url
        self.attempts = attempts
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
        """One transaction: committed when the block ends, rolled back when it raises. The
        catalogue version is raised last, just before the commit: on PostgreSQL its row lock
        is the last lock a writer takes and is held only for the commit (the lock order in
        storage/backend.py)."""
        session = AsyncSession(self.write_engine, expire_on_commit=False)
        async with session, session.begin():
            yield session
            await session.execute(_BUMP_VERSION)

    async def version(self) -> int:
        """The current catalogue version (see ``write``)."""
        async with self.read() as connection:
            return await current_version(connection)

    async def retrying(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run ``attempt`` (one whole transaction, and the undoing of whatever it did outside
        the database when it fails) again while the database aborts it as a conflict; raise
        ``DatabaseBusy`` when every attempt was aborted."""
        failed = 0
        while True:
            try:
                return await attempt()
            except DBAPIError as error:
                failed += 1
                if not is_conflict(error):
                    raise
                if failed >= self.attempts:
                    raise DatabaseBusy() from error
            await asyncio.sleep(random.uniform(0, RETRY_BACKOFF * 2**failed))

    async def ping(self) -> None:
        async with self.read() as connection:
            await connection.exec_driver_sql("SELECT 1")

    async def dispose(self) -> None:
        for engine in self.engines:
            await engine.dispose()
