"""Client API reads: the home timeline (and notifications) as apps poll them, next to a ceiling.

    python bench/bench_api_timeline.py [--requests 1500] [--concurrency 32] [--database-url URL]

With --database-url (a PostgreSQL server), the data goes into a new database there, dropped at
the end; without, into SQLite in a temporary directory.

A database with 50,000 statuses by 1,000 accounts the reader follows (each in the reader's home
timeline, as fan-out put them there; one in ten followers-only, one in five with a hashtag or a
mention) and 2,000 notifications. Then two servers, each a real process:

- Herold as users run it: `herold migrate` and `herold serve` as `make run` starts them, with the
  default settings (bench.served.ServedHerold: only DATA_DIR, PORT and the database are set): on
  this machine's cores, several web processes sharing one socket and the worker in a process of
  its own;
- the ceiling: the same FastAPI app (create_app, every middleware: request ids, CORS, rate-limit
  headers, request log lines, token lookup skipped) in the same uvicorn configuration, with one
  more route that answers a fixed 40-status JSON body (taken from Herold's own home answer)
  without the database, in as many web processes as Herold's, under the same supervisor (so the
  comparison stays like for like; it has no worker, having no work).

32 concurrent clients send `GET /api/v1/timelines/home?limit=40`, `/api/v1/notifications?limit=40`
and, when the server has it, `/api/v2/notifications`, each client with its own token (the API
allows 300 requests in 5 minutes per token, as Mastodon). Rounds alternate between the ceiling
and Herold so that a noisy neighbour hurts both alike; the best round of each is shown.
Goals (issue 17): Herold's home timeline and notifications at ≥ 25 % of the ceiling's requests
per second, p99 ≤ 100 ms; each printed as PASS or FAIL.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.served import ServedHerold, process_tree

GOAL_RATIO = 0.25
GOAL_P99_MS = 100.0
STATUSES = 50_000
FOLLOWED = 1_000
NOTIFICATIONS = 2_000
HEROLD = str(Path(sys.executable).with_name("herold"))
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


def serve_ceiling(body_path: str, child: list[str]) -> None:
    """Run in a child process with the same environment as `herold serve`: with more than one web
    process (Herold's default on more than one core), a supervisor binding the socket and starting
    the web processes, each this same function with `child` (`web --listen-fd N --lifeline-fd M`)."""
    import socket

    import uvicorn
    from fastapi.responses import Response

    from app.cli import _uvicorn_config
    from app.config import load_settings
    from app.main import create_app
    from app.runtime import tune_garbage_collection

    settings = load_settings()
    if not child and settings.web_process_count > 1:
        from app.ops.supervisor import Supervisor

        config = _uvicorn_config(None, settings)
        listening = config.bind_socket()
        listening.listen(config.backlog)
        supervisor = Supervisor(
            listening,
            web_processes=settings.web_process_count,
            with_worker=False,
            setup_token="",
            command=[sys.executable, __file__, "--serve-ceiling", body_path, "--child"],
        )
        asyncio.run(supervisor.run())
        return
    app = create_app(settings)
    body = Path(body_path).read_bytes()

    @app.get("/api/v1/bench/ceiling")
    async def ceiling() -> Response:
        return Response(body, media_type="application/json")

    # The same uvicorn settings as `herold serve` (app.cli).
    server = uvicorn.Server(_uvicorn_config(app, settings))
    tune_garbage_collection()
    if not child:
        server.run()
        return
    from app.ops.supervisor import watch_lifeline

    options = dict(zip(child[1::2], child[2::2], strict=False))

    def stop() -> None:
        server.should_exit = True

    async def serve() -> None:
        watch_lifeline(int(options["--lifeline-fd"]), stop)
        await server.serve(sockets=[socket.socket(fileno=int(options["--listen-fd"]))])

    asyncio.run(serve())


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


async def _load(
    url: str, tokens: list[str], requests: int, concurrency: int, server_cpu: Callable[[], float]
) -> LoadResult:
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

        cpu_before = server_cpu()
        started = time.perf_counter()
        await asyncio.gather(
            *(
                client(tokens[index], requests // concurrency + (index < requests % concurrency))
                for index in range(concurrency)
            )
        )
        seconds = time.perf_counter() - started
        cpu = server_cpu() - cpu_before
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
    return "PASS" if met else "FAIL"


def _tree_cpu(root: int) -> Callable[[], float]:
    """The CPU so far of `root` and every process under it (web processes, worker, supervisor)."""
    return lambda: sum(stat.cpu_s for stat in process_tree([root]))


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
    parser.add_argument("--child", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_ceiling:
        serve_ceiling(args.serve_ceiling, args.child or [])
        return

    # Herold exactly as `make run` starts it: `herold migrate`, then `herold serve` with its
    # defaults (web processes chosen from the cores, the worker in a process of its own); on
    # PostgreSQL in a database of its own there, dropped at the end.
    herold = ServedHerold(database_url=args.database_url or None)
    backend = "PostgreSQL" if args.database_url else "SQLite"
    ceiling_process: subprocess.Popen[bytes] | None = None
    try:
        herold.migrate()
        print(f"seeding {STATUSES} statuses by {FOLLOWED} followed accounts ({backend})…", flush=True)
        started = time.monotonic()
        os.environ.update(herold.env)
        tokens = asyncio.run(_seed(args.tokens))
        print(f"seeded in {time.monotonic() - started:.0f} s", flush=True)
        herold.serve()
        base = herold.base_url
        from app.config import load_settings

        web_processes = load_settings().web_process_count
        pool = TokenPool(tokens)
        import httpx

        home = httpx.get(
            f"{base}/api/v1/timelines/home?limit=40",
            headers={"Authorization": f"Bearer {tokens[-1]}"},
            timeout=30,
        )
        if home.status_code != 200 or len(home.json()) != 40:
            raise SystemExit(f"home timeline: {home.status_code} {home.text[:300]}")
        body_path = herold.data_dir.parent / "ceiling.json"
        body_path.write_bytes(home.content)
        ceiling_port = _free_port()
        ceiling_log = herold.data_dir.parent / "ceiling.log"
        with ceiling_log.open("w") as log:
            ceiling_process = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "--serve-ceiling", str(body_path)],
                env=dict(herold.env, PORT=str(ceiling_port)),
                cwd=herold.data_dir.parent,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        ceiling_base = f"http://127.0.0.1:{ceiling_port}"
        _wait_http(f"{ceiling_base}/health", ceiling_process, ceiling_log)
        herold_cpu, ceiling_cpu = herold.cpu_seconds, _tree_cpu(ceiling_process.pid)
        herold_processes = herold.describe()

        endpoints = [
            ("ceiling (fixed 40-status body)", f"{ceiling_base}/api/v1/bench/ceiling?limit=40", ceiling_cpu),
            ("GET /api/v1/timelines/home", f"{base}/api/v1/timelines/home?limit=40", herold_cpu),
            ("GET /api/v1/notifications", f"{base}/api/v1/notifications?limit=40", herold_cpu),
        ]
        probe = httpx.get(
            f"{base}/api/v2/notifications?limit=40",
            headers={"Authorization": f"Bearer {tokens[-1]}"},
            timeout=30,
        )
        if probe.status_code == 200:
            endpoints.append(
                ("GET /api/v2/notifications", f"{base}/api/v2/notifications?limit=40", herold_cpu)
            )
        else:
            print(f"(/api/v2/notifications answers {probe.status_code}: not measured)")
        warmup = 200
        for _name, url, cpu in endpoints:
            asyncio.run(_load(url, pool.take(args.concurrency, warmup), warmup, args.concurrency, cpu))
        results: dict[str, list[LoadResult]] = {name: [] for name, _, _ in endpoints}
        for _round in range(args.rounds):
            for name, url, cpu in endpoints:
                tokens_now = pool.take(args.concurrency, args.requests)
                results[name].append(
                    asyncio.run(_load(url, tokens_now, args.requests, args.concurrency, cpu))
                )
        load = os.getloadavg()
    finally:
        if ceiling_process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(ceiling_process.pid, signal.SIGTERM)
            try:
                ceiling_process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(ceiling_process.pid, signal.SIGKILL)
                ceiling_process.wait()
        herold.stop()

    print(
        f"\n{args.requests} requests per round, {args.rounds} rounds alternating, best round shown; "
        f"{args.concurrency} concurrent clients; {backend}; `herold serve` with its defaults: "
        f"{web_processes} web process(es) and the worker, the ceiling in {web_processes} web process(es); "
        f"CPU of every process of each server (load average at the end: "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores)\n{herold_processes}\n"
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
    ceiling_cpu_ms = min(result.cpu_ms_per_request for result in results[endpoints[0][0]])
    for name, _url, _cpu in endpoints[1:]:
        ratio = best[name].rate / ceiling.rate
        cpu_ratio = ceiling_cpu_ms / min(result.cpu_ms_per_request for result in results[name])
        p99 = best[name].percentile(0.99)
        print(
            f"\n{name}: {ratio:.0%} of the ceiling's req/s (CPU: {cpu_ratio:.0%}) "
            f"(goal ≥ {GOAL_RATIO:.0%}: {_verdict(ratio >= GOAL_RATIO)}), "
            f"p99 {p99:.0f} ms (goal ≤ {GOAL_P99_MS:.0f} ms: {_verdict(p99 <= GOAL_P99_MS)})"
        )
    print(json.dumps({name: round(result.rate) for name, result in best.items()}))


if __name__ == "__main__":
    main()
