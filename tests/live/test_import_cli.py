"""``media-gateway import FILE.csv`` run as a subprocess against a migrated SQLite file and a
real image server on 127.0.0.1 (allowed through MEDIA_GATEWAY_FETCH_ALLOW_HOSTS): the rows
it stores, the failure summary and exit codes, malformed files that change nothing, and a
second run that downloads nothing new."""

from __future__ import annotations

import asyncio
import csv
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from gateway.app import build_backend, close_backend
from gateway.settings import Settings
from storage import products
from support.image_server import ImageServer, running_server
from support.media_factory import image_bytes

pytestmark = pytest.mark.live


def env(tmp_path: Path) -> dict[str, str]:
    values = {k: v for k, v in os.environ.items() if not k.startswith("MEDIA_GATEWAY_")}
    values.update(
        MEDIA_GATEWAY_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'media.db'}",
        MEDIA_GATEWAY_MEDIA_ROOT=str(tmp_path / "media"),
        MEDIA_GATEWAY_ADMIN_TOKEN_FILE=str(tmp_path / "admin-token"),
        MEDIA_GATEWAY_FETCH_ALLOW_HOSTS="127.0.0.1",
        COLUMNS="120",
    )
    return values


def gateway(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).parent / "media-gateway"
    assert script.exists(), f"the console script is not installed beside {sys.executable}"
    return subprocess.run(
        [str(script), *args],
        env=env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def run_import(
    tmp_path: Path, rows: Sequence[Sequence[object]], name: str = "in.csv"
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / name
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return gateway(tmp_path, "import", str(path))


def stored(tmp_path: Path) -> list[tuple[str, str, int, str, str]]:
    """(sku, url, position, image_type, image source) of every downloadable image."""
    with sqlite3.connect(tmp_path / "media.db") as connection:
        rows = connection.execute(
            "SELECT p.sku, d.url, d.position, d.image_type, i.source "
            "FROM downloadable_image d JOIN product p ON p.id = d.product_id "
            "JOIN image i ON i.id = d.image_id ORDER BY p.sku, d.position"
        )
        return [tuple(row) for row in rows]


def count(tmp_path: Path, table: str) -> int:
    with sqlite3.connect(tmp_path / "media.db") as connection:
        return int(connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def failures(stderr: str) -> list[list[str]]:
    """The rows of the failure summary (sku, field, code, message)."""
    lines = stderr.splitlines()
    if "sku\tfield\tcode\tmessage" not in lines:
        return []
    start = lines.index("sku\tfield\tcode\tmessage") + 1
    return [line.split("\t") for line in lines[start:] if line.count("\t") >= 3]


@pytest.fixture
def server() -> Iterator[ImageServer]:
    yield from running_server()


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A migrated database with products P-1 .. P-3 (made through storage, not the CLI)."""
    migrated = gateway(tmp_path, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    create_products(tmp_path, ["P-1", "P-2", "P-3"])
    return tmp_path


def create_products(tmp_path: Path, skus: Sequence[str]) -> None:
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'media.db'}",
        media_root=tmp_path / "media",
    )

    async def run() -> None:
        backend = build_backend(settings)
        try:
            for sku in skus:
                await products.create_product(backend, products.NewProduct(sku, f"Product {sku}"))
        finally:
            await close_backend(backend)

    asyncio.run(run())


def png(seed: int) -> bytes:
    return image_bytes("PNG", (32, 24), seed=seed)


HEADER = ("sku", "url", "position", "image_type")


def test_import_syncs_reports_failures_and_resumes(store: Path, server: ImageServer) -> None:
    a = [server.serve(f"/a{i}.png", png(i + 1)) for i in range(3)]
    shared = server.serve("/shared.png", png(10))
    b = server.serve("/b.png", png(11))
    missing = server.url("/missing.png")
    rows = [
        HEADER,
        ("P-1", a[0], 2, "swatch"),
        ("P-2", b, "", ""),
        ("P-1", a[1], 0, ""),
        ("P-3", shared, "", "PICTO"),
        ("P-2", missing, "", ""),
        ("NOPE", shared, "", ""),
        ("P-1", a[2], 0, "DEFAULT"),
        ("P-1", shared, 7, ""),
    ]
    first = run_import(store, rows)
    assert first.returncode == 1, first.stderr
    assert first.stdout == ""
    assert "synced 2 of 4 SKUs" in first.stderr
    summary = failures(first.stderr)
    assert [row[:3] for row in summary] == [
        ["P-2", "images.1.url", "DOWNLOAD_FAILED"],
        ["NOPE", "productSku", "NOT_FOUND"],
    ]
    assert "404" in summary[0][3]
    assert stored(store) == [
        ("P-1", a[1], 0, "DEFAULT", "URL"),
        ("P-1", a[2], 1, "DEFAULT", "URL"),
        ("P-1", a[0], 2, "SWATCH", "URL"),
        ("P-1", shared, 3, "DEFAULT", "URL"),
        ("P-3", shared, 0, "PICTO", "URL"),
    ]
    # Each distinct URL was fetched once, the one P-1 and P-3 share included.
    fetched_once = {"/a0.png": 1, "/a1.png": 1, "/a2.png": 1, "/shared.png": 1}
    assert server.hits == {**fetched_once, "/b.png": 1, "/missing.png": 1}
    assert count(store, "image") == 5
    assert len(list((store / "media").glob("??/*"))) == 4  # shared bytes stored once

    # Running the same file again downloads nothing for the SKUs that went through; only the
    # failed SKU tries again.
    second = run_import(store, rows)
    assert second.returncode == 1
    assert [row[:3] for row in failures(second.stderr)] == [row[:3] for row in summary]
    assert server.hits == {**fetched_once, "/b.png": 2, "/missing.png": 2}
    assert count(store, "image") == 5

    # The 404 fixed: P-2 goes through; then a third run costs no download at all.
    fixed = [row for row in rows if missing not in row and "NOPE" not in row]
    third = run_import(store, fixed)
    assert third.returncode == 0, third.stderr
    assert "synced 3 of 3 SKUs" in third.stderr
    assert failures(third.stderr) == []
    assert ("P-2", b, 0, "DEFAULT", "URL") in stored(store)
    hits = server.total_hits
    fourth = run_import(store, fixed)
    assert fourth.returncode == 0, fourth.stderr
    assert server.total_hits == hits
    assert len(stored(store)) == 6


def test_empty_url_rows_empty_a_sku(store: Path, server: ImageServer) -> None:
    url = server.serve("/x.png", png(1))
    assert run_import(store, [HEADER, ("P-1", url, "", ""), ("P-2", url, "", "")]).returncode == 0
    assert [row[0] for row in stored(store)] == ["P-1", "P-2"]
    # Only sku and url columns; P-1 named with no url gets an empty list.
    result = run_import(store, [("url", "sku"), ("", "P-1")])
    assert result.returncode == 0, result.stderr
    assert [row[0] for row in stored(store)] == ["P-2"]
    assert count(store, "image") == 1
    assert server.total_hits == 1


MALFORMED = {
    "no url column": ([("sku", "position"), ("P-1", 0)], "line 1", "url"),
    "no header": ([], "line 1", "header"),
    "unknown column": ([("sku", "url", "colour"), ("P-1", "{url}", "red")], "line 1", "colour"),
    "bad position": (
        [HEADER, ("P-1", "{url}", 0, ""), ("P-2", "{url}", "first", "")],
        "line 3",
        "position",
    ),
    "negative position": ([HEADER, ("P-1", "{url}", -1, "")], "line 2", "position"),
    "bad image type": ([HEADER, ("P-1", "{url}", "", "HERO")], "line 2", "image_type"),
    "empty sku": ([HEADER, ("P-1", "{url}", "", ""), (" ", "{url}", "", "")], "line 3", "sku"),
    "too many cells": ([("sku", "url"), ("P-1", "{url}", "3")], "line 2", "cells"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_csv_runs_nothing(store: Path, server: ImageServer, case: str) -> None:
    url = server.serve("/x.png", png(1))
    rows, line, word = MALFORMED[case]
    rows = [tuple(str(cell).replace("{url}", url) for cell in row) for row in rows]
    result = run_import(store, rows)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert line in result.stderr and word in result.stderr
    assert server.total_hits == 0
    assert count(store, "downloadable_image") == 0


def test_missing_file_is_an_error(store: Path) -> None:
    result = gateway(store, "import", str(store / "nowhere.csv"))
    assert result.returncode == 2
    assert "nowhere.csv" in result.stderr


def test_import_runs_in_batches_of_a_hundred(store: Path, server: ImageServer) -> None:
    skus = [f"B-{i:03d}" for i in range(150)]
    create_products(store, skus)
    shared = server.serve("/shared.png", png(1000))
    rows: list[tuple[object, ...]] = [HEADER]
    for index, sku in enumerate(skus):
        rows.append((sku, server.serve(f"/{sku}.png", png(index + 1)), "", ""))
        rows.append((sku, shared, 1, ""))
    result = run_import(store, rows)
    assert result.returncode == 0, result.stderr
    assert "synced 150 of 150 SKUs (300 of 300 images)" in result.stderr
    assert count(store, "downloadable_image") == 300
    # Downloads are shared within a batch of 100 SKUs: two batches, two fetches at most.
    assert 1 <= server.hits["/shared.png"] <= 2
    assert all(server.hits[f"/{sku}.png"] == 1 for sku in skus)
