"""Inbox throughput: signed deliveries accepted per second, next to what verification alone allows.

    python bench/bench_inbox.py [--requests 6000] [--concurrency 64] [--actors 16]

Two uvicorn servers run on loopback, each in its own process, on SQLite:

- the ceiling: a bare endpoint that only reads the body, checks the Digest and verifies the RSA
  signature (Herold's own parse_signed_request + verify, key already in memory);
- Herold's real `/inbox`: verification with the key looked up as in production, the blocked-domain
  check, JSON parsing, the durable write, then 202.

Every request is a distinct activity (Creates of Notes by accounts a local user follows, and
Likes of her post), signed beforehand so the client only sends. Both servers get the same
requests at the same concurrency; the ratio of the two rates is the figure that matters, since
it does not depend on the machine. Then the worker processes what the inbox accepted (posts,
timelines, notifications) and its rate is measured the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.processes import cpu_seconds

GOAL_RATIO = 0.35
GOAL_ACCEPTED_PER_SECOND = 1500
GOAL_P99_MS = 50.0
GOAL_WORKER_PER_SECOND = 500
WARMUP_REQUESTS = 300
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


@dataclass(frozen=True)
class Prepared:
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class LoadResult:
    sent: int
    accepted: int
    seconds: float
    latencies_ms: list[float]
    statuses: dict[int, int]
    # CPU the server process spent on the round (user + system): unlike the rate, it hardly
    # depends on what else the machine is doing.
    server_cpu_s: float

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds

    @property
    def cpu_ms_per_request(self) -> float:
        return self.server_cpu_s * 1000 / self.sent

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _settings(workdir: Path, port: int) -> Any:
    from app.config import Settings

    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        local_domain=f"127.0.0.1:{port}",
        https=False,
        data_dir=workdir,
        database_url=f"sqlite+aiosqlite:///{workdir / 'herold.db'}",
        secret_key="bench",
        embedded_worker=False,
        log_level="warning",
    )


# ------------------------------------------------------------------------------------------------
# Setup: a local account following the remote signers, and the signed requests


async def _seed(settings: Any, actors: int) -> tuple[str, str, list[tuple[str, str, str]]]:
    """Returns (alice's uri, her post's uri, [(actor uri, key id, private pem)])."""
    from app.activitypub.keys import generate_key_pair
    from app.context import build_context
    from app.migrations import upgrade_database
    from app.models import Account, Follow, FollowState, Post
    from app.services.accounts import AccountService

    await upgrade_database(settings)
    context = build_context(settings)
    try:
        accounts = AccountService(context)
        await accounts.instance_actor()
        alice = (await accounts.create_local_account("alice", password="benchmark-password")).account
        signers = []
        async with context.sessions() as session:
            post = Post(
                uri=context.urls.post("alice", 1), account_id=alice.id, local=True, content_html="<p>hi</p>"
            )
            session.add(post)
            for index in range(actors):
                private_pem, public_pem = await asyncio.to_thread(generate_key_pair)
                uri = f"http://peer{index % 4}.example/users/u{index}"
                remote = Account(
                    username=f"u{index}",
                    domain=f"peer{index % 4}.example",
                    uri=uri,
                    inbox_url=f"{uri}/inbox",
                    followers_url=f"{uri}/followers",
                    key_id=f"{uri}#main-key",
                    public_key_pem=public_pem,
                    fetched_at=datetime.now(UTC),
                )
                session.add(remote)
                await session.flush()
                session.add(Follow(follower_id=alice.id, followee_id=remote.id, state=FollowState.ACCEPTED))
                signers.append((uri, f"{uri}#main-key", private_pem))
            await session.commit()
        return alice.uri, post.uri, signers
    finally:
        await context.aclose()


def _activity(index: int, actor: str, alice: str, post_uri: str) -> dict[str, Any]:
    if index % 5 == 4:
        return {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{actor}#likes/{index}",
            "type": "Like",
            "actor": actor,
            "object": post_uri,
        }
    note_id = f"{actor}/statuses/{index}"
    return {
        "@context": [
            "https://www.w3.org/ns/activitystreams",
            {"sensitive": "as:sensitive", "Hashtag": "as:Hashtag"},
        ],
        "id": f"{note_id}/activity",
        "type": "Create",
        "actor": actor,
        "published": "2024-05-01T12:00:00Z",
        "to": [PUBLIC],
        "cc": [f"{actor}/followers", alice],
        "object": {
            "id": note_id,
            "type": "Note",
            "summary": None,
            "inReplyTo": None,
            "published": "2024-05-01T12:00:00Z",
            "url": note_id.replace("/users/", "/@").replace("/statuses/", "/"),
            "attributedTo": actor,
            "to": [PUBLIC],
            "cc": [f"{actor}/followers", alice],
            "sensitive": False,
            "content": (
                f'<p>Note number {index}, with a <a href="https://example.org/x">link</a> and '
                f'<a href="https://example.org/tags/bench" class="mention hashtag" rel="tag">#<span>bench</span></a>'
                " so that sanitising has some work to do.</p>"
            ),
            "contentMap": {"en": f"<p>Note number {index}</p>"},
            "attachment": [],
            "tag": [{"type": "Hashtag", "href": "https://example.org/tags/bench", "name": "#bench"}],
            "replies": {
                "id": f"{note_id}/replies",
                "type": "Collection",
                "first": {"type": "CollectionPage", "items": []},
            },
        },
    }


def _sign_chunk(job: tuple[str, str, str, str, list[str]]) -> list[Prepared]:
    from app.activitypub.signatures import KeyCache, sign_request

    url, key_id, private_pem, _actor, bodies = job
    key = KeyCache().private_key(private_pem)
    prepared = []
    for body in bodies:
        raw = body.encode()
        headers = sign_request(method="POST", url=url, body=raw, key_id=key_id, private_key=key)
        prepared.append(Prepared(raw, headers))
    return prepared


def _prepare(
    url: str, count: int, alice: str, post_uri: str, signers: list[tuple[str, str, str]]
) -> list[Prepared]:
    chunks: dict[int, list[str]] = {}
    for index in range(count):
        actor = signers[index % len(signers)][0]
        chunks.setdefault(index % len(signers), []).append(
            json.dumps(_activity(index, actor, alice, post_uri))
        )
    jobs = [(url, signers[i][1], signers[i][2], signers[i][0], bodies) for i, bodies in chunks.items()]
    with ProcessPoolExecutor(
        max_workers=os.cpu_count() or 2, mp_context=multiprocessing.get_context("spawn")
    ) as pool:
        signed = list(pool.map(_sign_chunk, jobs))
    # Interleave the signers again so every stretch of the run mixes them.
    merged: list[Prepared] = []
    longest = max(len(chunk) for chunk in signed)
    for position in range(longest):
        merged.extend(chunk[position] for chunk in signed if position < len(chunk))
    return merged


# ------------------------------------------------------------------------------------------------
# The two servers


def _serve_herold(workdir: str, port: int, ready: Any) -> None:
    import uvicorn

    from app.main import create_app
    from app.runtime import tune_garbage_collection

    app = create_app(_settings(Path(workdir), port))
    tune_garbage_collection()  # as `herold serve` does, on the same loop (uvloop when installed)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, loop="auto"
    )
    server = uvicorn.Server(config)
    ready.set()
    server.run()


def _serve_ceiling(port: int, public_pems: dict[str, str], ready: Any) -> None:
    import uvicorn

    from app.activitypub.signatures import KeyCache, SignatureError, parse_signed_request
    from app.runtime import tune_garbage_collection

    cache = KeyCache()
    keys = {key_id: cache.public_key(pem) for key_id, pem in public_pems.items()}
    app = FastAPI()
    tune_garbage_collection()  # the same process settings as Herold's server

    @app.post("/inbox")
    async def inbox(request: Request) -> Response:
        body = await request.body()
        try:
            signed = parse_signed_request(
                method="POST",
                path=request.scope["raw_path"].decode("latin-1"),
                query="",
                headers=request.headers,
                body=body,
                now=datetime.now(UTC),
            )
        except SignatureError:
            return Response(status_code=401)
        key = keys.get(signed.key_id)
        if key is None or not signed.verify(key):
            return Response(status_code=401)
        return Response(status_code=202)

    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", access_log=False, loop="auto"
    )
    server = uvicorn.Server(config)
    ready.set()
    server.run()


def _wait_listening(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"the server on port {port} did not start")


# ------------------------------------------------------------------------------------------------
# Load


async def _load(
    port: int, host_header: str, requests: list[Prepared], concurrency: int, server_pid: int
) -> LoadResult:
    import aiohttp

    url = f"http://127.0.0.1:{port}/inbox"
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    position = 0
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            nonlocal position
            while position < len(requests):
                prepared = requests[position]
                position += 1
                headers = {**prepared.headers, "Host": host_header}
                started = time.perf_counter()
                async with session.post(url, data=prepared.body, headers=headers) as response:
                    await response.read()
                    statuses[response.status] = statuses.get(response.status, 0) + 1
                latencies.append((time.perf_counter() - started) * 1000)

        cpu_before = cpu_seconds(server_pid)
        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
        cpu = cpu_seconds(server_pid) - cpu_before
    return LoadResult(
        sent=len(requests),
        accepted=statuses.get(202, 0),
        seconds=seconds,
        latencies_ms=latencies,
        statuses=statuses,
        server_cpu_s=cpu,
    )


async def _drain_worker(settings: Any) -> tuple[int, float, float]:
    """Run the worker's inbox queue until nothing is left; (items processed, seconds, CPU seconds)."""
    from sqlalchemy import func, select
    from sqlmodel import col

    from app.context import build_context
    from app.federation.queue import count_ready
    from app.federation.worker import Worker, build_worker
    from app.models import InboxItem, JobState
    from app.queue_names import INBOX_QUEUE

    context = build_context(settings)
    try:
        queued = await count_ready(context, InboxItem)
        worker = Worker(
            context, [queue for queue in build_worker(context).queues if queue.name == INBOX_QUEUE]
        )
        started, cpu_started = time.perf_counter(), time.process_time()
        task = asyncio.create_task(worker.run())
        while await count_ready(context, InboxItem):
            await asyncio.sleep(0.05)
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        task.cancel()
        try:
            await task
        except BaseException:
            pass
        async with context.sessions() as session:
            failed = await session.scalar(
                select(func.count()).select_from(InboxItem).where(col(InboxItem.attempts) > 0)
            )
            done = await session.scalar(
                select(func.count()).select_from(InboxItem).where(col(InboxItem.state) == JobState.DONE)
            )
        if failed:
            print(f"  warning: {failed} inbox items failed unexpectedly")
        return int(done or queued), seconds, cpu
    finally:
        await context.aclose()


def _run_server(target: Any, args: tuple[Any, ...]) -> Any:
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    process = context.Process(target=target, args=(*args, ready), daemon=True)
    process.start()
    ready.wait(30)
    return process


def _public_pems(signers: list[tuple[str, str, str]]) -> dict[str, str]:
    from cryptography.hazmat.primitives import serialization

    from app.activitypub.signatures import KeyCache

    keys = KeyCache()
    return {
        key_id: keys.private_key(private_pem)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
        for _uri, key_id, private_pem in signers
    }


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def main() -> None:
    from app.runtime import run_event_loop

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--requests", type=int, default=6000, help="signed POSTs per server, over all rounds")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the best of each is kept")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--actors", type=int, default=16, help="distinct remote signers")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="herold-bench-inbox-"))
    port, ceiling_port = _free_port(), _free_port()
    settings = _settings(workdir, port)
    host = f"127.0.0.1:{port}"
    try:
        alice, post_uri, signers = asyncio.run(_seed(settings, args.actors))
        total = args.requests + WARMUP_REQUESTS
        print(f"signing {total} activities from {len(signers)} actors…", flush=True)
        prepared = _prepare(f"http://{host}/inbox", total, alice, post_uri, signers)
        warmup, measured = prepared[:WARMUP_REQUESTS], prepared[WARMUP_REQUESTS:]
        size = len(measured) // args.rounds
        rounds = [measured[index * size : (index + 1) * size] for index in range(args.rounds)]

        ceiling_server = _run_server(_serve_ceiling, (ceiling_port, _public_pems(signers)))
        herold_server = _run_server(_serve_herold, (str(workdir), port))
        ceilings: list[LoadResult] = []
        inboxes: list[LoadResult] = []
        try:
            _wait_listening(ceiling_port)
            _wait_listening(port)
            ceiling_pid, herold_pid = ceiling_server.pid, herold_server.pid
            asyncio.run(_load(ceiling_port, host, warmup, args.concurrency, ceiling_pid))
            asyncio.run(_load(port, host, warmup, args.concurrency, herold_pid))
            # Alternating, so that a noisy neighbour on the machine hurts both the same way.
            for chunk in rounds:
                ceilings.append(asyncio.run(_load(ceiling_port, host, chunk, args.concurrency, ceiling_pid)))
                inboxes.append(asyncio.run(_load(port, host, chunk, args.concurrency, herold_pid)))
        finally:
            for process in (ceiling_server, herold_server):
                process.terminate()
                process.join()

        processed, worker_seconds, worker_cpu = run_event_loop(_drain_worker(settings), "auto")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    for name, results in (("ceiling", ceilings), ("inbox", inboxes)):
        if not any(result.accepted for result in results):
            raise SystemExit(f"the {name} server accepted nothing: statuses {results[0].statuses}")
    ceiling = max(ceilings, key=lambda result: result.rate)
    inbox = max(inboxes, key=lambda result: result.rate)
    ratio = inbox.rate / ceiling.rate
    worker_rate = processed / worker_seconds
    print(
        f"\n{size} signed POSTs per round, {args.rounds} rounds alternating, best round shown; "
        f"concurrency {args.concurrency}, SQLite, one uvicorn process per server on the loop `herold serve` runs (uvloop when installed)\n"
    )
    print(
        f"{'endpoint':<40} {'accepted/s':>11} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/req':>11}"
        "  all rounds (accepted/s)"
    )
    for name, best, results in (
        ("ceiling (Digest + RSA verify only)", ceiling, ceilings),
        ("Herold /inbox (verify + durable write)", inbox, inboxes),
    ):
        cpu = min(result.cpu_ms_per_request for result in results)
        print(
            f"{name:<40} {best.rate:>11.0f} {statistics.median(best.latencies_ms):>8.1f} "
            f"{best.percentile(0.99):>8.1f} {cpu:>11.3f}  {', '.join(f'{result.rate:.0f}' for result in results)}"
        )
    answers: Counter[int] = Counter()
    for result in inboxes:
        answers.update(result.statuses)
    print(f"inbox answers: {dict(sorted(answers.items()))}")
    p99 = inbox.percentile(0.99)
    print(f"\ninbox / ceiling: {ratio:.0%} (goal ≥ {GOAL_RATIO:.0%}: {_verdict(ratio >= GOAL_RATIO)})")
    print(
        f"accepted/s: {inbox.rate:.0f} (goal ≥ {GOAL_ACCEPTED_PER_SECOND}: "
        f"{_verdict(inbox.rate >= GOAL_ACCEPTED_PER_SECOND)})"
    )
    print(f"p99: {p99:.1f} ms (goal ≤ {GOAL_P99_MS:.0f} ms: {_verdict(p99 <= GOAL_P99_MS)})")
    print(
        f"worker: {processed} activities fully processed in {worker_seconds:.1f} s = {worker_rate:.0f}/s "
        f"(goal ≥ {GOAL_WORKER_PER_SECOND}/s: {_verdict(worker_rate >= GOAL_WORKER_PER_SECOND)}); "
        f"{worker_cpu * 1000 / processed:.2f} ms CPU each"
    )
    inbox_cpu = min(result.cpu_ms_per_request for result in inboxes)
    ceiling_cpu = min(result.cpu_ms_per_request for result in ceilings)
    print(
        f"\nCPU per request, which a busy machine disturbs far less than the rates: the inbox costs "
        f"{inbox_cpu / ceiling_cpu:.1f}x the ceiling, so {ceiling_cpu / inbox_cpu:.0%} of its rate on an "
        f"idle core (about {1000 / inbox_cpu:.0f}/s, ceiling {1000 / ceiling_cpu:.0f}/s)"
    )


if __name__ == "__main__":
    main()
