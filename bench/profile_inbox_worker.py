"""Where the inbox worker's time goes: cProfile of it draining a backlog of deliveries.

    python bench/profile_inbox_worker.py [--mix mention:4,like:1] [--items 3000] [--out worker.prof]
                                         [--no-profile]

The same population and deliveries as bench_worker_load.py (bench/inbox_load.py), stored as inbox
items directly (the inbox's own work is not what is profiled), then the worker's inbox queue runs
in this process, with the server's logging (INFO), until nothing is left. Prints items/s and CPU
per item (this process and its SQLite threads; with --no-profile, as in production), and the
functions by cumulative time. py-spy cannot attach where ptrace is not allowed, hence cProfile,
which slows everything several times over: the proportions are what it is for.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.inbox_load import activity, load_average, parse_mix, seed


async def drain(settings: Any, mix: str, count: int, profiler: cProfile.Profile | None) -> None:
    from app.context import build_context
    from app.federation.queue import count_ready
    from app.federation.worker import Worker, build_worker
    from app.models import InboxItem
    from app.queue_names import INBOX_QUEUE

    population = await seed(settings, 800, 200)
    context = build_context(settings, role="worker")
    pattern = parse_mix(mix)
    try:
        async with context.sessions() as session:
            for number in range(count):
                kind = pattern[number % len(pattern)]
                actors = population.followed if kind == "followed" else population.strangers
                actor = actors[(number // len(pattern)) % len(actors)]
                document = activity(kind, number, actor.uri, population)
                session.add(
                    InboxItem(
                        activity_uri=document["id"],
                        activity_type=document["type"],
                        payload=document,
                        signer_uri=actor.uri,
                    )
                )
            await session.commit()
        worker = Worker(
            context, [queue for queue in build_worker(context).queues if queue.name == INBOX_QUEUE]
        )
        started, cpu_started = time.perf_counter(), time.process_time()
        if profiler is not None:
            profiler.enable()
        task = asyncio.create_task(worker.run())
        while await count_ready(context, InboxItem):
            await asyncio.sleep(0.2)
        if profiler is not None:
            profiler.disable()
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        print(
            f"{count} items ({mix}) in {seconds:.1f} s = {count / seconds:.0f}/s, "
            f"{cpu * 1000 / count:.2f} ms CPU each{' (profiled)' if profiler else ''}; "
            f"load average {load_average()}"
        )
    finally:
        await context.aclose()


def main() -> None:
    from app.ops.logs import configure_logging
    from app.runtime import run_event_loop

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--mix", default="mention:4,like:1")
    parser.add_argument("--items", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=Path("inbox-worker.prof"))
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()
    configure_logging("text", "info")
    profiler = None if args.no_profile else cProfile.Profile()
    from app.config import Settings

    with tempfile.TemporaryDirectory(prefix="herold-profile-") as directory:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            local_domain="localhost:8000",
            data_dir=Path(directory),
            database_url=f"sqlite+aiosqlite:///{directory}/herold.db",
            secret_key="profile-secret-key-long-enough-to-sign",
        )
        run_event_loop(drain(settings, args.mix, args.items, profiler), "auto")
    if profiler is not None:
        profiler.dump_stats(args.out)
        pstats.Stats(str(args.out)).sort_stats("cumulative").print_stats(40)


if __name__ == "__main__":
    main()
