"""SQL: engine and sessions, tables, read records, gallery order, keyset pages, migrations."""
