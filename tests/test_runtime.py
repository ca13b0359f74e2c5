"""The event loop the commands run on (EVENT_LOOP)."""

from __future__ import annotations

import asyncio
import sys

import pytest

from app.config import ConfigurationError
from app.runtime import run_event_loop


async def loop_module() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_auto_and_uvloop_run_on_uvloop_when_installed() -> None:
    pytest.importorskip("uvloop")
    assert run_event_loop(loop_module(), "auto").startswith("uvloop")
    assert run_event_loop(loop_module(), "uvloop").startswith("uvloop")


def test_asyncio_runs_on_the_standard_library_loop() -> None:
    assert run_event_loop(loop_module(), "asyncio").startswith("asyncio")


def test_without_uvloop_auto_falls_back_and_uvloop_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as if not installed: importing it fails
    assert run_event_loop(loop_module(), "auto").startswith("asyncio")
    main = loop_module()
    with pytest.raises(ConfigurationError, match="uvloop is not installed"):
        run_event_loop(main, "uvloop")
    assert main.cr_frame is None  # closed, not left unawaited


# What a server process's threads do to glibc's malloc, each in a fresh interpreter: the
# allocator's settings are process-wide and cannot be undone.
_THREADS_ALLOCATING = """
import json, os, sys, threading
from app.ops.memory_trace import _arena_count, _libc
from app.runtime import tune_memory_allocator

applied = tune_memory_allocator()
barrier = threading.Barrier(8)
kept = []

def allocate():
    barrier.wait()  # all eight alive at once, as a pool's connections are
    kept.append([bytes(1000) for _ in range(2000)])

threads = [threading.Thread(target=allocate) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps({"applied": applied, "arenas": _arena_count(_libc()),
                  "trimmer": any(t.name == "malloc-trim" for t in threading.enumerate())}))
"""


def _run_threads(env: dict[str, str]) -> dict[str, object]:
    import json
    import os
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    clean = {
        key: value for key, value in os.environ.items() if key not in ("MALLOC_ARENA_MAX", "GLIBC_TUNABLES")
    }
    done = subprocess.run(
        [sys.executable, "-c", _THREADS_ALLOCATING],
        env={**clean, **env},
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def _glibc() -> bool:
    from app.runtime import _glibc as find

    return find() is not None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_server_processes_share_two_malloc_arenas_and_trim_them() -> None:
    if not _glibc():
        pytest.skip("not glibc")
    tuned = _run_threads({})
    assert tuned == {"applied": True, "arenas": 2, "trimmer": True}


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_an_operators_malloc_arena_max_stands() -> None:
    if not _glibc():
        pytest.skip("not glibc")
    assert _run_threads({"MALLOC_ARENA_MAX": "4"})["arenas"] == 4
