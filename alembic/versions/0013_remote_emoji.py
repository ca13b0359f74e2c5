"""remote custom emoji, copied here once per :shortcode: of a domain

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 18:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

import app.models.base
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "remote_emoji",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("domain", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("shortcode", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("image_url", sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=False),
        sa.Column("cached_url", sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=True),
        sa.Column("cached_from", sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=True),
        sa.Column("failure", sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=True),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("domain", "shortcode"),
    )


def downgrade() -> None:
    op.drop_table("remote_emoji")
