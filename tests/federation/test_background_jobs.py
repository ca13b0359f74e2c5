"""Background jobs through the real worker: an Update that names its actor without embedding it is
refreshed by an account.refresh job, retried with backoff while the actor's server is down."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import update

from app.context import AppContext
from app.federation.jobs import jobs_queue
from app.federation.worker import Worker, build_worker
from app.models import Account, BackgroundJob, JobState
from app.models.base import utcnow
from app.queue_names import JOBS_QUEUE
from app.services.jobs import ACCOUNT_REFRESH, queue_job
from tests.federation.inbox_peer import (
    BOB,
    Peer,
    activity,
    deliver_and_process,
    home_of_alice,
    known_actor,
    rows,
)
from tests.lab import Instance, Lab


async def run_jobs(instance: Instance, worker: Worker | None = None) -> None:
    """The worker's jobs queue, as `herold worker` builds it, until nothing is due."""
    if worker is None:
        full = build_worker(instance.context)
        worker = Worker(instance.context, [queue for queue in full.queues if queue.name == JOBS_QUEUE])
    async with asyncio.timeout(60):
        await worker.run_until_idle()


async def make_due(instance: Instance) -> None:
    async with instance.context.sessions() as session:
        await session.execute(update(BackgroundJob).values(next_attempt_at=utcnow()))
        await session.commit()


async def test_an_update_naming_the_actor_refreshes_it_in_a_job_retried_while_its_server_is_down(
    lab: Lab,
) -> None:
    here, _alice = await home_of_alice(lab)
    peer = Peer(lab).host("remote.test")
    bob = peer.actor(BOB)
    await known_actor(here, bob)
    peer.documents[bob.uri] = 503
    item = await deliver_and_process(here, peer, bob, activity(bob, "Update", bob.uri, "updates/named"))
    assert item.state == JobState.DONE
    [job] = await rows(here, BackgroundJob)
    assert (job.kind, job.payload, job.state) == (ACCOUNT_REFRESH, {"uri": bob.uri}, JobState.QUEUED)

    await run_jobs(here)
    [job] = await rows(here, BackgroundJob)
    assert (job.state, job.attempts) == (JobState.QUEUED, 1)
    assert job.last_error and "503" in job.last_error
    assert job.next_attempt_at > utcnow() + timedelta(seconds=20)
    [account] = await rows(here, Account, Account.uri == bob.uri)
    assert account.display_name != "Bob Renamed"

    peer.documents[bob.uri] = {**bob.document, "name": "Bob Renamed"}
    await make_due(here)
    await run_jobs(here)
    [job] = await rows(here, BackgroundJob)
    assert (job.state, job.attempts, job.last_error) == (JobState.DONE, 2, None)
    [account] = await rows(here, Account, Account.uri == bob.uri)
    assert account.display_name == "Bob Renamed"


async def test_a_gone_actor_fails_the_job_for_good(lab: Lab) -> None:
    here, _alice = await home_of_alice(lab)
    peer = Peer(lab).host("remote.test")
    bob = peer.actor(BOB)
    await known_actor(here, bob)
    peer.documents[bob.uri] = 410
    async with here.context.sessions() as session:
        queue_job(here.context, session, ACCOUNT_REFRESH, {"uri": bob.uri})
        await session.commit()
    await run_jobs(here)
    [job] = await rows(here, BackgroundJob)
    assert job.state == JobState.FAILED and job.last_error == f"{bob.uri} is gone"
    [account] = await rows(here, Account, Account.uri == bob.uri)
    assert account.gone_at is not None


async def test_each_kind_runs_its_own_handler_and_an_unknown_kind_fails(lab: Lab) -> None:
    # No worker of its own: the one below, with the test's handlers, is the only one.
    instance = await lab.instance("a.test", embedded_worker=False)
    ran: list[dict[str, Any]] = []

    async def remember(context: AppContext, payload: dict[str, Any]) -> None:
        ran.append(payload)

    async def broken(context: AppContext, payload: dict[str, Any]) -> None:
        raise RuntimeError("a bug")

    async with instance.context.sessions() as session:
        queue_job(instance.context, session, "test.remember", {"n": 1})
        queue_job(instance.context, session, "test.broken", {})
        queue_job(instance.context, session, "test.unknown", {})
        # Not yet due: left alone.
        queue_job(instance.context, session, "test.remember", {"n": 2}, run_at=utcnow() + timedelta(hours=1))
        await session.commit()
    worker = Worker(
        instance.context, [jobs_queue(instance.context, {"test.remember": remember, "test.broken": broken})]
    )
    await run_jobs(instance, worker)
    assert ran == [{"n": 1}]
    states = {(job.kind, job.payload.get("n")): job for job in await rows(instance, BackgroundJob)}
    assert states[("test.remember", 1)].state == JobState.DONE
    assert states[("test.remember", 2)].state == JobState.QUEUED
    unknown = states[("test.unknown", None)]
    assert (unknown.state, unknown.last_error) == (
        JobState.FAILED,
        "no handler for jobs of kind 'test.unknown'",
    )
    # An unexpected exception is retried later, with backoff, by the worker.
    broken_job = states[("test.broken", None)]
    assert (broken_job.state, broken_job.attempts) == (JobState.QUEUED, 1)
    assert broken_job.last_error == "RuntimeError: a bug"
    assert broken_job.next_attempt_at > utcnow()


async def test_a_rolled_back_transaction_queues_no_job(instance: Instance) -> None:
    async with instance.context.sessions() as session:
        queue_job(instance.context, session, ACCOUNT_REFRESH, {"uri": "http://remote.test/users/x"})
        await session.rollback()
    assert await rows(instance, BackgroundJob) == []
