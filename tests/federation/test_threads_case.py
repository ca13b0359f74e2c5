"""The Threads case: a.test suspends a whole server (here t.test, on which `zuck` lives) that has
followers on a.test and is followed from it; b.test stays an ordinary peer.

Everything runs through the lab network: real signatures, inboxes and workers on all three sides.
"""

from __future__ import annotations

import json

import pytest
from sqlmodel import col, select

from app.models import Account, DeliveryJob, Follow, FollowState, JobState, Post
from app.services.domain_blocks import DomainBlockService
from app.services.following import FollowingError, FollowingService
from app.services.posting import PostingService
from tests.federation.delivery_helpers import local_account, settle
from tests.lab import Instance, Lab


def inbox_posts(lab: Lab, host: str, activity_type: str) -> list[dict[str, object]]:
    found = []
    for request in lab.network.requests:
        if request.method == "POST" and request.url.host == host and request.url.path.endswith("/inbox"):
            body = json.loads(request.content)
            if body.get("type") == activity_type:
                found.append(body)
    return found


async def follows(instance: Instance) -> list[tuple[str, str, str]]:
    async with instance.context.sessions() as session:
        rows = await session.scalars(select(Follow))
        result = []
        for follow in rows.all():
            follower = await session.get(Account, follow.follower_id)
            followee = await session.get(Account, follow.followee_id)
            assert follower is not None and followee is not None
            result.append((follower.uri, followee.uri, str(follow.state)))
        return sorted(result)


async def cached_from(instance: Instance, host: str) -> tuple[int, int]:
    async with instance.context.sessions() as session:
        accounts = (await session.scalars(select(Account).where(col(Account.domain) == host))).all()
        posts = (
            await session.scalars(
                select(Post)
                .join(Account, col(Account.id) == col(Post.account_id))
                .where(col(Account.domain) == host)
            )
        ).all()
        return len(accounts), len(posts)


async def test_suspending_a_domain_severs_purges_and_stops_federation_until_unblocked(lab: Lab) -> None:
    a = await lab.instance("a.test", embedded_worker=False)
    b = await lab.instance("b.test", embedded_worker=False)
    t = await lab.instance("t.test", embedded_worker=False)
    alice = await local_account(a, "alice")
    bob = await local_account(b, "bob")
    zuck = await local_account(t, "zuck")

    # t.test follows alice and is followed by her; bob follows alice too.
    for instance, follower, handle in [
        (t, zuck, "@alice@a.test"),
        (b, bob, "@alice@a.test"),
        (a, alice, "@zuck@t.test"),
    ]:
        await FollowingService(instance.context).follow(follower, handle)
        await settle(lab)
    await PostingService(t.context).create(zuck, "Hello from the big server")
    await settle(lab)
    accounts, posts = await cached_from(a, "t.test")
    assert accounts >= 1 and posts == 1  # zuck, and t.test's instance actor if its key was needed
    assert len(await follows(a)) == 3

    _block, effects = await DomainBlockService(a.context).block(
        "T.test", severity="suspend", public_comment="Surveillance capitalism"
    )
    assert effects.follows_severed == 2 and effects.accounts_purged == accounts
    # Cut at once: no follow with t.test and nothing cached from it is left on a.test.
    assert await follows(a) == [("http://b.test/users/bob", "http://a.test/users/alice", "accepted")]
    assert await cached_from(a, "t.test") == (0, 0)

    await settle(lab)
    # The peer was told before the cut: an Undo of alice's follow and a Reject of zuck's.
    assert [body["object"]["type"] for body in inbox_posts(lab, "t.test", "Undo")] == ["Follow"]  # type: ignore[index]
    assert len(inbox_posts(lab, "t.test", "Reject")) == 1
    assert await follows(t) == []  # so t.test's side is severed too

    # A new post reaches bob but not t.test.
    post = await PostingService(a.context).create(alice, "After the block")
    await settle(lab)
    received = {
        request.url.host
        for request in lab.network.requests
        if request.method == "POST"
        and request.content
        and json.loads(request.content).get("id") == f"{post.uri}/activity"
    }
    assert received == {"b.test"}

    # Its inbox POSTs are refused with 403, whatever subdomain or port.
    refused = await a.client.post(
        "/inbox",
        content=b'{"type":"Create","actor":"http://t.test/users/zuck"}',
        headers={"Content-Type": "application/activity+json", "Host": "a.test"},
    )
    # (unsigned: the blocked-domain check runs on the keyId's host; see test_inbox_http for signed 403s)
    assert refused.status_code in (401, 403)
    # Its actors cannot be fetched or followed.
    with pytest.raises(FollowingError):
        await FollowingService(a.context).follow(alice, "@zuck@t.test")
    # A delivery to it queued by hand is failed with the reason, never sent.
    async with a.context.sessions() as session:
        waiting = (await session.scalars(select(DeliveryJob).where(col(DeliveryJob.host) == "t.test"))).all()
    assert all(job.state != JobState.QUEUED for job in waiting)

    # Unblock: new activity flows again.
    assert await DomainBlockService(a.context).unblock("t.test")
    outcome = await FollowingService(a.context).follow(alice, "@zuck@t.test")
    await settle(lab)
    assert outcome.follow.id
    assert ("http://a.test/users/alice", "http://t.test/users/zuck", FollowState.ACCEPTED) in [
        (follower, followee, state) for follower, followee, state in await follows(a)
    ]
    later = await PostingService(t.context).create(zuck, "Back again")
    await settle(lab)
    async with a.context.sessions() as session:
        assert await session.scalar(select(Post.id).where(col(Post.uri) == later.uri)) is not None


async def test_a_silenced_domain_needs_approval_to_follow_and_stays_off_public_pages(lab: Lab) -> None:
    a = await lab.instance("a.test", embedded_worker=False)
    b = await lab.instance("b.test", embedded_worker=False)
    alice = await local_account(a, "alice")
    bob = await local_account(b, "bob")
    await DomainBlockService(a.context).block("b.test", severity="silence")

    await FollowingService(a.context).follow(alice, "@bob@b.test")  # following out is fine
    await FollowingService(b.context).follow(bob, "@alice@a.test")
    await settle(lab)
    states = {(follower, followee): state for follower, followee, state in await follows(a)}
    assert states[("http://a.test/users/alice", "http://b.test/users/bob")] == FollowState.ACCEPTED
    assert states[("http://b.test/users/bob", "http://a.test/users/alice")] == FollowState.PENDING

    post = await PostingService(b.context).create(bob, "Loud news #herold")
    await settle(lab)
    async with a.context.sessions() as session:
        assert await session.scalar(select(Post.id).where(col(Post.uri) == post.uri)) is not None
    assert "Loud news" not in (await a.client.get("/tags/herold")).text
    await DomainBlockService(a.context).unblock("b.test")
    assert "Loud news" in (await a.client.get("/tags/herold")).text


async def test_limited_federation_lets_only_allowed_domains_in(lab: Lab) -> None:
    a = await lab.instance("a.test", embedded_worker=False, limited_federation=True)
    b = await lab.instance("b.test", embedded_worker=False)
    c = await lab.instance("c.test", embedded_worker=False)
    alice = await local_account(a, "alice")
    bob = await local_account(b, "bob")
    carol = await local_account(c, "carol")
    await DomainBlockService(a.context).allow("b.test")

    await FollowingService(b.context).follow(bob, "@alice@a.test")
    # c.test cannot even read alice: its signed fetch of her actor is refused (403).
    with pytest.raises(FollowingError, match="403"):
        await FollowingService(c.context).follow(carol, "@alice@a.test")
    await settle(lab)
    followers = [follower for follower, followee, _ in await follows(a) if followee == alice.uri]
    assert followers == ["http://b.test/users/bob"]
    with pytest.raises(FollowingError):
        await FollowingService(a.context).follow(alice, "@carol@c.test")
