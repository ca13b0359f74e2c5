"""What an account did with a direct-message conversation: read it up to a post, or removed it
from its list (a newer post brings it back, as on Mastodon)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.models.base import foreign_id, id_field, timestamp


class ConversationMark(SQLModel, table=True):
    __tablename__ = "conversation_mark"
    __table_args__ = (UniqueConstraint("account_id", "conversation_uri"),)

    id: int = id_field()
    account_id: int = foreign_id("account.id")
    conversation_uri: str = Field(max_length=2048)
    read_up_to_post_id: int = Field(default=0, sa_type=BigInteger)
    removed_up_to_post_id: int = Field(default=0, sa_type=BigInteger)
    updated_at: datetime = timestamp()
