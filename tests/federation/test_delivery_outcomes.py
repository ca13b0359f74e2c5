"""What each answer from an inbox does to a delivery: done, retried, given up, gone, postponed."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from app.federation import delivery as delivery_module
from app.federation import delivery_gates
from app.federation.delivery import Deliverer
from app.federation.delivery_claims import claim_deliveries
from app.federation.delivery_gates import BREAKER_THRESHOLD, HostGates
from app.federation.delivery_policy import MAX_ATTEMPTS, Verdict, classify, parse_retry_after, retry_delay
from app.federation.domain_health import mark_host_reachable
from app.models import Account, DeliveryJob, DomainHealth, JobState
from app.models.base import utcnow
from app.services.posting import PostingService
from tests.federation.delivery_helpers import (
    deliver,
    jobs,
    local_account,
    make_due,
    remote_follower,
    serving_peer,
)
from tests.federation.delivery_peer import Peer
from tests.lab import Instance, Lab


@pytest.fixture
async def peer(lab: Lab) -> AsyncIterator[Peer]:
    async with serving_peer(lab, "one.test", "two.test") as peer:
        yield peer


@pytest.fixture
async def home(lab: Lab) -> Instance:
    return await lab.instance("a.test", embedded_worker=False)


# --------------------------------------------------------------------------------------------
# The rules, on their own


def test_retry_schedule_spans_about_two_to_three_days_over_sixteen_attempts() -> None:
    assert MAX_ATTEMPTS == 16
    for _ in range(20):
        delays = [retry_delay(failures) for failures in range(1, MAX_ATTEMPTS)]
        assert delays == sorted(delays)
        total = sum(delays, timedelta())
        assert timedelta(days=2) < total < timedelta(days=2, hours=16)
    assert timedelta(seconds=15) < retry_delay(1) < timedelta(seconds=21)


@pytest.mark.parametrize(
    ("status", "verdict", "host_failed"),
    [
        (200, Verdict.DONE, False),
        (202, Verdict.DONE, False),
        (204, Verdict.DONE, False),
        (301, Verdict.FAILED, False),
        (400, Verdict.FAILED, False),
        (403, Verdict.FAILED, False),
        (404, Verdict.FAILED, False),
        (410, Verdict.FAILED, False),
        (422, Verdict.FAILED, False),
        (401, Verdict.RETRY, True),
        (408, Verdict.RETRY, True),
        (429, Verdict.RETRY, True),
        (500, Verdict.RETRY, True),
        (502, Verdict.RETRY, True),
        (503, Verdict.RETRY, True),
    ],
)
def test_statuses_are_classified_as_mastodon_does(status: int, verdict: Verdict, host_failed: bool) -> None:
    outcome = classify(status, None, utcnow())
    assert (outcome.verdict, outcome.host_failed) == (verdict, host_failed)
    assert outcome.gone is (status == 410)


def test_retry_after_in_seconds_or_as_a_date_within_bounds() -> None:
    now = utcnow().replace(microsecond=0)
    assert parse_retry_after("120", now) == timedelta(seconds=120)
    assert parse_retry_after(
        (now + timedelta(minutes=5)).strftime("%a, %d %b %Y %H:%M:%S GMT"), now
    ) == timedelta(minutes=5)
    assert parse_retry_after("0", now) == timedelta(seconds=1)
    assert parse_retry_after("999999999", now) == timedelta(days=1)
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_breaker_opens_after_consecutive_failures_then_lets_one_probe_through() -> None:
    gates = HostGates(threshold=3, cooloff=0.05)
    for _ in range(2):
        assert gates.admit("dead.test") is None
        gates.failed("dead.test")
    gates.succeeded("dead.test")  # a success in between: the count starts again
    for _ in range(3):
        assert gates.admit("dead.test") is None
        gates.failed("dead.test")
    wait = gates.admit("dead.test")
    assert wait is not None and 0 < wait <= 0.05
    assert gates.admit("other.test") is None
    time.sleep(0.06)
    assert gates.admit("dead.test") is None  # the probe
    assert gates.admit("dead.test") == delivery_gates.PROBE_WAIT  # others wait for its answer
    gates.failed("dead.test")
    assert gates.open_for("dead.test") is not None  # a failed probe opens it again at once
    time.sleep(0.06)
    assert gates.admit("dead.test") is None
    gates.succeeded("dead.test")
    assert gates.admit("dead.test") is None and gates.admit("dead.test") is None


async def test_a_long_line_for_one_host_is_postponed_not_waited_for() -> None:
    gates = HostGates(per_host=2, max_waiting=3)
    release = asyncio.Event()

    async def request() -> None:
        await gates.enter("busy.test")
        try:
            await release.wait()
        finally:
            gates.leave("busy.test")

    tasks = []
    for _ in range(5):  # two requests in flight, three waiting: the line is full
        assert gates.admit("busy.test") is None
        tasks.append(asyncio.create_task(request()))
        await asyncio.sleep(0)
    assert gates.admit("busy.test") == delivery_gates.LINE_WAIT
    assert gates.admit("calm.test") is None
    release.set()
    await asyncio.gather(*tasks)
    assert gates.admit("busy.test") is None


# --------------------------------------------------------------------------------------------
# Against the peer


async def test_410_fails_for_good_and_marks_the_account_gone(home: Instance, peer: Peer) -> None:
    alice = await local_account(home, "alice")
    gone = await remote_follower(home, alice, peer, peer.add_account("ann", "one.test", shared_inbox=False))
    await remote_follower(home, alice, peer, peer.add_account("ben", "two.test"))
    peer.answer("one.test", 410)
    posting = PostingService(home.context)
    await posting.create(alice, "first")
    await deliver(home)

    by_host = {job.host: job for job in await jobs(home)}
    assert (by_host["one.test"].state, by_host["one.test"].last_status) == (JobState.FAILED, 410)
    assert by_host["one.test"].attempts == 1
    assert by_host["two.test"].state == JobState.DONE
    async with home.context.sessions() as session:
        stored = await session.get(Account, gone.id)
        assert stored is not None and stored.gone_at is not None

    await posting.create(alice, "second")
    await deliver(home)
    assert [item.host for item in peer.received].count("one.test") == 1  # never again


async def test_410_from_a_shared_inbox_marks_nobody_gone(home: Instance, peer: Peer) -> None:
    alice = await local_account(home, "alice")
    follower = await remote_follower(home, alice, peer, peer.add_account("ann", "one.test"))
    peer.answer("one.test", 410)
    await PostingService(home.context).create(alice, "hello")
    await deliver(home)
    [job] = await jobs(home)
    assert job.state == JobState.FAILED
    async with home.context.sessions() as session:
        stored = await session.get(Account, follower.id)
        assert stored is not None and stored.gone_at is None


@pytest.mark.parametrize("status", [400, 403, 404, 422, 302])
async def test_refusals_are_permanent(home: Instance, peer: Peer, status: int) -> None:
    alice = await local_account(home, "alice")
    await remote_follower(home, alice, peer, peer.add_account("ann", "one.test"))
    peer.answer("one.test", (status, {"Location": "http://elsewhere.test/inbox"}))
    await PostingService(home.context).create(alice, "hello")
    await deliver(home)
    await make_due(home)
    await deliver(home)
    [job] = await jobs(home)
    assert (job.state, job.attempts, job.last_status) == (JobState.FAILED, 1, status)
    assert job.finished_at is not None and job.last_error
    assert len(peer.received) == 1  # redirects are not followed either


async def test_a_key_that_cannot_sign_fails_for_good_and_tells_nothing_about_the_host(
    home: Instance, peer: Peer
) -> None:
    alice = await local_account(home, "alice")
    await remote_follower(home, alice, peer, peer.add_account("ann", "one.test"))
    await PostingService(home.context).create(alice, "hello")
    yesterday = utcnow().date() - timedelta(days=1)
    async with home.context.sessions() as session:
        await session.execute(
            update(Account)
            .where(col(Account.id) == alice.id)
            .values(private_key_pem="-----BEGIN PRIVATE KEY-----\nbroken\n-----END PRIVATE KEY-----\n")
        )
        # one.test has failed on three days: a delivery that never reached it must not clear that.
        session.add(DomainHealth(host="one.test", failure_days=3, last_failure_day=yesterday))
        await session.commit()
    await deliver(home)
    [job] = await jobs(home)
    assert (job.state, job.attempts, job.last_status) == (JobState.FAILED, 1, None)
    assert job.last_error is not None and job.last_error.startswith("the key cannot sign"), job.last_error
    async with home.context.sessions() as session:
        health = (await session.scalars(select(DomainHealth))).one()
    assert (health.failure_days, health.last_failure_day) == (3, yesterday)
    assert peer.received == []


@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_is_honoured(home: Instance, peer: Peer, status: int) -> None:
    alice = await local_account(home, "alice")
    await remote_follower(home, alice, peer, peer.add_account("ann", "one.test"))
    peer.answer("one.test", (status, {"Retry-After": "120"}))
    await PostingService(home.context).create(alice, "hello")
    before = utcnow()
    await deliver(home)
    [job] = await jobs(home)
    assert (job.state, job.attempts, job.last_status) == (JobState.QUEUED, 1, status)
    assert before + timedelta(seconds=119) <= job.next_attempt_at <= utcnow() + timedelta(seconds=121)


async def test_after_sixteen_failed_attempts_the_job_is_given_up(home: Instance, peer: Peer) -> None:
    alice = await local_account(home, "alice")
    await remote_follower(home, alice, peer, peer.add_account("ann", "one.test"))
    await PostingService(home.context).create(alice, "hello")
    async with home.context.sessions() as session:
        await session.execute(update(DeliveryJob).values(attempts=MAX_ATTEMPTS - 1))
        await session.commit()
    peer.answer("one.test", 502)
    await deliver(home)
    [job] = await jobs(home)
    assert (job.state, job.attempts) == (JobState.FAILED, MAX_ATTEMPTS)
    assert job.last_error is not None and job.last_error.startswith("gave up after 16 attempts")


async def test_refused_connections_trip_the_breaker_without_delaying_healthy_hosts(
    home: Instance, peer: Peer, lab: Lab
) -> None:
    alice = await local_account(home, "alice")
    await remote_follower(home, alice, peer, peer.add_account("ann", "one.test"))
    # dead.test is not on the lab network: every connection to it is refused.
    dead = peer.add_account("zed", "dead.test")
    await remote_follower(home, alice, peer, dead)
    posting = PostingService(home.context)
    deliverer = Deliverer(home.context)

    def attempts_on(host: str) -> int:
        return sum(
            1 for request in lab.network.requests if request.url.host == host and request.method == "POST"
        )

    for number in range(BREAKER_THRESHOLD):
        await posting.create(alice, f"post {number}")
        await deliver(home, deliverer)
    assert attempts_on("dead.test") == BREAKER_THRESHOLD
    assert deliverer.gates.open_for("dead.test") is not None

    # While the circuit is open, dead.test's jobs wait without a request; one.test's go at once.
    for number in range(2):
        await posting.create(alice, f"later {number}")
    await make_due(home, host="dead.test")
    await deliver(home, deliverer)
    assert attempts_on("dead.test") == BREAKER_THRESHOLD
    assert len(peer.at("one.test")) == BREAKER_THRESHOLD + 2
    assert all(item.problems == [] for item in peer.received)
    dead_jobs = [job for job in await jobs(home) if job.host == "dead.test"]
    postponed = [job for job in dead_jobs if job.attempts == 0]
    assert len(postponed) == 2
    for job in postponed:
        assert job.state == JobState.QUEUED
        assert utcnow() + timedelta(seconds=50) < job.next_attempt_at < utcnow() + timedelta(seconds=75)
    assert all(job.state == JobState.DONE for job in await jobs(home) if job.host == "one.test")


async def test_a_domain_failing_on_seven_days_is_skipped_until_it_answers(home: Instance, peer: Peer) -> None:
    alice = await local_account(home, "alice")
    await remote_follower(home, alice, peer, peer.add_account("ann", "one.test"))
    today = utcnow().date()
    async with home.context.sessions() as session:
        session.add(DomainHealth(host="one.test", failure_days=6, last_failure_day=today - timedelta(days=2)))
        await session.commit()
    posting = PostingService(home.context)

    # A seventh day of failures: unavailable from now on.
    peer.answer("one.test", 500)
    await posting.create(alice, "one")
    await deliver(home)
    async with home.context.sessions() as session:
        health = await session.scalar(select(DomainHealth).where(DomainHealth.host == "one.test"))
    assert health is not None
    assert (health.failure_days, health.last_failure_day) == (7, today)
    assert health.unavailable_since is not None

    # The same day: dropped without a request, and the earlier job's retry too.
    await posting.create(alice, "two")
    await make_due(home)
    await deliver(home)
    assert len(peer.received) == 1
    assert [job.state for job in await jobs(home)] == [JobState.FAILED, JobState.FAILED]
    assert "unavailable" in ((await jobs(home))[1].last_error or "")

    # A later day: one delivery goes through as a probe; its success makes the domain available again.
    async with home.context.sessions() as session:
        await session.execute(
            update(DomainHealth)
            .where(col(DomainHealth.host) == "one.test")
            .values(last_failure_day=today - timedelta(days=1))
        )
        await session.commit()
    await posting.create(alice, "three")
    await deliver(home)  # a new deliverer: it reads the domain's health afresh
    assert [item.status for item in peer.received] == [500, 202]
    async with home.context.sessions() as session:
        health = await session.scalar(select(DomainHealth).where(DomainHealth.host == "one.test"))
    assert health is not None
    assert (health.failure_days, health.unavailable_since) == (0, None)
    assert health.last_success_at is not None
    await posting.create(alice, "four")
    await deliver(home)
    assert len(peer.received) == 3


async def test_an_unavailable_domains_probe_survives_a_failed_preparation(
    home: Instance, peer: Peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Today's probe belongs to the job it was given to: when its batch's preparation breaks after
    the probe was handed out, that job prepares itself and still goes; the host's other job not."""
    alice = await local_account(home, "alice")
    await remote_follower(home, alice, peer, peer.add_account("ann", "one.test"))
    yesterday = utcnow() - timedelta(days=1)
    async with home.context.sessions() as session:
        session.add(
            DomainHealth(
                host="one.test",
                failure_days=7,
                last_failure_day=yesterday.date(),
                unavailable_since=yesterday,
            )
        )
        await session.commit()
    posting = PostingService(home.context)
    await posting.create(alice, "first")
    await posting.create(alice, "second")
    signer = home.context.signer
    sign_many = signer.sign_many
    calls = 0

    async def breaking_once(pem: bytes, strings: list[bytes]) -> list[bytes]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("the batch's preparation broke")
        return await sign_many(pem, strings)

    monkeypatch.setattr(signer, "sign_many", breaking_once)
    await deliver(home)

    assert calls == 2  # the batch's, then the probe's own
    assert [item.status for item in peer.received] == [202]
    done, failed = sorted(await jobs(home), key=lambda job: job.state != JobState.DONE)
    assert (done.state, failed.state) == (JobState.DONE, JobState.FAILED)
    assert "unavailable" in (failed.last_error or "")
    async with home.context.sessions() as session:
        health = await session.scalar(select(DomainHealth).where(DomainHealth.host == "one.test"))
    assert health is not None and health.unavailable_since is None


async def test_failures_on_one_day_count_once(home: Instance, peer: Peer) -> None:
    alice = await local_account(home, "alice")
    await remote_follower(home, alice, peer, peer.add_account("ann", "one.test"))
    peer.answer("one.test", 500, 500, 500)
    posting = PostingService(home.context)
    for number in range(3):
        await posting.create(alice, f"post {number}")
    await deliver(home)
    async with home.context.sessions() as session:
        health = await session.scalar(select(DomainHealth).where(DomainHealth.host == "one.test"))
    assert health is not None and health.failure_days == 1


async def test_an_outcome_is_not_written_over_another_workers_claim(home: Instance, peer: Peer) -> None:
    alice = await local_account(home, "alice")
    await remote_follower(home, alice, peer, peer.add_account("ann", "one.test"))
    await PostingService(home.context).create(alice, "hello")
    [job] = await claim_deliveries(home.context, 10, timedelta(minutes=2))
    # Our lease ran out and another worker claimed the job in the meantime.
    later = utcnow() + timedelta(minutes=5)
    async with home.context.sessions() as session:
        await session.execute(update(DeliveryJob).values(locked_until=later))
        await session.commit()
    deliverer = Deliverer(home.context)
    await deliverer(job)
    assert len(peer.received) == 1
    assert deliverer.writer.lost_leases == 1
    [stored] = await jobs(home)
    assert (stored.state, stored.attempts, stored.locked_until) == (JobState.QUEUED, 0, later)


async def test_requests_to_one_host_are_limited(home: Instance, peer: Peer) -> None:
    alice = await local_account(home, "alice")
    await remote_follower(home, alice, peer, peer.add_account("ann", "one.test"))
    peer.delay["one.test"] = 0.05
    posting = PostingService(home.context)
    for number in range(10):
        await posting.create(alice, f"post {number}")
    await deliver(home)
    assert len(peer.at("one.test")) == 10
    assert peer.max_in_flight["one.test"] == delivery_gates.PER_HOST_REQUESTS


async def test_a_domain_made_available_elsewhere_is_delivered_to_at_once(home: Instance, peer: Peer) -> None:
    """The worker's memory of an unavailable domain yields to the database (an admin's retry,
    another worker's successful probe, or the host writing to our inbox)."""
    alice = await local_account(home, "alice")
    await remote_follower(home, alice, peer, peer.add_account("ann", "one.test"))
    async with home.context.sessions() as session:
        session.add(
            DomainHealth(
                host="one.test", failure_days=7, last_failure_day=utcnow().date(), unavailable_since=utcnow()
            )
        )
        await session.commit()
    posting = PostingService(home.context)
    deliverer = Deliverer(home.context)
    await posting.create(alice, "dropped")
    await deliver(home, deliverer)
    assert peer.received == []

    await mark_host_reachable(home.context, "one.test")
    await posting.create(alice, "delivered")
    await deliver(home, deliverer)
    assert [item.activity["object"]["content"] for item in peer.received] == ["<p>delivered</p>"]


@pytest.mark.parametrize(
    "inbox_url",
    [
        "ftp://one.test/inbox",
        # A name with an empty label: IDNA cannot encode it, so no Host header can be signed.
        "http://one..test/inbox",
        "http://one.test:99999/inbox",
        "http:///inbox",
    ],
)
async def test_an_inbox_no_request_can_go_to_fails_for_good_without_a_request(
    home: Instance, peer: Peer, inbox_url: str
) -> None:
    alice = await local_account(home, "alice")
    await remote_follower(home, alice, peer, peer.add_account("ann", "one.test"))
    await remote_follower(home, alice, peer, peer.add_account("bob", "two.test"))
    await PostingService(home.context).create(alice, "hello")
    yesterday = utcnow().date() - timedelta(days=1)
    async with home.context.sessions() as session:
        await session.execute(
            update(DeliveryJob).where(col(DeliveryJob.host) == "one.test").values(inbox_url=inbox_url)
        )
        # one.test has failed on three days: an inbox we could not even address says nothing of it.
        session.add(DomainHealth(host="one.test", failure_days=3, last_failure_day=yesterday))
        await session.commit()
    await deliver(home)
    by_host = {job.host: job for job in await jobs(home)}
    broken = by_host["one.test"]
    assert broken.state == JobState.FAILED
    assert broken.last_error is not None and broken.last_error.startswith("unusable inbox URL")
    assert by_host["two.test"].state == JobState.DONE
    assert [item.host for item in peer.received] == ["two.test"]
    async with home.context.sessions() as session:
        health = await session.scalar(select(DomainHealth).where(DomainHealth.host == "one.test"))
    assert health is not None and (health.failure_days, health.last_failure_day) == (3, yesterday)


async def test_a_signing_process_that_cannot_run_postpones_deliveries_without_spending_them(
    home: Instance, peer: Peer, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = await local_account(home, "alice")
    await remote_follower(home, alice, peer, peer.add_account("ann", "one.test"))
    await PostingService(home.context).create(alice, "hello")
    with monkeypatch.context() as machine:
        machine.setattr(sys, "executable", "/nonexistent/python")  # the machine's edge: no interpreter
        before = utcnow()
        await deliver(home)
    [job] = await jobs(home)
    assert (job.state, job.attempts) == (JobState.QUEUED, 0)
    assert job.last_error is not None and "signing process" in job.last_error, job.last_error
    wait = (job.next_attempt_at - before).total_seconds()
    assert delivery_module.SIGNING_WAIT <= wait <= delivery_module.SIGNING_WAIT * 1.2 + 5
    assert peer.received == []
    # With an interpreter again, the postponed delivery goes out.
    await make_due(home)
    await deliver(home)
    [job] = await jobs(home)
    assert job.state == JobState.DONE and len(peer.received) == 1
