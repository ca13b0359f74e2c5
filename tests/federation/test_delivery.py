"""Delivery of a post to followers' servers, checked by a peer that verifies signatures on its own.

The peer (tests/federation/delivery_peer.py) uses `cryptography` directly and none of Herold's
signing or verification code, so what it accepts is what an independently written server accepts.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlmodel import select

from app import __version__
from app.activitypub.addressing import AS_PUBLIC
from app.models import DeliveryJob, JobState, OutboxActivity, Post
from app.models.base import utcnow
from app.services.posting import PostingService
from tests.federation.delivery_helpers import (
    deliver,
    jobs,
    local_account,
    remote_follower,
    serving_peer,
)
from tests.federation.delivery_peer import Peer
from tests.lab import Instance, Lab


@pytest.fixture
async def peer(lab: Lab) -> AsyncIterator[Peer]:
    async with serving_peer(lab, "one.test", "two.test", "three.test") as peer:
        yield peer


@pytest.fixture
async def alice_home(lab: Lab) -> Instance:
    return await lab.instance("a.test", embedded_worker=False)


async def test_post_reaches_each_shared_inbox_once_correctly_signed(alice_home: Instance, peer: Peer) -> None:
    alice = await local_account(alice_home, "alice")
    # Two followers share one.test's shared inbox; three.test has personal inboxes only.
    for account in (
        peer.add_account("ann", "one.test"),
        peer.add_account("ben", "one.test"),
        peer.add_account("cat", "two.test"),
        peer.add_account("dan", "three.test", shared_inbox=False),
    ):
        await remote_follower(alice_home, alice, peer, account)

    post = await PostingService(alice_home.context).create(alice, "Hello, #fediverse! https://example.org/a")

    # The outbox: the activity stored once, one job per distinct inbox, committed with the post.
    async with alice_home.context.sessions() as session:
        activities = (await session.scalars(select(OutboxActivity))).all()
        queued = (await session.scalars(select(DeliveryJob))).all()
    assert [activity.uri for activity in activities] == [f"{post.uri}/activity"]
    assert sorted(job.inbox_url for job in queued) == [
        "http://one.test/inbox",
        "http://three.test/users/dan/inbox",
        "http://two.test/inbox",
    ]

    await deliver(alice_home)

    assert sorted((item.host, item.path) for item in peer.received) == [
        ("one.test", "/inbox"),
        ("three.test", "/users/dan/inbox"),
        ("two.test", "/inbox"),
    ]
    for item in peer.received:
        assert item.problems == []
        assert item.signer == alice.uri
        assert item.headers["user-agent"] == f"herold/{__version__} (+http://a.test/)"
        assert item.headers["host"] == item.host
        assert re.fullmatch(r"SHA-256=[A-Za-z0-9+/]+=*", item.headers["digest"])
        assert f'keyId="{alice.key_id}"' in item.headers["signature"]
        activity = item.activity
        assert activity["type"] == "Create"
        assert activity["id"] == f"{post.uri}/activity"
        assert activity["actor"] == alice.uri
        assert activity["to"] == [AS_PUBLIC]
        assert activity["cc"] == [alice.followers_url]
        note = activity["object"]
        assert note["id"] == post.uri
        assert note["attributedTo"] == alice.uri
        assert note["to"] == activity["to"] and note["cc"] == activity["cc"]
        assert note["tag"] == [
            {"type": "Hashtag", "href": "http://a.test/tags/fediverse", "name": "#fediverse"}
        ]
        assert 'href="http://a.test/tags/fediverse"' in note["content"]
        assert 'href="https://example.org/a"' in note["content"]
    assert all(job.state == JobState.DONE for job in await jobs(alice_home))


async def test_posts_of_several_authors_delivered_together_are_each_signed_by_their_author(
    alice_home: Instance, peer: Peer
) -> None:
    """A claimed batch is signed in one go, its authors' keys side by side: each request still
    carries its own author's signature, over its own host."""
    authors = [await local_account(alice_home, name) for name in ("alice", "bea", "cleo")]
    hosts = ("one.test", "two.test")
    for author in authors:
        for host in hosts:
            await remote_follower(
                alice_home, author, peer, peer.add_account(f"fan-of-{author.username}", host)
            )
    posting = PostingService(alice_home.context)
    for round_ in range(2):
        for author in authors:
            await posting.create(author, f"{author.username} {round_}")
    await deliver(alice_home)
    assert len(peer.received) == len(authors) * 2 * len(hosts)
    for item in peer.received:
        assert item.problems == []
        assert item.signer == item.activity["actor"]
        assert item.activity["object"]["content"].startswith(f"<p>{item.signer.rsplit('/', 1)[-1]} ")
    assert {job.state for job in await jobs(alice_home)} == {JobState.DONE}


async def test_a_peer_failing_then_accepting_gets_the_post_after_a_retry(
    alice_home: Instance, peer: Peer
) -> None:
    alice = await local_account(alice_home, "alice")
    await remote_follower(alice_home, alice, peer, peer.add_account("ann", "one.test"))
    peer.answer("one.test", 500)

    await PostingService(alice_home.context).create(alice, "Try again")
    started = utcnow()
    await deliver(alice_home)

    [job] = await jobs(alice_home)
    assert (job.state, job.attempts, job.last_status) == (JobState.QUEUED, 1, 500)
    # Sidekiq's first step: 15 s + 1⁴, stretched by up to a quarter.
    assert started + timedelta(seconds=15) < job.next_attempt_at < utcnow() + timedelta(seconds=21)

    await deliver(alice_home)  # not due yet: nothing happens
    assert len(peer.received) == 1

    async with alice_home.context.sessions() as session:
        stored = await session.get(DeliveryJob, job.id)
        assert stored is not None
        stored.next_attempt_at = utcnow()
        session.add(stored)
        await session.commit()
    await deliver(alice_home)

    [job] = await jobs(alice_home)
    assert (job.state, job.attempts, job.last_status) == (JobState.DONE, 2, 202)
    assert [item.status for item in peer.received] == [500, 202]
    assert peer.received[0].activity == peer.received[1].activity
    assert all(item.problems == [] for item in peer.received)


async def test_posts_survive_in_the_outbox_until_a_worker_runs(alice_home: Instance, peer: Peer) -> None:
    alice = await local_account(alice_home, "alice")
    await remote_follower(alice_home, alice, peer, peer.add_account("ann", "one.test"))
    posting = PostingService(alice_home.context)
    first = await posting.create(alice, "one")
    second = await posting.create(alice, "two")
    assert peer.received == []
    assert [job.state for job in await jobs(alice_home)] == [JobState.QUEUED, JobState.QUEUED]

    await deliver(alice_home)
    assert sorted(item.activity["object"]["id"] for item in peer.received) == sorted([first.uri, second.uri])
    async with alice_home.context.sessions() as session:
        assert len((await session.scalars(select(Post))).all()) == 2
