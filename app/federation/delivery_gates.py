"""Per-host request limits and circuit breakers for the deliverer: after 10 consecutive failures a
host's jobs are postponed, without a request, for 60 s; then one job probes it, and the others
wait for the probe's answer. Per-process state, held by one `Deliverer`."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

BREAKER_THRESHOLD = 10
BREAKER_COOLOFF = 60.0
# While a probe is out to a host whose breaker just closed, its other jobs wait this long.
PROBE_WAIT = 5.0
PER_HOST_REQUESTS = 4
# Jobs allowed to queue for one host's requests before further ones are postponed, so that a slow
# host with a backlog cannot take all of the worker's slots.
PER_HOST_WAITING = 16
LINE_WAIT = 2.0


@dataclass
class _HostState:
    semaphore: asyncio.Semaphore
    # Tasks holding or waiting for the semaphore.
    users: int = 0
    failures: int = 0
    open_until: float = 0.0
    probing: bool = False


class HostGates:
    """Per-host concurrency and circuit breakers. Only hosts in use or failing are remembered."""

    def __init__(
        self,
        *,
        per_host: int = PER_HOST_REQUESTS,
        max_waiting: int = PER_HOST_WAITING,
        threshold: int = BREAKER_THRESHOLD,
        cooloff: float = BREAKER_COOLOFF,
    ) -> None:
        self.per_host = per_host
        self.max_waiting = max_waiting
        self.threshold = threshold
        self.cooloff = cooloff
        self._hosts: dict[str, _HostState] = {}

    def open_for(self, host: str) -> float | None:
        """Seconds until `host`'s open circuit closes; None when it is closed."""
        state = self._hosts.get(host)
        if state is None:
            return None
        remaining = state.open_until - time.monotonic()
        return remaining if remaining > 0 else None

    def admit(self, host: str) -> float | None:
        """None when a request to `host` may go ahead, else how long to postpone the job.

        Must be followed by `enter(host)` without an await in between (the check and the claim are
        one step on the event loop), and `leave(host)` after. A caller admitted as the breaker's
        probe must report back through `succeeded`, `failed` or (when the host was never asked)
        `released`.
        """
        state = self._hosts.get(host)
        if state is None:
            return None
        now = time.monotonic()
        if state.open_until > now:
            return state.open_until - now
        if state.failures >= self.threshold:
            if state.probing:
                return PROBE_WAIT
            state.probing = True
            return None
        if state.users >= self.per_host + self.max_waiting:
            return LINE_WAIT
        return None

    async def enter(self, host: str) -> None:
        """Take one of `host`'s request slots, waiting for one if need be; `leave` gives it back."""
        state = self._hosts.get(host)
        if state is None:
            state = self._hosts[host] = _HostState(asyncio.Semaphore(self.per_host))
        state.users += 1
        try:
            await state.semaphore.acquire()
        except BaseException:
            state.users -= 1
            self._forget_if_idle(host, state)
            raise

    def leave(self, host: str) -> None:
        state = self._hosts[host]
        state.semaphore.release()
        state.users -= 1
        self._forget_if_idle(host, state)

    def released(self, host: str) -> None:
        """The slot was used without asking the host (our side failed): nothing learnt about it,
        but a probe it was admitted as is over."""
        state = self._hosts.get(host)
        if state is not None:
            state.probing = False
            self._forget_if_idle(host, state)

    def succeeded(self, host: str) -> None:
        state = self._hosts.get(host)
        if state is not None:
            state.failures = 0
            state.open_until = 0.0
            state.probing = False
            self._forget_if_idle(host, state)

    def failed(self, host: str) -> None:
        state = self._hosts.get(host)
        if state is None:
            state = self._hosts[host] = _HostState(asyncio.Semaphore(self.per_host))
        state.failures += 1
        state.probing = False
        if state.failures >= self.threshold:
            state.open_until = time.monotonic() + self.cooloff

    def _forget_if_idle(self, host: str, state: _HostState) -> None:
        if state.users == 0 and state.failures == 0 and self._hosts.get(host) is state:
            del self._hosts[host]
