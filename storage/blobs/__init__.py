"""Blob stores: content-addressed keys, the store interface, the local and S3-compatible
stores, temporary files and their writer. The S3 store (``storage.blobs.s3``) is imported
only where it is configured, so boto3 loads only then."""

from storage.blobs.keys import (
    KEY_PATTERN,
    RENDITION_KEY_PATTERN,
    blob_key,
    content_type_for,
    is_media_key,
    rendition_key,
    sha256_of,
)
from storage.blobs.local import LocalBlobStore
from storage.blobs.store import DEFAULT_TEMPORARY_AGE, TEMP_DIRECTORY, BlobStore, TempBlob
from storage.blobs.writer import TempWriter

__all__ = [
    "DEFAULT_TEMPORARY_AGE",
    "KEY_PATTERN",
    "RENDITION_KEY_PATTERN",
    "TEMP_DIRECTORY",
    "BlobStore",
    "LocalBlobStore",
    "TempBlob",
    "TempWriter",
    "blob_key",
    "content_type_for",
    "is_media_key",
    "rendition_key",
    "sha256_of",
]
