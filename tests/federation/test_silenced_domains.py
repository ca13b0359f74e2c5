"""A silenced domain, as on Mastodon: its accounts notify only the local accounts that follow them,
and its posts reach a home timeline through the reader's own follows, not through someone's boost.

bob is on remote.test, which gets silenced. dave follows bob; alice does not.
"""

from __future__ import annotations

import pytest
from sqlmodel import select

from app.models import (
    Account,
    BlockSeverity,
    Favourite,
    Follow,
    FollowState,
    Notification,
    Post,
    TimelineEntry,
)
from app.services.domain_blocks import DomainBlockService
from app.services.posting import PostingService
from tests.federation.inbox_peer import (
    ALICE,
    PUBLIC,
    Peer,
    PeerActor,
    activity,
    create,
    deliver_and_process,
    follow_locally,
    known_actor,
    local_account,
    local_post,
    note,
    rows,
)
from tests.lab import Instance, Lab


@pytest.fixture
async def dave(here: Instance, bob: PeerActor) -> Account:
    dave = await local_account(here, "dave")
    await known_actor(here, bob)
    await follow_locally(here, dave, bob.uri)
    return dave


async def silence(instance: Instance, domain: str) -> None:
    await DomainBlockService(instance.context).block(domain, severity=BlockSeverity.SILENCE)


async def notified(instance: Instance, account: Account) -> list[tuple[str, int | None]]:
    return [
        (notification.type, notification.post_id)
        for notification in await rows(instance, Notification, Notification.account_id == account.id)
    ]


def mentioning(actor: PeerActor, number: int, *accounts: Account, **extra: object) -> dict[str, object]:
    return note(
        actor,
        number,
        cc=[actor.followers, *(account.uri for account in accounts)],
        tag=[
            {"type": "Mention", "href": account.uri, "name": f"@{account.username}"} for account in accounts
        ],
        **extra,
    )


async def test_a_silenced_domain_notifies_only_its_followers(
    here: Instance, peer: Peer, bob: PeerActor, alice: Account, dave: Account
) -> None:
    hers, his = await local_post(here, alice, "alice's"), await local_post(here, dave, "dave's")
    earlier, later = await local_post(here, alice, "earlier"), await local_post(here, alice, "later")
    # Before the silence, bob's like reaches alice like anyone's.
    await deliver_and_process(here, peer, bob, activity(bob, "Like", earlier.uri, "likes/0"))
    assert await notified(here, alice) == [("favourite", earlier.id)]
    await silence(here, "remote.test")

    await deliver_and_process(here, peer, bob, activity(bob, "Like", hers.uri, "likes/1"))
    await deliver_and_process(here, peer, bob, activity(bob, "Like", his.uri, "likes/2"))
    await deliver_and_process(
        here, peer, bob, activity(bob, "Announce", hers.uri, "announces/1", to=[PUBLIC], cc=[bob.followers])
    )
    await deliver_and_process(here, peer, bob, create(bob, mentioning(bob, 1, alice, dave)))
    await deliver_and_process(here, peer, bob, create(bob, mentioning(bob, 2, alice, inReplyTo=hers.uri)))
    await deliver_and_process(here, peer, bob, create(bob, mentioning(bob, 3, dave, inReplyTo=his.uri)))
    [first, second, third] = [
        (await rows(here, Post, Post.uri == f"{bob.uri}/statuses/{number}"))[0] for number in (1, 2, 3)
    ]

    # What happened is kept: the like counted, the boost and the mentioning posts stored.
    [counted] = await rows(here, Post, Post.id == hers.id)
    assert counted.reblogs_count == 1 and len(await rows(here, Favourite, Favourite.post_id == hers.id)) == 1
    # alice, who does not follow bob, hears nothing more from him; dave hears everything.
    assert await notified(here, alice) == [("favourite", earlier.id)]
    assert sorted(await notified(here, dave)) == sorted(
        [("favourite", his.id), ("mention", first.id), ("reply", third.id)]
    )
    assert second.in_reply_to_id == hers.id

    # Once alice follows bob, his likes reach her again.
    await follow_locally(here, alice, bob.uri)
    await deliver_and_process(here, peer, bob, activity(bob, "Like", later.uri, "likes/3"))
    assert ("favourite", later.id) in await notified(here, alice)


async def test_an_emoji_reaction_from_a_silenced_domain_needs_a_follow(
    here: Instance, peer: Peer, bob: PeerActor, alice: Account, dave: Account
) -> None:
    await silence(here, "remote.test")
    hers, his = await local_post(here, alice), await local_post(here, dave)
    for number, post in enumerate((hers, his)):
        reaction = activity(bob, "EmojiReact", post.uri, f"reacts/{number}", content="🎉")
        await deliver_and_process(here, peer, bob, reaction)
    assert await notified(here, alice) == []
    assert await notified(here, dave) == [("reaction", his.id)]


async def test_a_follow_from_a_silenced_domain_still_asks(
    here: Instance, peer: Peer, bob: PeerActor, alice: Account
) -> None:
    await silence(here, "remote.test")
    await deliver_and_process(here, peer, bob, activity(bob, "Follow", ALICE, "follows/1"))
    [follow] = await rows(here, Follow)
    assert follow.state == FollowState.PENDING
    assert await notified(here, alice) == [("follow_request", None)]


async def test_boosts_bring_a_silenced_domains_posts_only_to_its_followers(
    here: Instance, lab: Lab, peer: Peer, bob: PeerActor, alice: Account, dave: Account
) -> None:
    other = Peer(lab).host("other.test")
    carol = other.actor("http://other.test/users/carol")
    await known_actor(here, carol)
    erin = await local_account(here, "erin")
    for reader in (alice, dave):
        await follow_locally(here, reader, carol.uri)
        await follow_locally(here, reader, erin.uri)
    loud = peer.serve(note(bob, 7, content="<p>from a silenced server</p>"))
    await silence(here, "remote.test")

    # carol (a remote account alice and dave follow) boosts bob's post, and so does erin (local).
    boost = activity(carol, "Announce", loud["id"], "announces/1", to=[PUBLIC], cc=[carol.followers])
    await deliver_and_process(here, other, carol, boost)
    [original] = await rows(here, Post, Post.uri == loud["id"])
    [carols] = await rows(here, Post, Post.uri == boost["id"])
    erins = await PostingService(here.context).boost(erin, original.id)

    async def home_of(account: Account) -> set[int]:
        async with here.context.sessions() as session:
            entries = await session.scalars(
                select(TimelineEntry.post_id).where(TimelineEntry.account_id == account.id)
            )
            return set(entries.all())

    assert await home_of(alice) == set()
    assert await home_of(dave) == {carols.id, erins.id}
    assert erins.id in await home_of(erin)  # a booster sees their own boost

    # A boost of an unsilenced server's post still reaches every follower of the booster.
    quiet = other.serve(note(carol, 8))
    await deliver_and_process(here, other, carol, create(carol, quiet))
    [kept] = await rows(here, Post, Post.uri == quiet["id"])
    erins_other = await PostingService(here.context).boost(erin, kept.id)
    assert erins_other.id in await home_of(alice)


async def test_unsilencing_lets_boosts_through_again(
    here: Instance, peer: Peer, bob: PeerActor, alice: Account
) -> None:
    erin = await local_account(here, "erin")
    await follow_locally(here, alice, erin.uri)
    bobs = peer.serve(note(bob, 9))
    blocks = DomainBlockService(here.context)
    await silence(here, "remote.test")
    await blocks.unblock("remote.test")
    boost = await PostingService(here.context).boost(erin, bobs["id"])
    [entry] = await rows(here, TimelineEntry, TimelineEntry.account_id == alice.id)
    assert entry.post_id == boost.id
