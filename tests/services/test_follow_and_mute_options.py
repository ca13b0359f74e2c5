"""The options a follow and a mute carry (Mastodon's): a follow with `notify` tells the follower
of each new post, one without boosts keeps the followee's boosts off the follower's home; a mute
that keeps notifications hides only the posts, and a mute for a while ends by itself. Here and
for posts and boosts arriving from another server."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import col, select, update

from app.models import Account, AccountMute, Follow, Notification, NotificationType, Post, TimelineEntry
from app.models.base import utcnow
from app.services.account_moderation import AccountModerationService, ModerationError
from app.services.following import FollowingError, FollowingService, FollowOptions
from app.services.posting import PostingService
from app.services.relationships import relationships
from app.services.viewer import Viewer
from tests.federation.delivery_helpers import local_account, settle
from tests.lab import Instance, Lab


async def notes_of(instance: Instance, account: Account, kind: str) -> list[Notification]:
    async with instance.context.sessions() as session:
        return list(
            (
                await session.scalars(
                    select(Notification).where(
                        col(Notification.account_id) == account.id, Notification.type == kind
                    )
                )
            ).all()
        )


async def home_of(instance: Instance, account: Account) -> set[int]:
    async with instance.context.sessions() as session:
        return set(
            (
                await session.scalars(
                    select(TimelineEntry.post_id).where(col(TimelineEntry.account_id) == account.id)
                )
            ).all()
        )


async def test_notify_and_no_boosts_between_local_accounts(instance: Instance) -> None:
    alice = await local_account(instance, "alice")
    bob = await local_account(instance, "bob")
    carol = await local_account(instance, "carol")
    following = FollowingService(instance.context)
    await following.follow_account(alice, bob, FollowOptions(show_reblogs=False, notify=True))
    posting = PostingService(instance.context)

    post = await posting.create(bob, "New episode out")
    told = await notes_of(instance, alice, NotificationType.STATUS)
    assert [note.post_id for note in told] == [post.id]
    assert post.id in await home_of(instance, alice)
    # A reply to someone else is not announced; a direct message never.
    carols = await posting.create(carol, "Hello")
    await posting.create(bob, "@carol hi", in_reply_to=str(carols.id))
    await posting.create(bob, "@carol secret", visibility="direct")
    assert len(await notes_of(instance, alice, NotificationType.STATUS)) == 1

    boost = await posting.boost(bob, carols.id)
    assert boost.id not in await home_of(instance, alice)
    await following.follow_account(alice, bob, FollowOptions(show_reblogs=True))
    second = await posting.boost(bob, (await posting.create(carol, "Again")).id)
    assert second.id in await home_of(instance, alice)

    found = await relationships(
        instance.context, Viewer(account=alice, acting_ids=frozenset({alice.id})), [bob.id]
    )
    assert found[0].following and found[0].notifying and found[0].showing_reblogs


async def test_mute_keeping_notifications_and_mute_for_a_while(instance: Instance) -> None:
    alice = await local_account(instance, "alice")
    bob = await local_account(instance, "bob")
    await FollowingService(instance.context).follow_account(alice, bob)
    moderation = AccountModerationService(instance.context)
    assert await moderation.mute(alice, bob, notifications=False)
    posting = PostingService(instance.context)
    mention = await posting.create(bob, "@alice look")
    assert [note.post_id for note in await notes_of(instance, alice, NotificationType.MENTION)] == [
        mention.id
    ]
    assert mention.id not in await home_of(instance, alice)

    # Muting again with notifications hidden: the next mention is not notified.
    assert await moderation.mute(alice, bob, duration=60)
    await posting.create(bob, "@alice again")
    assert len(await notes_of(instance, alice, NotificationType.MENTION)) == 1

    async with instance.context.sessions() as session:
        await session.execute(update(AccountMute).values(expires_at=utcnow() - timedelta(seconds=1)))
        await session.commit()
    # Ended: the account's posts reach the home timeline and its mentions notify again.
    after = await posting.create(bob, "@alice back")
    assert after.id in await home_of(instance, alice)
    assert len(await notes_of(instance, alice, NotificationType.MENTION)) == 2
    viewer = Viewer(account=alice, acting_ids=frozenset({alice.id}))
    assert not (await relationships(instance.context, viewer, [bob.id]))[0].muting

    with pytest.raises(ModerationError):
        await moderation.mute(alice, bob, duration=-5)
    with pytest.raises(ModerationError):
        await moderation.mute(alice, alice)


async def test_a_block_refuses_a_follow_either_way(instance: Instance) -> None:
    alice = await local_account(instance, "alice")
    bob = await local_account(instance, "bob")
    await AccountModerationService(instance.context).block(alice, bob)
    following = FollowingService(instance.context)
    for follower, followee in ((alice, bob), (bob, alice)):
        with pytest.raises(FollowingError, match="block"):
            await following.follow_account(follower, followee)


async def test_options_apply_to_posts_and_boosts_from_another_server(lab: Lab) -> None:
    a = await lab.instance("a.test", embedded_worker=False)
    b = await lab.instance("b.test", embedded_worker=False)
    alice = await local_account(a, "alice")
    bob = await local_account(b, "bob")
    carol = await local_account(b, "carol")
    await FollowingService(a.context).follow(
        alice, "@bob@b.test", FollowOptions(show_reblogs=False, notify=True)
    )
    await settle(lab)
    remote_posting = PostingService(b.context)
    post = await remote_posting.create(bob, "From b.test")
    boosted = await remote_posting.boost(bob, (await remote_posting.create(carol, "Carol's")).id)
    await settle(lab)
    async with a.context.sessions() as session:
        copy = await session.scalar(select(Post).where(Post.uri == post.uri))
        boost_copy = await session.scalar(select(Post).where(Post.uri == boosted.uri))
    assert copy is not None and boost_copy is not None
    assert [note.post_id for note in await notes_of(a, alice, NotificationType.STATUS)] == [copy.id]
    home = await home_of(a, alice)
    assert copy.id in home and boost_copy.id not in home


async def test_hiding_a_domain_ends_the_follows_with_it(lab: Lab) -> None:
    a = await lab.instance("a.test", embedded_worker=False)
    b = await lab.instance("b.test", embedded_worker=False)
    alice = await local_account(a, "alice")
    bob = await local_account(b, "bob")
    await FollowingService(a.context).follow(alice, "@bob@b.test")
    await FollowingService(b.context).follow(bob, "@alice@a.test")
    await settle(lab)

    assert await AccountModerationService(a.context).hide_domain(alice, "b.test")
    await settle(lab)
    for instance in (a, b):
        async with instance.context.sessions() as session:
            assert (await session.scalars(select(Follow))).all() == []


async def test_a_follow_in_some_languages_keeps_other_languages_off_home(lab: Lab) -> None:
    a = await lab.instance("a.test", embedded_worker=False)
    b = await lab.instance("b.test", embedded_worker=False)
    alice = await local_account(a, "alice")
    bob = await local_account(a, "bob")
    carol = await local_account(b, "carol")
    following = FollowingService(a.context)
    await following.follow_account(alice, bob, FollowOptions(languages=["de"]))
    await following.follow(alice, "@carol@b.test", FollowOptions(languages=["de"]))
    await settle(lab)
    here, there = PostingService(a.context), PostingService(b.context)
    english = await here.create(bob, "Hello", language="en")
    german = await here.create(bob, "Hallo", language="de")
    unknown = await here.create(bob, "…")
    remote_english = await there.create(carol, "Hello from b", language="en")
    remote_german = await there.create(carol, "Hallo von b", language="de-AT")
    await settle(lab)
    async with a.context.sessions() as session:
        copies = {
            post.uri: post.id
            for post in (
                await session.scalars(
                    select(Post).where(col(Post.uri).in_([remote_english.uri, remote_german.uri]))
                )
            ).all()
        }
    home = await home_of(a, alice)
    assert german.id in home and unknown.id in home and english.id not in home
    assert copies[remote_german.uri] in home and copies[remote_english.uri] not in home
