"""Many deliveries at once, while the worker processes what arrives and (on SQLite) another
process keeps taking the write lock: every one is answered 202, stored once and processed once."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections import Counter

from app.config import sqlite_database_path
from app.models import Account, InboxItem, JobState, Post, TimelineEntry
from tests.federation.inbox_peer import (
    ALICE,
    Peer,
    PeerActor,
    create,
    follow_locally,
    known_actor,
    note,
    process_inbox,
    rows,
)
from tests.lab import Instance

DELIVERIES = 64


class CompetingWriter:
    """Another process's writer: takes SQLite's write lock for a few milliseconds, again and again."""

    def __init__(self, instance: Instance) -> None:
        self.path = sqlite_database_path(instance.context.settings)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.turns = 0

    def __enter__(self) -> CompetingWriter:
        if self.path is not None:
            self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stopping.set()
        if self.path is not None:
            self.thread.join()

    def _run(self) -> None:
        connection = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        while not self.stopping.is_set():
            connection.execute("BEGIN IMMEDIATE")
            time.sleep(0.003)
            connection.execute("COMMIT")
            self.turns += 1
            time.sleep(0.001)
        connection.close()


async def test_concurrent_deliveries_are_all_accepted_and_each_processed_once(
    here: Instance, peer: Peer, bob: PeerActor
) -> None:
    [alice] = await rows(here, Account, Account.uri == ALICE)
    await known_actor(here, bob)
    await follow_locally(here, alice, bob.uri)
    documents = [create(bob, note(bob, number)) for number in range(DELIVERIES)]
    # Twice each: a peer retrying a delivery it thinks was lost.
    sends = [*documents, *documents[: DELIVERIES // 4]]

    processing = True

    async def keep_processing() -> None:
        while processing:
            await process_inbox(here)
            await asyncio.sleep(0.005)

    with CompetingWriter(here) as other:
        worker = asyncio.create_task(keep_processing())
        answers = await asyncio.gather(*(peer.deliver(here, bob, document) for document in sends))
        processing = False
        await worker
    assert [answer.status_code for answer in answers] == [202] * len(sends)
    if other.path is not None:
        assert other.turns > 0
    await process_inbox(here)

    items = await rows(here, InboxItem)
    assert Counter(item.activity_uri for item in items) == Counter(document["id"] for document in documents)
    assert all(item.state == JobState.DONE for item in items)
    posts = await rows(here, Post, Post.local.is_(False))  # type: ignore[attr-defined]
    assert sorted(post.uri for post in posts) == sorted(document["object"]["id"] for document in documents)
    assert len(await rows(here, TimelineEntry, TimelineEntry.account_id == alice.id)) == DELIVERIES
