"""File content from the request: multipart parts (already received) and base64 strings."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import AsyncIterator

from storage import validation
from storage.enums import ErrorCode
from storage.errors import FieldPath, MediaFailure
from storage.receiving import Arrived, Incoming, ReceivedFile

FILENAME = re.compile(r"[A-Za-z0-9._-]+")


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


def from_upload(upload: object, field: FieldPath) -> Arrived:
    """A multipart file part (received by the gateway before the operation ran) as content."""
    if not isinstance(upload, ReceivedFile):
        raise MediaFailure.one(field, ErrorCode.INVALID, "This is not a file part.")
    return Arrived(upload, field)


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
