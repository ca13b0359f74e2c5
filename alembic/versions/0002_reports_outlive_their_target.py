"""reports outlive their target: target_account_id SET NULL, target_uri and target_handle kept

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 15:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite reflects the foreign keys of 0001 without names; batch mode names them by this convention
# so that one can be dropped. PostgreSQL named it itself.
SQLITE_NAMES = {"fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s"}
SQLITE_FK = "fk_report_target_account_id_account"
POSTGRESQL_FK = "report_target_account_id_fkey"

FILL_TARGET = """
UPDATE report SET
    target_uri = COALESCE((SELECT account.uri FROM account WHERE account.id = report.target_account_id), ''),
    target_handle = COALESCE((
        SELECT account.username || CASE WHEN account.domain IS NULL THEN '' ELSE '@' || account.domain END
        FROM account WHERE account.id = report.target_account_id
    ), '')
"""


def upgrade() -> None:
    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "target_uri", sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=False, server_default=""
            )
        )
        batch_op.add_column(
            sa.Column(
                "target_handle",
                sqlmodel.sql.sqltypes.AutoString(length=512),
                nullable=False,
                server_default="",
            )
        )
    op.execute(FILL_TARGET)
    _replace_target_key(nullable=True, ondelete="SET NULL", drop_defaults=True)


def downgrade() -> None:
    # A report whose account is gone cannot point at it again.
    op.execute("DELETE FROM report WHERE target_account_id IS NULL")
    _replace_target_key(nullable=False, ondelete="CASCADE", drop_defaults=False)
    with op.batch_alter_table("report", schema=None) as batch_op:
        batch_op.drop_column("target_handle")
        batch_op.drop_column("target_uri")


def _replace_target_key(*, nullable: bool, ondelete: str, drop_defaults: bool) -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    name = SQLITE_FK if sqlite else POSTGRESQL_FK
    with op.batch_alter_table(
        "report", schema=None, naming_convention=SQLITE_NAMES if sqlite else None
    ) as batch_op:
        batch_op.drop_constraint(name, type_="foreignkey")
        batch_op.alter_column("target_account_id", existing_type=sa.BigInteger(), nullable=nullable)
        if drop_defaults:
            for column in ("target_uri", "target_handle"):
                batch_op.alter_column(
                    column, existing_type=sqlmodel.sql.sqltypes.AutoString(), server_default=None
                )
        batch_op.create_foreign_key(name, "account", ["target_account_id"], ["id"], ondelete=ondelete)
