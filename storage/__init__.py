"""Persistence and media processing: use cases over SQL tables, blob stores and media processing.

The use cases are this package's modules (``products``, ``images``, ``videos``, ``sync``,
``gc``, ``tokens``, ``receiving``, ``reads``), each function one transaction, over the
sub-packages ``sql``, ``blobs``, ``media`` and ``fetch``. This package never imports Strawberry
or Starlette.
"""

__all__ = [
    "backend",
    "enums",
    "errors",
    "events",
    "gc",
    "images",
    "products",
    "reads",
    "receiving",
    "sync",
    "tokens",
    "validation",
    "videos",
]
