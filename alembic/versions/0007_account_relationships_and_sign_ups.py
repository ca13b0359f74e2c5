"""accounts API: follow options, timed mutes, private notes, posting defaults, sign-ups awaiting approval

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 14:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

import app.models.base
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("follow", schema=None) as batch_op:
        batch_op.add_column(sa.Column("show_reblogs", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch_op.add_column(sa.Column("notify", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("languages", sa.JSON(), nullable=False, server_default="[]"))
    with op.batch_alter_table("account_mute", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("hide_notifications", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch_op.add_column(
            sa.Column("expires_at", app.models.base.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("awaiting_approval", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("sign_up_reason", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True)
        )
        batch_op.add_column(
            sa.Column(
                "default_privacy",
                sqlmodel.sql.sqltypes.AutoString(length=16),
                nullable=False,
                server_default="public",
            )
        )
        batch_op.add_column(
            sa.Column("default_sensitive", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(
            sa.Column("default_language", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True)
        )
    op.create_table(
        "account_note",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("target_account_id", sa.BigInteger(), nullable=False),
        sa.Column("comment", sqlmodel.sql.sqltypes.AutoString(), nullable=False),
        sa.Column("updated_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["target_account_id"], ["account.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("account_id", "target_account_id"),
    )
    with op.batch_alter_table("account_note", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_account_note_account_id"), ["account_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_account_note_target_account_id"), ["target_account_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("account_note", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_note_target_account_id"))
        batch_op.drop_index(batch_op.f("ix_account_note_account_id"))
    op.drop_table("account_note")
    with op.batch_alter_table("users", schema=None) as batch_op:
        for column in (
            "default_language",
            "default_sensitive",
            "default_privacy",
            "sign_up_reason",
            "awaiting_approval",
        ):
            batch_op.drop_column(column)
    with op.batch_alter_table("account_mute", schema=None) as batch_op:
        batch_op.drop_column("expires_at")
        batch_op.drop_column("hide_notifications")
    with op.batch_alter_table("follow", schema=None) as batch_op:
        batch_op.drop_column("languages")
        batch_op.drop_column("notify")
        batch_op.drop_column("show_reblogs")
