"""Does the embedded worker keep up with what the inbox accepts? Measured against `herold serve`.

    python bench/bench_worker_load.py [--seconds 60] [--rate R] [--mixes mention:4,like:1 followed:4,like:1]
                                      [--strangers 800] [--followed 200] [--database-url URL] [--profile FILE]

`herold serve` runs as `make run` starts it (embedded worker, normal INFO logging, written to a
file as journald would take it), on SQLite unless --database-url names an empty database. The
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

--profile FILE runs the server under cProfile (bench/profiled_serve.py) and writes its profile to
FILE when it stops (`python -m pstats FILE`); the rates drop, the proportions are what count.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
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
from bench.processes import cpu_seconds

BURST = 3000
CONCURRENCY = 64
CATCH_UP_GOAL_S = 10.0
SECRET_KEY = "bench-secret-key-long-enough-to-sign"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve_env(workdir: Path, database_url: str, port: int, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("HEROLD_", "TEST_"))}
    env.update(
        {
            "LOCAL_DOMAIN": f"127.0.0.1:{port}",
            "HTTPS": "false",
            "PORT": str(port),
            "DATA_DIR": str(workdir),
            "DATABASE_URL": database_url,
            "SECRET_KEY": SECRET_KEY,
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def settings_for(env: dict[str, str]) -> object:
    from app.config import Settings

    return Settings(  # type: ignore[call-arg]
        _env_file=None,
        local_domain=env["LOCAL_DOMAIN"],
        https=False,
        data_dir=Path(env["DATA_DIR"]),
        database_url=env["DATABASE_URL"],
        secret_key=SECRET_KEY,
    )


class Serve:
    """`herold serve` in the background (under cProfile when asked: bench/profiled_serve.py)."""

    def __init__(self, env: dict[str, str], log_path: Path, profile: Path | None = None) -> None:
        herold = str(Path(sys.executable).with_name("herold"))
        command = [herold, "serve"]
        if profile is not None:
            profiled = Path(__file__).with_name("profiled_serve.py")
            command = [sys.executable, str(profiled), str(profile), "serve"]
        self.log = log_path.open("w")
        self.process = subprocess.Popen(command, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.port = int(env["PORT"])

    @property
    def pid(self) -> int:
        return self.process.pid

    def wait_listening(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"herold serve exited with {self.process.returncode}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise SystemExit("herold serve did not start listening")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


async def _sample_while(
    progress: Progress, task: asyncio.Task[SendResult], every: float = 1.0
) -> list[Snapshot]:
    samples = [await progress.snapshot()]
    while not task.done():
        await asyncio.wait({task}, timeout=every)
        samples.append(await progress.snapshot())
    return samples


async def run_mix(
    mix: str, population: Population, serve: Serve, database_url: str, args: argparse.Namespace
) -> dict[str, float]:
    host = f"127.0.0.1:{serve.port}"
    url = f"http://{host}/inbox"
    traffic = Traffic(population, url, mix, tag=f"{mix.split(':')[0]}-{int(time.time())}-")
    progress = Progress(database_url)
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
        cpu_before = cpu_seconds(serve.pid)
        load_before = load_average()
        sending = asyncio.create_task(send_at_rate(url, host, paced, rate, args.seconds))
        samples = await _sample_while(progress, sending)
        result = sending.result()
        cpu = cpu_seconds(serve.pid) - cpu_before
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
    workdir = Path(tempfile.mkdtemp(prefix="herold-bench-worker-"))
    port = free_port()
    database_url = args.database_url or f"sqlite+aiosqlite:///{workdir / 'herold.db'}"
    env = serve_env(workdir, database_url, port, LOG_LEVEL=args.log_level)
    serve: Serve | None = None
    try:
        print(
            f"seeding {args.strangers} remote actors nobody follows and {args.followed} followed by 3 "
            f"local accounts ({'PostgreSQL' if 'postgresql' in database_url else 'SQLite'})…",
            flush=True,
        )
        population = await seed(settings_for(env), args.strangers, args.followed)
        serve = Serve(env, workdir / "serve.log", args.profile)
        await asyncio.to_thread(serve.wait_listening)
        results = {}
        for mix in args.mixes:
            results[mix] = await run_mix(mix, population, serve, database_url, args)
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
        if serve is not None:
            serve.stop()
            if args.keep_log:
                shutil.copy(workdir / "serve.log", args.keep_log)
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    from app.runtime import run_event_loop

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the paced phase of each mix")
    parser.add_argument("--rate", type=float, default=None, help="deliveries/s (default: half the maximum)")
    parser.add_argument("--mixes", nargs="+", default=["mention:4,like:1", "followed:4,like:1"])
    parser.add_argument("--strangers", type=int, default=800)
    parser.add_argument("--followed", type=int, default=200)
    parser.add_argument(
        "--database-url", default=None, help="an empty database (default: SQLite in a temporary directory)"
    )
    parser.add_argument("--log-level", default="info", help="the server's LOG_LEVEL (normal: info)")
    parser.add_argument(
        "--profile", type=Path, default=None, help="profile the server (cProfile) into this file"
    )
    parser.add_argument("--timeline", action="store_true", help="print the progress second by second")
    parser.add_argument("--keep-log", type=Path, default=None, help="copy the server's log here")
    args = parser.parse_args()
    sys.exit(run_event_loop(main_async(args), "auto"))


if __name__ == "__main__":
    main()
