"""Idempotency-Key, as Mastodon honours it for new posts: a repeated key from the same token
within an hour answers with the post the first request made (an app retrying after a timeout
must not post twice).

The key is stored in the database in the same transaction as the post it made, under a unique
(token, key) constraint: every web process and every restart sees it, and of two requests with
the same key racing each other only one commits a post; the other finds that post."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.models import IdempotencyKey
from app.models.base import utcnow

KEY_LIFETIME = timedelta(hours=1)
MAX_KEY_LENGTH = 256


@dataclass(frozen=True)
class IdempotencyClaim:
    """The key a request carried, and the token that sent it."""

    token_id: int
    key: str

    @classmethod
    def of(cls, token_id: int | None, key: str | None) -> IdempotencyClaim | None:
        """None without a key, or without a token to scope it to."""
        if token_id is None or not key:
            return None
        return cls(token_id, key[:MAX_KEY_LENGTH])


async def earlier_post_id(session: AsyncSession, claim: IdempotencyClaim) -> int | None:
    """The post the same token made with the same key within the last hour, if any."""
    return await session.scalar(
        select(IdempotencyKey.post_id).where(
            col(IdempotencyKey.token_id) == claim.token_id,
            col(IdempotencyKey.key) == claim.key,
            col(IdempotencyKey.created_at) > utcnow() - KEY_LIFETIME,
        )
    )


async def record(session: AsyncSession, claim: IdempotencyClaim, post_id: int) -> None:
    """Remember the claim in the caller's transaction; the token's expired keys go at the same
    time (so the table holds at most an hour of each token's posts)."""
    await session.execute(
        delete(IdempotencyKey).where(
            col(IdempotencyKey.token_id) == claim.token_id,
            col(IdempotencyKey.created_at) <= utcnow() - KEY_LIFETIME,
        )
    )
    session.add(IdempotencyKey(token_id=claim.token_id, key=claim.key, post_id=post_id))


__all__ = ["KEY_LIFETIME", "IdempotencyClaim", "earlier_post_id", "record"]
