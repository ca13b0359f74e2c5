"""Bursts: a saturated database or a crowd of first contacts is answered 503 with Retry-After,
never 500, and what is retried is accepted and processed once."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from contextlib import AsyncExitStack

from sqlalchemy import func
from sqlmodel import select

from app.models import DeliveryJob, Follow, InboxItem, JobState
from tests.federation.inbox_peer import (
    ALICE,
    Peer,
    PeerActor,
    activity,
    local_account,
    process_inbox,
    throwaway_key,
)
from tests.lab import Instance, Lab

FOLLOWERS = 1000


async def instance_with_alice(lab: Lab, **settings: object) -> Instance:
    instance = await lab.instance("a.test", embedded_worker=False, **settings)
    await local_account(instance, "alice")
    return instance


async def count(instance: Instance, model: type, *conditions: object) -> int:
    async with instance.context.sessions() as session:
        found = await session.scalar(select(func.count()).select_from(model).where(*conditions))
    return int(found or 0)


async def test_a_thousand_first_contact_follows_get_no_500_and_are_each_accepted_once(lab: Lab) -> None:
    # The pool as deployed (app.db.pool_sizes), with its 5 s wait at most. No backlog limit: with
    # no worker here a backlog never shrinks, so once the burst outlasted the limit (60 s, on a
    # loaded machine) every retry was refused for good, 30 times, 30-60 s apart (the limit has its
    # own tests, tests/federation/test_inbox_backpressure.py).
    here = await instance_with_alice(lab, inbox_backlog_limit_seconds=0)
    peer = Peer(lab)
    key = throwaway_key(1)
    actors: list[PeerActor] = []
    for number in range(FOLLOWERS):
        host = f"r{number}.test"
        peer.host(host)
        actors.append(peer.actor(f"http://{host}/users/u", key=key))
    answers: Counter[int] = Counter()

    async def follow_until_accepted(actor: PeerActor) -> int:
        document = activity(actor, "Follow", ALICE, "follows/1")
        for _attempt in range(30):
            response = await peer.deliver(here, actor, document)
            answers[response.status_code] += 1
            if response.status_code != 503:
                return response.status_code
            retry_after = int(response.headers["Retry-After"])
            assert retry_after > 0
            assert response.json()["error"]
            # As a sender honouring Retry-After does (Mastodon's own backoff waits longer still).
            await asyncio.sleep(random.uniform(retry_after, 2 * retry_after))
        return 503

    finals = await asyncio.gather(*(follow_until_accepted(actor) for actor in actors))
    print(f"\n{FOLLOWERS} first-contact Follows: answers {dict(answers)}")
    assert not [status for status in answers if status >= 500 and status != 503], answers
    assert Counter(finals) == {202: FOLLOWERS}

    async with asyncio.timeout(120):
        # Jobs that found the pool saturated come back after a moment, not counted as attempts.
        while await count(here, InboxItem, InboxItem.state == JobState.QUEUED):
            await process_inbox(here)
            await asyncio.sleep(0.5)
    assert await count(here, InboxItem) == FOLLOWERS
    assert await count(here, InboxItem, InboxItem.state == JobState.DONE) == FOLLOWERS
    assert await count(here, Follow) == FOLLOWERS
    # One Accept for each: nothing was processed twice.
    assert await count(here, DeliveryJob) == FOLLOWERS


async def test_a_saturated_database_is_answered_503_with_retry_after_everywhere(lab: Lab) -> None:
    # Two connections and two spare, given up on after a tenth of a second.
    here = await instance_with_alice(lab, database_pool_size=2, database_pool_timeout=0.1)
    peer = Peer(lab).host("remote.test")
    bob = peer.actor("http://remote.test/users/bob")
    async with AsyncExitStack() as held:
        # Every connection of the pool taken.
        for _ in range(4):
            await held.enter_async_context(here.context.engine.connect())
        inbox = await peer.deliver(here, bob, activity(bob, "Follow", ALICE, "follows/1"))
        page = await here.client.get("/@alice")
        actor = await here.client.get("/users/alice", headers={"Accept": "application/activity+json"})
    for response in (inbox, page, actor):
        assert response.status_code == 503, (response.request.url, response.text)
        assert int(response.headers["Retry-After"]) > 0
    assert "busy" in inbox.json()["error"] and "busy" in page.text
    accepted = await peer.deliver(here, bob, activity(bob, "Follow", ALICE, "follows/1"))
    assert accepted.status_code == 202, accepted.text
