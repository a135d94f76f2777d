"""Content-addressed keys: a blob's key is derived from its bytes,
``<first 2 hex>/<sha256 hex>.<extension>``, and a rendition's from its source's bytes.
Content addressing gives three properties the rest of the system relies on:

- identical bytes are stored once, whatever number of rows or products refer to them;
- keys cannot be guessed without the bytes, so media URLs can stay public;
- the bytes behind a key never change, so responses can be cached forever
  (``Cache-Control: immutable``) and a write of an existing key is a no-op.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from storage.media import BY_EXTENSION, FORMATS, RENDITION_OUTPUTS, MediaFormat


def _extension_of(formats: Iterable[MediaFormat]) -> str:
    """A regex group named ``extension`` matching any of the formats' extensions."""
    return "(?P<extension>" + "|".join(re.escape(f.extension) for f in formats) + ")"


KEY_PATTERN: re.Pattern[str] = re.compile(
    r"\A(?P<folder>[0-9a-f]{2})/(?P=folder)[0-9a-f]{62}\." + _extension_of(FORMATS) + r"\Z"
)
"""A blob key; anchored, so ``match``, ``fullmatch`` and ``search`` all test the whole string."""

RENDITION_KEY_PATTERN: re.Pattern[str] = re.compile(
    r"\Ar/(?P<folder>[0-9a-f]{2})/(?P<sha256>(?P=folder)[0-9a-f]{62})/(?P<box>[1-9][0-9]{0,4})"
    r"\." + _extension_of(RENDITION_OUTPUTS) + r"\Z"
)
"""A rendition of the blob with that sha256, fitted into a box of ``box`` pixels:
``r/ab/ab12…/250.webp``. Derived from the source's bytes, so as immutable as a blob key."""

SHA256_PATTERN = re.compile(r"\A[0-9a-f]{64}\Z")
FOLDER_PATTERN = re.compile(r"\A[0-9a-f]{2}\Z")


def blob_key(sha256: str, extension: str) -> str:
    """The key of the bytes whose sha256 hex digest is ``sha256``, stored with ``extension``.

    ``extension`` may be given with a leading dot and in any case (``".JPG"``).
    """
    digest = sha256.lower()
    if not SHA256_PATTERN.match(digest):
        raise ValueError(f"Not a sha256 hex digest: {sha256!r}")
    normalized = extension.lower().removeprefix(".")
    if normalized not in BY_EXTENSION:
        raise ValueError(f"Unsupported blob extension: {extension!r}")
    return f"{digest[:2]}/{digest}.{normalized}"


def rendition_key(sha256: str, box: int, extension: str) -> str:
    return f"r/{sha256[:2]}/{sha256}/{box}.{extension}"


def is_media_key(key: str) -> bool:
    """A blob key or a rendition key."""
    return bool(KEY_PATTERN.match(key) or RENDITION_KEY_PATTERN.match(key))


def sha256_of(key: str) -> str:
    """The sha256 of a blob key's bytes (its file name without the extension)."""
    match = KEY_PATTERN.match(key)
    if match is None:
        raise ValueError(f"Not a blob key: {key!r}")
    return key.split("/")[1].split(".")[0]


def content_type_for(key: str) -> str:
    """The media type served for ``key``; raises ``ValueError`` for anything but a key."""
    match = KEY_PATTERN.match(key) or RENDITION_KEY_PATTERN.match(key)
    if match is None:
        raise ValueError(f"Not a blob key: {key!r}")
    return BY_EXTENSION[match["extension"]].mime_type
