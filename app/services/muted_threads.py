"""Muted conversations, as a rule every notification list applies: a notification about a post
in a thread the account muted is not shown (whenever it arrived, from here or elsewhere)."""

from __future__ import annotations

from sqlalchemy import ColumnElement, exists, func, or_
from sqlmodel import col

from app.models import ConversationMute, Notification, Post


def conversation_key(post: Post) -> str:
    """The thread a post belongs to: its conversation URI, or the post itself when it names none."""
    return post.conversation_uri or post.uri


def outside_muted_conversations(account_id: int) -> ColumnElement[bool]:
    """The condition on Notification that it is not about a post in a thread `account_id` muted."""
    muted = exists().where(
        col(Post.id) == Notification.post_id,
        col(ConversationMute.account_id) == account_id,
        col(ConversationMute.conversation_uri) == func.coalesce(col(Post.conversation_uri), col(Post.uri)),
    )
    return or_(col(Notification.post_id).is_(None), ~muted)


__all__ = ["conversation_key", "outside_muted_conversations"]
