"""Several workers on one database: each job is claimed by one of them, and a lease that ran out
is taken over."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlmodel import col

from app.context import build_context
from app.federation.delivery import Deliverer, delivery_queue
from app.federation.delivery_claims import ClaimedDelivery, claim_deliveries
from app.federation.outbox import queue_activity
from app.federation.worker import Worker
from app.models import DeliveryJob, JobState
from app.models.base import utcnow
from app.services.posting import PostingService
from tests.federation.delivery_helpers import (
    jobs,
    local_account,
    remote_follower,
    serving_peer,
)
from tests.federation.delivery_peer import Peer
from tests.lab import Instance, Lab

HOSTS = [f"h{number}.test" for number in range(60)]


@pytest.fixture
async def peer(lab: Lab) -> AsyncIterator[Peer]:
    async with serving_peer(lab, *HOSTS) as peer:
        yield peer


@pytest.fixture
async def home(lab: Lab) -> Instance:
    return await lab.instance("a.test", embedded_worker=False)


async def test_concurrent_claims_never_hand_out_a_job_twice(home: Instance) -> None:
    alice = await local_account(home, "alice")
    # Jobs queued directly: claiming is what is under test, not delivering.
    async with home.context.sessions() as session:
        await queue_activity(
            session,
            activity={"id": "http://a.test/x", "type": "Create"},
            signer=alice,
            inboxes=[f"http://{host}/inbox" for host in HOSTS * 5]
            + [f"http://x{n}.test/inbox" for n in range(240)],
        )
        await session.commit()
    contexts = [build_context(home.settings) for _ in range(4)]
    try:
        claimed = await asyncio.gather(
            *(claim_deliveries(context, 40, timedelta(minutes=2)) for context in contexts for _ in range(3))
        )
    finally:
        for context in contexts:
            await context.aclose()
    ids = [job.id for batch in claimed for job in batch]
    assert len(ids) == len(set(ids))  # nobody got a job somebody else holds
    assert len(ids) == 300  # and all of them were handed out (12 claims of up to 40)


async def test_two_workers_deliver_each_post_once(home: Instance, peer: Peer, lab: Lab) -> None:
    alice = await local_account(home, "alice")
    for host in HOSTS:
        await remote_follower(home, alice, peer, peer.add_account("f", host))
    posting = PostingService(home.context)
    for number in range(3):
        await posting.create(alice, f"post {number}")
    # Two worker processes, as two contexts with their own connection pools on one database.
    contexts = [build_context(home.settings, transport=lab.network) for _ in range(2)]
    try:
        workers = [Worker(context, [delivery_queue(context)]) for context in contexts]
        await asyncio.gather(*(worker.run_until_idle() for worker in workers))
    finally:
        for context in contexts:
            await context.aclose()
    deliveries = Counter((item.host, item.activity["id"]) for item in peer.received)
    assert len(deliveries) == len(HOSTS) * 3
    assert set(deliveries.values()) == {1}
    assert {job.state for job in await jobs(home)} == {JobState.DONE}


async def test_a_crashed_workers_claims_are_taken_over_when_the_lease_runs_out(
    home: Instance, peer: Peer
) -> None:
    alice = await local_account(home, "alice")
    await remote_follower(home, alice, peer, peer.add_account("f", HOSTS[0]))
    await PostingService(home.context).create(alice, "hello")
    # A worker claims the job and dies without a word.
    [claimed] = await claim_deliveries(home.context, 10, timedelta(minutes=2))
    assert await claim_deliveries(home.context, 10, timedelta(minutes=2)) == []
    async with home.context.sessions() as session:
        await session.execute(
            update(DeliveryJob)
            .where(col(DeliveryJob.id) == claimed.id)
            .values(locked_until=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    worker = Worker(home.context, [delivery_queue(home.context)])
    await worker.run_until_idle()
    assert [item.host for item in peer.received] == [HOSTS[0]]
    [job] = await jobs(home)
    assert (job.state, job.attempts) == (JobState.DONE, 1)


async def test_stopping_a_worker_stops_the_jobs_it_holds(home: Instance, peer: Peer) -> None:
    """Cancelled at shutdown, a worker leaves no delivery running on a closed database."""
    alice = await local_account(home, "alice")
    await remote_follower(home, alice, peer, peer.add_account("f", HOSTS[0]))
    peer.delay[HOSTS[0]] = 30
    await PostingService(home.context).create(alice, "slow")
    worker = Worker(home.context, [delivery_queue(home.context)])
    running = asyncio.create_task(worker.run())
    for _ in range(200):
        if peer.in_flight[HOSTS[0]]:
            break
        await asyncio.sleep(0.02)
    assert peer.in_flight[HOSTS[0]] == 1
    before = {task for task in asyncio.all_tasks() if task is not asyncio.current_task()}
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert not [task for task in before if not task.done() and "_run_one" in repr(task.get_coro())]
    [job] = await jobs(home)
    # Queued, and free at once for the next worker: a clean stop gives its leases back.
    assert job.state == JobState.QUEUED and job.locked_until is None and job.locked_by is None


async def test_a_running_worker_has_its_signing_process_ready_before_the_first_post(home: Instance) -> None:
    worker = Worker(home.context, [delivery_queue(home.context)])
    running = asyncio.create_task(worker.run())
    try:
        for _ in range(200):
            if home.context.signer.pid is not None:
                break
            await asyncio.sleep(0.02)
        assert home.context.signer.pid is not None
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running


async def test_jobs_of_a_batch_whose_preparation_failed_are_still_delivered_once(
    home: Instance, peer: Peer, caplog: pytest.LogCaptureFixture
) -> None:
    """Preparing a batch (checks and signatures for all its jobs) failing, say on a database
    error, costs nothing but time: each of its jobs prepares itself, and the worker's slots come
    back for the batches after it."""
    alice = await local_account(home, "alice")
    for host in HOSTS:
        await remote_follower(home, alice, peer, peer.add_account("f", host))
    await PostingService(home.context).create(alice, "hello")
    deliverer = Deliverer(home.context)
    batches = 0

    async def flaky_prepare(batch: list[ClaimedDelivery]) -> None:
        nonlocal batches
        batches += 1
        if batches % 2:
            raise RuntimeError("the database went away")
        await deliverer.prepare(batch)

    # Small slots and batches, so that a lost slot would stall the worker within a few batches.
    queue = replace(
        delivery_queue(home.context, deliverer), concurrency=8, batch_size=4, prepare=flaky_prepare
    )
    running = asyncio.create_task(Worker(home.context, [queue]).run())
    try:
        async with asyncio.timeout(30):
            while {job.state for job in await jobs(home)} != {JobState.DONE}:
                await asyncio.sleep(0.05)
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    assert Counter(item.host for item in peer.received) == Counter(HOSTS)
    assert batches >= len(HOSTS) // 4
    assert "preparing a batch of 4 delivery jobs failed" in caplog.text
