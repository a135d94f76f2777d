"""File content from the request (multipart parts or base64 strings) as ``Incoming`` streams."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import AsyncIterator, Iterable
from typing import Any, Protocol

from storage.enums import ErrorCode
from storage.errors import FieldPath, MediaFailure
from storage.receiving import Incoming

CHUNK_SIZE = 64 * 1024
FILENAME = re.compile(r"[A-Za-z0-9._-]{1,255}")


class UploadedFile(Protocol):
    """What the multipart parser hands over for a file part (Starlette's ``UploadFile``)."""

    async def read(self, size: int = -1) -> bytes: ...
    async def close(self) -> None: ...


async def _read(upload: UploadedFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(CHUNK_SIZE):
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
    if name is not None and not FILENAME.fullmatch(name):
        raise MediaFailure.one(
            field, ErrorCode.INVALID, "filename may hold only letters, digits, '-', '_' and '.'."
        )


async def close_all(uploads: Iterable[object]) -> None:
    """Close the request's file parts; the GraphQL view leaves that to garbage collection."""
    for upload in uploads:
        close = getattr(upload, "close", None)
        if close is not None:
            await close()
