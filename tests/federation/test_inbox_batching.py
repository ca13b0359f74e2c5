"""The worker side in batches: items processed together commit together, one bad item does not
hold the others back, and the short-lived read cache shares its reads."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import delete

from app.federation.inbox_processing import InboxProcessor
from app.federation.worker import Worker, build_worker
from app.models import Account, Favourite, Follow, InboxItem, JobState, Post, TimelineEntry
from app.queue_names import INBOX_QUEUE
from app.services.read_cache import ReadCache
from tests.federation.inbox_peer import (
    ALICE,
    Peer,
    PeerActor,
    activity,
    create,
    follow_locally,
    known_actor,
    local_post,
    note,
    process_inbox,
    rows,
)
from tests.lab import Instance


async def test_many_items_of_one_batch_all_land(here: Instance, peer: Peer, bob: PeerActor) -> None:
    [alice] = await rows(here, Account, Account.uri == ALICE)
    await known_actor(here, bob)
    await follow_locally(here, alice, bob.uri)
    mine = await local_post(here, alice)
    for number in range(30):
        await peer.deliver(
            here, bob, create(bob, note(bob, number, tag=[{"type": "Hashtag", "name": "#same"}]))
        )
    await peer.deliver(here, bob, activity(bob, "Like", mine.uri, "likes/1"))
    await process_inbox(here)
    assert len(await rows(here, Post, Post.local.is_(False))) == 30  # type: ignore[attr-defined]
    assert len(await rows(here, TimelineEntry)) == 30
    assert len(await rows(here, Favourite)) == 1
    assert all(item.state == JobState.DONE for item in await rows(here, InboxItem))


async def test_an_item_whose_rows_no_longer_fit_is_handled_again_without_holding_back_the_others(
    here: Instance, peer: Peer, bob: PeerActor
) -> None:
    [alice] = await rows(here, Account, Account.uri == ALICE)
    mine = await local_post(here, alice)
    processor = InboxProcessor(here.context)
    worker = Worker(
        here.context, [queue for queue in build_worker(here.context).queues if queue.name == INBOX_QUEUE]
    )
    worker.queues[0] = type(worker.queues[0])(**{**worker.queues[0].__dict__, "handler": processor})

    # The processor learns (and caches) the post...
    await peer.deliver(here, bob, activity(bob, "Like", mine.uri, "likes/1"))
    await worker.run_until_idle()
    # ...which is then deleted behind its back: the next Like's row points at nothing.
    async with here.context.sessions() as session:
        await session.execute(delete(Post).where(Post.id == mine.id))  # type: ignore[arg-type]
        await session.commit()
    carol = peer.actor("http://remote.test/users/carol")
    await peer.deliver(here, carol, activity(carol, "Like", mine.uri, "likes/2"))
    await peer.deliver(here, carol, activity(carol, "Follow", ALICE, "follows/1"))
    await worker.run_until_idle()

    [follow_item] = await rows(here, InboxItem, InboxItem.activity_type == "Follow")
    assert follow_item.state == JobState.DONE
    assert len(await rows(here, Follow)) == 1
    # Its rows could not go in; handled again from fresh reads, it finds the post gone.
    [like_item] = await rows(here, InboxItem, InboxItem.activity_uri == f"{carol.uri}#likes/2")
    assert (like_item.state, like_item.attempts) == (JobState.DONE, 0)
    assert like_item.last_error == f"{mine.uri} is not a post of this server"


async def test_read_cache_shares_one_read_and_forgets_it_in_time() -> None:
    now = [1000.0]
    cache = ReadCache(ttl=2.0, clock=lambda: now[0])
    reads = 0

    async def load() -> int:
        nonlocal reads
        reads += 1
        await asyncio.sleep(0.01)
        return reads

    assert await asyncio.gather(*(cache.get("k", load) for _ in range(10))) == [1] * 10
    now[0] += 1.9
    assert await cache.get("k", load) == 1
    now[0] += 0.2
    assert await cache.get("k", load) == 2


async def test_read_cache_does_not_keep_failures() -> None:
    cache = ReadCache(ttl=10)
    attempts = 0

    async def load() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RuntimeError("database hiccup")
        return "ok"

    with pytest.raises(RuntimeError):
        await cache.get("k", load)
    assert await cache.get("k", load) == "ok"


async def test_overlong_urls_are_refused_not_stored(here: Instance, peer: Peer, bob: PeerActor) -> None:
    long_tail = "x" * 2100
    giant = peer.actor(f"http://remote.test/users/{long_tail}")
    response = await peer.deliver(here, giant, activity(giant, "Follow", ALICE, "follows/1"))
    assert response.status_code == 400
    assert response.json() == {"error": "the actor's id is longer than 2048 characters"}

    stretched = peer.actor("http://remote.test/users/stretched", inbox=f"http://remote.test/{long_tail}")
    response = await peer.deliver(here, stretched, activity(stretched, "Follow", ALICE, "follows/2"))
    assert response.status_code == 401
    assert response.json() == {
        "error": "the key owner is not a usable actor: the actor's id or inbox is longer than 2048 characters"
    }

    [alice] = await rows(here, Account, Account.uri == ALICE)
    await known_actor(here, bob)
    await follow_locally(here, alice, bob.uri)
    huge = {**note(bob, 1), "id": f"{bob.uri}/statuses/{long_tail}"}
    assert (
        await peer.deliver(here, bob, {**create(bob, huge), "id": f"{bob.uri}/activities/1"})
    ).status_code == 202
    await process_inbox(here)
    [item] = await rows(here, InboxItem)
    assert item.last_error == "unusable post: the object's id is longer than 2048 characters"


async def test_stopping_the_worker_stops_the_batch_and_leaves_its_items_queued(
    here: Instance, peer: Peer, bob: PeerActor
) -> None:
    [alice] = await rows(here, Account, Account.uri == ALICE)
    await known_actor(here, bob)
    await follow_locally(here, alice, bob.uri)
    # The origin of a boosted post answers slowly, so the batch is mid-way when the worker stops.
    slow_host = "slow.test"

    async def slow_app(scope: dict[str, object], receive: object, send: object) -> None:
        await asyncio.sleep(30)

    peer.lab.network.register(slow_host, slow_app)  # type: ignore[arg-type]
    await peer.deliver(here, bob, activity(bob, "Announce", f"http://{slow_host}/notes/1", "announces/1"))
    worker = build_worker(here.context)
    running = asyncio.create_task(worker.run())
    await asyncio.sleep(0.5)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    [item] = await rows(here, InboxItem)
    assert item.state == JobState.QUEUED and item.attempts == 0


async def test_a_batch_reads_its_authors_once_for_all_of_them(
    here: Instance, peer: Peer, alice: Account
) -> None:
    """Who the authors are, who follows and who hides them: read for a whole batch together, so a
    batch by 24 different authors costs the statements one by 8 does (once they are known)."""
    from tests.services.test_read_model import counted_statements

    async def batch_by(first: int, count: int) -> list[str]:
        authors = [
            peer.actor(f"http://remote.test/users/u{number}") for number in range(first, first + count)
        ]
        for number, author in enumerate(authors):
            await known_actor(here, author)
            if number % 2:
                await follow_locally(here, alice, author.uri)
                document = create(author, note(author, 1))
            else:
                document = create(author, note(author, 1, cc=[author.followers, ALICE]))
            assert (await peer.deliver(here, author, document)).status_code == 202
        with counted_statements(here) as statements:
            await process_inbox(here)
        return statements

    few, many = await batch_by(0, 8), await batch_by(100, 24)
    assert len(await rows(here, Post, Post.local.is_(False))) == 32  # type: ignore[attr-defined]
    assert len(await rows(here, TimelineEntry)) == 16
    # Per author it would be three statements at least (the actor, its followers, who hides it);
    # a cached snapshot refreshed meanwhile (the domain policy's) may add one to either count.
    assert len(many) <= len(few) + 2, "\n\n".join(many)
