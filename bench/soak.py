"""The soak: `herold serve` as `make run` starts it, under steady federation traffic for minutes.

    python bench/soak.py [--minutes 10] [--rate R] [--mix mention:2,followed:2,like:1]
                         [--fanout-every 30] [--followers 1000] [--postgres URL]     (make soak)

What runs against it (bench/served.py starts it: SQLite, embedded worker, INFO logging; or with
--postgres serve and one `herold worker` on a new database of that server):
- signed inbox deliveries at half the inbox's maximum (measured first, with a burst of 3,000) or
  at --rate, open loop: Creates mentioning the organisation account @townhall from 800 known
  actors, Creates by 200 actors three local accounts follow, Likes (bench/inbox_load.py);
- every --fanout-every seconds `herold post` by an account followed from --followers distinct
  hosts (127.x.y.z, one sink process answering 202 and counting what each host received);
- two timeline reads a second, from ten loopback addresses in turn: the client API's public
  timeline and the /local page.

Reported, with the goals of issue 21: errors (any answer but 202 from the inbox or 200 from a
read, a failed `herold post`, a post that reached a host other than exactly once; goal 0), RSS of
the server's whole process tree after the warm-up (the first minute, or a fifth of a shorter run)
and at the end (goal: within ±10 %), inbox p99 (goal ≤ 100 ms), how long after the end the worker
had processed everything received (so every notification exists; goal ≤ 10 s), and the delivery
queue drained. The load average is printed beside the figures: the rates of a shared machine move
with its neighbours.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.inbox_load import (
    Progress,
    SendResult,
    Traffic,
    client_session,
    load_average,
    seed,
    send_at_rate,
    send_closed_loop,
)
from bench.served import ServedHerold
from bench.served_fanout import SinkProcess
from bench.served_fanout import seed as seed_followers

BURST = 3000
CONCURRENCY = 64
P99_GOAL_MS = 100.0
RSS_GOAL = 0.10
CATCH_UP_GOAL_S = 10.0
READS_PER_SECOND = 2.0
READERS = 10
FANOUT_AUTHOR = "herold"  # the account bench/served_fanout.py's seed gives --followers followers


@dataclass
class Reads:
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)


@dataclass
class Fanouts:
    made: int = 0
    failed: list[str] = field(default_factory=list)


async def read_timelines(herold: ServedHerold, seconds: float, reads: Reads) -> None:
    paths = ["/api/v1/timelines/public?limit=20", "/local"]
    headers = {"Host": herold.local_domain}
    # The readers of a real server are many people: the reads come from READERS loopback
    # addresses in turn, so that the per-address limit for anonymous API calls (300 in 5 minutes,
    # as Mastodon's) sees each reader's share, not one address asking 600 times.
    async with contextlib.AsyncExitStack() as stack:
        sessions = [
            await stack.enter_async_context(client_session(2, f"127.0.9.{reader + 1}"))
            for reader in range(READERS)
        ]
        started = time.perf_counter()
        number = 0
        while time.perf_counter() - started < seconds:
            path = paths[number % len(paths)]
            session = sessions[number // len(paths) % READERS]
            number += 1
            began = time.perf_counter()
            try:
                async with session.get(f"{herold.base_url}{path}", headers=headers) as response:
                    await response.read()
                    reads.statuses[response.status] += 1
                reads.latencies_ms.append((time.perf_counter() - began) * 1000)
            except Exception as error:  # counted, not raised: the soak reports every failure
                reads.errors[type(error).__name__] += 1
            await asyncio.sleep(max(0.0, started + number / READS_PER_SECOND - time.perf_counter()))


async def fan_out(herold: ServedHerold, seconds: float, every: float, fanouts: Fanouts) -> None:
    started = time.perf_counter()
    while time.perf_counter() - started + every <= seconds + 1:
        due = started + fanouts.made * every
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        fanouts.made += 1
        command = herold.cli_process("post", FANOUT_AUTHOR, f"Soak post {fanouts.made} for every follower")
        _out, err = await asyncio.to_thread(command.communicate)
        if command.returncode != 0:
            fanouts.failed.append(err.decode(errors="replace")[-300:])
        if time.perf_counter() - started + every > seconds:
            return


async def watch(
    herold: ServedHerold, progress: Progress, seconds: float, rss: list[tuple[float, int]]
) -> None:
    started = time.perf_counter()
    next_report = 0.0
    while (elapsed := time.perf_counter() - started) < seconds:
        rss.append((elapsed, herold.rss()))
        if elapsed >= next_report:
            snapshot = await progress.snapshot()
            print(
                f"  {elapsed:5.0f} s: RSS {rss[-1][1] / 2**20:6.1f} MB, inbox backlog {snapshot.queued} "
                f"(oldest {snapshot.oldest_queued_s:.1f} s), notifications {snapshot.notifications}, "
                f"load average {load_average()}",
                flush=True,
            )
            next_report += 30
        await asyncio.sleep(2.0)


async def delivery_queue(progress: Progress) -> int:
    from sqlalchemy import text

    async with progress.engine.connect() as connection:
        queued = await connection.execute(text("SELECT count(*) FROM delivery_job WHERE state = 'queued'"))
        return int(queued.scalar() or 0)


async def delivery_failures(progress: Progress) -> int:
    from sqlalchemy import text

    async with progress.engine.connect() as connection:
        failed = await connection.execute(text("SELECT count(*) FROM delivery_job WHERE state = 'failed'"))
        return int(failed.scalar() or 0)


def verdict(met: bool) -> str:
    return "met" if met else "MISSED"


async def soak(args: argparse.Namespace) -> int:
    seconds = args.minutes * 60
    sink = SinkProcess()
    herold = ServedHerold(
        database_url=args.postgres,
        workers=1 if args.postgres else 0,
        env={"ALLOWED_PRIVATE_ADDRESSES": "127.0.0.0/8"},
    )
    layout = "PostgreSQL, serve + 1 worker" if args.postgres else "SQLite, embedded worker (make run)"
    try:
        herold.migrate()
        print(f"seeding ({layout})…", flush=True)
        population = await seed(herold.settings(), 800, 200)
        await seed_followers(herold.settings(), sink.port, args.followers)
        herold.serve()
        print(herold.describe(), flush=True)
        host = herold.local_domain
        url = f"{herold.base_url}/inbox"
        progress = Progress(herold.database_url)
        traffic = Traffic(population, f"http://{host}/inbox", args.mix, tag=f"soak-{int(time.time())}-")
        try:
            rate = args.rate
            if rate is None:
                print(f"the inbox's maximum: {BURST} deliveries, {CONCURRENCY} at a time…", flush=True)
                burst = await asyncio.to_thread(traffic.prepare, BURST)
                maximum = await send_closed_loop(url, host, burst, CONCURRENCY)
                rate = maximum.rate / 2
                print(
                    f"  {maximum.rate:.0f} accepted/s ({dict(maximum.statuses)}); the soak runs at {rate:.0f}/s; "
                    f"load average {load_average()}",
                    flush=True,
                )
                await progress.wait_drained(300)
            sink.reset()
            print(
                f"soak: {args.minutes:g} min, inbox at {rate:.0f}/s ({args.mix}), a post to {args.followers} "
                f"inboxes every {args.fanout_every:g} s, {READS_PER_SECOND:g} timeline reads/s",
                flush=True,
            )
            reads, fanouts, rss = Reads(), Fanouts(), []
            sending = asyncio.create_task(send_at_rate(url, host, traffic.stream(), rate, seconds))
            others = asyncio.gather(
                read_timelines(herold, seconds, reads),
                fan_out(herold, seconds, args.fanout_every, fanouts),
                watch(herold, progress, seconds, rss),
            )
            inbox: SendResult = await sending
            ended = time.monotonic()
            await others
            at_end = await progress.snapshot()
            caught_up = await progress.wait_drained(300)
            catch_up_s = caught_up.at - ended if caught_up.queued == 0 else float("inf")
            deliveries_left = await delivery_queue(progress)
            drain_deadline = time.monotonic() + 300
            while deliveries_left and time.monotonic() < drain_deadline:
                await asyncio.sleep(1)
                deliveries_left = await delivery_queue(progress)
            failed_deliveries = await delivery_failures(progress)
        finally:
            traffic.close()
        counts = sink.counts()
        wrong_hosts = sum(
            1
            for number in range(args.followers)
            if counts.get(_fanout_host(number, sink.port), 0) != fanouts.made
        )
        warm = [(at, value) for at, value in rss if at >= min(60.0, seconds / 5)]
        rss_start = warm[0][1] if warm else rss[0][1]
        rss_end = rss[-1][1]
        rss_change = (rss_end - rss_start) / rss_start
        read_failures = sum(n for status, n in reads.statuses.items() if status != 200) + sum(
            reads.errors.values()
        )
        errors = inbox.failures() + read_failures + len(fanouts.failed) + wrong_hosts + failed_deliveries
        p99 = inbox.percentile(0.99)
        print(
            f"\nsoak of {args.minutes:g} min on {layout}, load average at the end {load_average()}:\n"
            f"  inbox: {inbox.sent} sent at {rate:.0f}/s, {inbox.accepted} accepted "
            f"({dict(sorted(inbox.statuses.items()))}{', no answer ' + str(dict(inbox.errors)) if inbox.errors else ''}"
            f"{', ' + str(inbox.late) + ' started late' if inbox.late else ''}); p50 "
            f"{statistics.median(inbox.latencies_ms):.0f} ms, p99 {p99:.0f} ms\n"
            f"  reads: {sum(reads.statuses.values())} ({dict(reads.statuses)}{', no answer ' + str(dict(reads.errors)) if reads.errors else ''}), "
            f"p99 {_percentile(reads.latencies_ms, 0.99):.0f} ms\n"
            f"  fan-outs: {fanouts.made} posts to {args.followers} inboxes, {len(fanouts.failed)} failed to post, "
            f"{wrong_hosts} hosts without exactly one copy of each, {failed_deliveries} deliveries given up\n"
            f"  worker: backlog at the end {at_end.queued} (oldest {at_end.oldest_queued_s:.1f} s); everything "
            f"processed {catch_up_s:.1f} s after the end; notifications {at_end.notifications} at the end, "
            f"{caught_up.notifications} then; delivery queue left {deliveries_left}\n"
            f"  RSS of the server's processes: {rss_start / 2**20:.1f} MB after the warm-up, "
            f"{rss_end / 2**20:.1f} MB at the end ({rss_change:+.1%})\n"
        )
        goals = [
            (f"errors: {errors} (goal 0)", errors == 0),
            (f"inbox p99: {p99:.0f} ms (goal ≤ {P99_GOAL_MS:.0f} ms)", p99 <= P99_GOAL_MS),
            (f"RSS: {rss_change:+.1%} (goal within ±{RSS_GOAL:.0%})", abs(rss_change) <= RSS_GOAL),
            (
                f"caught up: {catch_up_s:.1f} s after the end (goal ≤ {CATCH_UP_GOAL_S:.0f} s)",
                catch_up_s <= CATCH_UP_GOAL_S,
            ),
            (f"delivery queue drained: {deliveries_left} left (goal 0)", deliveries_left == 0),
        ]
        for text, met in goals:
            print(f"  {text}: {verdict(met)}")
        await progress.aclose()
        return 0 if all(met for _text, met in goals) else 1
    finally:
        herold.stop()
        sink.stop()


def _fanout_host(number: int, port: int) -> str:
    from bench.bench_fanout import host_for

    return f"{host_for(number)}:{port}"


def _percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def main() -> None:
    from app.runtime import run_event_loop

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument(
        "--rate", type=float, default=None, help="inbox deliveries/s (default: half the maximum)"
    )
    parser.add_argument("--mix", default="mention:2,followed:2,like:1")
    parser.add_argument("--fanout-every", type=float, default=30.0, help="seconds between posts")
    parser.add_argument("--followers", type=int, default=1000, help="hosts each post is delivered to")
    parser.add_argument(
        "--postgres",
        default=None,
        metavar="URL",
        help="PostgreSQL server (postgresql+asyncpg://…/postgres): serve + 1 worker on a new database there",
    )
    args = parser.parse_args()
    sys.exit(run_event_loop(soak(args), "auto"))


if __name__ == "__main__":
    main()
