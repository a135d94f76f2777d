"""Persistence and media processing: tables, repository, use cases, blob stores, inspection.

This package never imports Strawberry or Starlette.
"""
