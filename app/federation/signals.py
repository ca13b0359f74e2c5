"""Wake-ups for the worker, so a job queued in a transaction starts at once instead of at the next poll.

A wake-up reaches the worker in this process and, through the instance's channel
(app.ops.event_channel), the worker processes elsewhere: `herold serve`'s worker process, a
`herold worker` on PostgreSQL. A wake-up lost on the way costs at most the worker's one-second poll.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable


class WorkSignals:
    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}
        self._relay: Callable[[str], None] | None = None

    def _event(self, queue: str) -> asyncio.Event:
        event = self._events.get(queue)
        if event is None:
            event = self._events[queue] = asyncio.Event()
        return event

    def relay_to(self, relay: Callable[[str], None] | None) -> None:
        """From now on, hand every wake-up to `relay` too, for the worker processes elsewhere."""
        self._relay = relay

    def notify(self, queue: str) -> None:
        """Jobs of `queue` are due: wake the workers of this process and of the others."""
        self._event(queue).set()
        if self._relay is not None:
            self._relay(queue)

    def receive(self, queue: str) -> None:
        """Another process woke `queue`: wake this process's worker only."""
        self._event(queue).set()

    async def wait(self, queue: str, seconds: float) -> None:
        event = self._event(queue)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)
        event.clear()
