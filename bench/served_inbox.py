"""Inbox under mixed load, against `herold serve` as `make run` starts it (bench/served.py).

    python -m bench served-inbox [--requests 3000] [--concurrency 64] [--runs 1] [--postgres]

3,000 distinct signed Creates (of Notes by accounts a local user follows, mentioning her) and Likes
(of her post) from 16 remote actors on 4 fake servers, sent at 64 concurrent connections to the
shared inbox while the server's worker processes what arrives: posts into her home timeline,
mentions and likes into her notifications. Measured in the same run:

- the ceiling: a bare endpoint in a process of its own that only reads the body, checks the
  Digest and verifies the RSA signature (bench/bench_inbox.py's), before and after Herold's round
  (the mean); the same requests, the same client, the same concurrency;
- Herold: accepted/s, p50/p99 latency, and the time from the burst's last answer until nothing
  is left unprocessed (the backlog drained);
- the CPU of every process of the server over burst and drain, per request.

Goals (issue 16): accepted/s >= 45 % of the ceiling, p99 <= 50 ms, drained <= 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.bench_inbox import Prepared, _prepare, _public_pems, _run_server, _seed, _serve_ceiling
from bench.served import Profiler, deployment, free_port, layout_name, read_stat
from bench.verdicts import Verdicts, extra_env, load_average

GOAL_RATIO = 0.45
GOAL_P99_MS = 50.0
GOAL_DRAIN_S = 2.0
WARMUP_REQUESTS = 300
POSTGRES_DEFAULT = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


@dataclass
class Burst:
    sent: int
    seconds: float
    latencies_ms: list[float]
    statuses: dict[int, int]
    # CPU of the server's processes while the burst lasted.
    server_cpu_s: float = 0.0
    # The same by what the processes do (web, worker, signer).
    by_role: dict[str, float] = field(default_factory=dict)

    @property
    def accepted(self) -> int:
        return self.statuses.get(202, 0)

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


@dataclass
class InboxRun:
    layout: str
    ceiling_rates: list[float]
    # The ceiling's own latency (the worse of its two rounds): what the machine allows right now.
    ceiling_p99_ms: float
    # CPU per request of the ceiling's process (the lesser of its two rounds).
    ceiling_cpu_ms: float
    # What the server logged at WARNING and above during the run.
    warnings: list[str]
    herold: Burst
    drain_s: float
    cpu_s: float
    processed: int
    notifications: int
    timeline_entries: int
    rss_mb: float
    processes: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ceiling(self) -> float:
        return statistics.mean(self.ceiling_rates)

    @property
    def ratio(self) -> float:
        return self.herold.rate / self.ceiling


async def send(port: int, host: str, requests: list[Prepared], concurrency: int) -> Burst:
    """POST every request to /inbox on `port` over `concurrency` kept-alive connections."""
    import aiohttp

    url = f"http://127.0.0.1:{port}/inbox"
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    position = 0
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            nonlocal position
            while position < len(requests):
                prepared = requests[position]
                position += 1
                started = time.perf_counter()
                async with session.post(
                    url, data=prepared.body, headers={**prepared.headers, "Host": host}
                ) as response:
                    await response.read()
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[response.status] = statuses.get(response.status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return Burst(len(requests), seconds, latencies, statuses)


class Backlog:
    """What the server has not processed yet, read from its database beside it."""

    def __init__(self, database_url: str) -> None:
        from sqlalchemy.ext.asyncio import create_async_engine
        from sqlalchemy.pool import NullPool

        # No pool: the benchmark reads it from more than one event loop (asyncio.run each time).
        self.engine = create_async_engine(database_url, poolclass=NullPool)

    async def scalar(self, sql: str) -> int:
        from sqlalchemy import text

        async with self.engine.connect() as connection:
            return int((await connection.execute(text(sql))).scalar() or 0)

    async def unprocessed(self) -> int:
        return await self.scalar("SELECT count(*) FROM inbox_item WHERE state = 'queued'")

    async def wait_drained(self, timeout: float = 120.0) -> float:
        started = time.perf_counter()
        while await self.unprocessed():
            if time.perf_counter() - started > timeout:
                raise RuntimeError(f"the inbox backlog was not drained within {timeout:.0f} s")
            await asyncio.sleep(0.01)
        return time.perf_counter() - started

    async def aclose(self) -> None:
        await self.engine.dispose()


def _ceiling(port: int, host: str, requests: list[Prepared], concurrency: int, pid: int) -> Burst:
    cpu_before = _cpu_of(pid)
    burst = asyncio.run(send(port, host, requests, concurrency))
    burst.server_cpu_s = _cpu_of(pid) - cpu_before
    if burst.accepted != burst.sent:
        raise RuntimeError(f"the ceiling refused requests: {burst.statuses}")
    return burst


def _cpu_of(pid: int) -> float:
    stat = read_stat(pid)
    return stat.cpu_s if stat else 0.0


def run_once(
    requests: int,
    concurrency: int,
    actors: int,
    database_url: str | None,
    log: Callable[[str], None],
    profile: Path | None = None,
    env: dict[str, str] | None = None,
) -> InboxRun:
    layout = layout_name(database_url)
    herold = deployment(database_url, env=env)
    ceiling_server: Any = None
    try:
        herold.migrate()
        settings = herold.settings()
        alice, post_uri, signers = asyncio.run(_seed(settings, actors))
        host = herold.local_domain
        log(f"signing {requests + WARMUP_REQUESTS} activities from {len(signers)} actors…")
        prepared = _prepare(f"http://{host}/inbox", requests + WARMUP_REQUESTS, alice, post_uri, signers)
        warmup, measured = prepared[:WARMUP_REQUESTS], prepared[WARMUP_REQUESTS:]
        ceiling_port = free_port()
        ceiling_server = _run_server(_serve_ceiling, (ceiling_port, _public_pems(signers)))
        herold.serve()
        backlog = Backlog(herold.database_url)

        async def herold_round(batch: list[Prepared]) -> tuple[Burst, float, float]:
            cpu_before, roles_before = herold.cpu_seconds(), herold.cpu_by_role()
            burst = await send(herold.port, host, batch, concurrency)
            burst.server_cpu_s = herold.cpu_seconds() - cpu_before
            burst.by_role = {
                role: seconds - roles_before.get(role, 0.0) for role, seconds in herold.cpu_by_role().items()
            }
            drain_s = await backlog.wait_drained()
            return burst, drain_s, herold.cpu_seconds() - cpu_before

        # Warm-up, not measured: first-use costs of both servers (imports, caches, connections).
        _ceiling(ceiling_port, host, warmup, concurrency, ceiling_server.pid)
        asyncio.run(herold_round(warmup))
        ceilings = [_ceiling(ceiling_port, host, measured, concurrency, ceiling_server.pid)]
        profiler = Profiler(herold, profile) if profile else None
        if profiler:
            profiler.start()
        burst, drain_s, cpu_s = asyncio.run(herold_round(measured))
        if profiler:
            log(profiler.stop())
        ceilings.append(_ceiling(ceiling_port, host, measured, concurrency, ceiling_server.pid))

        async def counts() -> tuple[int, int, int]:
            try:
                return (
                    await backlog.scalar("SELECT count(*) FROM inbox_item WHERE state = 'done'"),
                    await backlog.scalar("SELECT count(*) FROM notification"),
                    await backlog.scalar("SELECT count(*) FROM timeline_entry"),
                )
            finally:
                await backlog.aclose()

        processed, notifications, timeline = asyncio.run(counts())
        return InboxRun(
            layout=layout,
            ceiling_rates=[ceiling.rate for ceiling in ceilings],
            ceiling_cpu_ms=min(ceiling.server_cpu_s for ceiling in ceilings) * 1000 / len(measured),
            ceiling_p99_ms=max(ceiling.percentile(0.99) for ceiling in ceilings),
            warnings=[
                line for line in herold.log_text().splitlines() if " WARNING " in line or " ERROR " in line
            ],
            herold=burst,
            drain_s=drain_s,
            cpu_s=cpu_s,
            processed=processed,
            notifications=notifications,
            timeline_entries=timeline,
            rss_mb=herold.rss() / 2**20,
            processes=len(herold.pids()),
        )
    finally:
        if ceiling_server is not None:
            ceiling_server.terminate()
            ceiling_server.join()
        herold.stop()


def report(run: InboxRun, verdicts: Verdicts) -> None:
    burst = run.herold
    print(f"\n{run.layout}: {burst.sent} signed POSTs at {run.processes} server processes")
    print(
        f"  ceiling (Digest + RSA verify only): {run.ceiling:,.0f}/s "
        f"(before {run.ceiling_rates[0]:,.0f}, after {run.ceiling_rates[1]:,.0f}), p99 {run.ceiling_p99_ms:.1f} ms"
    )
    print(
        f"  Herold /inbox: {burst.rate:,.0f} accepted/s, p50 {statistics.median(burst.latencies_ms):.1f} ms, "
        f"p99 {burst.percentile(0.99):.1f} ms, answers {dict(sorted(burst.statuses.items()))}"
    )
    print(
        f"  worker: backlog drained {run.drain_s:.2f} s after the burst; {run.processed:,} items processed "
        f"in all, {run.notifications:,} notifications, {run.timeline_entries:,} timeline entries"
    )
    print(
        f"  CPU of all server processes over burst and drain: {run.cpu_s:.2f} s = "
        f"{run.cpu_s * 1000 / burst.sent:.2f} ms per activity; RSS {run.rss_mb:.0f} MB"
    )
    # Rates depend on how much of the machine each side gets; CPU per request much less so.
    web_ms = burst.by_role.get("web", 0.0) * 1000 / burst.sent
    print(
        f"  CPU per request: ceiling {run.ceiling_cpu_ms:.2f} ms; Herold's web processes {web_ms:.2f} ms during the "
        f"burst ({run.ceiling_cpu_ms / web_ms if web_ms else 0:.0%} of the ceiling's rate per core), "
        f"all its processes {run.cpu_s * 1000 / burst.sent:.2f} ms with the worker's processing; during the burst by role: "
        + ", ".join(f"{role} {seconds:.2f} s" for role, seconds in sorted(burst.by_role.items()))
    )
    if run.warnings:
        print(f"  the server logged {len(run.warnings)} warnings or errors, first ones:")
        for line in run.warnings[:5]:
            print(f"    {line[:300]}")
    verdicts.check(f"inbox {run.layout}: accepted/s vs ceiling", run.ratio, ">=", GOAL_RATIO, "{:.0%}")
    verdicts.check(f"inbox {run.layout}: p99 ms", burst.percentile(0.99), "<=", GOAL_P99_MS, "{:.1f}")
    verdicts.check(f"inbox {run.layout}: drained after burst, s", run.drain_s, "<=", GOAL_DRAIN_S, "{:.2f}")
    verdicts.check(f"inbox {run.layout}: all accepted", burst.accepted, ">=", burst.sent, "{:.0f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench served-inbox",
        description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--actors", type=int, default=16, help="distinct remote signers")
    parser.add_argument("--runs", type=int, default=1, help="independent runs, each on a fresh server")
    parser.add_argument("--short", action="store_true", help="a quick check: 600 requests")
    parser.add_argument(
        "--postgres",
        nargs="?",
        const=POSTGRES_DEFAULT,
        metavar="URL",
        help=f"the PostgreSQL layout (one web process, one `herold worker`), on a new database of "
        f"that server (default {POSTGRES_DEFAULT})",
    )
    parser.add_argument(
        "--profile",
        nargs="?",
        const="bench-profile",
        type=Path,
        metavar="DIR",
        help="py-spy every server process during the measured burst and drain (slows them: figures not "
        "comparable); collapsed stacks in DIR and a summary",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the server beyond the defaults, to compare (e.g. LOG_LEVEL=warning); repeatable",
    )
    args = parser.parse_args(argv)
    if args.short:
        args.requests = min(args.requests, 600)
    verdicts = Verdicts()
    print(f"served inbox; {os.cpu_count()} cores, load average {load_average()}", flush=True)
    for _ in range(args.runs):
        run = run_once(
            args.requests,
            args.concurrency,
            args.actors,
            args.postgres,
            lambda line: print(line, flush=True),
            args.profile,
            extra_env(args.env),
        )
        report(run, verdicts)
    print(f"load average after: {load_average()}")
    return verdicts.summary()


if __name__ == "__main__":
    raise SystemExit(main())
