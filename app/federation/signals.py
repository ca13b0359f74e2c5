"""In-process wake-ups for the worker, so a job queued by this process starts at once instead of at the next poll.

Other processes (a separate `herold worker`, the CLI) are not reached by these; the worker's
polling picks their jobs up within a second.
"""

from __future__ import annotations

import asyncio
import contextlib


class WorkSignals:
    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def _event(self, queue: str) -> asyncio.Event:
        event = self._events.get(queue)
        if event is None:
            event = self._events[queue] = asyncio.Event()
        return event

    def notify(self, queue: str) -> None:
        self._event(queue).set()

    async def wait(self, queue: str, seconds: float) -> None:
        event = self._event(queue)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)
        event.clear()
