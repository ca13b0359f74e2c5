"""media: attachments processed here (state, kind, preview, meta, focus), cached remote copies
of attachments and of remote accounts' pictures

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 14:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel

import app.models.base
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("media_attachment", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False, server_default="")
        )
        # Rows stored before this revision are remote attachments, linked and never copied.
        batch_op.add_column(
            sa.Column(
                "state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False, server_default="remote"
            )
        )
        batch_op.add_column(
            sa.Column("preview_url", sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=True)
        )
        batch_op.add_column(
            sa.Column("preview_path", sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=True)
        )
        batch_op.add_column(
            sa.Column("upload_path", sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=True)
        )
        batch_op.add_column(sa.Column("file_size", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("meta", sa.JSON(), nullable=False, server_default="{}"))
        batch_op.add_column(sa.Column("focus_x", sa.Float(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("focus_y", sa.Float(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("processing_error", sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=True)
        )
        batch_op.add_column(sa.Column("cached_at", app.models.base.UTCDateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_media_attachment_cached_at"), ["cached_at"], unique=False)
    with op.batch_alter_table("account", schema=None) as batch_op:
        for column in ("avatar_cached_url", "avatar_cached_from", "header_cached_url", "header_cached_from"):
            batch_op.add_column(
                sa.Column(column, sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=True)
            )
        batch_op.add_column(
            sa.Column("pictures_cached_at", app.models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.create_index(
            batch_op.f("ix_account_pictures_cached_at"), ["pictures_cached_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("account", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_account_pictures_cached_at"))
        for column in (
            "pictures_cached_at",
            "header_cached_from",
            "header_cached_url",
            "avatar_cached_from",
            "avatar_cached_url",
        ):
            batch_op.drop_column(column)
    with op.batch_alter_table("media_attachment", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_media_attachment_cached_at"))
        for column in (
            "cached_at",
            "processing_error",
            "focus_y",
            "focus_x",
            "meta",
            "file_size",
            "upload_path",
            "preview_path",
            "preview_url",
            "state",
            "kind",
        ):
            batch_op.drop_column(column)
