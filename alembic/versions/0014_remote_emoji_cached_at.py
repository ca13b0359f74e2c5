"""remote custom emoji: when the copy was made, for the retention of cached remote media

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-09 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

import app.models.base
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("remote_emoji", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cached_at", app.models.base.UTCDateTime(timezone=True), nullable=True))
    # Copies made before this revision count from their last update (when they were copied).
    op.execute("UPDATE remote_emoji SET cached_at = updated_at WHERE cached_url IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("remote_emoji", schema=None) as batch_op:
        batch_op.drop_column("cached_at")
