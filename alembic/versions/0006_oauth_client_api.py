"""oauth: client API applications, authorization codes and access tokens (secrets stored hashed)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 04:35:33.267465
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

import app.models.base
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "oauth_application",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("website", sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=True),
        sa.Column("redirect_uris", sa.JSON(), nullable=False),
        sa.Column("scopes", sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
        sa.Column("client_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("client_secret_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("owner_user_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["owner_user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("client_id"),
    )
    with op.batch_alter_table("oauth_application", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_oauth_application_owner_user_id"), ["owner_user_id"], unique=False
        )

    op.create_table(
        "oauth_access_token",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("application_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("account_id", sa.BigInteger(), nullable=True),
        sa.Column("scopes", sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["application_id"], ["oauth_application.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("oauth_access_token", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oauth_access_token_account_id"), ["account_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_oauth_access_token_application_id"), ["application_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_oauth_access_token_user_id"), ["user_id"], unique=False)

    op.create_table(
        "oauth_authorization_code",
        sa.Column("id", sa.BigInteger(), nullable=False),
        sa.Column("code_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("application_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("account_id", sa.BigInteger(), nullable=False),
        sa.Column("redirect_uri", sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=False),
        sa.Column("scopes", sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=False),
        sa.Column("code_challenge", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("code_challenge_method", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("created_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", app.models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", app.models.base.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["account.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["application_id"], ["oauth_application.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code_hash"),
    )
    with op.batch_alter_table("oauth_authorization_code", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_oauth_authorization_code_account_id"), ["account_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_oauth_authorization_code_application_id"), ["application_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_oauth_authorization_code_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("oauth_authorization_code", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oauth_authorization_code_user_id"))
        batch_op.drop_index(batch_op.f("ix_oauth_authorization_code_application_id"))
        batch_op.drop_index(batch_op.f("ix_oauth_authorization_code_account_id"))

    op.drop_table("oauth_authorization_code")
    with op.batch_alter_table("oauth_access_token", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oauth_access_token_user_id"))
        batch_op.drop_index(batch_op.f("ix_oauth_access_token_application_id"))
        batch_op.drop_index(batch_op.f("ix_oauth_access_token_account_id"))

    op.drop_table("oauth_access_token")
    with op.batch_alter_table("oauth_application", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oauth_application_owner_user_id"))

    op.drop_table("oauth_application")
