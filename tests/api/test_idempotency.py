"""Idempotency-Key in the database: racing retries post once, another token's key is its own,
and a key is honoured for an hour."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from sqlalchemy import update
from sqlmodel import select

from app.main import create_app
from app.models import IdempotencyKey, Post
from app.models.base import utcnow
from tests.api.api_helpers import another_token, person
from tests.lab import Instance, Lab


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


async def test_a_second_web_process_on_the_same_database_answers_with_the_same_post(lab: Lab) -> None:
    first = await lab.instance("a.test", embedded_worker=False)
    _, alice = await person(first, "alice")
    headers = {**alice, "Idempotency-Key": "from-the-phone"}
    posted = await first.client.post("/api/v1/statuses", json={"status": "Sent once"}, headers=headers)
    assert posted.status_code == 200, posted.text
    # Another process of the same server (or this one restarted): its own app, the same database.
    second_app = create_app(first.settings, transport=lab.network)
    async with second_app.router.lifespan_context(second_app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=second_app), base_url=first.settings.base_url
        ) as second:
            retried = await second.post("/api/v1/statuses", json={"status": "Sent once"}, headers=headers)
    assert retried.status_code == 200 and retried.json()["id"] == posted.json()["id"]
    assert await _count(first, "Sent once") == 1
