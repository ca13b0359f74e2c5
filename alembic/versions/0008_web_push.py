"""web push: one subscription per access token (endpoint, keys, alerts, policy, the sealed token)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 14:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

import app.models.base
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "push_subscription",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("access_token_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("endpoint", sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=False),
        sa.Column("key_p256dh", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("key_auth", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("sealed_token", sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
        sa.Column("alerts", sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
        sa.Column("policy", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("standard", sa.Boolean(), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["access_token_id"], ["oauth_access_token.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_push_subscription_account_id", "push_subscription", ["account_id"], unique=False)
    op.create_index("ux_push_subscription_token", "push_subscription", ["access_token_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_push_subscription_token", table_name="push_subscription")
    op.drop_index("ix_push_subscription_account_id", table_name="push_subscription")
    op.drop_table("push_subscription")
