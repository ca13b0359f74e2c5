"""The visibility rule, asked of one post (can_see) and of every list (visible_to), directly."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.models import Account, Visibility
from app.services.account_moderation import AccountModerationService
from app.services.following import FollowingService
from app.services.notifications import NotificationService
from app.services.post_lists import (
    local_posts,
    recent_public_posts,
    tagged_posts,
    thread_posts,
    visible_posts_of,
)
from app.services.posting import PostingService
from app.services.profiles import ProfileService
from app.services.timelines import TimelineService
from app.services.viewer import Viewer
from app.services.visibility import can_see
from tests.federation.delivery_helpers import (
    local_account,
    remote_follower,
    serving_peer,
)
from tests.federation.delivery_peer import Peer
from tests.lab import Instance, Lab


@pytest.fixture
async def peer(lab: Lab) -> AsyncIterator[Peer]:
    async with serving_peer(lab, "one.test") as peer:
        yield peer


@pytest.fixture
async def home(lab: Lab) -> Instance:
    return await lab.instance("a.test", embedded_worker=False)


def reader(account: Account) -> Viewer:
    return Viewer(account=account, acting_ids=frozenset({account.id}) if account.is_local else frozenset())


async def test_one_post(home: Instance, peer: Peer) -> None:
    alice = await local_account(home, "alice")
    follower = await remote_follower(home, alice, peer, peer.add_account("ann", "one.test"))
    stranger = await local_account(home, "sam")
    mentioned = await local_account(home, "mia")
    posting = PostingService(home.context)
    followers_only = await posting.create(alice, "for followers and @mia", visibility="followers")
    direct = await posting.create(alice, "for @mia", visibility="direct")
    public = await posting.create(alice, "for all")
    context = home.context

    assert await can_see(context, Viewer.nobody(), public)
    assert not await can_see(context, Viewer.nobody(), followers_only)
    assert await can_see(context, Viewer.remote(follower), followers_only)
    assert await can_see(context, reader(mentioned), followers_only)
    assert await can_see(context, reader(alice), followers_only)
    assert not await can_see(context, reader(stranger), followers_only)
    assert not await can_see(context, Viewer.remote(follower), direct)
    assert await can_see(context, reader(mentioned), direct)
    await posting.delete(alice, public.id)
    deleted = await posting.find_post(public.id)
    assert deleted is not None and not await can_see(context, reader(alice), deleted)


async def test_blocks_either_way_hide_everything_and_mutes_hide_lists(home: Instance) -> None:
    alice = await local_account(home, "alice")
    bob = await local_account(home, "bob")
    carol = await local_account(home, "carol")
    posting = PostingService(home.context)
    by_alice = await posting.create(alice, "Alice speaks #news")
    by_bob = await posting.create(bob, "Bob speaks #news")
    moderation = AccountModerationService(home.context)
    await moderation.block(bob, alice)
    await moderation.mute(carol, alice)
    context = home.context

    # A block between two local accounts: neither sees the other, whoever blocked.
    assert not await can_see(context, reader(bob), by_alice)
    assert not await can_see(context, reader(alice), by_bob)
    assert await can_see(context, reader(carol), by_bob)
    # A mute hides from lists, not from the post's own URL or the muted account's profile.
    assert await can_see(context, reader(carol), by_alice)
    tagged, _ = await tagged_posts(context, "news", reader(carol), max_id=None)
    assert [post.id for post in tagged] == [by_bob.id]
    local, _ = await local_posts(context, reader(carol), max_id=None)
    assert by_alice.id not in [post.id for post in local]
    profile = await ProfileService(context).posts(alice, 1, reader(carol))
    assert [post.id for post in profile.items] == [by_alice.id]
    for blocked_side in (bob,):
        profile = await ProfileService(context).posts(alice, 1, reader(blocked_side))
        assert profile.items == []
        tagged, _ = await tagged_posts(context, "news", reader(blocked_side), max_id=None)
        assert [post.id for post in tagged] == [by_bob.id]


async def test_a_boost_shows_only_when_the_boosted_post_may_be_seen(home: Instance) -> None:
    alice = await local_account(home, "alice")
    bob = await local_account(home, "bob")
    carol = await local_account(home, "carol")
    posting = PostingService(home.context)
    original = await posting.create(alice, "Worth sharing")
    boost = await posting.boost(bob, original.id)
    await AccountModerationService(home.context).block(carol, alice)
    profile = await ProfileService(home.context).posts(bob, 1, reader(carol))
    assert boost.id not in [post.id for post in profile.items]
    profile = await ProfileService(home.context).posts(bob, 1, Viewer.nobody())
    assert boost.id in [post.id for post in profile.items]


async def test_a_followers_only_post_is_invisible_to_a_non_follower_in_every_list(home: Instance) -> None:
    context = home.context
    alice = await local_account(home, "alice")
    follower = await local_account(home, "fred")
    stranger = await local_account(home, "sam")
    await FollowingService(context).follow(follower, "alice@a.test")
    posting = PostingService(context)
    root = await posting.create(alice, "An open question #plans")
    secret = await posting.create(
        alice, "Followers only #plans", visibility=Visibility.FOLLOWERS, in_reply_to=str(root.id)
    )
    await posting.pin(alice, secret.id)
    profiles = ProfileService(context)
    timelines = TimelineService(context)

    async def lists(viewer: Viewer) -> dict[str, list[int]]:
        _ancestors, replies = await thread_posts(context, root, viewer)
        return {
            "profile": [post.id for post in (await profiles.posts(alice, 1, viewer)).items],
            "outbox": [post.id for post in (await profiles.public_posts(alice, 1, viewer)).items],
            "pinned": [post.id for post in await profiles.pinned_posts(alice, viewer)],
            "by id": list(await profiles.posts_by_id([secret.id], viewer)),
            "thread": [post.id for post in replies],
            "tag": [post.id for post in (await tagged_posts(context, "plans", viewer, max_id=None))[0]],
            "local": [post.id for post in (await local_posts(context, viewer, max_id=None))[0]],
            "search card": [post.id for post in await visible_posts_of(context, alice, viewer)],
            "feed": [post.id for post in await recent_public_posts(context, alice)],
            "home": [
                summary.post.id
                for summary in await timelines.home(viewer.account)  # type: ignore[arg-type]
            ]
            if viewer.account is not None
            else [],
        }

    for viewer in (Viewer.nobody(), reader(stranger)):
        seen = await lists(viewer)
        assert all(secret.id not in ids for ids in seen.values()), seen
    seen = await lists(reader(follower))
    for name in ("profile", "pinned", "by id", "thread", "search card", "home"):
        assert secret.id in seen[name], name
    # Public lists stay public: the outbox, hashtags, the local timeline and the feeds.
    for name in ("outbox", "tag", "local", "feed"):
        assert secret.id not in seen[name], name

    # An ended follow ends it everywhere, the home timeline written earlier included.
    await FollowingService(context).unfollow(follower, "alice@a.test")
    seen = await lists(reader(follower))
    assert all(secret.id not in ids for ids in seen.values()), seen


async def test_notifications_show_only_posts_their_owner_may_still_see(home: Instance) -> None:
    alice = await local_account(home, "alice")
    bob = await local_account(home, "bob")
    posting = PostingService(home.context)
    mention = await posting.create(bob, "Hello @alice", visibility=Visibility.DIRECT)
    notifications = NotificationService(home.context)
    [seen] = await notifications.for_account(alice)
    assert seen.status is not None and seen.status.post.id == mention.id
    await AccountModerationService(home.context).block(alice, bob)
    [after] = await notifications.for_account(alice)
    assert after.status is None
