"""Fan-out of one post to 1,000 and 5,000 shared inboxes on distinct hosts, through the real worker.

    python bench/bench_fanout.py [--sizes 1000,5000] [--dead 0.2] [--database-url URL]

Every follower sits on its own host: 127.1.x.y, all loopback on Linux, served by one sink in a
separate process (so its CPU is not counted) that answers 202 and counts what each host received.
The worker is Herold's own: `Worker` claiming from the database with the delivery queue's real
settings, the `Deliverer` signing every request, and the guarded aiohttp transport.

Reported for each size:
- wall time of the fan-out and the worker's CPU seconds: this process (the worker, SQLite's thread
  and the transport) plus the worker's signing process; the post's creation is timed separately
  as "enqueue";
- the signing floor: N x one RSA-2048 signature, measured here right before and right after
  each round (the mean; the machine's speed drifts from minute to minute), and the ratio
  CPU / floor (goal <= 1.5x), the best round's;
- with 20 % of the hosts dead, half refusing connections and half accepting and never answering
  (so the 10 s read timeout runs out): the time until every healthy inbox has the post, against
  the all-healthy time (goal <= 1.2x), and the time until every job has had its first attempt;
- peak RSS growth during the fan-out (goal <= 100 MB);
- duplicates: inboxes that received the post more than once (should be 0);
- for reading the cold ratio: what a bare client costs for the same new connections (no signing,
  no database), and how much dearer a signature gets while another process signs beside it.
  On loopback the kernel's work for both ends of every TCP handshake is counted against the
  client, and the signing process never runs alone as the floor does.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import multiprocessing
import os
import resource
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from ipaddress import ip_network
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import create_async_engine

from app.config import Settings
from app.context import AppContext, build_context
from app.federation.delivery import Deliverer, delivery_queue
from app.federation.worker import Worker
from app.migrations import upgrade_database
from app.models import Account, Follow, FollowState
from app.models.base import new_ids, utcnow
from app.runtime import run_event_loop, tune_garbage_collection
from app.services import accounts as account_service
from app.services.accounts import AccountService
from app.services.posting import PostingService
from bench.processes import cpu_seconds
from bench.sink import Sink

CPU_GOAL = 1.5
DEAD_GOAL = 1.2
RSS_GOAL_MB = 100


# --------------------------------------------------------------------------------------------
# The sink, in its own process


def _serve(channel: Connection) -> None:
    async def serve() -> None:
        loop = asyncio.get_running_loop()
        counts: dict[str, int] = {}
        healthy = await loop.create_server(lambda: Sink(counts), "0.0.0.0", 0, backlog=4096)
        hung = await loop.create_server(lambda: Sink(counts, answer=False), "0.0.0.0", 0, backlog=4096)
        # A port bound but not listening: connections to it are refused, and while the sink runs
        # no other program can start listening on it.
        refusing = socket.socket()
        refusing.bind(("0.0.0.0", 0))
        refused_port = refusing.getsockname()[1]
        channel.send((healthy.sockets[0].getsockname()[1], hung.sockets[0].getsockname()[1], refused_port))
        while True:
            command = await loop.run_in_executor(None, channel.recv)
            if command == "counts":
                channel.send(dict(counts))
            elif command == "reset":
                counts.clear()
                channel.send("ok")
            else:
                refusing.close()
                return

    asyncio.run(serve())


# --------------------------------------------------------------------------------------------
# Measuring


class RssSampler:
    """Resident set size of this process, sampled every 20 ms in a thread."""

    def __init__(self) -> None:
        self.peak = self.baseline = self.current()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def current() -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.current())

    def __enter__(self) -> RssSampler:
        gc.collect()
        self.peak = self.baseline = self.current()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.current())

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.baseline) / 1_048_576


@dataclass
class Run:
    size: int
    dead: int
    enqueue_s: float
    wall_s: float
    cpu_s: float
    user_s: float
    system_s: float
    # Of cpu_s, the signing process's.
    signer_s: float
    # Until every healthy inbox had the post.
    healthy_s: float
    rss_growth_mb: float
    delivered: int
    duplicates: int
    requests: int
    # The signing floor for this run's size, measured right before and after it (the mean): the
    # machine's speed drifts, so a ratio compares CPU and floor of the same minutes.
    floor_s: float = 0.0

    @property
    def ratio(self) -> float:
        return self.cpu_s / self.floor_s


def host_for(number: int) -> str:
    return f"127.1.{number // 250}.{number % 250 + 1}"


def signing_floor(count: int) -> float:
    """CPU seconds for `count` bare RSA-2048 signatures (PKCS#1 v1.5, SHA-256) of signing strings
    shaped like a delivery's: the least any signed fan-out can cost."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    strings = [
        (
            f"(request-target): post /inbox\nhost: {host_for(number)}:8080\n"
            f"date: Thu, 26 Nov 2026 12:00:00 GMT\ndigest: SHA-256={'A' * 43}=\n"
            "content-type: application/activity+json"
        ).encode()
        for number in range(count)
    ]
    algorithm, pkcs1 = hashes.SHA256(), padding.PKCS1v15()
    start = time.process_time()
    for string in strings:
        key.sign(string, pkcs1, algorithm)
    return time.process_time() - start


class _BareInbox(asyncio.Protocol):
    """The bare client's side of one connection: the status of the first answer, nothing else."""

    def __init__(self) -> None:
        self.status: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        if not self.status.done():
            self.status.set_result(data[9:12])


async def bare_fan_out(size: int, port: int) -> float:
    """CPU seconds for a bare client to open a connection to each of `size` hosts and post one
    prebuilt request on it (up to 768 at once, as the worker): no signing, no database, no
    checks. What a cold fan-out cannot go below on this machine: the event loop's and the kernel's
    work for `size` TCP handshakes, both ends of which are counted against the client on loopback.
    """
    loop = asyncio.get_running_loop()
    body = b"{" + b" " * 1400 + b"}"
    slots = asyncio.Semaphore(768)
    transports: list[asyncio.Transport] = []

    async def post(number: int) -> bytes:
        async with slots:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                sock.connect((host_for(number), port))
            transport, inbox = await loop.create_connection(_BareInbox, sock=sock)
            transports.append(transport)
            head = f"POST /inbox HTTP/1.1\r\nHost: {host_for(number)}:{port}\r\nContent-Length: {len(body)}\r\n\r\n"
            transport.write(head.encode() + body)
            return await inbox.status

    started = time.process_time()
    statuses = await asyncio.gather(*(post(number) for number in range(size)))
    cpu_s = time.process_time() - started
    for transport in transports:
        transport.close()
    assert statuses.count(b"202") == size, "the sink did not accept every bare request"
    return cpu_s


def signing_contention(count: int = 1000) -> float:
    """How much more CPU a signature costs while another process signs beside it than alone.

    During a fan-out the signing process runs beside the worker and the sink; on a machine whose
    cores share their execution units (hyperthreads of one host core, as cloud vCPUs often are),
    that alone makes it dearer than the floor, which is measured with nothing else running.
    """
    alone = min(signing_floor(count) for _ in range(2))
    spawn = multiprocessing.get_context("spawn")
    with spawn.Pool(2) as pool:
        pool.map(signing_floor, [10, 10])  # started and warmed up before measuring
        together = pool.map(signing_floor, [count, count])
    return sum(together) / len(together) / alone


def _signer_cpu(context: AppContext) -> float:
    pid = context.signer.pid
    return cpu_seconds(pid) if pid is not None else 0.0


async def _one_post(
    context: AppContext, author: Account, deliverer: Deliverer, size: int, dead: int, channel: Connection
) -> Run:
    """Post once; measure until every job has had its first attempt."""
    channel.send("reset")
    channel.recv()
    stats = deliverer.stats
    base = stats.done + stats.retried + stats.failed
    base_done, base_requests = stats.done, stats.requests
    started = time.perf_counter()
    await PostingService(context).create(author, "A post for everyone. #benchmark")
    enqueue_s = time.perf_counter() - started
    healthy_s = 0.0
    with RssSampler() as rss:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        signer = _signer_cpu(context)
        cpu, wall = time.process_time(), time.perf_counter()
        while True:
            await asyncio.sleep(0.005)
            elapsed = time.perf_counter() - wall
            if not healthy_s and stats.done - base_done >= size - dead:
                healthy_s = elapsed
            if stats.done + stats.retried + stats.failed - base >= size:
                break
        cpu_s = time.process_time() - cpu
        wall_s = time.perf_counter() - wall
        signer_s = _signer_cpu(context) - signer
        after = resource.getrusage(resource.RUSAGE_SELF)
    channel.send("counts")
    counts: dict[str, int] = channel.recv()
    return Run(
        size=size,
        dead=dead,
        enqueue_s=enqueue_s,
        wall_s=wall_s,
        cpu_s=cpu_s + signer_s,
        user_s=after.ru_utime - usage.ru_utime,
        system_s=after.ru_stime - usage.ru_stime,
        signer_s=signer_s,
        healthy_s=healthy_s,
        rss_growth_mb=rss.growth_mb,
        delivered=len(counts),
        duplicates=sum(count - 1 for count in counts.values() if count > 1),
        requests=stats.requests - base_requests,
    )


async def fan_out(
    size: int, dead_share: float, ports: tuple[int, int, int], channel: Connection, database_url: str | None
) -> tuple[Run, Run | None]:
    """A fresh instance with `size` followers on distinct hosts; one post (and, when no host is
    dead, a second one right after, to the connections still open)."""
    healthy_port, hung_port, refused_port = ports
    with tempfile.TemporaryDirectory(prefix="herold-fanout-") as workdir:
        async with fresh_database(database_url, Path(workdir)) as url:
            return await _fan_out(
                size, dead_share, (healthy_port, hung_port, refused_port), channel, url, workdir
            )


@contextlib.asynccontextmanager
async def fresh_database(server_url: str | None, workdir: Path) -> AsyncIterator[str]:
    """A new SQLite file, or a new database on the PostgreSQL server of `server_url`."""
    if not server_url:
        yield f"sqlite+aiosqlite:///{workdir}/bench.db"
        return
    name = f"herold_bench_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.execute(text(f'CREATE DATABASE "{name}"'))
        yield server_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        async with admin.connect() as connection:
            await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        await admin.dispose()


async def _fan_out(
    size: int,
    dead_share: float,
    ports: tuple[int, int, int],
    channel: Connection,
    database_url: str,
    workdir: str,
) -> tuple[Run, Run | None]:
    healthy_port, hung_port, refused_port = ports
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        local_domain="bench.example",
        https=False,
        data_dir=Path(workdir),
        database_url=database_url,
        secret_key="bench-secret-key-long-enough-to-sign",
        allowed_private_addresses=[ip_network("127.0.0.0/8")],
        embedded_worker=False,
    )
    await upgrade_database(settings)
    context = build_context(settings)
    try:
        author = (await AccountService(context).create_local_account("herold", password="x" * 16)).account
        # Dead hosts are spread evenly through the followers, alternately refusing and hung.
        step = round(1 / dead_share) if dead_share else 0
        accounts: list[dict[str, Any]] = []
        follows: list[dict[str, Any]] = []
        now = utcnow()
        for number, (account_id, follow_id) in enumerate(zip(new_ids(size), new_ids(size), strict=True)):
            port = healthy_port
            if step and number % step == 0:
                port = refused_port if (number // step) % 2 == 0 else hung_port
            host = f"{host_for(number)}:{port}"
            uri = f"http://{host}/users/f{number}"
            accounts.append(
                {
                    "id": account_id,
                    "username": f"f{number}",
                    "domain": host,
                    "uri": uri,
                    "inbox_url": f"{uri}/inbox",
                    "shared_inbox_url": f"http://{host}/inbox",
                    "key_id": f"{uri}#main-key",
                    "created_at": now,
                    "updated_at": now,
                    "fetched_at": now,
                }
            )
            follows.append(
                {
                    "id": follow_id,
                    "follower_id": account_id,
                    "followee_id": author.id,
                    "state": FollowState.ACCEPTED,
                    "created_at": now,
                }
            )
        async with context.sessions() as session:
            await session.execute(insert(Account), accounts)
            await session.execute(insert(Follow), follows)
            await session.commit()
        dead = sum(1 for row in accounts if not row["domain"].endswith(f":{healthy_port}"))

        deliverer = Deliverer(context)
        worker = Worker(context, [delivery_queue(context, deliverer)])
        task = asyncio.create_task(worker.run())
        try:
            cold = await _one_post(context, author, deliverer, size, dead, channel)
            # The same followers again, at once: their connections are still open.
            warm = None if dead else await _one_post(context, author, deliverer, size, dead, channel)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return cold, warm
    finally:
        await context.aclose()


async def _cheap(password: str) -> str:
    return "unusable"


@dataclass
class Size:
    cold: Run
    warm: Run
    dead: Run
    # The bare client's CPU, and the floor measured beside it.
    bare_s: float
    bare_floor_s: float


def _row(label: str, run: Run) -> str:
    return (
        f"{run.size:>8} {label:<5} {run.enqueue_s:>9.2f} {run.wall_s:>7.2f} {run.cpu_s:>6.2f} {run.user_s:>6.2f} "
        f"{run.system_s:>5.2f} {run.signer_s:>6.2f} {run.floor_s:>10.2f} {run.ratio:>8.2f}x {run.rss_growth_mb:>7.1f} "
        f"{run.size - run.delivered:>6} {run.duplicates:>4}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--dead", type=float, default=0.2, help="share of dead hosts in the second run")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per size; the best is reported")
    parser.add_argument(
        "--database-url",
        help="a PostgreSQL server, as postgresql+asyncpg://user@host/db (default: SQLite); each run "
        "gets a database of its own there, dropped afterwards",
    )
    args, _unknown = parser.parse_known_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    account_service.hash_password = _cheap  # type: ignore[assignment]  # logins are not measured
    tune_garbage_collection()  # the worker runs here as in `herold worker`

    spawn = multiprocessing.get_context("spawn")
    channel, remote = spawn.Pipe()
    sink = spawn.Process(target=_serve, args=(remote,), daemon=True)
    sink.start()
    results: list[Size] = []
    try:
        if not channel.poll(30):
            raise SystemExit("the sink did not start")
        ports = channel.recv()
        # A small fan-out first, not measured: first-use costs (imports, the SSL context, code
        # paths run for the first time) belong to no particular size.
        run_event_loop(fan_out(100, 0.0, ports, channel, args.database_url), "auto")
        for size in sizes:
            best: Size | None = None
            # The best of a few rounds: noise from elsewhere on the machine only ever adds time.
            for _ in range(args.rounds):
                before = signing_floor(size)
                first, second = run_event_loop(fan_out(size, 0.0, ports, channel, args.database_url), "auto")
                floor = (before + signing_floor(size)) / 2
                assert second is not None
                cold_run, warm_run = replace(first, floor_s=floor), replace(second, floor_s=floor)
                dead, _ = run_event_loop(fan_out(size, args.dead, ports, channel, args.database_url), "auto")
                before = signing_floor(size)
                bare_s = run_event_loop(bare_fan_out(size, ports[0]), "auto")
                this = Size(cold_run, warm_run, dead, bare_s, (before + signing_floor(size)) / 2)
                best = (
                    this
                    if best is None
                    else Size(
                        min(best.cold, this.cold, key=lambda run: run.ratio),
                        min(best.warm, this.warm, key=lambda run: run.ratio),
                        min(best.dead, this.dead, key=lambda run: run.healthy_s),
                        *min(
                            (best.bare_s, best.bare_floor_s),
                            (this.bare_s, this.bare_floor_s),
                            key=lambda pair: pair[0] / pair[1],
                        ),
                    )
                )
            assert best is not None
            results.append(best)
        contention = signing_contention()
        channel.send("stop")
    finally:
        sink.join(timeout=5)
        if sink.is_alive():
            sink.terminate()

    backend = "PostgreSQL" if args.database_url else "SQLite"
    print(f"Fan-out of one post to N shared inboxes on distinct hosts; {os.cpu_count()} cores, {backend}")
    print("cold: first contact, a new TCP connection per host; warm: a second post right after (kept alive)")
    print("CPU s: the worker process (user, sys) and its signing process (signer)")
    print(
        f"{'inboxes':>8} {'':<5} {'enqueue s':>9} {'wall s':>7} {'CPU s':>6} {'user':>6} {'sys':>5} {'signer':>6} "
        f"{'sign floor':>10} {'CPU/floor':>9} {'RSS +MB':>7} {'missed':>6} {'dup':>4}"
    )
    for result in results:
        print(_row("cold", result.cold))
        print(_row("warm", result.warm))
    print("sign floor: N x one RSA-2048 signature, measured right before and after each round")
    print(
        f"\nWith {round(args.dead * 100)} % of the hosts dead (half refusing connections, half never answering):"
    )
    print(
        f"{'inboxes':>8} {'dead':>5} {'healthy done s':>14} {'vs all-healthy':>14} {'first pass s':>12} {'RSS +MB':>7}"
    )
    for result in results:
        dead = result.dead
        print(
            f"{dead.size:>8} {dead.dead:>5} {dead.healthy_s:>14.2f} {dead.healthy_s / result.cold.wall_s:>13.2f}x "
            f"{dead.wall_s:>12.2f} {dead.rss_growth_mb:>7.1f}"
        )
    print(
        "\nWhat a cold fan-out cannot go below here, measured in the same run: a bare client (one new"
        "\nconnection and one prebuilt request per inbox, no signing, no database), and the signing"
        "\nprocess's share of the floor while other processes run beside it:"
    )
    print(f"{'inboxes':>8} {'bare CPU s':>10} {'vs floor':>9} {'signer vs floor, cold':>22}")
    for result in results:
        print(
            f"{result.cold.size:>8} {result.bare_s:>10.2f} {result.bare_s / result.bare_floor_s:>8.2f}x "
            f"{result.cold.signer_s / result.cold.floor_s:>21.2f}x"
        )
    print(f"Two processes signing at once cost {contention:.2f}x each what one costs alone on this machine.")
    cold = max(result.cold.ratio for result in results)
    warm = max(result.warm.ratio for result in results)
    slowed = max(result.dead.healthy_s / result.cold.wall_s for result in results)
    rss = max(max(result.cold.rss_growth_mb, result.dead.rss_growth_mb) for result in results)
    missed = sum(result.cold.size - result.cold.delivered for result in results)
    duplicates = sum(result.cold.duplicates + result.warm.duplicates for result in results)
    print(
        f"\nCPU / signing floor: cold {cold:.2f}x, warm {warm:.2f}x (goal <= {CPU_GOAL}x); "
        f"healthy inboxes with dead hosts {slowed:.2f}x the all-healthy time (goal <= {DEAD_GOAL}x); "
        f"peak RSS growth {rss:.0f} MB (goal <= {RSS_GOAL_MB} MB); missed {missed}, duplicates {duplicates}"
    )


if __name__ == "__main__":
    main()
