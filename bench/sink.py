"""The inbox the delivery benchmarks send to: just enough HTTP/1.1 to answer 202 on a kept-alive
connection, so that the client's cost is what gets measured. Runs in a process of its own."""

from __future__ import annotations

import asyncio

ACCEPTED = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"


class Sink(asyncio.Protocol):
    """Answers every request (Content-Length bodies) with 202 and counts requests per Host; with
    `answer=False`, a hung server that reads and never answers."""

    def __init__(self, counts: dict[str, int] | None = None, *, answer: bool = True) -> None:
        self._counts = counts
        self._answer = answer
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        if not self._answer:
            return
        self._buffer += data
        while (end := self._buffer.find(b"\r\n\r\n")) >= 0:
            length, host = 0, ""
            for line in bytes(self._buffer[:end]).split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"host":
                    host = value.strip().decode()
            total = end + 4 + length
            if len(self._buffer) < total:
                return
            del self._buffer[:total]
            if self._counts is not None:
                self._counts[host] = self._counts.get(host, 0) + 1
            assert self._transport is not None
            self._transport.write(ACCEPTED)
