"""Events and wake-ups between the processes of one instance (app.ops.event_channel).

Two AppContexts on one database and DATA_DIR stand for two processes: each opens its own channel
(a socket of its own on SQLite, a connection of its own on PostgreSQL), exactly as a second
process would. tests/ops/test_serve_layout.py does the same between real processes.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import text

from app.context import AppContext, build_context
from app.ops import event_channel
from app.ops.event_channel import PostgresChannel, UnixDatagramChannel, socket_directory
from app.services.events import (
    CredentialsChanged,
    Event,
    EventsMissed,
    PostDeleted,
    PostEdited,
    TimelineEntryAdded,
)
from app.services.posting import PostingService
from tests.federation.inbox_peer import local_account
from tests.lab import Instance

ARRIVAL = 2.0


async def arrives(heard: list[Event], wanted: Callable[[Event], bool], seconds: float = ARRIVAL) -> Event:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = next((event for event in heard if wanted(event)), None)
        if found is not None:
            return found
        await asyncio.sleep(0.01)
    raise AssertionError(f"nothing wanted arrived within {seconds} s; heard {heard}")


@pytest.fixture
async def other_process(instance: Instance) -> AsyncIterator[AppContext]:
    """A second process of `instance` (a web process of its own)."""
    context = build_context(instance.settings, role="command")
    await context.open_channel("web")
    yield context
    await context.aclose()


async def test_what_one_process_commits_reaches_the_listeners_of_another(
    instance: Instance, other_process: AppContext
) -> None:
    here: list[Event] = []
    there: list[Event] = []
    instance.context.events.subscribe(here.append)
    other_process.events.subscribe(there.append)
    alice = await local_account(instance, "alice")

    post = await PostingService(other_process).create(alice, "written in the other process")
    await arrives(here, lambda event: event == TimelineEntryAdded(alice.id, post.id))
    # Its own listeners heard it at once, and only once.
    assert there.count(TimelineEntryAdded(alice.id, post.id)) == 1

    await PostingService(instance.context).edit(alice, post.id, "edited here")
    await arrives(there, lambda event: event == PostEdited(post.id, alice.id))
    await PostingService(instance.context).delete(alice, post.id)
    await arrives(there, lambda event: event == PostDeleted(post.id, alice.id))
    await asyncio.sleep(0.1)
    # Nobody hears its own events twice (NOTIFY reaches the sender as well).
    assert here.count(PostDeleted(post.id, alice.id)) == 1
    assert there.count(PostDeleted(post.id, alice.id)) == 1


async def test_a_write_s_events_are_heard_by_a_reader_that_catches_up_after_it(
    instance: Instance, other_process: AppContext
) -> None:
    # The public cache's promise: once the writer's flush_now has returned (its answer may leave),
    # another process that catches up before answering from memory has heard the write, with no
    # waiting beyond the two calls.
    heard: list[Event] = []
    instance.context.events.subscribe(heard.append)
    alice = await local_account(instance, "alice")
    writer, reader = other_process.channel, instance.context.channel
    assert writer is not None and reader is not None
    post = await PostingService(other_process).create(alice, "first")
    for _ in range(5):
        heard.clear()
        await PostingService(other_process).edit(alice, post.id, "again")
        await writer.flush_now()
        await reader.catch_up()
        assert PostEdited(post.id, alice.id) in heard


async def test_a_command_wakes_the_worker_process(instance: Instance) -> None:
    # The lab instance runs a worker ("worker" channel); the CLI's context only sends.
    command = build_context(instance.settings, role="command")
    await command.open_channel("command")
    try:
        started = time.monotonic()
        waiting = asyncio.create_task(instance.context.work.wait("test-queue", 10.0))
        await asyncio.sleep(0.05)
        command.work.notify("test-queue")
        await asyncio.wait_for(waiting, ARRIVAL)
        assert time.monotonic() - started < ARRIVAL
    finally:
        await command.aclose()


async def test_a_command_s_last_events_leave_before_it_exits(instance: Instance) -> None:
    heard: list[Event] = []
    instance.context.events.subscribe(heard.append)
    alice = await local_account(instance, "alice")
    command = build_context(instance.settings, role="command")
    await command.open_channel("command")
    post = await PostingService(command).create(alice, "from the command line")
    await PostingService(command).delete(alice, post.id)
    # Closed right after the commit, as `herold delete-post` is: the event still arrives.
    await command.aclose()
    await arrives(heard, lambda event: event == PostDeleted(post.id, alice.id))


async def test_sqlite_forgets_the_socket_of_a_process_that_was_killed(
    instance: Instance, other_process: AppContext
) -> None:
    if not instance.settings.is_sqlite:
        pytest.skip("the Unix sockets carry events on SQLite only")
    channel = instance.context.channel
    assert isinstance(channel, UnixDatagramChannel)
    directory = socket_directory(instance.settings)
    # A process killed without removing its socket leaves a file no one reads.
    dead = directory / "999999.0123456789ab.web.sock"
    leftover = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    leftover.bind(str(dead))
    leftover.close()
    heard: list[Event] = []
    other_process.events.subscribe(heard.append)
    alice = await local_account(instance, "alice")

    post = await PostingService(instance.context).create(alice, "hello")

    await arrives(heard, lambda event: event == TimelineEntryAdded(alice.id, post.id))
    assert not dead.exists()


async def test_postgresql_listens_again_after_losing_its_connection(
    instance: Instance, other_process: AppContext
) -> None:
    if instance.settings.is_sqlite:
        pytest.skip("LISTEN/NOTIFY carries events on PostgreSQL only")
    channel = instance.context.channel
    assert isinstance(channel, PostgresChannel) and channel.connection is not None
    heard: list[Event] = []
    instance.context.events.subscribe(heard.append)
    alice = await local_account(instance, "alice")
    listening_pid = channel.connection.get_server_pid()

    async with other_process.engine.connect() as connection:
        await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": listening_pid})

    # Listening again: its listeners are told that events may have been missed meanwhile.
    await arrives(heard, lambda event: isinstance(event, EventsMissed))
    assert channel.connection is not None and channel.connection.get_server_pid() != listening_pid
    post = await PostingService(other_process).create(alice, "after the connection was lost")
    await arrives(heard, lambda event: event == TimelineEntryAdded(alice.id, post.id))


async def test_a_burst_larger_than_one_message_arrives_whole_and_in_order(
    instance: Instance, other_process: AppContext
) -> None:
    heard: list[Event] = []
    other_process.events.subscribe(heard.append)
    # A post fanned into 3,000 home timelines, as one commit announces it: many NOTIFYs or datagrams.
    burst = [TimelineEntryAdded(account_id, 42) for account_id in range(3000)]

    instance.context.events.deliver(burst)

    deadline = time.monotonic() + ARRIVAL
    while len(heard) < len(burst) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert heard == burst


async def test_sqlite_a_catch_up_is_sure_only_once_every_waiting_datagram_is_read(
    instance: Instance, other_process: AppContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A kept token is honoured only after a catch-up that says it saw everything: a revocation
    # queued behind more datagrams than one batch takes must be heard, or the catch-up must say
    # no. (Batches are made small here: this machine's sockets queue 10 datagrams, many queue 512.)
    if not instance.settings.is_sqlite:
        pytest.skip("the Unix sockets carry events on SQLite only")
    monkeypatch.setattr(event_channel, "CATCH_UP_BATCH", 3)
    reader, writer = other_process.channel, instance.context.channel
    assert isinstance(reader, UnixDatagramChannel) and isinstance(writer, UnixDatagramChannel)
    heard: list[Event] = []
    other_process.events.subscribe(heard.append)
    # Sent without yielding to the loop: all of it waits in the reader's buffer.
    for number in range(4):
        writer.publish([TimelineEntryAdded(1, number)])
        writer._flush()
    writer.publish([CredentialsChanged((7,))])
    writer._flush()
    assert not writer._backlog
    assert not await reader.catch_up()
    assert await reader.catch_up()
    assert CredentialsChanged((7,)) in heard


async def test_sqlite_a_write_s_answer_waits_for_the_datagrams_a_full_peer_refused(
    instance: Instance, other_process: AppContext
) -> None:
    if not instance.settings.is_sqlite:
        pytest.skip("the Unix sockets carry events on SQLite only")
    reader, writer = other_process.channel, instance.context.channel
    assert isinstance(reader, UnixDatagramChannel) and isinstance(writer, UnixDatagramChannel)
    assert reader._receiver is not None
    heard: list[Event] = []
    other_process.events.subscribe(heard.append)
    loop = asyncio.get_running_loop()
    loop.remove_reader(reader._receiver.fileno())
    try:
        # The reader's buffer fills up (it is busy); what no longer fits waits in the backlog.
        for number in range(100_000):
            writer.publish([TimelineEntryAdded(1, number)])
            writer._flush()
            if writer._backlog:
                break
        assert writer._backlog
        writer.publish([CredentialsChanged((7,))])
        answer_may_leave = asyncio.create_task(writer.flush_now())
        await asyncio.sleep(0.1)
        assert not answer_may_leave.done()
    finally:
        loop.add_reader(reader._receiver.fileno(), reader._readable)
    await asyncio.wait_for(answer_may_leave, ARRIVAL)
    assert await reader.catch_up()
    assert CredentialsChanged((7,)) in heard


async def test_sqlite_an_answer_does_not_wait_for_wake_ups_a_busy_worker_refused(instance: Instance) -> None:
    # An inbox's 202 wakes the worker; a busy worker's full socket must not hold the answer.
    if not instance.settings.is_sqlite:
        pytest.skip("the Unix sockets carry wake-ups on SQLite only")
    worker = build_context(instance.settings, role="worker")
    await worker.open_channel("worker")
    writer = instance.context.channel
    assert isinstance(writer, UnixDatagramChannel) and isinstance(worker.channel, UnixDatagramChannel)
    receiver = worker.channel._receiver
    assert receiver is not None
    loop = asyncio.get_running_loop()
    loop.remove_reader(receiver.fileno())
    try:
        for _ in range(100_000):
            writer.wake("inbox")
            writer._flush()
            if writer._backlog:
                break
        assert writer._backlog
        writer.wake("inbox")
        await asyncio.wait_for(writer.flush_now(), 0.05)
    finally:
        loop.add_reader(receiver.fileno(), worker.channel._readable)
        await worker.aclose()
