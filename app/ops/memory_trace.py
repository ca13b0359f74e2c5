"""A diagnostic, off by default: where a server process's memory goes, minute by minute.

    HEROLD_MEMORY_TRACE=/some/dir [HEROLD_MEMORY_TRACE_EVERY=60] [HEROLD_MEMORY_TRACE_FRAMES=0] herold serve
    python -m app.ops.memory_trace /some/dir        (with FRAMES > 0: the sites grown, afterwards)

Every HEROLD_MEMORY_TRACE_EVERY seconds each web and worker process appends to
`<dir>/<role>-<pid>.txt` its RSS (anonymous and file-backed) and threads, glibc malloc's view
(bytes in use, free bytes kept in its arenas, the number of arenas) and, with FRAMES=0 (the
default), pymalloc's (Python's allocator for small objects: its arenas, the bytes live in them)
and the object types grown. Anonymous RSS is about pymalloc's arenas plus malloc's: pymalloc's
live bytes growing says Python objects are kept; its arenas growing while they do not, that they
are fragmented; malloc's free bytes growing is fragmentation there, its bytes in use memory held
by C code (SQLite, OpenSSL, …).

With FRAMES=N > 0 the process traces Python's allocations (tracemalloc, N frames: several times
the CPU per allocation, and pymalloc's figures are hidden behind its hooks) and dumps a snapshot
each time; `python -m app.ops.memory_trace DIR` then shows the allocation sites grown most, per
process. Comparing inside the server took it 49 s per report under load.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import pickle
import re
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path

DIRECTORY_ENV = "HEROLD_MEMORY_TRACE"
EVERY_ENV = "HEROLD_MEMORY_TRACE_EVERY"
FRAMES_ENV = "HEROLD_MEMORY_TRACE_FRAMES"
TOP = 25
TOP_TRACEBACKS = 6


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena",
            "ordblks",
            "smblks",
            "hblks",
            "hblkhd",
            "usmblks",
            "fsmblks",
            "uordblks",
            "fordblks",
            "keepcost",
        )
    ]


def start_memory_trace(role: str) -> bool:
    """Start tracing in this process if HEROLD_MEMORY_TRACE names a directory; whether it did."""
    directory = os.environ.get(DIRECTORY_ENV)
    if not directory:
        return False
    every = float(os.environ.get(EVERY_ENV) or 60)
    frames = int(os.environ.get(FRAMES_ENV) or 0)
    path = Path(directory) / f"{role}-{os.getpid()}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    if frames:
        tracemalloc.start(frames)
    tracer = _Tracer(path, every)
    threading.Thread(target=tracer.run, name="memory-trace", daemon=True).start()
    return True


class _Tracer:
    def __init__(self, path: Path, every: float) -> None:
        self.path = path
        self.every = every
        self.started = time.monotonic()
        self.number = 0
        self.first_types: dict[str, int] | None = None
        self.libc = _libc()

    def run(self) -> None:
        while True:
            time.sleep(self.every)
            try:
                self.report()
            except Exception as error:  # a diagnostic must not take the process down
                with self.path.open("a") as out:
                    out.write(f"report failed: {error!r}\n")

    def report(self) -> None:
        began = time.monotonic()
        if not tracemalloc.is_tracing():
            self.report_untraced(began)
            return
        # Comparing snapshots takes minutes of CPU for a busy process's hundreds of thousands of
        # traces: the process only dumps them, `python -m app.ops.memory_trace DIR` compares.
        self.number += 1
        tracemalloc.take_snapshot().dump(str(self.path.with_suffix(f".{self.number:03d}.snapshot")))
        traced, peak = tracemalloc.get_traced_memory()
        status = _proc_status()
        out: list[str] = [
            f"=== {time.strftime('%H:%M:%S')} +{began - self.started:.0f} s pid {os.getpid()} "
            f"snapshot {self.number}",
            f"RSS {status.get('VmRSS', 0) / 1024:.1f} MB (anon {status.get('RssAnon', 0) / 1024:.1f}, "
            f"file {status.get('RssFile', 0) / 1024:.1f}); threads {status.get('Threads', 0)}",
            f"tracemalloc: traced {traced / 2**20:.1f} MB (peak {peak / 2**20:.1f}), its own "
            f"{tracemalloc.get_tracemalloc_memory() / 2**20:.1f} MB; gc counts {gc.get_count()}",
            *self.malloc_lines(),
            f"(report took {time.monotonic() - began:.1f} s)\n",
        ]
        with self.path.open("a") as file:
            file.write("\n".join(out) + "\n")

    def report_untraced(self, began: float) -> None:
        """Without tracemalloc (HEROLD_MEMORY_TRACE_FRAMES=0): the process's and the allocators'
        totals, with pymalloc's (which tracemalloc's hooks hide) and the types of objects grown."""
        types = _object_types()
        status = _proc_status()
        out = [
            f"=== {time.strftime('%H:%M:%S')} +{began - self.started:.0f} s pid {os.getpid()}",
            f"RSS {status.get('VmRSS', 0) / 1024:.1f} MB (anon {status.get('RssAnon', 0) / 1024:.1f}, "
            f"file {status.get('RssFile', 0) / 1024:.1f}); threads {status.get('Threads', 0)}; "
            f"gc objects {sum(types.values())}",
            *self.malloc_lines(),
            *_pymalloc_lines(),
        ]
        if self.first_types is None:
            self.first_types = types
        else:
            grown_types = sorted(
                ((count - self.first_types.get(name, 0), name) for name, count in types.items()),
                reverse=True,
            )[:15]
            out += [f"  {delta:+9d} {name}" for delta, name in grown_types]
        with self.path.open("a") as file:
            file.write("\n".join(out) + "\n\n")

    def malloc_lines(self) -> list[str]:
        if self.libc is None:
            return []
        info = self.libc.mallinfo2()
        arenas = _arena_count(self.libc)
        return [
            f"malloc: in use {info.uordblks / 2**20:.1f} MB, free in arenas {info.fordblks / 2**20:.1f} MB "
            f"(top releasable {info.keepcost / 2**20:.1f}), main+thread arenas {info.arena / 2**20:.1f} MB, "
            f"mmapped {info.hblkhd / 2**20:.1f} MB in {info.hblks}; arenas {arenas}"
        ]


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/lib/python3.11/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    if "/app/" in filename:
        return "app/" + filename.split("/app/", 1)[1]
    return filename


def _object_types() -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in gc.get_objects():
        name = type(item).__qualname__
        counts[name] = counts.get(name, 0) + 1
    return counts


def _proc_status() -> dict[str, int]:
    values: dict[str, int] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[name] = int(parts[0])
    return values


def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.mallinfo2.restype = _MallInfo2
        libc.fopen.restype = ctypes.c_void_p
        libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
        libc.fclose.argtypes = [ctypes.c_void_p]
    except (OSError, AttributeError):
        return None
    return libc


def _arena_count(libc: ctypes.CDLL) -> int:
    with tempfile.NamedTemporaryFile("r", suffix=".xml") as xml:
        handle = libc.fopen(xml.name.encode(), b"w")
        if not handle:
            return -1
        libc.malloc_info(0, handle)
        libc.fclose(handle)
        return len(re.findall(r"<heap nr=", Path(xml.name).read_text()))


def _pymalloc_lines() -> list[str]:
    """pymalloc's arenas (sys._debugmallocstats writes to the C stderr: caught through a file)."""
    with tempfile.TemporaryFile("w+") as capture:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(capture.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        text = capture.read()
    wanted = (
        "# arenas allocated current",
        "# arenas highwater",
        "# bytes in allocated blocks",
        "# bytes in available blocks",
        "# bytes in arenas",
        "Total",
    )
    picked = [line.strip() for line in text.splitlines() if line.startswith(wanted)]
    return ["pymalloc: " + "; ".join(" ".join(line.split()) for line in picked)]


def compare(directory: Path, top: int = TOP) -> str:
    """For each process that dumped snapshots in `directory`: the allocation sites grown most
    between its second snapshot (the first is taken during the warm-up) and its last, by line and
    by traceback."""
    out: list[str] = []
    for summary in sorted(directory.glob("*.txt")):
        snapshots = [path for path in sorted(directory.glob(f"{summary.stem}.*.snapshot")) if _loads(path)]
        if len(snapshots) < 2:
            continue
        first = snapshots[1] if len(snapshots) > 2 else snapshots[0]
        before = tracemalloc.Snapshot.load(str(first))
        after = tracemalloc.Snapshot.load(str(snapshots[-1]))
        out.append(f"##### {summary.stem}: {first.name} → {snapshots[-1].name}")
        before_total = sum(stat.size for stat in before.statistics("filename"))
        after_total = sum(stat.size for stat in after.statistics("filename"))
        out.append(f"traced {before_total / 2**20:.1f} → {after_total / 2**20:.1f} MB")
        out.append(f"-- lines (top {top}) --")
        for stat in after.compare_to(before, "lineno")[:top]:
            frame = stat.traceback[0]
            out.append(
                f"  {stat.size_diff / 1024:+10.1f} KiB {stat.count_diff:+8d} blocks "
                f"(now {stat.size / 1024:9.1f} KiB)  {_short(frame.filename)}:{frame.lineno}"
            )
        out.append(f"-- tracebacks (top {TOP_TRACEBACKS}) --")
        for stat in after.compare_to(before, "traceback")[:TOP_TRACEBACKS]:
            out.append(f"  {stat.size_diff / 1024:+10.1f} KiB {stat.count_diff:+8d} blocks")
            out += [f"      {_short(frame.filename)}:{frame.lineno}" for frame in stat.traceback]
        out.append("")
    return "\n".join(out)


def _loads(path: Path) -> bool:
    """Whether a snapshot is whole (a process stopped while dumping leaves a cut one)."""
    try:
        tracemalloc.Snapshot.load(str(path))
    except (EOFError, pickle.UnpicklingError):
        return False
    return True


if __name__ == "__main__":
    print(compare(Path(sys.argv[1])))
