"""Where a client API read's time goes: one process answering the home timeline (or notifications)
in-process, through the whole ASGI app, with the benchmark's data.

    python bench/profile_api_timeline.py [--path /api/v1/timelines/home?limit=40] [--requests 300]
                                         [--database-url URL] [--no-profile] [--out home.prof]

Seeds the database as bench_api_timeline.py does (50,000 statuses by 1,000 followed accounts),
then sends `--requests` GETs one after another through httpx's ASGI transport (no sockets, no
uvicorn: what is left is the app's own work). Prints CPU per request, the SQL statements one request
runs, and the functions by cumulative time. cProfile slows everything several times over: the
proportions are what it is for; --no-profile gives the true CPU per request.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_api_timeline import HEROLD, _free_port, _seed

SECRET = "bench-secret-key-long-enough-to-sign-things"


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
    )
    return env


async def measure(
    path: str, token: str, requests: int, profiler: cProfile.Profile | None, batches: int = 1
) -> None:
    import httpx
    from sqlalchemy import event

    from app.config import load_settings
    from app.main import create_app

    app = create_app(load_settings())
    headers = {"Authorization": f"Bearer {token}"}
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client,
    ):
        # One token for thousands of requests: the API's 300 in 5 minutes would answer most with 429.
        from app.services.rate_limits import RateLimiter

        app.state.context.rate_limits.api_requests = RateLimiter(10**9, 5 * 60)
        for _ in range(20):
            answer = await client.get(path, headers=headers)
            assert answer.status_code == 200, answer.text[:300]
        statements: list[str] = []
        engine = app.state.context.engine.sync_engine

        def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
            statements.append(statement)

        event.listen(engine, "before_cursor_execute", count)
        await client.get(path, headers=headers)
        event.remove(engine, "before_cursor_execute", count)
        print(f"{len(statements)} SQL statements per request:")
        for statement in statements:
            print("  ", " ".join(statement.split())[:160])
        best: tuple[float, float] | None = None
        for _batch in range(batches):
            started, cpu_started = time.perf_counter(), time.process_time()
            if profiler is not None:
                profiler.enable()
            for _ in range(requests):
                answer = await client.get(path, headers=headers)
            if profiler is not None:
                profiler.disable()
            assert answer.status_code == 200, answer.text[:300]
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
            if best is None or cpu < best[1]:
                best = (seconds, cpu)
        assert best is not None
        seconds, cpu = best
        print(
            f"{requests} times GET {path}, best of {batches} batches: {seconds * 1000 / requests:.2f} ms wall, "
            f"{cpu * 1000 / requests:.2f} ms CPU each{' (profiled)' if profiler else ''}; "
            f"load average {' '.join(f'{value:.2f}' for value in os.getloadavg())}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--path", default="/api/v1/timelines/home?limit=40")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--batches", type=int, default=1, help="batches of --requests; the best is shown")
    parser.add_argument("--out", help="write the profile here (for snakeviz or pstats)")
    parser.add_argument("--top", type=int, default=45)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="herold-profile-api-"))
    database_url = args.database_url or f"sqlite+aiosqlite:///{workdir / 'herold.db'}"
    env = _env(workdir, database_url, _free_port())
    # The embedded worker's polling is not what is profiled.
    env["EMBEDDED_WORKER"] = "false"
    try:
        migrated = subprocess.run([HEROLD, "migrate"], env=env, capture_output=True, text=True, check=False)
        if migrated.returncode != 0:
            raise SystemExit(f"herold migrate failed:\n{migrated.stderr}")
        os.environ.update(env)
        token = asyncio.run(_seed(1))[0]
        profiler = None if args.no_profile else cProfile.Profile()
        for path in args.path.split(","):
            asyncio.run(measure(path, token, args.requests, profiler, args.batches))
        if profiler is not None:
            if args.out:
                profiler.dump_stats(args.out)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(args.top)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
