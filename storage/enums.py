"""Enumerations shared by the tables, the use cases and (re-exported) the GraphQL schema."""

from enum import StrEnum


class ImageType(StrEnum):
    DEFAULT = "DEFAULT"
    SWATCH = "SWATCH"
    PICTO = "PICTO"


class MediaSource(StrEnum):
    UPLOAD = "UPLOAD"
    INTEGRATION = "INTEGRATION"
    UNIFIED = "UNIFIED"
    URL = "URL"


class DownloadStatus(StrEnum):
    PENDING = "PENDING"
    DOWNLOADED = "DOWNLOADED"
    FAILED = "FAILED"


class TokenScope(StrEnum):
    READ = "read"
    WRITE = "write"


class ErrorCode(StrEnum):
    REQUIRED = "REQUIRED"
    INVALID = "INVALID"
    NOT_FOUND = "NOT_FOUND"
    UNSUPPORTED_FORMAT = "UNSUPPORTED_FORMAT"
    CORRUPT_FILE = "CORRUPT_FILE"
    FILE_TOO_LARGE = "FILE_TOO_LARGE"
    IMAGE_TOO_SMALL = "IMAGE_TOO_SMALL"
    IMAGE_TOO_LARGE = "IMAGE_TOO_LARGE"
    DUPLICATE = "DUPLICATE"
    NOT_SAME_PRODUCT = "NOT_SAME_PRODUCT"
    REPEATED_ID = "REPEATED_ID"
    INCOMPLETE_ORDER = "INCOMPLETE_ORDER"
    TOO_MANY = "TOO_MANY"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    URL_NOT_ALLOWED = "URL_NOT_ALLOWED"
    DOWNLOAD_FAILED = "DOWNLOAD_FAILED"


class ProductSort(StrEnum):
    SKU = "SKU"
    NAME = "NAME"
    CREATED_AT = "CREATED_AT"
    UPDATED_AT = "UPDATED_AT"


class SortDirection(StrEnum):
    ASC = "ASC"
    DESC = "DESC"


class RenditionSize(StrEnum):
    THUMBNAIL = "THUMBNAIL"
    SMALL = "SMALL"
    MEDIUM = "MEDIUM"
    LARGE = "LARGE"
    ZOOM = "ZOOM"


class RenditionFormat(StrEnum):
    JPEG = "JPEG"
    PNG = "PNG"
    WEBP = "WEBP"
    AVIF = "AVIF"
    ORIGINAL = "ORIGINAL"
