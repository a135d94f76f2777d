"""Names that only a framework or a protocol uses, by name: ``make lint`` runs vulture over
gateway, schema and storage with this file, so that everything else unused is reported.
Resolvers and CLI commands are recognised by their decorators (pyproject's [tool.vulture])."""

from vulture.whitelist_utils import Whitelist

_ = Whitelist()

# Strawberry: fields of object types (the executor reads them by name), extension hooks and
# the view's overrides.
_.start_cursor
_.end_cursor
_.page_info
_.user_errors
_.deleted_ids
_.url2x
_.on_parse
_.on_validate
_.on_execute
_.on_operation
_.render_graphql_ide
_.decode_json
_.encode_json
_.get_context

# Enum members that arrive only as values (database text, GraphQL enum values).
_.SWATCH
_.PICTO
_.INTEGRATION
_.UNIFIED
_.PENDING
_.FAILED
_.READ
_.JPEG
_.PNG
_.WEBP
_.AVIF

# uvicorn: the app factory named in `media-gateway serve`, the cycle flag it reads.
_.create_served_app
_.disconnected
# Starlette's FileResponse range parsing, overridden.
_._parse_range_header
# pydantic-settings model configuration.
_.model_config
# httpcore's AsyncNetworkBackend protocol, httpx's transport pool, sqlite3's DB-API flag.
_.connect_unix_socket
_._pool
_.isolation_level
# The asynchronous context manager protocol's arguments.
_.exc_type
_.exc_value
_.traceback
# SQLModel table classes: defining one adds its table to the metadata (storage.sql.tables).
_.ApiToken
_.CatalogueVersion
# Alembic revision modules.
_.down_revision
_.branch_labels
_.depends_on
_.downgrade

# What the tests observe: the held pixels of a memory budget, the renditions written, and
# the undoing of configure_logging.
_.in_use
_.generated
_.reset_logging
