"""Idempotency-Key in the database: racing retries post once, another token's key is its own,
and a key is honoured for an hour."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import select

from app.models import IdempotencyKey, Post
from app.models.base import utcnow
from tests.api.api_helpers import another_token, person
from tests.lab import Instance


async def _count(instance: Instance, text: str) -> int:
    async with instance.context.sessions() as session:
        return len((await session.scalars(select(Post).where(Post.content_source == text))).all())


async def test_racing_retries_post_once_and_keys_belong_to_one_token_for_an_hour(instance: Instance) -> None:
    client = instance.client
    alice_account, alice = await person(instance, "alice")
    headers = {**alice, "Idempotency-Key": "retry-1"}
    answers = await asyncio.gather(
        *(client.post("/api/v1/statuses", json={"status": "Only once"}, headers=headers) for _ in range(4))
    )
    assert {answer.status_code for answer in answers} == {200}
    assert len({answer.json()["id"] for answer in answers}) == 1
    assert await _count(instance, "Only once") == 1

    # The same key from another token (another app) is another request.
    other = {**await another_token(instance, alice_account, scopes="write"), "Idempotency-Key": "retry-1"}
    assert (
        await client.post("/api/v1/statuses", json={"status": "Only once"}, headers=other)
    ).status_code == 200
    assert await _count(instance, "Only once") == 2

    # An hour later the key is forgotten.
    async with instance.context.sessions() as session:
        await session.execute(
            update(IdempotencyKey).values(created_at=utcnow() - timedelta(hours=1, seconds=1))
        )
        await session.commit()
    later = await client.post("/api/v1/statuses", json={"status": "Only once"}, headers=headers)
    assert later.json()["id"] != answers[0].json()["id"]
    assert await _count(instance, "Only once") == 3
