"""Fan-out of one `herold post` to 1,000 followers on 1,000 distinct origins, against `herold serve`
as `make run` starts it (bench/served.py), with the CPU of every process of the server counted.

    python -m bench served-fanout [--size 1000] [--runs 1] [--postgres]

Every follower sits on its own host, 127.1.x.y (all loopback on Linux), served by one sink in a
process of its own (bench/bench_fanout.py's, answering 202 and counting what each host received;
its CPU is not counted). ALLOWED_PRIVATE_ADDRESSES=127.0.0.0/8 is the one setting added to the
defaults, so that the server may deliver to loopback.

- warm-up, not measured: a post by another account to 100 followers on other hosts (first-use
  costs: imports, the TLS context, code run for the first time);
- cold: `herold post` by the account the 1,000 follow; a new connection to every host;
- warm: a second post right after, to the connections the server kept open.

Counted: the CPU of all the server's processes (web, worker, signing process) from the moment the
post's delivery jobs are in the database (`herold post` commits them; the server's worker may start
before the command has exited) until the sink has the post from every host. The floor: 1,000 RSA-2048
signatures in this process, right before and after the round (the mean). Also shown: the CPU
until the server has recorded every delivery, and the wall time.

Goals (issue 16): CPU <= 1.4x the signing floor cold, <= 1.2x warm.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.bench_fanout import _serve as serve_sink
from bench.bench_fanout import host_for, signing_floor
from bench.served import Profiler, ServedHerold, deployment, layout_name
from bench.verdicts import Verdicts, extra_env, load_average

GOAL_COLD = 1.4
GOAL_WARM = 1.2
WARMUP_SIZE = 100
POSTGRES_DEFAULT = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


@dataclass
class Post:
    label: str
    size: int
    wall_s: float
    cpu_s: float
    # Until every delivery was recorded as done, not only received.
    recorded_cpu_s: float
    # Of cpu_s, per process: "name[pid]" -> (seconds, of which in the kernel).
    by_process: dict[str, tuple[float, float]]
    floor_s: float
    delivered: int
    duplicates: int

    @property
    def ratio(self) -> float:
        return self.cpu_s / self.floor_s


class SinkProcess:
    """bench_fanout's sink, in a process of its own: three ports (healthy, hung, refusing)."""

    def __init__(self) -> None:
        spawn = multiprocessing.get_context("spawn")
        self.channel, remote = spawn.Pipe()
        self.process = spawn.Process(target=serve_sink, args=(remote,), daemon=True)
        self.process.start()
        if not self.channel.poll(30):
            raise RuntimeError("the sink did not start")
        self.port: int = self.channel.recv()[0]

    def counts(self) -> dict[str, int]:
        self.channel.send("counts")
        counts: dict[str, int] = self.channel.recv()
        return counts

    def reset(self) -> None:
        self.channel.send("reset")
        self.channel.recv()

    def stop(self) -> None:
        self.channel.send("stop")
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.terminate()


def warmup_host(number: int) -> str:
    return f"127.2.{number // 250}.{number % 250 + 1}"


async def seed(settings: Any, port: int, size: int) -> None:
    """Two local accounts: `herold`, followed from `size` hosts, and `warmup`, from 100 others."""
    from sqlalchemy import insert

    from app.context import build_context
    from app.models import Account, Follow, FollowState
    from app.models.base import new_ids, utcnow
    from app.services.accounts import AccountService

    context = build_context(settings)
    try:
        accounts_service = AccountService(context)
        await accounts_service.instance_actor()
        for name, hosts in (
            ("herold", [host_for(n) for n in range(size)]),
            ("warmup", [warmup_host(n) for n in range(WARMUP_SIZE)]),
        ):
            author = (
                await accounts_service.create_local_account(name, password="bench-password-long")
            ).account
            accounts: list[dict[str, Any]] = []
            follows: list[dict[str, Any]] = []
            now = utcnow()
            for number, (host, account_id, follow_id) in enumerate(
                zip(hosts, new_ids(len(hosts)), new_ids(len(hosts)), strict=True)
            ):
                domain = f"{host}:{port}"
                uri = f"http://{domain}/users/f{number}"
                accounts.append(
                    {
                        "id": account_id,
                        "username": f"f{number}",
                        "domain": domain,
                        "uri": uri,
                        "inbox_url": f"{uri}/inbox",
                        "shared_inbox_url": f"http://{domain}/inbox",
                        "key_id": f"{uri}#main-key",
                        "created_at": now,
                        "updated_at": now,
                        "fetched_at": now,
                    }
                )
                follows.append(
                    {
                        "id": follow_id,
                        "follower_id": account_id,
                        "followee_id": author.id,
                        "state": FollowState.ACCEPTED,
                        "created_at": now,
                    }
                )
            async with context.sessions() as session:
                await session.execute(insert(Account), accounts)
                await session.execute(insert(Follow), follows)
                await session.commit()
    finally:
        await context.aclose()


class Jobs:
    """The server's delivery jobs, read from its database beside it."""

    def __init__(self, database_url: str) -> None:
        from sqlalchemy.ext.asyncio import create_async_engine

        self.engine = create_async_engine(database_url)

    async def count(self, where: str = "") -> int:
        from sqlalchemy import text

        async with self.engine.connect() as connection:
            result = await connection.execute(text(f"SELECT count(*) FROM delivery_job {where}"))
            return int(result.scalar() or 0)


async def one_post(herold: ServedHerold, sink: SinkProcess, author: str, size: int, label: str) -> Post:
    """`herold post`, measured from the moment its delivery jobs are in the database (the CLI's
    own start-up, seconds under load, would otherwise add the idle server's CPU) until every
    host has the post: the server's CPU is read every few milliseconds meanwhile, and the
    window starts at the last reading before the jobs appeared."""
    sink.reset()
    jobs = Jobs(herold.database_url)
    floor_before = signing_floor(size)
    jobs_before = await jobs.count()
    command = herold.cli_process("post", author, f"A post for everyone ({label}). #benchmark")
    reading = (time.perf_counter(), {stat.pid: stat for stat in herold.tree()})
    while await jobs.count() == jobs_before:
        if command.poll() not in (None, 0):
            raise RuntimeError(f"herold post failed: {command.communicate()[1].decode()[-2000:]}")
        reading = (time.perf_counter(), {stat.pid: stat for stat in herold.tree()})
        await asyncio.sleep(0.002)
    started, tree_before = reading
    cpu_before = sum(stat.cpu_s for stat in tree_before.values())
    deadline = started + 120
    while True:
        counts = sink.counts()
        if len(counts) >= size:
            break
        if time.perf_counter() > deadline:
            raise RuntimeError(f"only {len(counts)} of {size} inboxes got the post")
        await asyncio.sleep(0.005)
    tree_after = herold.tree()
    wall_s = time.perf_counter() - started
    cpu_s = sum(stat.cpu_s for stat in tree_after) - cpu_before
    by_process = {}
    for stat in tree_after:
        before = tree_before.get(stat.pid)
        by_process[f"{stat.name}[{stat.pid}]"] = (
            stat.cpu_s - (before.cpu_s if before else 0.0),
            stat.system_s - (before.system_s if before else 0.0),
        )
    command.wait(60)
    recorded_deadline = time.perf_counter() + 60
    while await jobs.count("WHERE state = 'queued'"):
        if time.perf_counter() > recorded_deadline:
            raise RuntimeError("the server did not record every delivery")
        await asyncio.sleep(0.01)
    recorded_cpu_s = herold.cpu_seconds() - cpu_before
    await jobs.engine.dispose()
    floor = (floor_before + signing_floor(size)) / 2
    return Post(
        label=label,
        size=size,
        wall_s=wall_s,
        cpu_s=cpu_s,
        recorded_cpu_s=recorded_cpu_s,
        by_process=by_process,
        floor_s=floor,
        delivered=len(counts),
        duplicates=sum(count - 1 for count in counts.values() if count > 1),
    )


def run_once(
    size: int, database_url: str | None, profile: Path | None = None, env: dict[str, str] | None = None
) -> tuple[str, list[Post], float, int]:
    layout = layout_name(database_url)
    sink = SinkProcess()
    herold = deployment(database_url, env={"ALLOWED_PRIVATE_ADDRESSES": "127.0.0.0/8", **(env or {})})
    try:
        herold.migrate()
        asyncio.run(seed(herold.settings(), sink.port, size))
        herold.serve()
        asyncio.run(one_post(herold, sink, "warmup", WARMUP_SIZE, "warm-up"))
        profiler = Profiler(herold, profile) if profile else None
        if profiler:
            profiler.start()
        posts = [
            asyncio.run(one_post(herold, sink, "herold", size, "cold")),
            asyncio.run(one_post(herold, sink, "herold", size, "warm")),
        ]
        if profiler:
            print(profiler.stop())
        return layout, posts, herold.rss() / 2**20, len(herold.pids())
    finally:
        herold.stop()
        sink.stop()


def report(layout: str, posts: list[Post], rss_mb: float, processes: int, verdicts: Verdicts) -> None:
    print(
        f"\n{layout}: one post to {posts[0].size} followers on distinct hosts, {processes} server processes"
    )
    print(
        f"  {'':<5} {'wall s':>7} {'CPU s':>6} {'floor s':>7} {'CPU/floor':>9} {'recorded CPU s':>14} {'missed':>6} {'dup':>4}"
    )
    for post in posts:
        print(
            f"  {post.label:<5} {post.wall_s:>7.2f} {post.cpu_s:>6.2f} {post.floor_s:>7.2f} {post.ratio:>8.2f}x "
            f"{post.recorded_cpu_s:>14.2f} {post.size - post.delivered:>6} {post.duplicates:>4}"
        )
    for post in posts:
        shares = ", ".join(
            f"{name} {seconds / post.floor_s:.2f}x (kernel {system / post.floor_s:.2f}x)"
            for name, (seconds, system) in post.by_process.items()
            if seconds > 0.005
        )
        print(f"  {post.label}, CPU by process / floor: {shares}")
    print(f"  RSS of all server processes afterwards: {rss_mb:.0f} MB")
    cold, warm = posts
    verdicts.check(f"fan-out {layout}: cold CPU / signing floor", cold.ratio, "<=", GOAL_COLD, "{:.2f}")
    verdicts.check(f"fan-out {layout}: warm CPU / signing floor", warm.ratio, "<=", GOAL_WARM, "{:.2f}")
    verdicts.check(
        f"fan-out {layout}: delivered once each",
        sum(p.delivered - p.duplicates for p in posts),
        ">=",
        2 * cold.size,
        "{:.0f}",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench served-fanout",
        description=__doc__,
        formatter_class=argparse.RawTextHelpFormatter,
    )
    parser.add_argument("--size", type=int, default=1000, help="followers, each on a host of its own")
    parser.add_argument("--runs", type=int, default=1, help="independent runs, each on a fresh server")
    parser.add_argument("--short", action="store_true", help="a quick check: 300 followers")
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
        help="py-spy every server process during the measured posts (slows them: figures not comparable); "
        "collapsed stacks in DIR and a summary",
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
        args.size = min(args.size, 300)
    verdicts = Verdicts()
    print(f"served fan-out; {os.cpu_count()} cores, load average {load_average()}", flush=True)
    for _ in range(args.runs):
        report(*run_once(args.size, args.postgres, args.profile, extra_env(args.env)), verdicts)
    print(f"load average after: {load_average()}")
    return verdicts.summary()


if __name__ == "__main__":
    raise SystemExit(main())
