"""Schema migrations (Alembic), callable from the CLI and the tests."""

from __future__ import annotations

import threading
from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def ensure_sqlite_folder(url: str) -> None:
    """Create the folder of a file-based SQLite database so a first start just works."""
    prefix = "sqlite+aiosqlite:///"
    if url.startswith(prefix) and ":memory:" not in url:
        Path(url.removeprefix(prefix).split("?")[0]).parent.mkdir(parents=True, exist_ok=True)


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database to ``revision``. Safe to call from inside a running event loop:
    Alembic's async environment runs its own loop, so it gets a thread of its own."""
    ensure_sqlite_folder(url)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            command.upgrade(alembic_config(url), revision)
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=run, name="migrate")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]
