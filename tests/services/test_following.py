"""Following and unfollowing accounts here and elsewhere, by handle or URL."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlmodel import select

from app.models import DeliveryJob, Follow, FollowState, OutboxActivity, Post, TimelineEntry
from app.services.following import FollowingError, FollowingService
from app.services.posting import PostingService
from tests.federation.delivery_helpers import local_account, outbox, serving_peer
from tests.federation.delivery_peer import Peer
from tests.lab import Instance, Lab


@pytest.fixture
async def peer(lab: Lab) -> AsyncIterator[Peer]:
    async with serving_peer(lab, "one.test") as peer:
        yield peer


@pytest.fixture
async def home(lab: Lab) -> Instance:
    return await lab.instance("a.test", embedded_worker=False)


@pytest.mark.parametrize("target", ["@bob@one.test", "bob@one.test", "http://one.test/users/bob"])
async def test_following_a_remote_account_is_pending_until_accepted(
    home: Instance, peer: Peer, target: str
) -> None:
    bob = peer.add_account("bob", "one.test")
    alice = await local_account(home, "alice")

    outcome = await FollowingService(home.context).follow(alice, target)

    assert outcome.created and outcome.pending
    assert outcome.target.uri == bob.uri
    [(follow, inboxes)] = await outbox(home)
    assert follow == {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": outcome.follow.uri,
        "type": "Follow",
        "actor": alice.uri,
        "object": bob.uri,
    }
    assert str(follow["id"]).startswith(f"{alice.uri}#")
    assert inboxes == [bob.inbox]  # Follow goes to the personal inbox


async def test_following_again_while_pending_resends_the_same_follow(home: Instance, peer: Peer) -> None:
    peer.add_account("bob", "one.test")
    alice = await local_account(home, "alice")
    following = FollowingService(home.context)
    first = await following.follow(alice, "@bob@one.test")
    again = await following.follow(alice, "@bob@one.test")
    assert not again.created and again.follow.id == first.follow.id
    async with home.context.sessions() as session:
        assert len((await session.scalars(select(OutboxActivity))).all()) == 1
        assert len((await session.scalars(select(DeliveryJob))).all()) == 2


async def test_following_a_local_account_is_immediate(home: Instance) -> None:
    alice = await local_account(home, "alice")
    carl = await local_account(home, "carl")
    outcome = await FollowingService(home.context).follow(alice, "@carl@a.test")
    assert outcome.target.id == carl.id and not outcome.pending
    assert await outbox(home) == []


async def test_refusals(home: Instance, peer: Peer) -> None:
    alice = await local_account(home, "alice")
    following = FollowingService(home.context)
    with pytest.raises(FollowingError, match="cannot follow itself"):
        await following.follow(alice, "@alice@a.test")
    with pytest.raises(FollowingError, match="does not exist"):
        await following.follow(alice, "@nobody@one.test")
    with pytest.raises(FollowingError, match="not a handle"):
        await following.follow(alice, "not a handle")


async def test_unfollow_undoes_the_follow_and_clears_their_posts_from_home(
    home: Instance, peer: Peer
) -> None:
    bob = peer.add_account("bob", "one.test")
    alice = await local_account(home, "alice")
    following = FollowingService(home.context)
    outcome = await following.follow(alice, "@bob@one.test")
    async with home.context.sessions() as session:
        stored = await session.get(Follow, outcome.follow.id)
        assert stored is not None
        stored.state = FollowState.ACCEPTED
        session.add(stored)
        await session.commit()
    # Something of bob's in alice's home timeline, and something of her own.
    own = await PostingService(home.context).create(alice, "mine")
    async with home.context.sessions() as session:
        theirs = Post(uri="http://one.test/users/bob/statuses/1", account_id=outcome.target.id)
        session.add(theirs)
        await session.flush()
        session.add(TimelineEntry(account_id=alice.id, post_id=theirs.id))
        await session.commit()

    unfollowed = await following.unfollow(alice, bob.uri)

    assert unfollowed is not None and unfollowed.uri == bob.uri
    undo, inboxes = (await outbox(home))[-1]
    assert undo["type"] == "Undo" and undo["actor"] == alice.uri
    assert undo["object"] == {
        "id": outcome.follow.uri,
        "type": "Follow",
        "actor": alice.uri,
        "object": bob.uri,
    }
    assert inboxes == [bob.inbox]
    async with home.context.sessions() as session:
        assert (await session.scalars(select(Follow))).all() == []
        assert (await session.scalars(select(TimelineEntry.post_id))).all() == [own.id]
    assert await following.unfollow(alice, "@bob@one.test") is None
