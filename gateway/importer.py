"""``media-gateway import FILE.csv``: bulk ERP image sync from a CSV file, straight against
the store (no HTTP).

The file has a header row naming its columns: ``sku`` and ``url`` are required,
``position`` and ``image_type`` optional (a column may be absent, a cell may be empty:
position 0, ties kept in row order, and DEFAULT). Rows are grouped by SKU in the order they
come; each SKU's rows are its whole list of images, exactly as ``syncImages`` takes it. A
row with a SKU and an empty url (and nothing else) adds no image: a SKU named only by such
rows gets an empty list, which deletes its downloadable images.

The whole file is read and checked before anything runs: a malformed file is an error that
names its line, and nothing is synced. Then the SKUs are synced in batches of up to 100
(``storage.sync.sync_images``, as ``syncImagesBulk`` does: the batch's downloads run
concurrently under one bound and a URL asked by several SKUs is fetched once), each SKU all
or nothing. Running the same file again is cheap: a SKU whose URLs are already stored
downloads nothing, so an interrupted or partly failed import is resumed by running it again.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from gateway.app import build_backend, close_backend
from gateway.settings import Settings
from storage import validation
from storage.enums import ImageType
from storage.sync import SyncItem, SyncRequest, sync_images

REQUIRED_COLUMNS = ("sku", "url")
OPTIONAL_COLUMNS = ("position", "image_type")
BATCH_SIZE = validation.MAX_LIST


class CsvError(Exception):
    """The file cannot be imported as it is; ``line`` is 1-based (the header is line 1)."""

    def __init__(self, line: int | None, message: str) -> None:
        self.line = line
        self.message = message
        super().__init__(f"line {line}: {message}" if line is not None else message)


@dataclass(frozen=True)
class Failure:
    """One reason a SKU's sync was refused (the SKU was left as it was)."""

    sku: str
    field: str
    code: str
    message: str


@dataclass
class ImportResult:
    skus: int = 0
    images: int = 0
    synced_skus: int = 0
    synced_images: int = 0
    failures: list[Failure] = field(default_factory=list)

    @property
    def failed_skus(self) -> list[str]:
        return list(dict.fromkeys(f.sku for f in self.failures))


def parse_csv(lines: Iterable[str]) -> list[SyncRequest]:
    """The sync requests of a CSV file's lines, one per SKU in order of first appearance."""
    reader = csv.reader(lines, strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise CsvError(1, "the file is empty; it needs a header row (sku,url,...)")
        columns = _columns(header)
        groups: dict[str, list[SyncItem]] = {}
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue  # a blank line
            sku, item = _row(row, columns, line)
            items = groups.setdefault(sku, [])
            if item is not None:
                items.append(item)
    except csv.Error as error:
        raise CsvError(reader.line_num or 1, f"not valid CSV: {error}") from None
    return [SyncRequest(sku=sku, items=items) for sku, items in groups.items()]


def read_csv(path: Path) -> list[SyncRequest]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return parse_csv(handle)
    except UnicodeDecodeError as error:
        raise CsvError(None, f"{path} is not UTF-8 text: {error}") from None


def _columns(header: Sequence[str]) -> dict[str, int]:
    names = [name.strip().lower() for name in header]
    known = set(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)
    for index, name in enumerate(names):
        if name not in known:
            raise CsvError(
                1,
                f"unknown column {header[index]!r} in the header; the columns are "
                f"{', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)}",
            )
        if names.index(name) != index:
            raise CsvError(1, f"the column {name!r} appears twice in the header")
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        raise CsvError(
            1,
            f"the header has no {' and no '.join(repr(m) for m in missing)} column "
            f"(it needs sku and url; position and image_type are optional)",
        )
    return {name: index for index, name in enumerate(names)}


def _row(row: Sequence[str], columns: dict[str, int], line: int) -> tuple[str, SyncItem | None]:
    if len(row) > len(columns):
        raise CsvError(line, f"{len(row)} cells but the header names {len(columns)} columns")

    def cell(name: str) -> str:
        index = columns.get(name)
        return row[index].strip() if index is not None and index < len(row) else ""

    sku, url = cell("sku"), cell("url")
    position_text, type_text = cell("position"), cell("image_type")
    if not sku:
        raise CsvError(line, "the sku is empty")
    if not url:
        if position_text or type_text:
            raise CsvError(line, "a position or image_type is given but the url is empty")
        return sku, None
    position = 0
    if position_text:
        try:
            position = int(position_text)
        except ValueError:
            position = -1
        if position < 0:
            raise CsvError(line, f"position {position_text!r} is not a whole number of 0 or more")
    image_type = ImageType.DEFAULT
    if type_text:
        try:
            image_type = ImageType(type_text.upper())
        except ValueError:
            raise CsvError(
                line,
                f"image_type {type_text!r} is not one of {', '.join(t.value for t in ImageType)}",
            ) from None
    return sku, SyncItem(url=url, position=position, image_type=image_type)


def batches(requests: Sequence[SyncRequest], size: int = BATCH_SIZE) -> list[list[SyncRequest]]:
    return [list(requests[start : start + size]) for start in range(0, len(requests), size)]


async def run_import(
    settings: Settings,
    requests: Sequence[SyncRequest],
    on_batch: Callable[[list[SyncRequest]], None] = lambda batch: None,
) -> ImportResult:
    """Sync every request against the configured store, batch by batch."""
    result = ImportResult(skus=len(requests), images=sum(len(r.items) for r in requests))
    backend = build_backend(settings)
    try:
        for batch in batches(requests):
            outcomes = await sync_images(backend, backend.fetcher, batch)
            for request, outcome in zip(batch, outcomes, strict=True):
                if not outcome.problems:
                    result.synced_skus += 1
                    result.synced_images += len(request.items)
                for problem in outcome.problems:
                    result.failures.append(
                        Failure(
                            sku=request.sku,
                            field=".".join(problem.field),
                            code=problem.code.value,
                            message=problem.message,
                        )
                    )
            on_batch(batch)
    finally:
        await close_backend(backend)
    return result


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("SKUs"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def report(result: ImportResult, console: Console) -> None:
    """The summary: counts, then a header and one tab-separated line per failure (sku, field,
    code, message)."""
    console.print(
        f"synced {result.synced_skus} of {result.skus} SKUs "
        f"({result.synced_images} of {result.images} images)",
        highlight=False,
        markup=False,
    )
    if not result.failures:
        return
    failed = result.failed_skus
    several = len(failed) != 1
    console.print(
        f"{len(failed)} SKU{'s' if several else ''} failed and {'were' if several else 'was'} "
        "left as before; fix the file and run the import again:",
        highlight=False,
        markup=False,
    )
    lines = ["sku\tfield\tcode\tmessage"] + [
        f"{f.sku}\t{f.field}\t{f.code}\t{f.message}" for f in result.failures
    ]
    console.file.write("".join(text + "\n" for text in lines))  # tabs kept, no wrapping


async def import_file(path: Path, settings: Settings, console: Console) -> int:
    """Run ``media-gateway import``; returns the exit code (0 all synced, 1 some SKU failed,
    2 the file is malformed and nothing ran)."""
    try:
        requests = read_csv(path)
    except (CsvError, OSError) as error:
        console.print(f"error: {path}: {error}", highlight=False, markup=False, soft_wrap=True)
        return 2
    if not requests:
        console.print(f"{path}: no rows to import", highlight=False, markup=False)
        return 0
    with _progress(console) as progress:
        task = progress.add_task("importing", total=len(requests))
        result = await run_import(
            settings, requests, lambda batch: progress.advance(task, len(batch))
        )
    report(result, console)
    return 1 if result.failures else 0
