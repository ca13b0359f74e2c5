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
