"""bench/served.py counts every process of a server: a child started after the first reading, and
one that has exited (through its parent's cutime/cstime), are in the sum."""

from __future__ import annotations

import subprocess
import sys
import time

from bench.served import process_tree

BURN = "import time\nstart = time.process_time()\nwhile time.process_time() - start < 0.3: pass"
PARENT = f"import subprocess, sys, time\nsubprocess.run([sys.executable, '-c', {BURN!r}])\ntime.sleep(30)"


def test_a_child_that_exited_is_still_counted_through_its_parent() -> None:
    parent = subprocess.Popen([sys.executable, "-c", PARENT])
    try:
        seen_child = False
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            tree = process_tree([parent.pid])
            seen_child = seen_child or len(tree) > 1
            if seen_child and len(tree) == 1:
                break
            time.sleep(0.02)
        assert seen_child, "the child never showed up in the tree"
        # The burning child has exited and was waited for: its 0.3 s are in its parent's figure.
        assert sum(stat.cpu_s for stat in process_tree([parent.pid])) >= 0.28
    finally:
        parent.kill()
        parent.wait()
