"""Federation between real processes over real sockets, and a worker killed mid-fan-out.

These start `herold serve` and `herold worker` as an operator would (embedded worker off), on
loopback ports with their own databases, and drive them with the `herold` command only. They are
the slowest tests of the suite, so there are two.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from ipaddress import ip_network
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from sqlalchemy import func
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import col, select

from app.config import Settings
from app.context import build_context
from app.models import Account, DeliveryJob, JobState, Post, TimelineEntry
from app.services.accounts import AccountService
from app.services.posting import PostingService
from tests.federation.delivery_helpers import add_sink_followers
from tests.lab import DatabaseFactory
from tests.processes import ServerProcess, free_port, herold_env, run_herold

AS2 = "application/activity+json"


async def herold(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`herold ARGS`, without blocking the event loop (the kill test serves its sink from it)."""
    result = await asyncio.to_thread(run_herold, args, env)
    assert result.returncode == 0, f"herold {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


async def eventually(check: object, *, seconds: float = 90.0, every: float = 0.3) -> None:
    """Wait until the async `check()` returns true."""
    deadline = time.monotonic() + seconds
    while True:
        if await check():  # type: ignore[operator]
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{check} did not happen within {seconds} s")
        await asyncio.sleep(every)


class Node:
    """One Herold instance: `herold serve` and `herold worker` on a loopback port."""

    def __init__(self, name: str, workdir: Path, database_url: str) -> None:
        self.port = free_port()
        self.domain = f"127.0.0.1:{self.port}"
        self.base = f"http://{self.domain}"
        self.workdir = workdir / name
        self.env = herold_env(
            self.workdir / "data",
            database_url,
            PORT=str(self.port),
            LOCAL_DOMAIN=self.domain,
            HTTPS="false",
            EMBEDDED_WORKER="false",
            ALLOWED_PRIVATE_ADDRESSES="127.0.0.0/8",
            LOG_LEVEL="warning",
        )
        self.processes: list[ServerProcess] = []

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        server = ServerProcess(["serve"], self.env, self.workdir / "serve.log")
        worker = ServerProcess(["worker"], self.env, self.workdir / "worker.log")
        self.processes += [server, worker]
        server.wait_http(f"{self.base}/.well-known/nodeinfo")

    def stop(self) -> None:
        for process in self.processes:
            process.stop()

    def logs(self) -> str:
        return "\n".join(f"--- {p.log_path.name}\n{p.output()}" for p in self.processes)


async def in_home(node: Node, username: str, post_uri: str) -> bool:
    """Whether `post_uri` is in the home timeline of `username` on `node`, read from its database."""
    engine = create_async_engine(node.env["DATABASE_URL"])
    try:
        async with engine.connect() as connection:
            found = await connection.scalar(
                select(func.count())
                .select_from(TimelineEntry)
                .join(Post, col(Post.id) == col(TimelineEntry.post_id))
                .join(Account, col(Account.id) == col(TimelineEntry.account_id))
                .where(
                    col(Post.uri) == post_uri,
                    col(Post.deleted_at).is_(None),
                    col(Account.username) == username,
                    col(Account.domain).is_(None),
                )
            )
    finally:
        await engine.dispose()
    return bool(found)


async def collection_items(url: str) -> list[str]:
    async with httpx.AsyncClient(timeout=5) as client:
        answer = await client.get(f"{url}?page=1", headers={"Accept": AS2})
    return list(answer.json().get("orderedItems", [])) if answer.status_code == 200 else []


async def test_two_servers_federate_over_real_sockets(tmp_path: Path, databases: DatabaseFactory) -> None:
    one = Node("one", tmp_path, await databases.new_database_url())
    two = Node("two", tmp_path, await databases.new_database_url())
    # The two servers share nothing, so they are set up side by side.
    await asyncio.gather(
        herold(["accounts", "create", "alice", "--password", "correct horse battery"], one.env),
        herold(["accounts", "create", "bob", "--password", "correct horse battery"], two.env),
    )
    try:
        await asyncio.gather(asyncio.to_thread(one.start), asyncio.to_thread(two.start))
        followed = await herold(["follow", "bob", f"@alice@{one.domain}"], two.env)
        assert "pending until accepted" in followed.stdout

        # Follow → one's inbox and worker → Accept → two's inbox and worker.
        async def accepted() -> bool:
            return f"{two.base}/users/bob" in await collection_items(
                f"{one.base}/users/alice/followers"
            ) and (f"{one.base}/users/alice" in await collection_items(f"{two.base}/users/bob/following"))

        await eventually(accepted)

        posted = await herold(["post", "alice", "Hello over real sockets! #e2e"], one.env)
        post_uri = posted.stdout.strip().splitlines()[-1]
        assert post_uri.startswith(f"{one.base}/users/alice/statuses/")

        # Watched in two's database (cheap); then asked of `herold timeline` as an operator would.
        await eventually(lambda: in_home(two, "bob", post_uri))
        listed = await herold(["timeline", "bob", "--json"], two.env)
        assert [item["uri"] for item in json.loads(listed.stdout)] == [post_uri]
        async with httpx.AsyncClient(timeout=5) as client:
            note = await client.get(post_uri, headers={"Accept": AS2})
        assert note.status_code == 200 and note.json()["attributedTo"] == f"{one.base}/users/alice"

        deleted = await herold(["delete-post", "alice", post_uri], one.env)
        assert deleted.stdout.strip() == f"deleted {post_uri}"

        async def removed() -> bool:
            return not await in_home(two, "bob", post_uri)

        await eventually(removed)
        unfollowed = await herold(["unfollow", "bob", f"@alice@{one.domain}"], two.env)
        assert unfollowed.stdout.strip() == f"unfollowed @alice@{one.domain}"
    finally:
        for node in (one, two):
            node.stop()
    logs = one.logs() + two.logs()
    assert "Traceback" not in logs, logs


# --------------------------------------------------------------------------------------------
# kill -9


SINK_HOSTS = 300
# Every other inbox takes this long to answer: the worker is killed while those are in flight.
SLOW_ANSWER = 3.0


class Sink:
    """Inboxes on SINK_HOSTS loopback addresses that count what they got; the odd ones are slow."""

    def __init__(self) -> None:
        self.received: Counter[str] = Counter()
        self.port = 0

    async def inbox(self, request: web.Request) -> web.Response:
        await request.read()
        self.received[request.host] += 1
        if int(request.host.split(":")[0].rsplit(".", 1)[1]) % 2:
            await asyncio.sleep(SLOW_ANSWER)
        return web.Response(status=202)


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    state = Sink()
    app = web.Application()
    app.router.add_post("/inbox", state.inbox)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "0.0.0.0", 0, backlog=1024)  # every 127.x.y.z reaches it
    await site.start()
    server = site._server
    assert isinstance(server, asyncio.base_events.Server)
    state.port = server.sockets[0].getsockname()[1]
    yield state
    await runner.cleanup()


async def test_a_worker_killed_mid_fan_out_loses_no_delivery(
    tmp_path: Path, databases: DatabaseFactory, sink: Sink, record_property: Callable[[str, object], None]
) -> None:
    database_url = await databases.new_database_url()
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        local_domain="herold.test",
        https=False,
        data_dir=tmp_path / "data",
        database_url=database_url,
        secret_key="test-secret-key-of-a-herold-process",
        allowed_private_addresses=[ip_network("127.0.0.0/8")],
        embedded_worker=False,
    )
    context = build_context(settings)
    try:
        alice = (await AccountService(context).create_local_account("alice", password="x" * 16)).account
        hosts = [f"127.0.{2 + number // 250}.{number % 250 + 1}:{sink.port}" for number in range(SINK_HOSTS)]
        async with context.sessions() as session:
            add_sink_followers(session, alice.id, hosts)
            await session.commit()
        await PostingService(context).create(alice, "To three hundred servers")

        async def count(*conditions: object) -> int:
            async with context.sessions() as session:
                found = await session.scalar(select(func.count()).select_from(DeliveryJob).where(*conditions))
            return int(found or 0)

        env = herold_env(
            tmp_path / "data", database_url, ALLOWED_PRIVATE_ADDRESSES="127.0.0.0/8", LOG_LEVEL="warning"
        )
        first = ServerProcess(["worker"], env, tmp_path / "worker-1.log")
        try:
            # Mid-fan-out: the quick inboxes are done and recorded, the slow ones are waiting.
            async def midway() -> bool:
                return await count(col(DeliveryJob.state) == JobState.DONE) >= SINK_HOSTS // 2

            await eventually(midway, every=0.05)
        finally:
            first.process.kill()  # SIGKILL: no cleanup, no last writes
            first.process.wait()
            first.log.close()
        await asyncio.sleep(0.5)  # requests already on the wire reach the sink
        received_before = Counter(sink.received)
        left = await count(col(DeliveryJob.state) != JobState.DONE)
        assert left > 0, "the worker finished before it could be killed; the test proves nothing"

        # The dead worker's claims are not waited out (their lease is 2 minutes): the next worker
        # sees their holder gone and takes them over at start (tests/federation/test_takeover.py).
        second = ServerProcess(["worker"], env, tmp_path / "worker-2.log")
        try:

            async def finished() -> bool:
                return await count(col(DeliveryJob.state) != JobState.DONE) == 0

            await eventually(finished, seconds=30)
        finally:
            second.stop()
    finally:
        await context.aclose()

    assert set(sink.received) == set(hosts), "every inbox received the post"
    duplicates = sum(sink.received.values()) - SINK_HOSTS
    record_property("duplicates", duplicates)
    print(
        f"\nkill -9 mid-fan-out: {SINK_HOSTS} inboxes, {sum(received_before.values())} POSTs before the kill, "
        f"{left} jobs unfinished at the kill, {duplicates} inboxes got the post twice"
    )
    # At-least-once: only deliveries in flight at the kill (sent, outcome not yet written) repeat.
    assert duplicates <= left
    repeated = {host for host, times in sink.received.items() if times > 1}
    assert repeated <= set(received_before)
    assert "Traceback" not in second.output(), second.output()
