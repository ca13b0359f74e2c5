"""A viral moment: thousands of servers Herold has never seen read a post and answer it at once.

    python bench/bench_viral.py [--servers 2000] [--followers 1000] [--window 60] [--short]

`herold serve` runs as `make run` starts it (embedded worker, SQLite), with ALLOWED_PRIVATE_ADDRESSES
covering loopback so that it may fetch the fake servers' actors. Each of `--servers` fake remote
servers has its own loopback address (127.1.x.y, one port): it serves its actor and key, and an
inbox that counts what Herold delivers to it. Within `--window` seconds, at a random moment
each, every server fetches WebFinger, the actor and the Note (signed, as Mastodon does), then
delivers a signed Like of the Note to the shared inbox; the first `--followers` also deliver a
Follow. A 503 is retried after its Retry-After, as real senders do.

Goals (issue 22): no 5xx but 503 with Retry-After; every Like and Follow accepted in the end;
inbox p99 <= 200 ms; no duplicate processing (one favourite per server, one follow per follower,
one Accept delivered to each follower). `--short` runs 200 servers, 100 followers, 10 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_reads import (
    REPO,
    free_port,
    herold_command,
    herold_environment,
    seed,
    tree_cpu_seconds,
    wait_answering,
)

GOAL_INBOX_P99_MS = 200.0
KEYS = 8  # distinct RSA keys shared by the fake servers: generating 2,000 would take minutes
AS2 = "application/activity+json"
MAX_RETRY_WAIT = 10.0


@dataclass(frozen=True)
class FakeServer:
    number: int
    address: str
    port: int

    @property
    def origin(self) -> str:
        return f"http://{self.address}:{self.port}"

    @property
    def actor(self) -> str:
        return f"{self.origin}/users/u{self.number}"

    @property
    def key_id(self) -> str:
        return f"{self.actor}#main-key"


@dataclass
class Tally:
    inbox_latencies_ms: list[float] = field(default_factory=list)
    read_latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    retries_without_retry_after: int = 0
    accepted: Counter[str] = field(default_factory=Counter)  # "Like"/"Follow" -> accepted
    gave_up: Counter[str] = field(default_factory=Counter)
    # What Herold delivered to the fake inboxes: (actor, type) -> times.
    delivered: Counter[tuple[str, str]] = field(default_factory=Counter)


def address_of(number: int) -> str:
    return f"127.1.{number // 250}.{number % 250 + 1}"


def generate_keys(count: int) -> list[tuple[str, str]]:
    from app.activitypub.keys import generate_key_pair

    return [generate_key_pair() for _ in range(count)]


def sign_all(job: tuple[str, list[tuple[str, str, str, bytes | None]]]) -> list[dict[str, str]]:
    """Signs each (method, url, key_id, body) with one private key (in a child process)."""
    from app.activitypub.signatures import KeyCache, sign_request

    private_pem, requests = job
    key = KeyCache().private_key(private_pem)
    return [
        sign_request(
            method=method,
            url=url,
            body=body,
            key_id=key_id,
            private_key=key,
            content_type=AS2 if body is not None else None,
        )
        for method, url, key_id, body in requests
    ]


def fake_servers_app(servers: dict[str, FakeServer], public_pems: list[str], tally: Tally) -> web.Application:
    """Every fake server in one application, told apart by the address it was reached on."""

    def server_of(request: web.Request) -> FakeServer | None:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        return servers.get(sockname[0]) if sockname else None

    async def actor(request: web.Request) -> web.Response:
        server = server_of(request)
        if server is None or request.match_info["name"] != f"u{server.number}":
            return web.Response(status=404)
        document = {
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
            "id": server.actor,
            "type": "Person",
            "preferredUsername": f"u{server.number}",
            "inbox": f"{server.actor}/inbox",
            "outbox": f"{server.actor}/outbox",
            "followers": f"{server.actor}/followers",
            "endpoints": {"sharedInbox": f"{server.origin}/inbox"},
            "publicKey": {
                "id": server.key_id,
                "owner": server.actor,
                "publicKeyPem": public_pems[server.number % len(public_pems)],
            },
        }
        return web.json_response(document, content_type=AS2)

    async def inbox(request: web.Request) -> web.Response:
        server = server_of(request)
        body = await request.read()
        try:
            kind = str(json.loads(body).get("type"))
        except ValueError:
            kind = "?"
        tally.delivered[(server.actor if server else "?", kind)] += 1
        return web.Response(status=202)

    app = web.Application()
    app.router.add_get("/users/{name}", actor)
    app.router.add_post("/users/{name}/inbox", inbox)
    app.router.add_post("/inbox", inbox)
    return app


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def one_server(
    session: aiohttp.ClientSession,
    herold: str,
    host: str,
    server: FakeServer,
    start_at: float,
    reads: list[tuple[str, dict[str, str]]],
    deliveries: list[tuple[str, bytes, dict[str, str]]],
    tally: Tally,
) -> None:
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    for url, headers in reads:
        sent = time.perf_counter()
        async with session.get(url, headers=headers) as answer:
            await answer.read()
            tally.read_latencies_ms.append((time.perf_counter() - sent) * 1000)
            tally.statuses[("read", answer.status)] += 1
    for kind, body, headers in deliveries:
        for _attempt in range(20):
            sent = time.perf_counter()
            async with session.post(f"{herold}/inbox", data=body, headers=headers) as answer:
                await answer.read()
                tally.inbox_latencies_ms.append((time.perf_counter() - sent) * 1000)
                tally.statuses[(kind, answer.status)] += 1
                if answer.status in (200, 201, 202):
                    tally.accepted[kind] += 1
                    break
                if answer.status != 503:
                    tally.gave_up[kind] += 1
                    break
                retry_after = answer.headers.get("Retry-After")
                if retry_after is None or not retry_after.isdigit():
                    tally.retries_without_retry_after += 1
                    retry_after = "5"
            await asyncio.sleep(min(MAX_RETRY_WAIT, float(retry_after)) * random.uniform(1.0, 1.5))
        else:
            tally.gave_up[kind] += 1


def count(database: Path, query: str) -> int:
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)
    try:
        return int(connection.execute(query).fetchone()[0])
    finally:
        connection.close()


async def run(args: argparse.Namespace) -> bool:
    workdir = Path(tempfile.mkdtemp(prefix="herold-bench-viral-"))
    port, fake_port = free_port(), free_port()
    host = f"localhost:{port}"
    herold = f"http://127.0.0.1:{port}"
    environment = {
        **herold_environment(workdir, port),
        "ALLOWED_PRIVATE_ADDRESSES": "127.0.0.0/8",
        **({"EMBEDDED_WORKER": "false"} if os.environ.get("BENCH_NO_WORKER") else {}),
    }
    server_process: subprocess.Popen[bytes] | None = None
    runner: web.AppRunner | None = None
    tally = Tally()
    try:
        subprocess.run([herold_command("herold"), "migrate"], env=environment, check=True, cwd=REPO)
        seeded = await seed(workdir, port)
        note_path = f"/users/alice/statuses/{seeded['post_id']}"
        note_uri = f"http://{host}{note_path}"
        alice_uri = f"http://{host}/users/alice"

        servers = [FakeServer(number, address_of(number), fake_port) for number in range(args.servers)]
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=os.cpu_count() or 2, mp_context=spawn) as pool:
            keys = [pair for chunk in pool.map(generate_keys, [1] * KEYS) for pair in chunk]
            jobs: dict[int, list[tuple[str, str, str, bytes | None]]] = {}
            bodies: dict[int, list[tuple[str, bytes]]] = {}
            for server in servers:
                like = {
                    "@context": "https://www.w3.org/ns/activitystreams",
                    "id": f"{server.actor}#likes/1",
                    "type": "Like",
                    "actor": server.actor,
                    "object": note_uri,
                }
                wanted = [("Like", json.dumps(like).encode())]
                if server.number < args.followers:
                    follow = {
                        "@context": "https://www.w3.org/ns/activitystreams",
                        "id": f"{server.actor}#follows/1",
                        "type": "Follow",
                        "actor": server.actor,
                        "object": alice_uri,
                    }
                    wanted.append(("Follow", json.dumps(follow).encode()))
                bodies[server.number] = wanted
                requests: list[tuple[str, str, str, bytes | None]] = [
                    ("GET", alice_uri, server.key_id, None),
                    ("GET", note_uri, server.key_id, None),
                ]
                requests += [("POST", f"http://{host}/inbox", server.key_id, body) for _kind, body in wanted]
                jobs.setdefault(server.number % KEYS, []).extend(requests)
            signed_lists = list(
                pool.map(sign_all, [(keys[index][0], jobs[index]) for index in range(KEYS) if index in jobs])
            )
        signed_by_key = {
            index: iter(signed) for index, signed in zip(sorted(jobs), signed_lists, strict=True)
        }

        plans = []
        for server in servers:
            signatures = signed_by_key[server.number % KEYS]
            get_actor, get_note = next(signatures), next(signatures)
            reads = [
                (
                    f"{herold}/.well-known/webfinger?resource=acct:alice@{host}",
                    {"Accept": "application/jrd+json"},
                ),
                (f"{herold}/users/alice", {**get_actor, "Accept": AS2, "Host": host}),
                (f"{herold}{note_path}", {**get_note, "Accept": AS2, "Host": host}),
            ]
            deliveries = [
                (kind, body, {**next(signatures), "Host": host}) for kind, body in bodies[server.number]
            ]
            plans.append((server, reads, deliveries))

        # Herold, and the fake servers: one listening socket per fake server's address.
        log = open(workdir / "serve.log", "wb")
        server_process = subprocess.Popen(
            [herold_command("herold"), "serve"], env=environment, cwd=REPO, stdout=log, stderr=log
        )
        by_address = {server.address: server for server in servers}
        runner = web.AppRunner(
            fake_servers_app(by_address, [pem for _private, pem in keys], tally), access_log=None
        )
        await runner.setup()
        for server in servers:
            await web.TCPSite(runner, server.address, fake_port, backlog=128).start()
        wait_answering(port)

        print(
            f"{args.servers} fake servers within {args.window:g} s, {args.followers} of them also following; "
            f"load average {', '.join(f'{value:.2f}' for value in os.getloadavg())}"
        )
        cpu_before = tree_cpu_seconds(server_process.pid)
        started = time.monotonic()
        connector = aiohttp.TCPConnector(limit=0, force_close=False)
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=120)
        ) as session:
            await asyncio.gather(
                *(
                    one_server(
                        session,
                        herold,
                        host,
                        server,
                        started + random.uniform(0, args.window),
                        [(url, {**headers, "Host": host}) for url, headers in reads],
                        deliveries,
                        tally,
                    )
                    for server, reads, deliveries in plans
                )
            )
        sending = time.monotonic() - started
        # The embedded worker processes what the inbox accepted: wait for every favourite, follow
        # and Accept, then a little longer for anything processed twice to show.
        database = workdir / "herold.db"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            likes = count(database, "select count(*) from favourite")
            follows = count(database, "select count(*) from follow")
            accepts = sum(times for (_actor, kind), times in tally.delivered.items() if kind == "Accept")
            if likes >= args.servers and follows >= args.followers and accepts >= args.followers:
                break
            await asyncio.sleep(1)
        processed = time.monotonic() - started
        await asyncio.sleep(5)
        server_cpu = tree_cpu_seconds(server_process.pid) - cpu_before
        likes = count(database, "select count(*) from favourite")
        distinct_likers = count(database, "select count(distinct account_id) from favourite")
        follows = count(database, "select count(*) from follow")
        accepts_per_follower = Counter(
            times for (_actor, kind), times in tally.delivered.items() if kind == "Accept"
        )
        accepted_followers = len([1 for (_actor, kind) in tally.delivered if kind == "Accept"])
    finally:
        if server_process is not None:
            server_process.terminate()
            try:
                server_process.wait(15)
            except subprocess.TimeoutExpired:
                server_process.kill()
        if runner is not None:
            await runner.cleanup()

    server_errors = {key: value for key, value in tally.statuses.items() if key[1] >= 500 and key[1] != 503}
    refused = {key: value for key, value in tally.statuses.items() if 400 <= key[1] < 500}
    retried = sum(value for key, value in tally.statuses.items() if key[1] == 503)
    p99 = percentile(tally.inbox_latencies_ms, 0.99)
    print(
        f"sent in {sending:.1f} s, processed after {processed:.1f} s; Herold's CPU {server_cpu:.1f} s "
        f"({server_cpu / processed * 100:.0f} % of a core)"
    )
    print(f"answers: {dict(sorted(tally.statuses.items()))}")
    print(
        f"reads p50 {percentile(tally.read_latencies_ms, 0.5):.1f} ms, p99 {percentile(tally.read_latencies_ms, 0.99):.1f} ms; "
        f"inbox p50 {percentile(tally.inbox_latencies_ms, 0.5):.1f} ms, p99 {p99:.1f} ms; "
        f"503 answered {retried} times ({tally.retries_without_retry_after} without Retry-After)"
    )
    print(
        f"accepted: {dict(tally.accepted)}, gave up: {dict(tally.gave_up)}; stored: {likes} favourites "
        f"({distinct_likers} distinct), {follows} follows; Accepts delivered to {accepted_followers} "
        f"followers (how many times each: {dict(accepts_per_follower)})"
    )
    checks = {
        "no 5xx but 503": not server_errors,
        "no 4xx": not refused,
        "503 always with Retry-After": tally.retries_without_retry_after == 0,
        "every Like and Follow accepted": tally.accepted["Like"] == args.servers
        and tally.accepted["Follow"] == args.followers
        and not tally.gave_up,
        f"inbox p99 <= {GOAL_INBOX_P99_MS:.0f} ms": p99 <= GOAL_INBOX_P99_MS,
        "each processed once": likes == distinct_likers == args.servers
        and follows == args.followers
        and set(accepts_per_follower) == {1}
        and accepted_followers == args.followers,
    }
    for name, met in checks.items():
        print(f"  {name}: {'PASS' if met else 'FAIL'}")
    if os.environ.get("BENCH_KEEP"):
        print(f"kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return all(checks.values())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--servers", type=int, default=2000)
    parser.add_argument("--followers", type=int, default=1000)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--short", action="store_true", help="200 servers, 100 followers, 10 s")
    args = parser.parse_args(argv)
    if args.short:
        args.servers, args.followers, args.window = 200, 100, 10.0
    if args.servers > 250 * 250:
        raise SystemExit("at most 62,500 fake servers (127.1.0.1 to 127.1.249.250)")
    from app.runtime import run_event_loop

    passed = run_event_loop(run(args), "auto")
    print("viral:", "PASS" if passed else "FAIL")
    if not passed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
