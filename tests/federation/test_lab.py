"""The federation lab: three Herold instances talking ActivityPub to each other over HTTP.

alice is on a.test, bob on b.test, carol and dave on c.test. Every request between them goes
through the lab network with real signatures, real inboxes and real workers; the tests only
act through the services (as the CLI and web UI do) and read what each server ended up with.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from sqlmodel import select

from app.activitypub.fetcher import Fetcher, FetchError
from app.models import Account, DeliveryJob, Follow, FollowState, JobState, NotificationType, Post
from app.services.following import FollowingService
from app.services.notifications import NotificationService
from app.services.posting import PostingService
from app.services.profiles import ProfileService
from app.services.timelines import TimelineService
from tests.federation.delivery_helpers import local_account, settle
from tests.lab import Instance, Lab

AS2 = "application/activity+json"


@dataclass
class Trio:
    lab: Lab
    a: Instance
    b: Instance
    c: Instance
    alice: Account
    bob: Account
    carol: Account
    dave: Account

    def posted(self, activity_id: str) -> dict[str, int]:
        """How many times each host's inboxes received the activity `activity_id`."""
        counts: dict[str, int] = {}
        for request in self.lab.network.requests:
            if request.method != "POST" or not request.url.path.endswith("/inbox"):
                continue
            if json.loads(request.content).get("id") == activity_id:
                counts[request.url.host] = counts.get(request.url.host, 0) + 1
        return counts


@pytest.fixture
async def trio(lab: Lab) -> Trio:
    a = await lab.instance("a.test", embedded_worker=False)
    b = await lab.instance("b.test", embedded_worker=False)
    c = await lab.instance("c.test", embedded_worker=False)
    return Trio(
        lab,
        a,
        b,
        c,
        alice=await local_account(a, "alice"),
        bob=await local_account(b, "bob"),
        carol=await local_account(c, "carol"),
        dave=await local_account(c, "dave"),
    )


async def stored(instance: Instance, uri: str) -> Post | None:
    async with instance.context.sessions() as session:
        return await session.scalar(select(Post).where(Post.uri == uri))


async def home_uris(instance: Instance, account: Account) -> list[str]:
    return [summary.post.uri for summary in await TimelineService(instance.context).home(account)]


async def notified(instance: Instance, account: Account) -> list[tuple[str, str]]:
    views = await NotificationService(instance.context).for_account(account)
    return [(view.notification.type, view.account.acct) for view in views]


async def follow(trio: Trio, instance: Instance, follower: Account, handle: str) -> None:
    outcome = await FollowingService(instance.context).follow(follower, handle)
    assert outcome.pending
    await settle(trio.lab)
    async with instance.context.sessions() as session:
        stored_follow = await session.get(Follow, outcome.follow.id)
    assert stored_follow is not None and stored_follow.state == FollowState.ACCEPTED  # the Accept came back


async def test_followers_get_each_post_once_then_its_edit_and_its_deletion(trio: Trio) -> None:
    await follow(trio, trio.b, trio.bob, "@alice@a.test")
    await follow(trio, trio.c, trio.carol, "@alice@a.test")
    followers = await ProfileService(trio.a.context).followers(trio.alice, 1)
    assert sorted(followers.items) == ["http://b.test/users/bob", "http://c.test/users/carol"]

    posting = PostingService(trio.a.context)
    post = await posting.create(trio.alice, "Hello from the lab! #federation")
    await settle(trio.lab)

    assert trio.posted(f"{post.uri}/activity") == {"b.test": 1, "c.test": 1}
    assert await home_uris(trio.b, trio.bob) == [post.uri]
    assert await home_uris(trio.c, trio.carol) == [post.uri]
    assert await home_uris(trio.c, trio.dave) == []
    copy = await stored(trio.b, post.uri)
    assert copy is not None and "Hello from the lab!" in copy.content_html

    await posting.edit(trio.alice, post.id, "Hello from the lab, edited. #federation")
    await settle(trio.lab)
    copy = await stored(trio.b, post.uri)
    assert copy is not None and "edited" in copy.content_html and copy.edited_at is not None

    await posting.delete(trio.alice, post.id)
    await settle(trio.lab)
    assert trio.posted(f"{post.uri}#delete") == {"b.test": 1, "c.test": 1}
    assert await home_uris(trio.b, trio.bob) == []
    assert await home_uris(trio.c, trio.carol) == []
    answer = await trio.a.client.get(post.uri, headers={"Accept": AS2})
    assert answer.status_code == 410 and answer.json()["type"] == "Tombstone"

    # After an unfollow, new posts no longer go to b.test.
    await FollowingService(trio.b.context).unfollow(trio.bob, "@alice@a.test")
    await settle(trio.lab)
    later = await posting.create(trio.alice, "Only carol now")
    await settle(trio.lab)
    assert trio.posted(f"{later.uri}/activity") == {"c.test": 1}


async def test_boosts_likes_replies_and_mentions_reach_the_author(trio: Trio) -> None:
    await follow(trio, trio.b, trio.bob, "@alice@a.test")
    posting_a = PostingService(trio.a.context)
    post = await posting_a.create(trio.alice, "Please share")
    await settle(trio.lab)

    posting_b = PostingService(trio.b.context)
    await posting_b.boost(trio.bob, post.uri)
    await posting_b.like(trio.bob, post.uri)
    await settle(trio.lab)
    original = await stored(trio.a, post.uri)
    assert original is not None and (original.reblogs_count, original.favourites_count) == (1, 1)
    assert set(await notified(trio.a, trio.alice)) >= {
        (NotificationType.REBLOG, "bob@b.test"),
        (NotificationType.FAVOURITE, "bob@b.test"),
    }

    # carol never saw the post: her server reads it from a.test to reply.
    reply = await PostingService(trio.c.context).create(trio.carol, "Shared it too", in_reply_to=post.url)
    await settle(trio.lab)
    assert reply.in_reply_to_uri == post.uri
    original = await stored(trio.a, post.uri)
    assert original is not None and original.replies_count == 1
    assert (NotificationType.REPLY, "carol@c.test") in await notified(trio.a, trio.alice)

    mention = await posting_a.create(trio.alice, "Thanks @carol@c.test!")
    await settle(trio.lab)
    assert trio.posted(f"{mention.uri}/activity") == {"b.test": 1, "c.test": 1}
    assert (NotificationType.MENTION, "alice@a.test") in await notified(trio.c, trio.carol)

    await posting_b.unboost(trio.bob, post.uri)
    await posting_b.unlike(trio.bob, post.uri)
    await settle(trio.lab)
    original = await stored(trio.a, post.uri)
    assert original is not None and (original.reblogs_count, original.favourites_count) == (0, 0)


async def test_followers_only_and_direct_posts_stay_with_their_audience(trio: Trio) -> None:
    await follow(trio, trio.b, trio.bob, "@alice@a.test")
    posting = PostingService(trio.a.context)
    private = await posting.create(trio.alice, "For my followers", visibility="followers")
    direct = await posting.create(trio.alice, "Just for you, @dave@c.test", visibility="direct")
    await settle(trio.lab)

    assert trio.posted(f"{private.uri}/activity") == {"b.test": 1}
    assert trio.posted(f"{direct.uri}/activity") == {"c.test": 1}
    assert await home_uris(trio.b, trio.bob) == [private.uri]
    assert await stored(trio.c, private.uri) is None

    async def fetch(instance: Instance, signer: Account | None, uri: str) -> int:
        try:
            await Fetcher(instance.context, signer=signer).get_json(uri, signed=signer is not None)
        except FetchError as error:
            assert error.status is not None
            return error.status
        return 200

    assert await fetch(trio.b, trio.bob, private.uri) == 200
    assert await fetch(trio.b, trio.bob, f"{private.uri}/activity") == 200
    assert await fetch(trio.c, trio.dave, private.uri) == 404
    assert await fetch(trio.c, None, private.uri) == 404
    assert await fetch(trio.c, trio.dave, direct.uri) == 200
    assert await fetch(trio.c, trio.carol, direct.uri) == 404
    assert await fetch(trio.b, trio.bob, direct.uri) == 404
    # A signature from somebody claiming to be bob, but made with another key, is no one's.
    forged = Account(
        username="bob", uri=trio.bob.uri, key_id=trio.bob.key_id, private_key_pem=trio.dave.private_key_pem
    )
    assert await fetch(trio.c, forged, private.uri) == 404


async def test_a_follow_request_to_a_locked_account_waits_for_approval(trio: Trio) -> None:
    async with trio.a.context.sessions() as session:
        alice = await session.get(Account, trio.alice.id)
        assert alice is not None
        alice.manually_approves_followers = True
        session.add(alice)
        await session.commit()
    outcome = await FollowingService(trio.b.context).follow(trio.bob, "@alice@a.test")
    await settle(trio.lab)
    async with trio.b.context.sessions() as session:
        pending = await session.get(Follow, outcome.follow.id)
    assert pending is not None and pending.state == FollowState.PENDING
    assert (NotificationType.FOLLOW_REQUEST, "bob@b.test") in await notified(trio.a, trio.alice)


async def test_the_lab_network_only_carries_signed_posts(trio: Trio) -> None:
    """Every POST between the instances is signed; nothing is left queued or failed."""
    await follow(trio, trio.b, trio.bob, "@alice@a.test")
    await PostingService(trio.a.context).create(trio.alice, "signed")
    await settle(trio.lab)
    posts = [request for request in trio.lab.network.requests if request.method == "POST"]
    assert posts
    assert all("Signature" in request.headers and "Digest" in request.headers for request in posts)
    assert all(request.headers["Content-Type"] == AS2 for request in posts)
    for instance in (trio.a, trio.b, trio.c):
        async with instance.context.sessions() as session:
            states = (await session.scalars(select(DeliveryJob.state))).all()
        assert set(states) <= {JobState.DONE}, states


async def test_a_post_never_received_can_be_boosted_and_liked_by_its_address(trio: Trio) -> None:
    post = await PostingService(trio.a.context).create(trio.alice, "Seen only on the web")
    posting_c = PostingService(trio.c.context)
    await posting_c.boost(trio.carol, post.url or "")
    await posting_c.like(trio.dave, post.uri)
    await settle(trio.lab)
    copy = await stored(trio.c, post.uri)
    assert copy is not None and not copy.local
    original = await stored(trio.a, post.uri)
    assert original is not None and (original.reblogs_count, original.favourites_count) == (1, 1)
    assert {(NotificationType.REBLOG, "carol@c.test"), (NotificationType.FAVOURITE, "dave@c.test")} <= set(
        await notified(trio.a, trio.alice)
    )
