"""The ``media-gateway`` command."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import click
import uvicorn

from gateway.observability import configure_logging
from gateway.settings import Settings
from schema import build_schema
from storage import tokens
from storage.enums import TokenScope
from storage.sql import migrate
from storage.sql.database import Database

ADMIN = "admin"
RECEIPT_PROTOCOL = "gateway.receipt:DeadlineHttpToolsProtocol"
"""uvicorn's HTTP protocol with deadlines for receiving a request (gateway/receipt.py); named
by its import path, so that every worker process loads it."""


def _db(settings: Settings) -> Database:
    return Database(settings.database_url)


async def _admin_token(settings: Settings) -> str | None:
    """The admin token to print: the configured one (registered if new), the one saved at
    first start, or a new one (saved with owner-only permissions). None when an admin token
    exists but was neither configured nor saved here."""
    db = _db(settings)
    try:
        if settings.admin_token:
            if await tokens.verify_token(db, settings.admin_token) is None:
                await tokens.create_token(db, ADMIN, TokenScope.WRITE, settings.admin_token)
            return settings.admin_token
        path = settings.admin_token_file
        if path.exists():
            saved = path.read_text().strip()
            if await tokens.verify_token(db, saved) == TokenScope.WRITE:
                return saved
        if await tokens.has_token_named(db, ADMIN) and not path.exists():
            return None
        token, _ = await tokens.create_token(db, ADMIN, TokenScope.WRITE)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(token + "\n")
        return token
    finally:
        await db.dispose()


@click.group()
def main() -> None:
    """Product media gateway: GraphQL over product images, renditions and videos."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int)
def serve(host: str, port: int, workers: int) -> None:
    """Migrate the database, then serve the API (GraphiQL at /graphql)."""
    configure_logging()
    settings = Settings()
    migrate.upgrade(settings.database_url)
    token = asyncio.run(_admin_token(settings))
    _banner(settings.public_url or f"http://{host}:{port}", token)
    # Our JSON logs replace uvicorn's: its access log is off (the app writes one line per
    # request, with its id) and its own records go through the root handler.
    uvicorn.run(
        "gateway.app:create_served_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=False,
        log_config=None,
        timeout_keep_alive=settings.keep_alive_timeout,
        http=RECEIPT_PROTOCOL,
    )


def _banner(base: str, token: str | None) -> None:
    """Where to start, on stdout: stderr carries the JSON log lines, which never hold a token."""
    click.echo(f"GraphiQL:    {base.rstrip('/')}/graphql")
    if token:
        click.echo(f"Admin token: {token}")
        click.echo(f'             (send it as "Authorization: Bearer {token}")')
    else:
        click.echo(
            "Admin token: created earlier and not saved here; make another with "
            "'media-gateway tokens create NAME --scope write'."
        )


@main.command("migrate")
def migrate_command() -> None:
    """Bring the database schema up to date."""
    settings = Settings()
    migrate.upgrade(settings.database_url)
    click.echo("database is up to date", err=True)


@main.group("tokens")
def tokens_group() -> None:
    """Manage API tokens."""


@tokens_group.command("create")
@click.argument("name")
@click.option("--scope", type=click.Choice([s.value for s in TokenScope]), default="read")
def tokens_create(name: str, scope: str) -> None:
    """Create a token and print it (alone, on stdout); only its hash is stored."""
    db = _db(Settings())

    async def run() -> str:
        try:
            token, info = await tokens.create_token(db, name, TokenScope(scope))
        finally:
            await db.dispose()
        click.echo(f"created token {info.id} ({info.name}, {info.scope.value})", err=True)
        return token

    click.echo(asyncio.run(run()))


@tokens_group.command("list")
def tokens_list() -> None:
    """List tokens (never their values)."""
    db = _db(Settings())

    async def run() -> list[tokens.TokenInfo]:
        try:
            return await tokens.list_tokens(db)
        finally:
            await db.dispose()

    for info in asyncio.run(run()):
        state = f"revoked {info.revoked_at.isoformat()}" if info.revoked_at else "active"
        click.echo(
            f"{info.id}\t{info.name}\t{info.scope.value}\t{info.created_at.isoformat()}\t{state}"
        )


@tokens_group.command("revoke")
@click.argument("token_id", type=int)
def tokens_revoke(token_id: int) -> None:
    """Revoke a token by its id (see 'tokens list')."""
    db = _db(Settings())

    async def run() -> bool:
        try:
            return await tokens.revoke_token(db, token_id)
        finally:
            await db.dispose()

    if not asyncio.run(run()):
        click.echo(f"no active token with id {token_id}", err=True)
        sys.exit(1)
    click.echo(f"revoked token {token_id}", err=True)


@main.command("export-schema")
def export_schema() -> None:
    """Print the GraphQL schema (SDL)."""
    click.echo(build_schema().as_str())


@main.command("import")
@click.argument("csv_file", metavar="FILE.csv", type=click.Path(dir_okay=False, path_type=Path))
def import_command(csv_file: Path) -> None:
    """Sync product images by SKU from a CSV file (columns sku, url, position, image_type).

    Rows are grouped by SKU; each SKU's rows become its whole list, as syncImages takes it,
    all or nothing per SKU. Failures are listed at the end (exit code 1); run the same file
    again to resume: SKUs whose URLs are already stored download nothing. A malformed file
    changes nothing (exit code 2).
    """
    from rich.console import Console

    from gateway.importer import import_file

    console = Console(stderr=True)
    sys.exit(asyncio.run(import_file(csv_file, Settings(), console)))


@main.command("gc")
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
@click.option("--force", is_flag=True, help="Collect even when the database refers to no media.")
def gc_command(dry_run: bool, force: bool) -> None:
    """Remove blobs and renditions that no image or video refers to (what a crash left).

    Prints each removed key (a rendition folder ends with '/') on stdout, a summary on
    stderr. Safe while the gateway runs; see storage/gc.py.
    """
    from gateway.app import build_backend, close_backend
    from storage.errors import format_size
    from storage.gc import Collection, NothingReferenced, collect_garbage

    async def run() -> Collection:
        backend = build_backend(Settings())
        try:
            return await collect_garbage(backend, dry_run=dry_run, force=force)
        finally:
            await close_backend(backend)

    try:
        collection = asyncio.run(run())
    except NothingReferenced as refused:
        click.echo(str(refused), err=True)
        sys.exit(2)
    for key in collection.removed:
        click.echo(key)
    for key in collection.missing:
        click.echo(f"missing: {key} is referred to but not stored", err=True)
    verb = "would remove" if dry_run else "removed"
    click.echo(
        f"{verb} {len(collection.blobs)} blob(s) and {len(collection.renditions)} rendition "
        f"folder(s), {format_size(collection.freed_bytes)}",
        err=True,
    )


__all__ = ["main"]
