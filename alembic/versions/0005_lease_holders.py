"""lease holders: each leased job names the worker holding it, so a dead worker's jobs are taken over
at once instead of when the lease runs out

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 04:35:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("inbox_item", "delivery_job", "background_job")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(
                sa.Column("locked_by", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True)
            )


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("locked_by")
