"""SQL: engine and sessions, tables, read records, gallery order, keyset pages, migrations.

Its modules are its public names: ``database`` (engines, transactions, retries, the catalogue
version), ``tables`` (declared once, with typed Core handles), ``records`` (plain read rows),
``gallery`` (ordered lists), ``pages`` (keyset pagination) and ``migrate`` (Alembic)."""

__all__ = ["database", "gallery", "migrate", "pages", "records", "tables"]
