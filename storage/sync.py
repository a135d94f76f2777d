"""ERP image sync, keyed by SKU: after success a product's downloadable images are exactly the
items sent. All or nothing per SKU: every item is validated, new URLs are downloaded
concurrently (bounded, each distinct URL once even across SKUs), then one transaction per SKU
applies the whole list.

Synced images take the first positions of their gallery in the order synced (by position, ties
by list order); the gallery's other images follow in their previous order. Downloaded bytes that
the product already has as an image are not stored twice: the downloadable image adopts that
image, which belongs to the sync from then on (its ``source_url`` is the item's URL, and a later
sync without that URL deletes it).

An item's ``alt`` and ``option``, when given, are set on its image; when not given, a new image
gets none (the default gallery) and an image the product already had keeps what a merchant set
on it, so a re-sync never undoes a merchant's edit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import aiofiles
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from storage import validation
from storage.backend import Backend, BlobChanges, ProductRef
from storage.blobs import TempBlob
from storage.enums import DownloadStatus, ErrorCode, ImageType, MediaSource
from storage.errors import FieldPath, MediaFailure, Problem
from storage.fetch import Fetcher
from storage.images import insert_image
from storage.media import ImageInfo
from storage.receiving import Received, downloaded, receive_image, url_problems
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
    alt: str | None = None
    option: str | None = None
    """Stored trimmed."""


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


_Download = Received[ImageInfo]
"""A downloaded image in its temporary blob."""


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
                return await receive_image(
                    self.backend, downloaded(self.fetcher, url, (), self.limit)
                )
            except MediaFailure as failure:
                self.backend.events.fetch_failed(failure.problems[0].code)
                return failure.problems[0]

    @property
    def limit(self) -> int:
        return self.backend.limits.max_image_bytes

    async def claim(self, url: str) -> _Download:
        """A temporary blob of ``url``'s bytes for one sync to commit (or discard)."""
        async with self.claim_locks[url]:  # copies finish before the last claim moves it
            result = await self.tasks[url]
            assert isinstance(result, Received)
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
            if isinstance(result, Received):
                await self.backend.blobs.discard(result.temp)


async def _read(temp: TempBlob) -> AsyncIterator[bytes]:
    async with aiofiles.open(temp.path, "rb") as handle:
        while chunk := await handle.read(256 * 1024):
            yield chunk


def _check(request: SyncRequest) -> list[Problem]:
    problems = validation.required_text(request.sku, ("productSku",), validation.SKU_LENGTH)
    return problems + item_problems(request.items)


def item_problems(items: Sequence[SyncItem]) -> list[Problem]:
    """What is wrong with a list of sync items, before anything is downloaded."""
    if len(items) > validation.MAX_LIST:
        return [
            Problem(
                ("images",),
                ErrorCode.TOO_MANY,
                f"images holds {len(items)} items; at most {validation.MAX_LIST}.",
            )
        ]
    problems: list[Problem] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        at: FieldPath = ("images", str(index))
        wrong = url_problems(item.url, (*at, "url"))
        if not wrong and item.url in seen:
            wrong = [
                Problem((*at, "url"), ErrorCode.INVALID, "This URL appears earlier in the list.")
            ]
        seen.add(item.url)
        problems += wrong
        problems += validation.position(item.position, (*at, "position"))
        problems += validation.optional_text(item.alt, (*at, "alt"), validation.ALT_LENGTH)
        problems += validation.option_name(item.option, (*at, "option"))
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
        outcome.problems = _failed_downloads(request.items, results)
        if outcome.problems:
            return
        try:
            outcome.product_id = await _apply(backend, request, downloads, urls)
        except MediaFailure as failure:
            outcome.problems = failure.problems
            return
        backend.images_stored(r.temp.sha256 for r in results.values() if isinstance(r, Received))

    try:
        async with asyncio.TaskGroup() as group:
            for index, urls in needs.items():
                group.create_task(run(index, urls))
    finally:
        await downloads.close()
    return outcomes


def _item_field(items: Sequence[SyncItem], url: str) -> FieldPath:
    index = next(i for i, item in enumerate(items) if item.url == url)
    return ("images", str(index))


def _failed_downloads(
    items: Sequence[SyncItem], results: dict[str, _Download | Problem]
) -> list[Problem]:
    return [
        Problem((*_item_field(items, url), "url"), result.code, result.message)
        for url, result in results.items()
        if isinstance(result, Problem)
    ]


async def sync_new_product(
    backend: Backend,
    fetcher: Fetcher,
    items: Sequence[SyncItem],
    options: list[str],
    create: Callable[[AsyncSession], Awaitable[int]],
) -> int:
    """Download ``items`` (checked by ``item_problems``), then in one transaction insert a
    product with ``create`` and give it exactly these images; nothing is stored when any item
    fails. Returns the product's id."""
    urls = {item.url: 1 for item in items}
    downloads = _Downloads(backend, fetcher, urls)
    downloads.start()
    try:
        results = {url: await downloads.result(url) for url in urls}
        problems = _failed_downloads(items, results)
        if problems:
            raise MediaFailure(problems)
        claimed = {url: await downloads.claim(url) for url in urls}

        async def work(session: AsyncSession, changes: BlobChanges) -> int:
            product_id = await create(session)
            await _write_list(_ListWrite(session, changes, product_id, options, claimed), items)
            return product_id

        try:
            temps = {download.key: download.temp for download in claimed.values()}
            product_id = await backend.blob_transaction(work, temps)
        finally:
            for download in claimed.values():
                await backend.blobs.discard(download.temp)
    finally:
        await downloads.close()
    backend.images_stored(download.temp.sha256 for download in claimed.values())
    return product_id


async def _apply(
    backend: Backend, request: SyncRequest, downloads: _Downloads, urls: list[str]
) -> int:
    claimed = {url: await downloads.claim(url) for url in urls}
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
                            (*_item_field(request.items, url), "url"), result.code, result.message
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
        write = _ListWrite(session, changes, product.id, product.options, claimed)
        await _write_list(write, request.items)
        return product.id

    temps = {download.key: download.temp for download in claimed.values()}
    return await backend.blob_transaction(work, temps)


async def _write_list(write: _ListWrite, items: Sequence[SyncItem]) -> None:
    """Make the product's downloadable images exactly ``items``: new images store their
    blobs, the blobs of deleted images are dropped."""
    undeclared = [
        problem
        for index, item in enumerate(items)
        for problem in validation.declared_option(
            write.options, validation.trimmed(item.option), ("images", str(index), "option")
        )
    ]
    if undeclared:
        raise MediaFailure(undeclared)
    await write.load_list()
    missing = write.missing(items)
    if missing:
        raise _Retry(missing)
    urls = {item.url for item in items}
    await write.drop_all_but(urls)
    await write.load_images(urls)
    images: list[int] = []
    rows: list[int] = []
    for index, item in sorted(enumerate(items), key=lambda p: (p[1].position or 0, p[0])):
        image_id = await write.image_for(index, item)
        images.append(image_id)
        rows.append(await write.list_item(index, item, image_id))
    await write.save_order(images, rows)


@dataclass(frozen=True)
class _Listed:
    """A downloadable image row the product had before the sync."""

    id: int
    image_id: int | None


@dataclass
class _ListWrite:
    """One product's list as one transaction writes it."""

    session: AsyncSession
    changes: BlobChanges
    product_id: int
    options: list[str]
    """The product's declared options."""
    claimed: dict[str, _Download]
    """The downloads this sync stores, by URL."""
    now: datetime = field(default_factory=utcnow)
    listed: dict[str, _Listed] = field(default_factory=dict)
    """The product's downloadable images before the sync, by URL."""
    images: dict[str, int] = field(default_factory=dict)
    """The product's image ids by checksum."""
    owned: set[int] = field(default_factory=set)
    """The images that items of this sync already stand for."""
    left: set[str | None] = field(default_factory=set)
    """The galleries (None: the default one) that lost an image."""
    galleries: dict[int, str | None] = field(default_factory=dict)
    """The gallery of each image this sync stands for, in sync order."""

    async def load_list(self) -> None:
        d = downloadable_table
        query = sa.select(d.c.id, d.c.url, d.c.image_id).where(d.c.product_id == self.product_id)
        self.listed = {
            row.url: _Listed(row.id, row.image_id) for row in await self.session.execute(query)
        }

    def missing(self, items: Sequence[SyncItem]) -> list[str]:
        """The URLs with neither a download nor a stored image (a concurrent sync dropped it)."""
        return [
            item.url
            for item in items
            if item.url not in self.claimed
            and (item.url not in self.listed or self.listed[item.url].image_id is None)
        ]

    async def drop_all_but(self, urls: set[str]) -> None:
        """Delete the downloadable images whose URL is not in ``urls``, with their images."""
        d, i = downloadable_table, image_table
        dropped = [row for url, row in self.listed.items() if url not in urls]
        image_ids = [row.image_id for row in dropped if row.image_id is not None]
        images = await self.session.execute(
            sa.select(i.c.blob_key, i.c.option).where(i.c.id.in_(image_ids))
        )
        for image in images:
            self.changes.drop([image.blob_key])
            self.left.add(image.option)
        await self.session.execute(sa.delete(d).where(d.c.id.in_([row.id for row in dropped])))
        await self.session.execute(sa.delete(i).where(i.c.id.in_(image_ids)))

    async def load_images(self, urls: set[str]) -> None:
        """The product's images (after the drop), and those that kept URLs stand for."""
        i = image_table
        query = sa.select(i.c.id, i.c.checksum).where(i.c.product_id == self.product_id)
        self.images = {row.checksum: row.id for row in await self.session.execute(query)}
        self.owned = {
            row.image_id
            for url, row in self.listed.items()
            if url in urls and url not in self.claimed and row.image_id is not None
        }

    async def image_for(self, index: int, item: SyncItem) -> int:
        """The image item ``index`` stands for, with the item's type (and its alt and option
        when given): the one it had, one the product already has with the downloaded bytes
        (adopted), or a new one."""
        download = self.claimed.get(item.url)
        if download is not None and download.temp.sha256 not in self.images:
            image_id = await self.store(item, download)
            self.galleries[image_id] = validation.trimmed(item.option)
        else:
            image_id = self.kept(item) if download is None else self.adopted(index, download)
            self.galleries[image_id] = await self.resync(image_id, item)
        self.owned.add(image_id)
        return image_id

    def kept(self, item: SyncItem) -> int:
        image_id = self.listed[item.url].image_id
        assert image_id is not None  # else the URL is missing
        return image_id

    def adopted(self, index: int, download: _Download) -> int:
        image_id = self.images[download.temp.sha256]
        if image_id in self.owned:
            raise MediaFailure.one(
                ("images", str(index), "url"),
                ErrorCode.DUPLICATE,
                "These bytes are already another image of this sync.",
            )
        return image_id

    async def store(self, item: SyncItem, download: _Download) -> int:
        """A new image of the downloaded bytes, made in the default gallery."""
        image_id = await insert_image(
            self.session,
            self.changes,
            self.product_id,
            download,
            option=validation.trimmed(item.option),
            position=None,
            image_type=item.image_type,
            source=MediaSource.URL,
            alt=item.alt,
            source_url=item.url,
        )
        self.images[download.temp.sha256] = image_id
        return image_id

    async def resync(self, image_id: int, item: SyncItem) -> str | None:
        """Give an image the product already has what the item carries: its type and URL,
        its alt and option when given (else it keeps the merchant's). Returns its gallery."""
        i = image_table
        option = (
            await self.session.execute(sa.select(i.c.option).where(i.c.id == image_id))
        ).scalar()
        values: dict[str, object] = {
            "image_type": item.image_type.value,
            "source_url": item.url,
            "updated_at": self.now,
        }
        if item.alt is not None:
            values["alt"] = None if validation.is_blank(item.alt) else item.alt
        target = validation.trimmed(item.option)
        if target is not None and target != option:
            values["option"] = target
            self.left.add(option)
            option = target
        await self.session.execute(sa.update(i).where(i.c.id == image_id).values(**values))
        return option

    async def list_item(self, index: int, item: SyncItem, image_id: int) -> int:
        """Point the item's downloadable image row (made if new) at ``image_id``; its id."""
        d = downloadable_table
        synced: dict[str, object] = {
            "image_id": image_id,
            "image_type": item.image_type.value,
            "status": DownloadStatus.DOWNLOADED.value,
            "error": None,
        }
        row = self.listed.get(item.url)
        if row is not None:
            await self.session.execute(
                sa.update(d).where(d.c.id == row.id).values(updated_at=self.now, **synced)
            )
            return row.id
        return await insert_row(
            self.session,
            d,
            product_id=self.product_id,
            url=item.url,
            position=len(self.listed) + index,
            **synced,
        )

    async def save_order(self, images: list[int], rows: list[int]) -> None:
        """Synced images first in their galleries, in sync order; close up the rest."""
        await Gallery.downloadables(self.product_id).save(self.session, rows)
        synced: dict[str | None, list[int]] = {}
        for image_id in images:
            synced.setdefault(self.galleries[image_id], []).append(image_id)
        for option, ids in synced.items():
            gallery = Gallery.images(self.product_id, option)
            rest = [i for i in await gallery.order(self.session) if i not in set(images)]
            await gallery.save(self.session, ids + rest)
        for option in self.left - set(synced):
            await Gallery.images(self.product_id, option).close_up(self.session)
