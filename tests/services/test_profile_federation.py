"""A profile change reaches the servers of the account's followers as an Update of the actor."""

from __future__ import annotations

from sqlmodel import col, select

from app.activitypub.resolver import ActorResolver
from app.models import DeliveryJob, Follow, FollowState, OutboxActivity
from app.services.accounts import AccountService
from app.services.profile_settings import ProfileChanges, ProfileSettingsService
from tests.lab import Lab


async def test_profile_change_queues_an_update_of_the_actor_to_followers(lab: Lab) -> None:
    here = await lab.instance("a.test", embedded_worker=False)
    there = await lab.instance("b.test", embedded_worker=False)
    alice = (await AccountService(here.context).create_local_account("alice", password="long enough")).account
    await AccountService(there.context).create_local_account("bob", password="long enough")
    bob_here = await ActorResolver(here.context).resolve_handle("@bob@b.test")
    async with here.context.sessions() as session:
        session.add(Follow(follower_id=bob_here.id, followee_id=alice.id, state=FollowState.ACCEPTED))
        await session.commit()

    await ProfileSettingsService(here.context).update(
        alice.id, ProfileChanges(display_name="Alice Example", bio="Now with a bio.")
    )

    async with here.context.sessions() as session:
        activity = (
            await session.scalars(select(OutboxActivity).where(col(OutboxActivity.activity_type) == "Update"))
        ).one()
        inboxes = (
            await session.scalars(select(DeliveryJob.inbox_url).where(DeliveryJob.activity_id == activity.id))
        ).all()
    assert list(inboxes) == ["http://b.test/inbox"]
    update = activity.payload
    assert update["actor"] == "http://a.test/users/alice"
    assert update["object"]["id"] == "http://a.test/users/alice"
    assert update["object"]["name"] == "Alice Example"
    assert "Now with a bio." in update["object"]["summary"]
    assert update["object"]["publicKey"]["id"] == "http://a.test/users/alice#main-key"


async def test_profile_change_without_followers_sends_nothing(lab: Lab) -> None:
    here = await lab.instance("a.test", embedded_worker=False)
    alice = (await AccountService(here.context).create_local_account("alice", password="long enough")).account
    await ProfileSettingsService(here.context).update(alice.id, ProfileChanges(display_name="Alice", bio=""))
    async with here.context.sessions() as session:
        assert (await session.scalars(select(OutboxActivity))).all() == []
