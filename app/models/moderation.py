"""What the organisation decides: domain blocks, reports and the audit log."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlmodel import Field, SQLModel

from app.models.base import foreign_id, id_field, json_field, timestamp


class BlockSeverity(StrEnum):
    SILENCE = "silence"
    SUSPEND = "suspend"


class DomainBlock(SQLModel, table=True):
    __tablename__ = "domain_block"

    id: int = id_field()
    # Host without port; a block covers every port and every subdomain.
    domain: str = Field(max_length=255, unique=True)
    severity: str = Field(default=BlockSeverity.SUSPEND, max_length=16)
    reject_media: bool = False
    reject_reports: bool = False
    public_comment: str | None = None
    private_comment: str | None = None
    created_at: datetime = timestamp()


class DomainAllow(SQLModel, table=True):
    """Domains that may federate while the instance runs in allowlist (limited federation) mode."""

    __tablename__ = "domain_allow"

    id: int = id_field()
    domain: str = Field(max_length=255, unique=True)
    created_at: datetime = timestamp()


class Report(SQLModel, table=True):
    __tablename__ = "report"

    id: int = id_field()
    # Who reported: a local account, or a remote actor (an inbound Flag; the instance actor of a server).
    reporter_account_id: int | None = foreign_id("account.id", nullable=True, ondelete="SET NULL")
    # Reports are evidence and outlive what they are about: when the account is purged (its domain
    # suspended, the actor deleted) the id becomes NULL and the uri and handle kept here still say who.
    target_account_id: int | None = foreign_id("account.id", nullable=True, ondelete="SET NULL")
    target_uri: str = Field(default="", max_length=2048)
    # `name@domain`, or the bare name of a local account.
    target_handle: str = Field(default="", max_length=512)
    post_ids: list[int] = json_field(list)
    comment: str = ""
    # Mastodon's categories (spam, legal, violation, other); a Flag from another server says none.
    category: str = Field(default="other", max_length=16)
    # For a violation: which of this server's rules (their numbers in /api/v1/instance/rules).
    rule_ids: list[int] = json_field(list)
    uri: str | None = Field(default=None, max_length=2048, unique=True)
    forwarded: bool = False
    created_at: datetime = timestamp()
    resolved_at: datetime | None = timestamp(nullable=True)
    resolved_by_user_id: int | None = foreign_id("users.id", nullable=True, ondelete="SET NULL")


class AuditLogEntry(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: int = id_field()
    user_id: int | None = foreign_id("users.id", nullable=True, ondelete="SET NULL")
    action: str = Field(max_length=64)
    target: str = Field(default="", max_length=2048)
    data: dict[str, Any] = json_field(dict)
    created_at: datetime = timestamp(index=True)
