"""Persistence and media processing: use cases over SQL tables, blob stores and media inspection.

This package never imports Strawberry or Starlette.
"""
