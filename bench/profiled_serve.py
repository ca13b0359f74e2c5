"""`herold serve` under cProfile: `python bench/profiled_serve.py OUT.prof serve [options]`.

What bench_worker_load.py --profile runs. py-spy cannot attach where ptrace is not allowed (as in
some containers), so the server profiles itself; read the result with
`python -m pstats OUT.prof` (sort cumulative, stats 60). cProfile slows the server several times
over, so the rates drop; the proportions between functions are what it is for.
"""

from __future__ import annotations

import cProfile
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    out = Path(sys.argv[1])
    sys.argv = ["herold", *sys.argv[2:]]
    profiler = cProfile.Profile()

    def finish(code: int = 0) -> None:
        profiler.disable()
        profiler.dump_stats(out)
        os._exit(code)

    # uvicorn stops on SIGTERM, puts back the handler it found (this one) and raises the signal
    # again once the server has shut down: the profile is written then.
    signal.signal(signal.SIGTERM, lambda _signal, _frame: finish())
    from app.cli import main as herold

    profiler.enable()
    finish(herold() or 0)


if __name__ == "__main__":
    main()
