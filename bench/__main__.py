"""Run every benchmark in this directory, one after the other: `python -m bench` (what `make bench` does).

Each bench_*.py module is imported and its `main()` called with no arguments, so each runs with
its own defaults (run one alone, with options, as `python bench/bench_NAME.py --help` shows).
"""

from __future__ import annotations

import importlib
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    sys.path.insert(0, str(HERE.parent))
    names = sorted(path.stem for path in HERE.glob("bench_*.py"))
    failed = []
    for name in names:
        print(f"\n=== {name} {'=' * max(0, 70 - len(name))}", flush=True)
        started = time.monotonic()
        # The benchmarks read their options from the command line; each gets its defaults.
        sys.argv = [f"bench/{name}.py"]
        try:
            importlib.import_module(f"bench.{name}").main()
        except SystemExit as stop:
            if stop.code not in (None, 0):
                print(f"{name} stopped: {stop.code}", file=sys.stderr)
                failed.append(name)
        except Exception:
            traceback.print_exc()
            failed.append(name)
        print(f"({name}: {time.monotonic() - started:.0f} s)", flush=True)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
