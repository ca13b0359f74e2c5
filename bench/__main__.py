"""The benchmarks: `python -m bench` (what `make bench` does) runs them all, one after the other.

    python -m bench                      the served benchmarks (SQLite as `make run`, then the
                                         PostgreSQL layout), then the component ones as diagnostics
    python -m bench --short              the served benchmarks only, smaller: a quick check
    python -m bench NAME [OPTIONS]       one of them, e.g. `served-inbox --postgres --runs 3`;
                                         `python -m bench NAME --help` for its options

The served benchmarks (served-inbox, served-fanout) start `herold serve` as `make run` does and
print PASS/FAIL for each of issue 16's goals; served-reads (public reads beside bare aiohttp and
FastAPI endpoints: issues 20 and 22), served-viral (2,000 first-contact servers: issue 22) and
served-media (the inbox while the worker caches 200 remote pictures: issue 18) do the same on the
default deployment (SQLite) only. The exit status is 1 when any goal was missed. The
component ones (inbox, fanout, http-client: bench/bench_*.py) measure parts in isolation.
"""

from __future__ import annotations

import importlib
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"

SERVED = {"served-inbox": "bench.served_inbox", "served-fanout": "bench.served_fanout"}
# Served benchmarks of the default deployment only (SQLite, as `make run`): issue 22's reads and
# viral moment (and issue 20's read ceiling), issue 18's inbox while remote pictures are cached.
SERVED_DEFAULT = {
    "served-reads": "bench.bench_reads",
    "served-viral": "bench.bench_viral",
    "served-media": "bench.served_media",
}
COMPONENTS = {
    path.stem.removeprefix("bench_").replace("_", "-"): f"bench.{path.stem}"
    for path in sorted(HERE.glob("bench_*.py"))
    if f"bench.{path.stem}" not in SERVED_DEFAULT.values()
}


def _postgres_reachable() -> bool:
    import socket

    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", 5432)) == 0


def _run(title: str, call: Callable[[], int | None]) -> bool:
    print(f"\n=== {title} {'=' * max(0, 70 - len(title))}", flush=True)
    started = time.monotonic()
    ok = True
    try:
        ok = call() in (None, 0)
    except SystemExit as stop:
        ok = stop.code in (None, 0)
    except Exception:
        traceback.print_exc()
        ok = False
    print(f"({title}: {time.monotonic() - started:.0f} s)", flush=True)
    return ok


def _component(module: str, argv: list[str]) -> Callable[[], int | None]:
    def call() -> int | None:
        # The component benchmarks read their options from the command line.
        sys.argv = [module.replace(".", "/") + ".py", *argv]
        result: int | None = importlib.import_module(module).main()
        return result

    return call


def _served(module: str, argv: list[str]) -> Callable[[], int | None]:
    def call() -> int | None:
        result: int | None = importlib.import_module(module).main(argv)
        return result

    return call


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(HERE.parent))
    if argv and not argv[0].startswith("-"):
        name, rest = argv[0], argv[1:]
        if name in SERVED or name in SERVED_DEFAULT:
            module = SERVED.get(name) or SERVED_DEFAULT[name]
            return 0 if _run(name, _served(module, rest)) else 1
        if name in COMPONENTS:
            return 0 if _run(name, _component(COMPONENTS[name], rest)) else 1
        known = ", ".join([*SERVED, *SERVED_DEFAULT, *COMPONENTS])
        print(f"unknown benchmark {name!r}; one of: {known}", file=sys.stderr)
        return 2
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    short = "--short" in argv
    options = ["--short"] if short else []
    plan: list[tuple[str, Callable[[], int | None]]] = [
        (name, _served(module, options)) for name, module in SERVED.items()
    ]
    plan += [(name, _served(module, options)) for name, module in SERVED_DEFAULT.items()]
    if _postgres_reachable():
        plan += [
            (f"{name} --postgres", _served(module, [*options, "--postgres", POSTGRES]))
            for name, module in SERVED.items()
        ]
    else:
        print("PostgreSQL is not reachable on 127.0.0.1:5432: its layout is skipped", file=sys.stderr)
    if not short:
        plan += [(f"{name} (component)", _component(module, [])) for name, module in COMPONENTS.items()]
    failed = [title for title, call in plan if not _run(title, call)]
    if failed:
        print(f"\nmissed or failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    print("\nevery goal met")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
