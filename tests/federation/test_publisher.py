"""The publisher queues deliveries in the caller's transaction and wakes the worker only once that
transaction has committed."""

from __future__ import annotations

import time

from app.federation.publisher import Publisher
from app.federation.signals import WorkSignals
from app.models import DeliveryJob, Follow, FollowState, OutboxActivity
from app.queue_names import DELIVERY_QUEUE
from tests.federation.inbox_peer import BOB, Peer, home_of_alice, known_actor, rows
from tests.lab import Lab


async def woken_within(work: WorkSignals, seconds: float) -> bool:
    started = time.monotonic()
    await work.wait(DELIVERY_QUEUE, seconds)
    return time.monotonic() - started < seconds


async def test_deliveries_are_queued_with_the_change_and_the_worker_woken_after_the_commit(lab: Lab) -> None:
    here, alice = await home_of_alice(lab)
    peer = Peer(lab).host("remote.test")
    bob = await known_actor(here, peer.actor(BOB))
    async with here.context.sessions() as session:
        session.add(Follow(follower_id=bob.id, followee_id=alice.id, state=FollowState.ACCEPTED))
        await session.commit()
    publisher = Publisher(here.context)

    async with here.context.sessions() as session:
        await publisher.profile_updated(session, alice)
        await session.rollback()
    assert await rows(here, OutboxActivity) == []
    assert not await woken_within(here.context.work, 0.2)

    async with here.context.sessions() as session:
        assert await publisher.profile_updated(session, alice)
        await publisher.blocked(session, alice, bob, publisher.new_activity_id(alice))
        await session.commit()
    assert await woken_within(here.context.work, 2.0)
    activities = await rows(here, OutboxActivity)
    assert sorted(activity.activity_type for activity in activities) == ["Block", "Update"]
    # The Update to the followers' shared inbox, the Block to bob's own.
    assert sorted(job.inbox_url for job in await rows(here, DeliveryJob)) == [
        "http://remote.test/inbox",
        f"{bob.uri}/inbox",
    ]
