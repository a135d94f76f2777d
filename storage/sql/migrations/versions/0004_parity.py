"""image source URL, product options

Revision ID: 0004
Revises: 0002
Create Date: 2026-12-02 18:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (no batch copy), so SQLite keeps the tables' AUTOINCREMENT.
    op.add_column("image", sa.Column("source_url", sa.String(2048), nullable=True))
    op.create_index("ix_image_source_url", "image", ["source_url"])
    op.add_column(
        "product",
        sa.Column("options", sa.JSON(), nullable=False, server_default=sa.text("'[]'")),
    )


def downgrade() -> None:
    op.drop_column("product", "options")
    op.drop_index("ix_image_source_url", table_name="image")
    op.drop_column("image", "source_url")
