"""A small HTTP/1.1 load client for the benchmarks: keep-alive connections, one request in flight
on each, the next sent as soon as the answer is complete.

Written on asyncio protocols (uvloop when installed) rather than a client library so that it
costs a few microseconds per request: the benchmarks compare servers that answer tens of
thousands of requests a second, and the client must not be what limits them. Its own CPU is
reported beside every figure so that this can be checked.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    seconds: float
    latencies_ms: list[float]
    statuses: Counter[int]
    client_cpu_s: float
    errors: int = 0

    @property
    def completed(self) -> int:
        return len(self.latencies_ms)

    @property
    def rate(self) -> float:
        return self.completed / self.seconds if self.seconds else 0.0

    @property
    def client_cpu_share(self) -> float:
        """The client's CPU as a share of one core over the measured time."""
        return self.client_cpu_s / self.seconds if self.seconds else 0.0

    def percentile(self, fraction: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def build_request(host: str, path: str, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Connection: keep-alive"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@dataclass
class _Run:
    requests: list[bytes]
    measure_from: float
    stop_at: float
    latencies_ms: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    next_request: int = 0

    def request(self) -> bytes:
        self.next_request = (self.next_request + 1) % len(self.requests)
        return self.requests[self.next_request]


class _Connection(asyncio.Protocol):
    def __init__(self, run: _Run, done: asyncio.Future[None]) -> None:
        self.run = run
        self.done = done
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.sent_at = 0.0
        self.expected: int | None = None  # the whole answer's length, once its head is read
        self.status = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        self.transport = transport  # type: ignore[assignment]
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        self.sent_at = time.perf_counter()
        self.transport.write(self.run.request())

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            if self.expected is None:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                head = bytes(self.buffer[:end]).split(b"\r\n")
                self.status = int(head[0].split(b" ", 2)[1])
                length = 0
                for line in head[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                        break
                self.expected = end + 4 + length
            if len(self.buffer) < self.expected:
                return
            del self.buffer[: self.expected]
            self.expected = None
            now = time.perf_counter()
            if now >= self.run.measure_from:
                self.run.latencies_ms.append((now - self.sent_at) * 1000)
                self.run.statuses[self.status] += 1
            if now >= self.run.stop_at:
                assert self.transport is not None
                self.transport.close()
                return
            self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if exc is not None or time.perf_counter() < self.run.stop_at:
            self.run.errors += 1
        if not self.done.done():
            self.done.set_result(None)


async def load(
    port: int,
    requests: list[bytes],
    *,
    connections: int = 64,
    seconds: float = 5.0,
    warm_up: float = 1.0,
    address: str = "127.0.0.1",
) -> LoadResult:
    """Send `requests` (cycled) over `connections` keep-alive connections for `warm_up` + `seconds`;
    what is answered during the warm-up is not counted."""
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    run = _Run(requests, measure_from=started + warm_up, stop_at=started + warm_up + seconds)
    finished: list[asyncio.Future[None]] = []
    for _ in range(connections):
        done: asyncio.Future[None] = loop.create_future()
        finished.append(done)
        await loop.create_connection(lambda done=done: _Connection(run, done), address, port)  # type: ignore[misc]
    await asyncio.sleep(max(0.0, run.measure_from - time.perf_counter()))
    cpu_before = time.process_time()
    measured_from = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*finished), timeout=warm_up + seconds + 30)
    measured = time.perf_counter() - measured_from
    return LoadResult(
        seconds=measured,
        latencies_ms=run.latencies_ms,
        statuses=run.statuses,
        client_cpu_s=time.process_time() - cpu_before,
        errors=run.errors,
    )
