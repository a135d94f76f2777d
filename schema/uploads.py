"""File content from the request (multipart parts or base64 strings) as ``Incoming`` streams."""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from collections.abc import AsyncIterator
from typing import Any, Protocol
from weakref import WeakKeyDictionary

from storage import validation
from storage.enums import ErrorCode
from storage.errors import FieldPath, MediaFailure
from storage.receiving import Incoming

CHUNK_SIZE = 64 * 1024
FILENAME = re.compile(r"[A-Za-z0-9._-]+")


class UploadedFile(Protocol):
    """What the multipart parser hands over for a file part (Starlette's ``UploadFile``)."""

    async def read(self, size: int = -1) -> bytes: ...
    async def seek(self, offset: int) -> None: ...


_POSITIONS: WeakKeyDictionary[Any, asyncio.Lock] = WeakKeyDictionary()
"""One lock per file part: a part may be used by several mutations or operations of one
request (aliases, one part mapped to two variables, a batch), each reading all of it."""


async def _read(upload: UploadedFile) -> AsyncIterator[bytes]:
    """The whole file from its start, whoever else reads it: each chunk is read at this
    reader's own offset, under the part's lock (the file has one shared position)."""
    lock = _POSITIONS.setdefault(upload, asyncio.Lock())
    offset = 0
    while True:
        async with lock:
            await upload.seek(offset)
            chunk = await upload.read(CHUNK_SIZE)
        if not chunk:
            return
        offset += len(chunk)
        yield chunk


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


def from_upload(upload: Any, field: FieldPath) -> Incoming:
    if not hasattr(upload, "read"):
        raise MediaFailure.one(field, ErrorCode.INVALID, "This is not a file part.")
    return Incoming(_read(upload), field)


def from_base64(text: str, field: FieldPath) -> Incoming:
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise MediaFailure.one(field, ErrorCode.INVALID, "base64 is not valid base64.") from None
    if not data:
        raise MediaFailure.one(field, ErrorCode.REQUIRED, "base64 holds no data.")
    return Incoming(_once(data), field)


def check_filename(name: str | None, field: FieldPath) -> None:
    """The base64 upload's filename (never used for storage, but checked as text)."""
    problems = validation.optional_text(name, field, validation.FILENAME_LENGTH)
    if problems:
        raise MediaFailure(problems)
    if name is not None and not FILENAME.fullmatch(name):
        raise MediaFailure.one(
            field, ErrorCode.INVALID, "filename may hold only letters, digits, '-', '_' and '.'."
        )
