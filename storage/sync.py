"""ERP image sync, keyed by SKU: after success a product's downloadable images are exactly the
items sent. All or nothing per SKU: every item is validated, new URLs are downloaded
concurrently (bounded, each distinct URL once even across SKUs), then one transaction per SKU
applies the whole list.

Synced images live in the product's default gallery and take its first positions in the order
synced (by position, ties by list order); the gallery's other images follow in their previous
order. Downloaded bytes that the product already has as an image are not stored twice: the
downloadable image adopts that image."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiofiles
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from storage import validation
from storage.backend import Backend, BlobChanges, ProductRef
from storage.blobs import TempBlob, blob_key
from storage.enums import DownloadStatus, ErrorCode, ImageType, MediaSource
from storage.errors import FieldPath, FileRejected, MediaFailure, Problem
from storage.fetch import Fetcher, check_url
from storage.media import ImageInfo
from storage.receiving import Incoming, receive_image
from storage.sql.database import DatabaseBusy
from storage.sql.gallery import Gallery, insert_row
from storage.sql.tables import downloadable_table, image_table, product_table, utcnow

DOWNLOADS_AT_ONCE = 16
APPLY_ATTEMPTS = 3


@dataclass(frozen=True)
class SyncItem:
    url: str
    position: int | None = 0
    image_type: ImageType = ImageType.DEFAULT


@dataclass(frozen=True)
class SyncRequest:
    sku: str
    items: Sequence[SyncItem]


@dataclass
class SyncOutcome:
    """A product id after success, or the problems (and nothing changed)."""

    sku: str
    product_id: int | None = None
    problems: list[Problem] = field(default_factory=list)


@dataclass(frozen=True)
class _Download:
    temp: TempBlob
    info: ImageInfo

    @property
    def key(self) -> str:
        return blob_key(self.temp.sha256, self.info.extension)


class _Downloads:
    """Each distinct URL fetched once under one concurrency bound; every sync that needs it
    claims its own temporary copy (the last claim takes the original). A sync waits only for
    its own URLs, so its transaction runs while other SKUs' downloads go on."""

    def __init__(self, backend: Backend, fetcher: Fetcher, urls: dict[str, int]) -> None:
        self.backend = backend
        self.fetcher = fetcher
        self.claims_left = dict(urls)
        self.semaphore = asyncio.Semaphore(DOWNLOADS_AT_ONCE)
        self.tasks: dict[str, asyncio.Task[_Download | Problem]] = {}
        self.claim_locks = {url: asyncio.Lock() for url in urls}

    def start(self) -> None:
        for url in self.claims_left:
            self.tasks[url] = asyncio.ensure_future(self.fetch(url))

    async def result(self, url: str) -> _Download | Problem:
        return await self.tasks[url]

    async def fetch(self, url: str) -> _Download | Problem:
        async with self.semaphore:
            try:
                temp, info = await receive_image(
                    self.backend, Incoming(_body(self.fetcher, url, self.limit), ())
                )
            except MediaFailure as failure:
                self.backend.events.fetch_failed(failure.problems[0].code)
                return failure.problems[0]
            return _Download(temp, info)

    @property
    def limit(self) -> int:
        return self.backend.limits.max_image_bytes

    async def claim(self, url: str) -> _Download:
        """A temporary blob of ``url``'s bytes for one sync to commit (or discard)."""
        async with self.claim_locks[url]:  # copies finish before the last claim moves it
            result = await self.tasks[url]
            assert isinstance(result, _Download)
            self.claims_left[url] -= 1
            if self.claims_left[url] <= 0:
                return result
            copy = await self.backend.blobs.receive(_read(result.temp), limit=self.limit)
            return _Download(copy, result.info)

    async def close(self) -> None:
        """Stop what is still downloading and remove every temporary blob left."""
        for task in self.tasks.values():
            task.cancel()
        results = await asyncio.gather(*self.tasks.values(), return_exceptions=True)
        for result in results:
            if isinstance(result, _Download):
                await self.backend.blobs.discard(result.temp)


async def _body(fetcher: Fetcher, url: str, limit: int) -> AsyncIterator[bytes]:
    async with fetcher.open(url, limit=limit) as body:
        async for chunk in body:
            yield chunk


async def _read(temp: TempBlob) -> AsyncIterator[bytes]:
    async with aiofiles.open(temp.path, "rb") as handle:
        while chunk := await handle.read(256 * 1024):
            yield chunk


def fetched(fetcher: Fetcher, url: str, field: FieldPath, limit: int) -> Incoming:
    """A URL's body as upload content (for ``uploadImage(url)``)."""
    return Incoming(_body(fetcher, url, limit), field)


def check_sync_url(url: str, field: FieldPath) -> list[Problem]:
    problems = validation.required_text(url, field, validation.URL_LENGTH)
    if problems:
        return problems
    try:
        check_url(url)
    except FileRejected as rejected:
        return [Problem(field, rejected.code, rejected.message)]
    return []


def _check(request: SyncRequest) -> list[Problem]:
    problems = validation.required_text(request.sku, ("productSku",), validation.SKU_LENGTH)
    if len(request.items) > validation.MAX_LIST:
        problems.append(
            Problem(
                ("images",),
                ErrorCode.TOO_MANY,
                f"images holds {len(request.items)} items; at most {validation.MAX_LIST}.",
            )
        )
        return problems
    seen: set[str] = set()
    for index, item in enumerate(request.items):
        at: FieldPath = ("images", str(index))
        url_problems = check_sync_url(item.url, (*at, "url"))
        if not url_problems and item.url in seen:
            url_problems = [
                Problem((*at, "url"), ErrorCode.INVALID, "This URL appears earlier in the list.")
            ]
        seen.add(item.url)
        problems += url_problems
        problems += validation.position(item.position, (*at, "position"))
    return problems


def _repeated_sku(request: SyncRequest, index: int, first_of: dict[str, int]) -> list[Problem]:
    """A SKU (trimmed) that an earlier request of the same call holds, valid or not: only
    the first may run, as two lists for one product cannot both become its list."""
    sku = request.sku.strip()
    if not sku:
        return []
    if sku not in first_of:
        first_of[sku] = index
        return []
    message = (
        f"This SKU is also the SKU of input {first_of[sku]} of this request; only that one runs."
    )
    return [Problem(("productSku",), ErrorCode.REPEATED_ID, message)]


async def _known_urls(backend: Backend, sku: str) -> tuple[int | None, set[str]]:
    """The product's id and the URLs it already has a stored image for."""
    async with backend.db.read() as connection:
        product = (
            await connection.execute(
                sa.select(product_table.c.id).where(product_table.c.sku == sku)
            )
        ).scalar()
        if product is None:
            return None, set()
        rows = await connection.execute(
            sa.select(downloadable_table.c.url).where(
                downloadable_table.c.product_id == product,
                downloadable_table.c.image_id.is_not(None),
            )
        )
        return product, {row.url for row in rows}


class _Retry(Exception):
    """The product's URLs changed between the download plan and the transaction: these URLs
    of the request have no stored image any more (a concurrent sync dropped them)."""

    def __init__(self, urls: list[str]) -> None:
        super().__init__(urls)
        self.urls = urls


async def sync_images(
    backend: Backend, fetcher: Fetcher, requests: Sequence[SyncRequest]
) -> list[SyncOutcome]:
    outcomes = [SyncOutcome(sku=r.sku) for r in requests]
    needs: dict[int, list[str]] = {}
    first_of: dict[str, int] = {}
    for index, request in enumerate(requests):
        outcome = outcomes[index]
        outcome.problems = _check(request) + _repeated_sku(request, index, first_of)
        if outcome.problems:
            continue
        product_id, known = await _known_urls(backend, request.sku.strip())
        if product_id is None:
            outcome.problems = [
                Problem(("productSku",), ErrorCode.NOT_FOUND, "No product has this SKU.")
            ]
            continue
        needs[index] = [item.url for item in request.items if item.url not in known]
    counts: dict[str, int] = {}
    for urls in needs.values():
        for url in urls:
            counts[url] = counts.get(url, 0) + 1
    downloads = _Downloads(backend, fetcher, counts)
    downloads.start()

    async def run(index: int, urls: list[str]) -> None:
        request, outcome = requests[index], outcomes[index]
        results = {url: await downloads.result(url) for url in urls}
        outcome.problems = [
            Problem((*_item_field(request, url), "url"), result.code, result.message)
            for url, result in results.items()
            if isinstance(result, Problem)
        ]
        if outcome.problems:
            return
        try:
            outcome.product_id = await _apply(backend, request, downloads, urls)
        except MediaFailure as failure:
            outcome.problems = failure.problems
            return
        backend.images_stored(r.temp.sha256 for r in results.values() if isinstance(r, _Download))

    try:
        async with asyncio.TaskGroup() as group:
            for index, urls in needs.items():
                group.create_task(run(index, urls))
    finally:
        await downloads.close()
    return outcomes


def _item_field(request: SyncRequest, url: str) -> FieldPath:
    index = next(i for i, item in enumerate(request.items) if item.url == url)
    return ("images", str(index))


async def _apply(
    backend: Backend, request: SyncRequest, downloads: _Downloads, downloaded: list[str]
) -> int:
    claimed = {url: await downloads.claim(url) for url in downloaded}
    try:
        for _ in range(APPLY_ATTEMPTS):
            try:
                return await _transaction(backend, request, claimed)
            except DatabaseBusy as busy:
                raise MediaFailure.one(("productSku",), ErrorCode.INVALID, str(busy)) from None
            except _Retry as retry:
                for url in retry.urls:  # download what a concurrent sync deleted, then retry
                    result = await downloads.fetch(url)
                    if isinstance(result, Problem):
                        raise MediaFailure.one(
                            (*_item_field(request, url), "url"), result.code, result.message
                        ) from None
                    claimed[url] = result
        raise MediaFailure.one(
            ("productSku",), ErrorCode.INVALID, "The product changed during the sync; try again."
        )
    finally:
        for item in claimed.values():
            await backend.blobs.discard(item.temp)


async def _transaction(
    backend: Backend, request: SyncRequest, claimed: dict[str, _Download]
) -> int:
    async def work(session: AsyncSession, changes: BlobChanges) -> int:
        product = await backend.lock_product(
            session, ProductRef(sku=request.sku.strip(), field=("productSku",))
        )
        await _write_list(session, product.id, request, claimed, changes)
        return product.id

    temps = {download.key: download.temp for download in claimed.values()}
    return await backend.blob_transaction(work, temps)


async def _write_list(
    session: AsyncSession,
    product_id: int,
    request: SyncRequest,
    claimed: dict[str, _Download],
    changes: BlobChanges,
) -> None:
    """Make the product's downloadable images exactly ``request.items``: new images store
    their blobs, the blobs of deleted images are dropped."""
    d, i = downloadable_table, image_table
    existing = {
        row.url: row
        for row in await session.execute(
            sa.select(d.c.id, d.c.url, d.c.image_id).where(d.c.product_id == product_id)
        )
    }
    urls = {item.url for item in request.items}
    missing = [
        item.url
        for item in request.items
        if item.url not in claimed
        and (item.url not in existing or existing[item.url].image_id is None)
    ]
    if missing:
        raise _Retry(missing)
    dropped = [row for url, row in existing.items() if url not in urls]
    dropped_images = [row.image_id for row in dropped if row.image_id is not None]
    dropped_rows = (
        await session.execute(sa.select(i.c.blob_key, i.c.option).where(i.c.id.in_(dropped_images)))
    ).all()
    changes.drop(row.blob_key for row in dropped_rows)
    await session.execute(sa.delete(d).where(d.c.id.in_([row.id for row in dropped])))
    await session.execute(sa.delete(i).where(i.c.id.in_(dropped_images)))

    images = {
        row.checksum: row
        for row in await session.execute(
            sa.select(i.c.id, i.c.checksum, i.c.option).where(i.c.product_id == product_id)
        )
    }
    owned = {row.image_id for url, row in existing.items() if url in urls and url not in claimed}
    ordered = sorted(enumerate(request.items), key=lambda p: (p[1].position or 0, p[0]))
    synced_images: list[int] = []
    synced_rows: list[int] = []
    left_galleries: set[str] = set()
    now = utcnow()
    for index, item in ordered:
        download = claimed.get(item.url)
        created = False
        if download is None:
            image_id = int(existing[item.url].image_id)
        else:
            image_id, created = await _store(
                session, product_id, item, download, images, owned, index, changes
            )
        owned.add(image_id)
        if not created:  # new images are made in the default gallery with the item's type
            option = await _take_into_default_gallery(session, image_id, item.image_type, now)
            if option is not None:
                left_galleries.add(option)
        synced_images.append(image_id)
        values: dict[str, Any] = {
            "image_id": image_id,
            "image_type": item.image_type.value,
            "status": DownloadStatus.DOWNLOADED.value,
            "error": None,
            "updated_at": now,
        }
        if item.url in existing:
            row_id = int(existing[item.url].id)
            await session.execute(sa.update(d).where(d.c.id == row_id).values(**values))
        else:
            values.pop("updated_at")
            row_id = await insert_row(
                session,
                d,
                product_id=product_id,
                url=item.url,
                position=len(existing) + index,
                **values,
            )
        synced_rows.append(row_id)
    await Gallery.downloadables(product_id).save(session, synced_rows)
    default = Gallery.images(product_id, None)
    rest = [i for i in await default.order(session) if i not in set(synced_images)]
    await default.save(session, synced_images + rest)
    for option in left_galleries:
        await Gallery.images(product_id, option).close_up(session)
    for option in {row.option for row in dropped_rows if row.option is not None}:
        await Gallery.images(product_id, option).close_up(session)


async def _store(
    session: AsyncSession,
    product_id: int,
    item: SyncItem,
    download: _Download,
    images: dict[str, Any],
    owned: set[int],
    index: int,
    changes: BlobChanges,
) -> tuple[int, bool]:
    """The image for newly downloaded bytes: one the product already has (adopted), or a new
    one; and whether it is new."""
    temp, info = download.temp, download.info
    same = images.get(temp.sha256)
    if same is not None:
        if same.id in owned:
            raise MediaFailure.one(
                ("images", str(index), "url"),
                ErrorCode.DUPLICATE,
                "These bytes are already another image of this sync.",
            )
        return int(same.id), False
    image_id = await insert_row(
        session,
        image_table,
        product_id=product_id,
        option=None,
        position=10**9,
        is_main=False,
        image_type=item.image_type.value,
        source=MediaSource.URL.value,
        width=info.width,
        height=info.height,
        mime_type=info.mime_type,
        file_size=temp.size,
        checksum=temp.sha256,
        blob_key=download.key,
    )
    changes.store(download.key)
    images[temp.sha256] = _Seen(image_id, temp.sha256, None)
    return image_id, True


@dataclass(frozen=True)
class _Seen:
    id: int
    checksum: str
    option: str | None


async def _take_into_default_gallery(
    session: AsyncSession, image_id: int, image_type: ImageType, now: Any
) -> str | None:
    """Move a synced image into the default gallery with the item's imageType; returns the
    option gallery it left, if any."""
    option: str | None = (
        await session.execute(sa.select(image_table.c.option).where(image_table.c.id == image_id))
    ).scalar()
    await session.execute(
        sa.update(image_table)
        .where(image_table.c.id == image_id)
        .values(option=None, image_type=image_type.value, updated_at=now)
    )
    return option
