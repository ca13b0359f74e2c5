"""The channel between the processes of one instance: after-commit events and worker wake-ups.

An instance runs in several processes: `herold serve`'s web processes and its worker process,
`herold worker`s on PostgreSQL, the CLI. Each process's EventBus (app.services.events) hands what
the process commits to its channel, which carries it to every other process of the instance; there
the channel hands it to that process's bus, whose listeners hear it as they hear their own
process's events. Wake-ups for the worker (app.federation.signals) travel the same way, to the
processes that run a worker only.

Two carriers, by database:
- SQLite (every process on one machine, sharing DATA_DIR): one Unix datagram socket per process in
  DATA_DIR/events; a message goes to every socket there. A socket whose process is gone refuses
  it and is removed. Nothing is lost while both ends live: a receiver that falls behind makes the
  sender keep the message and try again.
- PostgreSQL (processes on any number of machines): LISTEN/NOTIFY on one dedicated connection per
  process, made again when it is lost. Events go on `herold_events`, wake-ups on `herold_wake`
  (only workers listen there). What was sent while a process's connection was down never reaches
  it: once it is connected again, its listeners hear `EventsMissed`.

Whatever a process commits during one turn of its event loop leaves in one message per receiver
(split to stay under the carrier's size limit): a burst of commits costs a few messages, not one
each. A command (the CLI) only sends; it binds no socket and listens to nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import logging
import os
import secrets
import socket
import tempfile
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from app.config import Settings
from app.federation.signals import WorkSignals
from app.services.events import EVENT_TYPES, Event, EventBus, EventsMissed

log = logging.getLogger(__name__)

# What a process does, which decides what it receives: a web process hears events, a worker
# events and wake-ups, a command nothing.
ProcessKind = Literal["web", "worker", "command"]

EVENTS_CHANNEL = "herold_events"
WAKE_CHANNEL = "herold_wake"
# PostgreSQL refuses NOTIFY payloads from 8000 bytes on.
NOTIFY_LIMIT = 7900
# Unix datagrams: well under the smallest default socket buffer of Linux.
DATAGRAM_LIMIT = 32_000
# Messages kept for a receiver that is behind (or for a lost connection), at most: beyond, the
# oldest are dropped and the receiver hears EventsMissed.
BACKLOG_LIMIT = 10_000
RETRY_PAUSE = 0.005
# The longest a closing process waits for its last messages to leave.
CLOSE_WAIT = 2.0
RECONNECT_PAUSE = 0.25
RECONNECT_PAUSE_LIMIT = 5.0
# A connection that no longer answers (a dead network path) is noticed within this long.
KEEPALIVE_INTERVAL = 10.0
# The longest a write's answer waits for its events to leave, and a read for the catch-up round
# trip, before going on without (only when the database is slow or gone).
CATCH_UP_WAIT = 1.0
# The most datagrams a reader's catch-up takes in before giving up on being sure (SQLite).
CATCH_UP_BATCH = 4096


class EventChannel:
    """What both carriers share: collecting a loop turn's events and wake-ups, encoding, decoding."""

    def __init__(self, bus: EventBus, work: WorkSignals, kind: ProcessKind) -> None:
        self.bus = bus
        self.work = work
        self.kind = kind
        # Names this process's messages, so that it ignores its own (NOTIFY reaches the sender too).
        self.sender = secrets.token_hex(6)
        self._events: list[Event] = []
        self._wakes: set[str] = set()
        self._flush_scheduled = False
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def receives(self) -> bool:
        return self.kind != "command"

    @property
    def others_may_listen(self) -> bool:
        """Whether another process may hear what this one announces (if not, nothing is built)."""
        return True

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()

    async def aclose(self) -> None:
        self._flush()

    # ---- from this process
    def publish(self, events: Sequence[Event]) -> None:
        """Carry `events` (committed here) to the other processes."""
        self._events.extend(event for event in events if not isinstance(event, EventsMissed))
        self._schedule()

    def wake(self, queue: str) -> None:
        """Wake the workers of the other processes for `queue`."""
        self._wakes.add(queue)
        self._schedule()

    def _schedule(self) -> None:
        if self._flush_scheduled or self._loop is None:
            return
        self._flush_scheduled = True
        self._loop.call_soon(self._flush)

    async def flush_now(self) -> None:
        """Send what this loop turn announced now, not at the turn's end, and return once the
        carrier holds it: the public cache awaits it before a write's answer leaves, so that the
        other processes can hear its events before the writer can ask any of them again."""
        if self._events or self._wakes:
            self._flush()

    async def catch_up(self) -> bool:
        """Take in whatever other processes sent before this call. The public cache awaits it
        before answering from memory, so that an answer kept here is never older than a write
        another process has already confirmed. False when that could not be made sure of (no
        connection to the others, or it did not answer in time): what must never be stale (a
        resolved token) is then read from the database."""
        return False

    def _flush(self) -> None:
        self._flush_scheduled = False
        events, self._events = self._events, []
        wakes, self._wakes = sorted(self._wakes), set()
        if events or wakes:
            self._send(events, wakes)

    def _send(self, events: list[Event], wakes: list[str]) -> None:
        raise NotImplementedError

    def encode(self, events: Sequence[Event], *, missed: bool = False, limit: int) -> list[bytes]:
        """`events` as messages of at most about `limit` bytes each."""
        messages: list[bytes] = []
        batch: list[list[Any]] = []
        size = 0
        for event in events:
            item = [type(event).__name__, dataclasses.asdict(event)]
            item_size = len(json.dumps(item, separators=(",", ":")))
            if batch and size + item_size > limit - 100:
                messages.append(self._message(batch, missed))
                batch, size, missed = [], 0, False
            batch.append(item)
            size += item_size + 1
        if batch or missed:
            messages.append(self._message(batch, missed))
        return messages

    def _message(self, items: list[list[Any]], missed: bool) -> bytes:
        body: dict[str, Any] = {"s": self.sender, "e": items}
        if missed:
            body["m"] = 1
        return json.dumps(body, separators=(",", ":")).encode()

    # ---- from the other processes
    def received(self, data: bytes | str) -> None:
        try:
            body = json.loads(data)
            if body.get("s") == self.sender:
                return
            events: list[Event] = [EventsMissed()] if body.get("m") else []
            for name, fields in body.get("e", ()):
                kind = EVENT_TYPES.get(name)
                if kind is not None:  # a newer version's event, during an upgrade: not for us
                    # JSON has no tuples: a field holding several ids comes back as a list.
                    values: dict[str, Any] = {
                        field: tuple(value) if isinstance(value, list) else value
                        for field, value in fields.items()
                    }
                    events.append(kind(**values))
            queues = body.get("w", ())
        except (ValueError, TypeError, AttributeError):
            log.warning("ignored a malformed message between processes: %.200r", data)
            return
        if events:
            self.bus.receive(events)
        for queue in queues:
            self.work.receive(str(queue))

    def missed(self) -> None:
        """Tell this process's listeners that other processes' events may have been lost."""
        self.bus.receive([EventsMissed()])


# --------------------------------------------------------------------------------------------
# SQLite: Unix datagram sockets in DATA_DIR/events


def socket_directory(settings: Settings) -> Path:
    """DATA_DIR/events, or, when socket paths there would be too long for Unix sockets (about 100
    bytes), a directory of its own in the temporary directory, named after DATA_DIR."""
    directory = settings.data_dir.resolve() / "events"
    if len(str(directory)) <= 60:
        return directory
    digest = hashlib.sha256(str(directory).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"herold-events-{os.getuid()}-{digest}"


class UnixDatagramChannel(EventChannel):
    def __init__(self, bus: EventBus, work: WorkSignals, kind: ProcessKind, directory: Path) -> None:
        super().__init__(bus, work, kind)
        self.directory = directory
        self.path: Path | None = None
        self._receiver: socket.socket | None = None
        self._sender_socket: socket.socket | None = None
        # The sockets of the other processes, read again whenever the directory changes.
        self._peers: list[tuple[str, bool]] = []
        self._listed_at: int | None = None
        self._listing_tentative = True
        # Datagrams a receiver could not take yet, by its path; and receivers owed an EventsMissed.
        # Per peer, what its full buffer refused, in order: (datagram, whether it carries events).
        self._backlog: dict[str, deque[tuple[bytes, bool]]] = {}
        self._retry: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        await super().start()
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Whoever may write here may tell every process anything: the directory must be ours
        # alone (it matters for the one in the shared temporary directory).
        owner = self.directory.stat()
        if owner.st_uid != os.getuid() or owner.st_mode & 0o077:
            raise PermissionError(f"{self.directory} must belong to this user alone (mode 0700)")
        _forget_dead_sockets(self.directory)
        self._sender_socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sender_socket.setblocking(False)
        if self.receives:
            self.path = self.directory / f"{os.getpid()}.{self.sender}.{self.kind}.sock"
            receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            receiver.bind(str(self.path))
            receiver.setblocking(False)
            self._receiver = receiver
            assert self._loop is not None
            self._loop.add_reader(receiver.fileno(), self._readable)

    async def aclose(self) -> None:
        self._flush()
        deadline = asyncio.get_running_loop().time() + CLOSE_WAIT
        while self._backlog and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(RETRY_PAUSE)
            self._send_backlog()
        if self._retry is not None:
            self._retry.cancel()
        if self._receiver is not None:
            assert self._loop is not None
            self._loop.remove_reader(self._receiver.fileno())
            self._receiver.close()
            self._receiver = None
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
        if self._sender_socket is not None:
            self._sender_socket.close()
            self._sender_socket = None

    @property
    def others_may_listen(self) -> bool:
        # Only the processes with a socket here: a lone `herold serve` builds no events.
        return bool(self._list_peers())

    async def flush_now(self) -> None:
        # A datagram a peer's full buffer refused waits in the backlog: a write's events must not
        # arrive after its answer (a revoked token still kept there), so the answer waits while
        # events are in the backlog, bounded as on PostgreSQL. Wake-ups are not waited for (as on
        # PostgreSQL): an inbox's 202 wakes the worker, whose socket is full whenever it is busy,
        # and waiting for that held deliveries' answers up to a second (`make soak`: p99 0.7-1.6 s).
        self._flush()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + CATCH_UP_WAIT
        while self._events_waiting() and loop.time() < deadline:  # noqa: ASYNC110 (the retries are timed)
            await asyncio.sleep(RETRY_PAUSE)

    def _events_waiting(self) -> bool:
        return any(carries for waiting in self._backlog.values() for _, carries in waiting)

    async def catch_up(self) -> bool:
        # A datagram is in this socket's buffer once its sendto returned: reading it all is enough.
        # Only a buffer read to its end counts: what is still behind a full batch may be the
        # revocation of a token this process keeps.
        return self._receiver is not None and self._readable(CATCH_UP_BATCH)

    def _readable(self, batch: int = 256) -> bool:
        """Read up to `batch` datagrams; True once the socket was found empty."""
        receiver = self._receiver
        # A bounded batch per turn, so that a flood of messages never holds the loop for long.
        for _ in range(batch):
            if receiver is None:
                return False
            try:
                data = receiver.recv(65536)
            except (BlockingIOError, InterruptedError):
                return True
            self.received(data)
        return False

    def _list_peers(self) -> list[tuple[str, bool]]:
        try:
            changed = os.stat(self.directory).st_mtime_ns
        except OSError:
            return []
        # A directory's time is coarse (a clock tick): a socket bound in the same tick as the
        # last listing leaves it unchanged, so a listing is trusted only once the time is older.
        if changed != self._listed_at or self._listing_tentative:
            own = str(self.path) if self.path else None
            peers = []
            with contextlib.suppress(OSError), os.scandir(self.directory) as entries:
                for entry in entries:
                    if entry.name.endswith(".sock") and entry.path != own:
                        peers.append((entry.path, entry.name.endswith(".worker.sock")))
            self._peers, self._listed_at = peers, changed
            self._listing_tentative = time.time_ns() - changed < 1_000_000_000
        return self._peers

    def _send(self, events: list[Event], wakes: list[str]) -> None:
        everyone = self.encode(events, limit=DATAGRAM_LIMIT) if events else []
        for_workers = everyone
        wake: bytes | None = None
        if wakes:
            wake = json.dumps({"s": self.sender, "w": wakes}, separators=(",", ":")).encode()
            for_workers = [*everyone, wake]
        for path, worker in self._list_peers():
            for datagram in for_workers if worker else everyone:
                self._send_one(path, datagram, carries_events=datagram is not wake)

    def _send_one(self, path: str, datagram: bytes, *, carries_events: bool) -> None:
        waiting = self._backlog.get(path)
        if waiting is not None:  # keep the order: behind what is already waiting
            self._keep(path, datagram, carries_events)
            return
        sender = self._sender_socket
        if sender is None:
            return
        try:
            sender.sendto(datagram, path)
        except (BlockingIOError, InterruptedError):
            self._keep(path, datagram, carries_events)
        except (ConnectionRefusedError, FileNotFoundError):
            # Its process is gone (it would have removed the socket itself on a clean stop).
            with contextlib.suppress(OSError):
                os.unlink(path)
        except OSError as error:
            log.warning("could not hand events to %s: %s", path, error)

    def _keep(self, path: str, datagram: bytes, carries_events: bool) -> None:
        waiting = self._backlog.setdefault(path, deque())
        if len(waiting) >= BACKLOG_LIMIT:
            log.warning(
                "the process at %s is %d messages behind; it will hear EventsMissed", path, len(waiting)
            )
            waiting.clear()
            datagram, carries_events = self._message([], missed=True), True
        waiting.append((datagram, carries_events))
        if self._retry is None and self._loop is not None:
            self._retry = self._loop.call_later(RETRY_PAUSE, self._send_backlog)

    def _send_backlog(self) -> None:
        self._retry = None
        sender = self._sender_socket
        for path, waiting in list(self._backlog.items()):
            while waiting and sender is not None:
                try:
                    sender.sendto(waiting[0][0], path)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:  # gone meanwhile
                    waiting.clear()
                    with contextlib.suppress(OSError):
                        os.unlink(path)
                    break
                waiting.popleft()
            if not waiting:
                del self._backlog[path]
        if self._backlog and self._loop is not None:
            self._retry = self._loop.call_later(RETRY_PAUSE, self._send_backlog)


def _forget_dead_sockets(directory: Path) -> None:
    """Remove the sockets of processes that are gone without removing theirs (killed)."""
    for path in directory.glob("*.sock"):
        pid = path.name.split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(OSError):
                path.unlink()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# --------------------------------------------------------------------------------------------
# PostgreSQL: LISTEN/NOTIFY on a connection of its own


def asyncpg_dsn(database_url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresChannel(EventChannel):
    def __init__(self, bus: EventBus, work: WorkSignals, kind: ProcessKind, database_url: str) -> None:
        super().__init__(bus, work, kind)
        self.dsn = asyncpg_dsn(database_url)
        self.connection: Any = None
        self._connected = asyncio.Event()
        # (channel, payload) to NOTIFY, in order.
        self._outbox: deque[tuple[str, str]] = deque()
        self._has_mail = asyncio.Event()
        self._waking: set[str] = set()
        self._wake_posted = False
        self._empty = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        # One statement at a time on the connection (the keep-alive, the notifications, the
        # catch-up round trips).
        self._using = asyncio.Lock()
        # Event messages posted and handed to the database, counted, for flush_now's wait (wake-ups
        # for the workers are not waited for: no answer's freshness depends on them).
        self._posted = 0
        self._handed = 0
        self._handed_more = asyncio.Condition()
        # The catch-up round trip that readers arriving now will share (not yet begun).
        self._next_round_trip: asyncio.Future[bool] | None = None
        self._round_trips: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        await super().start()
        self._tasks.append(asyncio.create_task(self._keep_connected(), name="event-channel:connection"))
        self._tasks.append(asyncio.create_task(self._deliver_outbox(), name="event-channel:notify"))
        if self.receives:
            # Listening before the process answers anything, unless the database is slow to
            # answer: then the connection comes a little later, and the process starts anyway.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._connected.wait(), 5.0)

    async def aclose(self) -> None:
        self._flush()
        if self._outbox:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained(), CLOSE_WAIT)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.connection.close(), 2.0)
            self.connection = None

    async def _drained(self) -> None:
        await self._empty.wait()

    async def flush_now(self) -> None:
        self._flush()
        target = self._posted
        if self._handed >= target:
            return
        # Bounded: with the database unreachable the answer leaves anyway (the other processes
        # will hear EventsMissed once their connections are back, and drop what they kept).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CATCH_UP_WAIT), self._handed_more:
                await self._handed_more.wait_for(lambda: self._handed >= target)

    async def catch_up(self) -> bool:
        """A round trip on the listening connection: PostgreSQL sends a listener what was notified
        before a statement ends before it answers the statement, so once the round trip is back,
        every event committed before this call has been handed to the bus. Readers arriving while
        no round trip is waiting to begin start one; later ones share it, so a burst of reads costs
        one round trip, not one each."""
        if not self.receives or self.connection is None:
            return False
        round_trip = self._next_round_trip
        if round_trip is None:
            round_trip = self._next_round_trip = asyncio.get_running_loop().create_future()
            task = asyncio.create_task(self._round_trip(round_trip), name="event-channel:catch-up")
            # Held until done: the loop keeps only a weak reference to a task.
            self._round_trips.add(task)
            task.add_done_callback(self._round_trips.discard)
        try:
            answered: bool = await asyncio.wait_for(asyncio.shield(round_trip), CATCH_UP_WAIT)
        except TimeoutError:
            return False
        return answered

    async def _round_trip(self, round_trip: asyncio.Future[bool]) -> None:
        answered = False
        try:
            async with self._using:
                # Begun now: readers from here on wait for the next one.
                if self._next_round_trip is round_trip:
                    self._next_round_trip = None
                connection = self.connection
                if connection is not None:
                    with contextlib.suppress(Exception):  # lost: EventsMissed follows the reconnect
                        await asyncio.wait_for(connection.execute("SELECT 1"), CATCH_UP_WAIT)
                        answered = self.connection is connection
            # asyncpg calls listeners with call_soon as it reads their messages: one turn lets the
            # notifications that came before the answer reach the bus first.
            await asyncio.sleep(0)
        finally:
            if self._next_round_trip is round_trip:
                self._next_round_trip = None
            if not round_trip.done():
                round_trip.set_result(answered)

    def _send(self, events: list[Event], wakes: list[str]) -> None:
        for message in self.encode(events, limit=NOTIFY_LIMIT) if events else []:
            self._post(EVENTS_CHANNEL, message.decode())
        if wakes:
            # Wake-ups wait in one set, not in the queue: however many turns of the loop ask while
            # a NOTIFY is on its way, the next one carries them all.
            self._waking.update(wakes)
            if not self._wake_posted:
                self._wake_posted = True
                self._post(WAKE_CHANNEL, "")

    def _post(self, channel: str, payload: str) -> None:
        if len(self._outbox) >= BACKLOG_LIMIT:
            log.warning(
                "%d messages for other processes are waiting for the database; dropping the oldest",
                BACKLOG_LIMIT,
            )
            dropped, _ = self._outbox.popleft()
            if dropped == EVENTS_CHANNEL:
                self._handed += 1  # never to be sent: a writer waiting for it times out
            if dropped == WAKE_CHANNEL:
                self._wake_posted = False
        self._outbox.append((channel, payload))
        if channel == EVENTS_CHANNEL:
            self._posted += 1
        self._empty.clear()
        self._has_mail.set()

    async def _connect(self) -> Any:
        import asyncpg

        connection = await asyncpg.connect(self.dsn, timeout=10)
        if self.receives:
            await connection.add_listener(EVENTS_CHANNEL, self._notified)
            if self.kind == "worker":
                await connection.add_listener(WAKE_CHANNEL, self._notified)
        return connection

    async def _keep_connected(self) -> None:
        pause = RECONNECT_PAUSE
        connected_before = False
        while True:
            if not self.receives:
                # A command connects only when it has something to say.
                await self._has_mail.wait()
            try:
                connection = await self._connect()
            except Exception as error:  # whatever failed (refused, timed out, auth): try again
                log.warning(
                    "no connection for events between processes (%s); trying again in %.1f s", error, pause
                )
                await asyncio.sleep(pause)
                pause = min(pause * 2, RECONNECT_PAUSE_LIMIT)
                continue
            pause = RECONNECT_PAUSE
            lost = asyncio.Event()
            connection.add_termination_listener(_setter(lost))
            self.connection = connection
            self._connected.set()
            if connected_before and self.receives:
                log.warning("events between processes flow again; what was sent meanwhile is lost")
                self.missed()
            connected_before = True
            try:
                await self._watch(connection, lost)
            finally:
                self._connected.clear()
                self.connection = None
                with contextlib.suppress(Exception):
                    connection.terminate()

    async def _watch(self, connection: Any, lost: asyncio.Event) -> None:
        """Return when `connection` is lost (closed by the server, or no longer answering)."""
        while not lost.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(lost.wait(), KEEPALIVE_INTERVAL)
                return
            try:
                async with self._using:
                    await asyncio.wait_for(connection.execute("SELECT 1"), KEEPALIVE_INTERVAL)
            except Exception:  # whatever failed, the connection is no use
                return

    async def _deliver_outbox(self) -> None:
        while True:
            if not self._outbox:
                self._empty.set()
                self._has_mail.clear()
                await self._has_mail.wait()
                continue
            await self._connected.wait()
            connection = self.connection
            if connection is None:
                continue
            channel, payload = self._outbox[0]
            waking: set[str] = set()
            if channel == WAKE_CHANNEL:
                # Taken now: a wake-up asked for while this NOTIFY is on its way posts the next.
                waking, self._waking, self._wake_posted = self._waking, set(), False
                if not waking:
                    self._outbox.popleft()
                    continue
                payload = json.dumps({"s": self.sender, "w": sorted(waking)}, separators=(",", ":"))
            try:
                async with self._using:
                    await connection.execute("SELECT pg_notify($1, $2)", channel, payload)
            except Exception as error:  # lost connection: sent again on the next
                log.warning("could not send events to other processes (%s); sending again", error)
                self._waking |= waking
                self._connected.clear()
                with contextlib.suppress(Exception):
                    connection.terminate()
                continue
            self._outbox.popleft()
            if channel == EVENTS_CHANNEL:
                await self._count_handed()

    async def _count_handed(self) -> None:
        self._handed += 1
        async with self._handed_more:
            self._handed_more.notify_all()

    def _notified(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        self.received(payload)


def _setter(event: asyncio.Event) -> Any:
    return lambda *_arguments: event.set()


# --------------------------------------------------------------------------------------------


async def open_channel(
    settings: Settings, bus: EventBus, work: WorkSignals, kind: ProcessKind
) -> EventChannel:
    """Start this process's channel for `kind` and connect the bus and the wake-ups to it."""
    channel: EventChannel
    if settings.is_sqlite:
        channel = UnixDatagramChannel(bus, work, kind, socket_directory(settings))
    else:
        channel = PostgresChannel(bus, work, kind, settings.database_url)
    await channel.start()
    bus.relay_to(channel)
    work.relay_to(channel.wake)
    return channel


async def close_channel(channel: EventChannel, bus: EventBus, work: WorkSignals) -> None:
    bus.relay_to(None)
    work.relay_to(None)
    await channel.aclose()
