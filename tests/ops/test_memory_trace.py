"""The memory diagnostic (HEROLD_MEMORY_TRACE): off unless asked, and what a report holds."""

from __future__ import annotations

import sys
import tracemalloc
from pathlib import Path

import pytest

from app.ops import memory_trace


def test_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(memory_trace.DIRECTORY_ENV, raising=False)
    assert memory_trace.start_memory_trace("web") is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_report_tells_rss_and_both_allocators_apart(tmp_path: Path) -> None:
    tracer = memory_trace._Tracer(tmp_path / "web-1.txt", every=60)
    tracer.report()
    tracer.report()
    text = (tmp_path / "web-1.txt").read_text()
    assert text.count("=== ") == 2
    assert "RSS " in text and "anon " in text
    assert "pymalloc: " in text and "bytes in allocated blocks" in text
    if memory_trace._libc() is not None:
        assert "malloc: in use" in text


def test_snapshots_are_compared_afterwards(tmp_path: Path) -> None:
    tracemalloc.start(2)
    try:
        tracer = memory_trace._Tracer(tmp_path / "worker-1.txt", every=60)
        tracer.report()
        kept = [bytearray(1000) for _ in range(1000)]  # noqa: F841 — what the comparison must find
        tracer.report()
    finally:
        tracemalloc.stop()
    compared = memory_trace.compare(tmp_path)
    assert "worker-1" in compared
    assert "test_memory_trace.py" in compared
