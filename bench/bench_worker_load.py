"""Does the worker keep up with what the inbox accepts? Measured against `herold serve`.

    python bench/bench_worker_load.py [--seconds 60] [--rate R] [--mixes mention:4,like:1 followed:4,like:1]
                                      [--strangers 800] [--followed 200] [--postgres URL] [--timeline]

`herold serve` runs as `make run` starts it (bench/served.py: embedded worker, normal INFO
logging, written to a file as journald would take it), on SQLite, or with --postgres on a new
database of that server with serve and one `herold worker`. The
database holds the organisation account @townhall, three local accounts following 200 remote
actors, and 800 more remote actors nobody follows (see bench/inbox_load.py).

For each mix of deliveries (by default Creates mentioning @townhall with Likes of its post, as
in the issue, then Creates by the followed actors with Likes):
1. the inbox's maximum rate: signed deliveries as fast as it answers, 64 at a time;
2. after the worker has drained that, deliveries at half the maximum (or --rate) for --seconds,
   open loop, while the worker's progress is read from the database every second;
3. reported: accepted/s, processed/s while the load lasted, the backlog at the end and how long
   after the end the worker caught up, notifications and timeline entries, inbox p50/p99.
The worker keeps up when the backlog at the end is under two seconds of traffic and it catches
up within 10 s. The machine's load average is printed beside the figures: on a shared machine
they move with the neighbours.

Where the worker's time goes: bench/profile_inbox_worker.py (cProfile of the worker draining a
backlog of the same deliveries).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.inbox_load import (
    Population,
    Progress,
    SendResult,
    Snapshot,
    Traffic,
    load_average,
    seed,
    send_at_rate,
    send_closed_loop,
)
from bench.served import ServedHerold

BURST = 3000
CONCURRENCY = 64
CATCH_UP_GOAL_S = 10.0


async def _sample_while(
    progress: Progress, task: asyncio.Task[SendResult], every: float = 1.0
) -> list[Snapshot]:
    samples = [await progress.snapshot()]
    while not task.done():
        await asyncio.wait({task}, timeout=every)
        samples.append(await progress.snapshot())
    return samples


async def run_mix(
    mix: str, population: Population, herold: ServedHerold, args: argparse.Namespace
) -> dict[str, float]:
    host = herold.local_domain
    url = f"{herold.base_url}/inbox"
    traffic = Traffic(population, f"http://{host}/inbox", mix, tag=f"{mix.split(':')[0]}-{int(time.time())}-")
    progress = Progress(herold.database_url)
    try:
        rate = args.rate
        maximum = float("nan")
        if rate is None:
            print(f"[{mix}] signing {BURST} deliveries for the maximum rate…", flush=True)
            burst = await asyncio.to_thread(traffic.prepare, BURST)
            result = await send_closed_loop(url, host, burst, CONCURRENCY)
            maximum = result.rate
            rate = maximum / 2
            print(
                f"[{mix}] maximum: {maximum:.0f} accepted/s ({dict(result.statuses)}), p99 "
                f"{result.percentile(0.99):.0f} ms; load average {load_average()}",
                flush=True,
            )
            before = await progress.snapshot()
            drained = await progress.wait_drained(300)
            drain_s = drained.at - before.at
            print(
                f"[{mix}] backlog of {before.queued} drained in {drain_s:.1f} s "
                f"({(drained.processed - before.processed) / max(drain_s, 0.001):.0f}/s, worker alone)",
                flush=True,
            )
        total = int(rate * args.seconds) + 1
        print(f"[{mix}] signing {total} deliveries for {args.seconds:.0f} s at {rate:.0f}/s…", flush=True)
        paced = await asyncio.to_thread(traffic.prepare, total)
        await progress.wait_drained(300)
        cpu_before = herold.cpu_seconds()
        load_before = load_average()
        sending = asyncio.create_task(send_at_rate(url, host, paced, rate, args.seconds))
        samples = await _sample_while(progress, sending)
        result = sending.result()
        cpu = herold.cpu_seconds() - cpu_before
        at_end = samples[-1]
        caught_up = await progress.wait_drained(120)
        catch_up_s = caught_up.at - at_end.at if caught_up.queued == 0 else float("inf")
        start = samples[0]
        duration = at_end.at - start.at
        processed_rate = (at_end.processed - start.processed) / duration
        # The steady part: from the tenth second on (before, the worker's batches are still small).
        steady = [s for s in samples if s.at - start.at >= min(10.0, duration / 3)]
        steady_rate = (
            (steady[-1].processed - steady[0].processed) / (steady[-1].at - steady[0].at)
            if len(steady) > 1 and steady[-1].at > steady[0].at
            else processed_rate
        )
        keeps_up = at_end.queued <= 2 * rate and catch_up_s <= CATCH_UP_GOAL_S
        print(
            f"[{mix}] {result.sent} sent at {rate:.0f}/s for {duration:.0f} s: accepted {result.rate:.0f}/s "
            f"({dict(sorted(result.statuses.items()))}{', errors ' + str(dict(result.errors)) if result.errors else ''}"
            f"{', late ' + str(result.late) if result.late else ''}), inbox p50 "
            f"{statistics.median(result.latencies_ms):.0f} ms p99 {result.percentile(0.99):.0f} ms\n"
            f"[{mix}] worker: {processed_rate:.0f} processed/s during the load ({steady_rate:.0f}/s steady); "
            f"backlog at the end {at_end.queued} (oldest {at_end.oldest_queued_s:.1f} s), caught up "
            f"{catch_up_s:.1f} s after the end (goal ≤ {CATCH_UP_GOAL_S:.0f} s): "
            f"{'KEEPS UP' if keeps_up else 'FALLS BEHIND'}\n"
            f"[{mix}] notifications {start.notifications} → {at_end.notifications} at the end → "
            f"{caught_up.notifications} caught up; timeline entries {start.timeline_entries} → "
            f"{caught_up.timeline_entries}; server CPU {cpu / duration:.0%} of a core "
            f"({cpu * 1000 / max(result.accepted, 1):.2f} ms per delivery); load average "
            f"{load_before} → {load_average()}",
            flush=True,
        )
        if args.timeline:
            for sample in samples:
                print(
                    f"    t={sample.at - start.at:5.1f}s processed={sample.processed - start.processed:6d} "
                    f"queued={sample.queued:5d} oldest={sample.oldest_queued_s:5.1f}s "
                    f"notifications={sample.notifications}"
                )
        return {
            "maximum": maximum,
            "rate": rate,
            "accepted_rate": result.rate,
            "processed_rate": processed_rate,
            "steady_rate": steady_rate,
            "backlog": at_end.queued,
            "catch_up_s": catch_up_s,
            "p99_ms": result.percentile(0.99),
            "failures": result.failures(),
        }
    finally:
        traffic.close()
        await progress.aclose()


async def main_async(args: argparse.Namespace) -> int:
    herold = ServedHerold(database_url=args.postgres, workers=1 if args.postgres else 0)
    try:
        herold.migrate()
        layout = "PostgreSQL, serve + 1 worker" if args.postgres else "SQLite, embedded worker (make run)"
        print(
            f"seeding {args.strangers} remote actors nobody follows and {args.followed} followed by 3 "
            f"local accounts ({layout})…",
            flush=True,
        )
        population = await seed(herold.settings(), args.strangers, args.followed)
        herold.serve()
        print(herold.describe(), flush=True)
        results = {}
        for mix in args.mixes:
            results[mix] = await run_mix(mix, population, herold, args)
        failed = [mix for mix, figures in results.items() if figures["failures"]]
        behind = [
            mix
            for mix, figures in results.items()
            if figures["backlog"] > 2 * figures["rate"] or figures["catch_up_s"] > CATCH_UP_GOAL_S
        ]
        print(
            f"\nsummary (load average {load_average()}): "
            + "; ".join(
                f"{mix}: {figures['accepted_rate']:.0f}/s accepted, {figures['steady_rate']:.0f}/s processed"
                for mix, figures in results.items()
            )
        )
        if failed or behind:
            print(f"falls behind: {behind or '-'}; deliveries refused: {failed or '-'}")
            return 1
        return 0
    finally:
        if args.keep_log:
            shutil.copy(herold.data_dir.parent / "serve.log", args.keep_log)
        herold.stop()


def main() -> None:
    from app.runtime import run_event_loop

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the paced phase of each mix")
    parser.add_argument("--rate", type=float, default=None, help="deliveries/s (default: half the maximum)")
    parser.add_argument("--mixes", nargs="+", default=["mention:4,like:1", "followed:4,like:1"])
    parser.add_argument("--strangers", type=int, default=800)
    parser.add_argument("--followed", type=int, default=200)
    parser.add_argument(
        "--postgres",
        default=None,
        metavar="URL",
        help="PostgreSQL server (postgresql+asyncpg://…/postgres): serve + 1 worker on a new database there",
    )
    parser.add_argument("--timeline", action="store_true", help="print the progress second by second")
    parser.add_argument("--keep-log", type=Path, default=None, help="copy the server's log here")
    args = parser.parse_args()
    sys.exit(run_event_loop(main_async(args), "auto"))


if __name__ == "__main__":
    main()
