"""Client API reads: the home timeline (and notifications) as apps poll them, next to a ceiling.

    python bench/bench_api_timeline.py [--requests 1500] [--concurrency 32] [--database-url URL]

With --database-url (a PostgreSQL server), the data goes into a new database there, dropped at
the end; without, into SQLite in a temporary directory.

A database with 50,000 statuses by 1,000 accounts the reader follows (each in the reader's home
timeline, as fan-out put them there; one in ten followers-only, one in five with a hashtag or a
mention) and 2,000 notifications. Then two servers, each a real process:

- Herold as users run it: `herold serve` in one web process (its embedded worker included), as
  the ceiling is one process;
- the ceiling: the same FastAPI app (create_app, every middleware: request ids, CORS, rate-limit
  headers, token lookup skipped) in the same uvicorn configuration, with one more route that
  answers a fixed 40-status JSON body (taken from Herold's own home answer) without the database.

32 concurrent clients send `GET /api/v1/timelines/home?limit=40`, `/api/v1/notifications?limit=40`
and, when the server has it, `/api/v2/notifications`, each client with its own token (the API
allows 300 requests in 5 minutes per token, as Mastodon). Rounds alternate between the ceiling
and Herold so that a noisy neighbour hurts both alike; the best round of each is shown.
Goals (issue 17): Herold's home timeline at ≥ 25 % of the ceiling, p99 ≤ 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.processes import cpu_seconds
from bench.served import _admin_sql

GOAL_RATIO = 0.25
GOAL_P99_MS = 100.0
STATUSES = 50_000
FOLLOWED = 1_000
NOTIFICATIONS = 2_000
HEROLD = str(Path(sys.executable).with_name("herold"))
SECRET = "bench-secret-key-long-enough-to-sign-things"
# Requests a token may make in the API's window (300 in 5 minutes), with a margin.
PER_TOKEN = 280


@dataclass(frozen=True)
class LoadResult:
    sent: int
    ok: int
    seconds: float
    latencies_ms: list[float]
    statuses: dict[int, int]
    server_cpu_s: float

    @property
    def rate(self) -> float:
        return self.ok / self.seconds

    @property
    def cpu_ms_per_request(self) -> float:
        return self.server_cpu_s * 1000 / self.sent

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def _env(workdir: Path, database_url: str, port: int) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HEROLD_", "TEST_"))}
    env.update(
        DATA_DIR=str(workdir),
        DATABASE_URL=database_url,
        SECRET_KEY=SECRET,
        LOCAL_DOMAIN=f"127.0.0.1:{port}",
        HTTPS="false",
        PORT=str(port),
        HOST="127.0.0.1",
        LOG_LEVEL="warning",
        PYTHONUNBUFFERED="1",
        # One web process, as the ceiling is one: on a 2-core machine `herold serve` would otherwise
        # start two (and a worker), and the comparison, and the CPU counted, would be of unlike things.
        WEB_PROCESSES="1",
    )
    return env


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# ------------------------------------------------------------------------------------------------
# Seeding (in this process, straight into the database the server will read)


async def _seed(tokens: int) -> list[str]:
    """Fill the database; returns `tokens` access tokens of the reader."""
    from sqlalchemy import insert, text

    from app.config import load_settings
    from app.context import build_context
    from app.models import Account, Follow, FollowState, Mention, Notification, Post, PostTag, TimelineEntry
    from app.models.base import new_ids, table_of
    from app.services.accounts import AccountService
    from app.services.oauth import OAuthService
    from app.services.timelines import ensure_tags

    context = build_context(load_settings())
    try:
        service = AccountService(context)
        await service.instance_actor()
        created = await service.create_local_account("reader", password="benchmark-password")
        reader = created.account
        now = datetime.now(UTC)
        rng = random.Random(17)
        async with context.sessions() as session:
            account_ids = new_ids(FOLLOWED)
            accounts = [
                {
                    "id": account_id,
                    "username": f"user{index}",
                    "domain": f"peer{index % 20}.example",
                    "display_name": f"User number {index}",
                    "uri": f"https://peer{index % 20}.example/users/user{index}",
                    "url": f"https://peer{index % 20}.example/@user{index}",
                    "inbox_url": f"https://peer{index % 20}.example/users/user{index}/inbox",
                    "summary_html": "<p>Writes about the town.</p>",
                    "followers_count": rng.randint(0, 5000),
                    "fetched_at": now,
                    "created_at": now - timedelta(days=400),
                }
                for index, account_id in enumerate(account_ids)
            ]
            rows = []
            for values in accounts:
                account = Account(**values)
                row = account.model_dump()
                rows.append(row)
            await session.execute(insert(table_of(Account)), rows)
            await session.execute(
                insert(table_of(Follow)),
                [
                    {
                        "id": follow_id,
                        "follower_id": reader.id,
                        "followee_id": account_id,
                        "state": FollowState.ACCEPTED,
                        "created_at": now,
                        "accepted_at": now,
                    }
                    for follow_id, account_id in zip(new_ids(FOLLOWED), account_ids, strict=True)
                ],
            )
            tag_ids = list((await ensure_tags(session, [f"topic{index}" for index in range(50)])).values())
            start = now - timedelta(days=30)
            post_ids = new_ids(STATUSES)
            posts, entries, mentions, tagged = [], [], [], []
            for index, post_id in enumerate(post_ids):
                author = rng.randrange(FOLLOWED)
                uri = f"https://peer{author % 20}.example/users/user{author}/statuses/{post_id}"
                published = start + timedelta(seconds=index * 50)
                posts.append(
                    Post(
                        id=post_id,
                        uri=uri,
                        url=uri,
                        account_id=account_ids[author],
                        local=False,
                        visibility="followers" if index % 10 == 0 else "public",
                        content_html=(
                            f"<p>Update {index} from the council: the road works on Main Street continue, "
                            f'see <a href="https://example.org/{index}">the plan</a>.</p>'
                        ),
                        language="en",
                        to=["https://www.w3.org/ns/activitystreams#Public"],
                        replies_count=rng.randint(0, 5),
                        favourites_count=rng.randint(0, 40),
                        published_at=published,
                        created_at=published,
                    ).model_dump()
                )
                entries.append({"account_id": reader.id, "post_id": post_id, "created_at": published})
                if index % 5 == 1:
                    tagged.append({"post_id": post_id, "tag_id": tag_ids[index % len(tag_ids)]})
                if index % 5 == 3:
                    mentions.append({"post_id": post_id, "account_id": account_ids[(author + 1) % FOLLOWED]})
            for values, ids in ((entries, new_ids(len(entries))), (tagged, new_ids(len(tagged)))):
                for row, row_id in zip(values, ids, strict=True):
                    row["id"] = row_id
            for row, row_id in zip(mentions, new_ids(len(mentions)), strict=True):
                row["id"] = row_id
            for chunk in range(0, len(posts), 5000):
                await session.execute(insert(table_of(Post)), posts[chunk : chunk + 5000])
            for chunk in range(0, len(entries), 5000):
                await session.execute(insert(table_of(TimelineEntry)), entries[chunk : chunk + 5000])
            await session.execute(insert(table_of(PostTag)), tagged)
            await session.execute(insert(table_of(Mention)), mentions)
            kinds = ["favourite", "mention", "reblog", "follow"]
            notifications = []
            for index, notification_id in enumerate(new_ids(NOTIFICATIONS)):
                kind = kinds[index % len(kinds)]
                notifications.append(
                    {
                        "id": notification_id,
                        "account_id": reader.id,
                        "from_account_id": account_ids[rng.randrange(FOLLOWED)],
                        "type": kind,
                        "post_id": None if kind == "follow" else post_ids[-1 - index * 7],
                        "created_at": now,
                    }
                )
            await session.execute(insert(table_of(Notification)), notifications)
            await session.commit()
        if context.settings.database_url.startswith("postgresql"):
            # Autovacuum analyzes a table this size within a minute of the load; without statistics
            # the planner guesses 250 timeline entries and sorts all 50,000 of them.
            async with context.engine.connect() as connection:
                await connection.execute(text("ANALYZE"))
                await connection.commit()
        user = created.user
        oauth = OAuthService(context)
        return [
            await oauth.issue_personal_token(
                user, scopes="read write", app_name=f"bench {index}", acting_as=reader
            )
            for index in range(tokens)
        ]
    finally:
        await context.aclose()


# ------------------------------------------------------------------------------------------------
# The ceiling: Herold's own app, with a route that answers a fixed body


def serve_ceiling(body_path: str) -> None:
    """Run in a child process with the same environment as `herold serve`."""
    import uvicorn
    from fastapi.responses import Response

    from app.config import load_settings
    from app.main import create_app
    from app.runtime import tune_garbage_collection

    settings = load_settings()
    app = create_app(settings)
    body = Path(body_path).read_bytes()

    @app.get("/api/v1/bench/ceiling")
    async def ceiling() -> Response:
        return Response(body, media_type="application/json")

    # The same uvicorn settings as cmd_serve.
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1,::1",
        server_header=False,
    )
    tune_garbage_collection()
    uvicorn.Server(config).run()


def _wait_http(url: str, process: subprocess.Popen[bytes], log: Path, deadline: float = 180.0) -> None:
    import httpx

    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if process.poll() is not None:
            raise SystemExit(f"the server exited early:\n{log.read_text()[-3000:]}")
        try:
            httpx.get(url, timeout=2.0)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer")


# ------------------------------------------------------------------------------------------------
# Load


async def _load(url: str, tokens: list[str], requests: int, concurrency: int, server_pid: int) -> LoadResult:
    import aiohttp

    latencies: list[float] = []
    statuses: dict[int, int] = {}
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client(token: str, quota: int) -> None:
            # A fixed share per client (its token's), not a shared counter: a fast client would
            # otherwise spend more than its token has left in the rate-limit window and meet 429s.
            headers = {"Authorization": f"Bearer {token}"}
            for _ in range(quota):
                started = time.perf_counter()
                async with session.get(url, headers=headers) as response:
                    await response.read()
                    statuses[response.status] = statuses.get(response.status, 0) + 1
                latencies.append((time.perf_counter() - started) * 1000)

        cpu_before = cpu_seconds(server_pid)
        started = time.perf_counter()
        await asyncio.gather(
            *(
                client(tokens[index], requests // concurrency + (index < requests % concurrency))
                for index in range(concurrency)
            )
        )
        seconds = time.perf_counter() - started
        cpu = cpu_seconds(server_pid) - cpu_before
    return LoadResult(requests, statuses.get(200, 0), seconds, latencies, statuses, cpu)


class TokenPool:
    """Hands out `concurrency` tokens with enough requests left in their rate-limit window."""

    def __init__(self, tokens: list[str]) -> None:
        self.left = dict.fromkeys(tokens, PER_TOKEN)

    def take(self, concurrency: int, requests: int) -> list[str]:
        each = -(-requests // concurrency) + 1
        chosen = [token for token, left in self.left.items() if left >= each][:concurrency]
        if len(chosen) < concurrency:
            raise SystemExit("not enough tokens left for this round; raise --tokens")
        for token in chosen:
            self.left[token] -= each
        return chosen


def _row(name: str, best: LoadResult, results: list[LoadResult]) -> str:
    cpu = min(result.cpu_ms_per_request for result in results)
    return (
        f"{name:<34} {best.rate:>8.0f} {statistics.median(best.latencies_ms):>8.1f} "
        f"{best.percentile(0.99):>8.1f} {cpu:>11.2f}  {', '.join(f'{result.rate:.0f}' for result in results)}"
    )


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--requests", type=int, default=1500, help="requests per round and endpoint")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=160, help="access tokens to spread the rate limit over")
    parser.add_argument(
        "--database-url",
        default="",
        help="a PostgreSQL server (postgresql+asyncpg://user@host:port/db) to fill a new database on, "
        "dropped at the end (default: SQLite in a temporary dir)",
    )
    parser.add_argument("--serve-ceiling", metavar="BODY", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_ceiling:
        serve_ceiling(args.serve_ceiling)
        return

    workdir = Path(tempfile.mkdtemp(prefix="herold-bench-api-"))
    port, ceiling_port = _free_port(), _free_port()
    # On PostgreSQL, a database of its own on the server named (dropped at the end): the one named
    # may hold other data, and the reader's username must be free.
    scratch_database = f"herold_bench_api_{uuid.uuid4().hex[:12]}" if args.database_url else None
    if scratch_database is not None:
        _admin_sql(args.database_url, f'CREATE DATABASE "{scratch_database}"')
        database_url = args.database_url.rsplit("/", 1)[0] + f"/{scratch_database}"
    else:
        database_url = f"sqlite+aiosqlite:///{workdir / 'herold.db'}"
    backend = "PostgreSQL" if database_url.startswith("postgresql") else "SQLite"
    env = _env(workdir, database_url, port)
    servers: list[subprocess.Popen[bytes]] = []
    try:
        migrated = subprocess.run([HEROLD, "migrate"], env=env, capture_output=True, text=True, check=False)
        if migrated.returncode != 0:
            raise SystemExit(f"herold migrate failed:\n{migrated.stderr}")
        print(f"seeding {STATUSES} statuses by {FOLLOWED} followed accounts ({backend})…", flush=True)
        started = time.monotonic()
        os.environ.update(env)
        tokens = asyncio.run(_seed(args.tokens))
        print(f"seeded in {time.monotonic() - started:.0f} s", flush=True)

        herold_log = workdir / "serve.log"
        with herold_log.open("w") as log:
            servers.append(subprocess.Popen([HEROLD, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT))
        base = f"http://127.0.0.1:{port}"
        _wait_http(f"{base}/health", servers[0], herold_log)
        pool = TokenPool(tokens)
        import httpx

        home = httpx.get(
            f"{base}/api/v1/timelines/home?limit=40",
            headers={"Authorization": f"Bearer {tokens[-1]}"},
            timeout=30,
        )
        if home.status_code != 200 or len(home.json()) != 40:
            raise SystemExit(f"home timeline: {home.status_code} {home.text[:300]}")
        body_path = workdir / "ceiling.json"
        body_path.write_bytes(home.content)
        ceiling_env = dict(env, PORT=str(ceiling_port), EMBEDDED_WORKER="false")
        ceiling_log = workdir / "ceiling.log"
        with ceiling_log.open("w") as log:
            servers.append(
                subprocess.Popen(
                    [sys.executable, __file__, "--serve-ceiling", str(body_path)],
                    env=ceiling_env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        ceiling_base = f"http://127.0.0.1:{ceiling_port}"
        _wait_http(f"{ceiling_base}/health", servers[1], ceiling_log)
        herold_pid, ceiling_pid = servers[0].pid, servers[1].pid

        endpoints = [
            ("ceiling (fixed 40-status body)", f"{ceiling_base}/api/v1/bench/ceiling?limit=40", ceiling_pid),
            ("GET /api/v1/timelines/home", f"{base}/api/v1/timelines/home?limit=40", herold_pid),
            ("GET /api/v1/notifications", f"{base}/api/v1/notifications?limit=40", herold_pid),
        ]
        probe = httpx.get(
            f"{base}/api/v2/notifications?limit=40",
            headers={"Authorization": f"Bearer {tokens[-1]}"},
            timeout=30,
        )
        if probe.status_code == 200:
            endpoints.append(
                ("GET /api/v2/notifications", f"{base}/api/v2/notifications?limit=40", herold_pid)
            )
        else:
            print(f"(/api/v2/notifications answers {probe.status_code}: not measured)")
        warmup = 200
        for _name, url, pid in endpoints:
            asyncio.run(_load(url, pool.take(args.concurrency, warmup), warmup, args.concurrency, pid))
        results: dict[str, list[LoadResult]] = {name: [] for name, _, _ in endpoints}
        for _round in range(args.rounds):
            for name, url, pid in endpoints:
                tokens_now = pool.take(args.concurrency, args.requests)
                results[name].append(
                    asyncio.run(_load(url, tokens_now, args.requests, args.concurrency, pid))
                )
        load = os.getloadavg()
    finally:
        for server in servers:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
        shutil.rmtree(workdir, ignore_errors=True)
        if scratch_database is not None:
            _admin_sql(args.database_url, f'DROP DATABASE IF EXISTS "{scratch_database}" WITH (FORCE)')

    print(
        f"\n{args.requests} requests per round, {args.rounds} rounds alternating, best round shown; "
        f"{args.concurrency} concurrent clients; {backend}; one `herold serve` process "
        f"(load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores)\n"
    )
    print(f"{'endpoint':<34} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'CPU ms/req':>11}  all rounds (req/s)")
    best = {name: max(rounds, key=lambda result: result.rate) for name, rounds in results.items()}
    for name, rounds in results.items():
        print(_row(name, best[name], rounds))
        bad = {
            status: count for result in rounds for status, count in result.statuses.items() if status != 200
        }
        if bad:
            print(f"  answers other than 200: {bad}")
    ceiling = best[endpoints[0][0]]
    for name, _url, _pid in endpoints[1:]:
        ratio = best[name].rate / ceiling.rate
        p99 = best[name].percentile(0.99)
        print(
            f"\n{name}: {ratio:.0%} of the ceiling (goal ≥ {GOAL_RATIO:.0%}: {_verdict(ratio >= GOAL_RATIO)}), "
            f"p99 {p99:.0f} ms (goal ≤ {GOAL_P99_MS:.0f} ms: {_verdict(p99 <= GOAL_P99_MS)})"
        )
    print(json.dumps({name: round(result.rate) for name, result in best.items()}))


if __name__ == "__main__":
    main()
