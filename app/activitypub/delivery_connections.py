"""Keep-alive HTTP/1.1 connections for the delivery hot path: one signed POST, its status back.

Why not aiohttp here: a delivery wants only the status and Retry-After of the answer, yet aiohttp
builds a URL object, a request and a response model, a header multidict, a payload writer and a
stream reader for every request, about 0.13 ms of CPU. Next to an RSA signature (~0.36 ms) that
alone put a fan-out above 1.5x the signing floor (bench/bench_fanout.py). Here a request is one
`transport.write` of bytes built in one go, and the answer is read by a small `asyncio.Protocol`
that parses the head, hands the status over at once and then skips the body by its framing
(Content-Length, chunked, or until close), so the connection can be reused.

Everything else (fetches, redirects, bodies that are read) stays on httpx over aiohttp.

The SSRF rule is the same `AddressPolicy` as the transport's: a literal address is checked as it
is, a name is resolved here (in resolver threads of the pool's own, and cached for a while, as
aiohttp's resolver is) and only allowed addresses are connected to, so the address checked is the
address used. Errors are httpx's, as callers of `post_bytes` expect.

Connections are not capped per host here: the delivery worker's per-host gates already bound
how many requests a host gets at once. Idle connections are closed after `idle_timeout`, and the
least recently used idle one goes when more than `max_connections` are open.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import os
import re
import socket
import ssl
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import urlsplit

import httpx

from app.activitypub.addresses import (
    DEFAULT_PORTS,
    AddressPolicy,
    ascii_hostname,
    host_header,
    ip_literal,
)
from app.activitypub.signatures import request_target

# A head larger than this is not an inbox's answer.
HEAD_LIMIT = 65_536
DNS_TTL = 300.0
DNS_CACHE_SIZE = 4096
# Name lookups under way at once. The system's resolver blocks a thread per lookup, and the event
# loop's own pool has 4 threads (uvloop's) or 6 (asyncio's, on 2 cores): a cold fan-out to
# hundreds of named hosts queued its lookups there, and the later ones spent their host's connect
# timeout waiting for a thread. Threads are started as lookups need them.
RESOLVER_THREADS = 64
# How often late answers and long-idle connections are looked for (more often for short timeouts).
SWEEP_INTERVAL = 1.0

_HEAD, _BODY, _IDLE = 0, 1, 2
_NO_TIMEOUT = contextlib.nullcontext()
_SIZE_LINE, _DATA, _DATA_END, _TRAILER = 0, 1, 2, 3
# Errors only a connection attempt ends with: a connection that ends with one never connected.
_CONNECT_ERRNOS = frozenset(
    {errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ETIMEDOUT, errno.EADDRNOTAVAIL}
)


@dataclass(frozen=True, slots=True)
class PostResult:
    status: int
    retry_after: str | None


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str
    host: str
    port: int


@dataclass(frozen=True, slots=True)
class Target:
    """An inbox URL taken apart once: where to connect, and what the request line and the Host
    header (both signed) say."""

    url: str
    origin: Origin
    # Path and query, percent-encoded as on the wire.
    path: str
    # The Host header: the ASCII host, with the port when it is not the scheme's default.
    authority: str


class _ConnectionClosed(Exception):
    """The connection ended before an answer's head arrived."""

    def __init__(self, *, answered_nothing: bool, reason: str) -> None:
        super().__init__(reason)
        self.answered_nothing = answered_nothing


class _Connection(asyncio.Protocol):
    """One connection to one origin: a request at a time, its answer parsed as it arrives."""

    def __init__(self, pool: DeliveryConnections, origin: Origin) -> None:
        self.pool = pool
        self.origin = origin
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        # How far the buffer has been searched for the head's end without finding it: a head sent
        # a byte at a time must not be searched from its start on every byte.
        self.scanned = 0
        self.state = _IDLE
        self.waiter: asyncio.Future[PostResult] | None = None
        # When the answer being awaited is late (busy), or since when the connection is unused (idle):
        # the pool's sweep closes what is past either, cheaper than a timer per request.
        self.deadline = 0.0
        self.idle_since = 0.0
        # While the TCP handshake may still be under way (see `DeliveryConnections._dial`): when
        # it must be over, and the address, for the error if it is not.
        self.connecting_until = 0.0
        self.address = ""
        self.received_any = False
        self.keep_alive = True
        self.closed = False
        # Body framing of the answer being read.
        self.chunked = False
        self.chunk_state = _SIZE_LINE
        self.chunk_left = 0
        self.body_left = 0  # bytes still expected by Content-Length
        self.body_read = 0
        self.read_limit = 0

    # -- asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport by construction; uvloop's are not asyncio.Transport subclasses.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.state == _IDLE:
            # Nothing was asked: a server talking out of turn cannot be trusted with the next request.
            self._close()
            return
        self.received_any = True
        self.connecting_until = 0.0
        self.buffer += data
        try:
            self._advance()
        except (ValueError, IndexError) as error:
            self._fail(httpx.RemoteProtocolError(f"malformed answer from {self.origin.host}: {error}"))

    def eof_received(self) -> bool:
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool._forget(self)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            if self.connecting_until and isinstance(exc, OSError) and exc.errno in _CONNECT_ERRNOS:
                waiter.set_exception(
                    httpx.ConnectError(f"cannot connect to {_naming(self.origin.host, self.address)}: {exc}")
                )
            else:
                reason = str(exc) if exc else "the server closed the connection"
                waiter.set_exception(_ConnectionClosed(answered_nothing=not self.received_any, reason=reason))
        self.state = _IDLE

    # -- requests

    def exchange(self, request: bytes, deadline: float, read_limit: int) -> asyncio.Future[PostResult]:
        """Send `request`; the future holds the answer's status once its head has arrived."""
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.state = _HEAD
        self.received_any = False
        self.read_limit = read_limit
        self.deadline = deadline
        self.buffer.clear()
        self.scanned = 0
        self.transport.write(request)
        return self.waiter

    # -- parsing

    def _advance(self) -> None:
        if self.state == _HEAD and not self._read_head():
            return
        if self.state == _BODY:
            self._read_body()

    def _read_head(self) -> bool:
        """Parse the head once it is all there; False while more is needed."""
        while True:
            end, consumed = _head_end(self.buffer, self.scanned)
            if end < 0:
                if len(self.buffer) > HEAD_LIMIT:
                    raise ValueError(f"a head over {HEAD_LIMIT} bytes")
                self.scanned = max(0, len(self.buffer) - 2)
                return False
            self.scanned = 0
            # Lines end in CRLF; a bare LF is accepted too, as RFC 9112 2.2 allows a recipient.
            lines = [line.rstrip(b"\r") for line in bytes(self.buffer[:end]).split(b"\n")]
            del self.buffer[:consumed]
            version, _, rest = lines[0].partition(b" ")
            code = rest[:3]
            if not version.startswith(b"HTTP/1.") or len(code) != 3 or not code.isdigit():
                raise ValueError(f"status line {lines[0][:80]!r}")
            status = int(code)
            if 100 <= status < 200:
                if status == 101:
                    raise ValueError("an unasked protocol switch")
                continue  # 100 Continue and other interim answers: the real one follows
            fields: dict[bytes, bytes] = {}
            for line in lines[1:]:
                name, colon, value = line.partition(b":")
                if not colon:
                    raise ValueError(f"header line {line[:80]!r}")
                fields[name.strip().lower()] = value.strip()
            self._frame_body(status, version, fields)
            waiter = self.waiter
            if waiter is not None and not waiter.done():
                retry_after = fields.get(b"retry-after")
                waiter.set_result(PostResult(status, retry_after.decode("latin-1") if retry_after else None))
            self.state = _BODY
            return True

    def _frame_body(self, status: int, version: bytes, fields: dict[bytes, bytes]) -> None:
        connection = fields.get(b"connection", b"").lower()
        if version == b"HTTP/1.0":
            self.keep_alive = b"keep-alive" in connection
        else:
            self.keep_alive = b"close" not in connection
        self.body_read = 0
        self.chunked = False
        self.body_left = 0
        if status in (204, 304):
            return
        encoding = fields.get(b"transfer-encoding")
        if encoding is not None:
            # Chunked only when it is the last coding; any other framing runs until close (RFC 9112 6.3).
            if encoding.lower().rsplit(b",", 1)[-1].strip() == b"chunked":
                self.chunked, self.chunk_state, self.chunk_left = True, _SIZE_LINE, 0
            else:
                self.keep_alive = False
            return
        length = fields.get(b"content-length")
        if length is None:
            self.keep_alive = False  # the body runs until the server closes
            return
        if not length.isdigit():
            raise ValueError(f"Content-Length {length[:40]!r}")
        self.body_left = int(length)
        if self.body_left > self.read_limit:
            self.keep_alive = False  # not worth reading to reuse the connection

    def _read_body(self) -> None:
        if not self.keep_alive:
            # Only the status was wanted, and this connection will not carry another request.
            self._close()
            return
        if self.chunked:
            finished = self._skip_chunks()
        else:
            taken = min(self.body_left, len(self.buffer))
            del self.buffer[:taken]
            self.body_left -= taken
            self.body_read += taken
            finished = self.body_left == 0
        if finished:
            self._answer_done()
        elif self.body_read > self.read_limit:
            self._close()

    def _skip_chunks(self) -> bool:
        """Skip chunked data as it arrives; True once the last chunk and the trailers are past."""
        buffer = self.buffer
        while True:
            if self.chunk_state == _DATA:
                taken = min(self.chunk_left, len(buffer))
                del buffer[:taken]
                self.chunk_left -= taken
                self.body_read += taken
                if self.chunk_left:
                    return False
                self.chunk_state = _DATA_END
            line_end = buffer.find(b"\n")
            if line_end < 0:
                if len(buffer) > 4096:
                    raise ValueError("a chunk line over 4096 bytes")
                return False
            line = bytes(buffer[:line_end]).rstrip(b"\r")
            del buffer[: line_end + 1]
            if self.chunk_state == _DATA_END:
                if line:
                    raise ValueError("chunk data longer than its size")
                self.chunk_state = _SIZE_LINE
            elif self.chunk_state == _TRAILER:
                if not line:
                    return True
            else:
                digits = line.split(b";", 1)[0].strip()
                if not digits or digits.strip(b"0123456789abcdefABCDEF"):
                    raise ValueError(f"chunk size {digits[:20]!r}")  # int() would take -5, 0x1a or 1_0
                size = int(digits, 16)
                self.chunk_state, self.chunk_left = (_TRAILER, 0) if size == 0 else (_DATA, size)

    def _answer_done(self) -> None:
        self.state = _IDLE
        self.waiter = None
        # Reused only when nothing is left over either way: bytes after the answer, or part of our
        # request still unsent (a server that answered early would read it as the next request).
        unsent = self.transport.get_write_buffer_size() if self.transport is not None else 0
        if self.keep_alive and not self.buffer and not unsent:
            self.pool._release(self)
        else:
            self._close()

    # -- ending

    def timed_out(self) -> None:
        self._fail(httpx.ReadTimeout(f"no complete answer from {self.origin.host} in time"))

    def check_connected(self, now: float) -> None:
        """Past the connect deadline: a socket with no peer yet means no connection came about."""
        if not self.connecting_until or self.connecting_until > now or self.transport is None:
            return
        self.connecting_until = 0.0
        try:
            self.transport.get_extra_info("socket").getpeername()
        except OSError:  # ENOTCONN: the handshake never completed
            self._fail(
                httpx.ConnectTimeout(f"connecting to {_naming(self.origin.host, self.address)} timed out")
            )

    def _fail(self, error: Exception) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        self._close()

    def _close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class DeliveryConnections:
    """Pooled keep-alive connections and the POSTs made on them."""

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        ssl_context: ssl.SSLContext,
        connect_timeout: float,
        max_connections: int = 1024,
        idle_timeout: float = 15.0,
        lookup: Callable[..., list[tuple[Any, ...]]] = socket.getaddrinfo,
    ) -> None:
        """`lookup` resolves names, blocking (run in the pool's resolver threads): the system's
        resolver, unless a test stands in for it."""
        self.policy = policy
        self.ssl_context = ssl_context
        self.connect_timeout = connect_timeout
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self._idle: dict[Origin, list[_Connection]] = {}
        # Every idle connection, least recently used first: the one to close when too many are open.
        self._idle_order: OrderedDict[_Connection, None] = OrderedDict()
        self._open: set[_Connection] = set()
        self._addresses: OrderedDict[tuple[str, int], tuple[float, list[tuple[int, str]]]] = OrderedDict()
        self._busy: set[_Connection] = set()
        self._sweep_interval = min(SWEEP_INTERVAL, max(connect_timeout / 4, 0.01))
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False
        self._lookup = lookup
        self._resolvers = ThreadPoolExecutor(RESOLVER_THREADS, thread_name_prefix="delivery-dns")

    async def post(
        self,
        url: str | Target,
        body: bytes,
        headers: Mapping[str, str],
        *,
        read_timeout: float,
        read_limit: int,
    ) -> PostResult:
        """POST to `url`, or to a `Target` its caller has already parsed (`parse_target`)."""
        target = url if isinstance(url, Target) else parse_target(url)
        origin = target.origin
        request = _request_bytes(target.path, target.authority, headers, body)
        if read_timeout / 4 < self._sweep_interval:
            self._sweep_interval = max(read_timeout / 4, 0.01)
        connection = self._take_idle(origin)
        if connection is not None:
            try:
                return await self._exchange(connection, request, read_timeout, read_limit)
            except _ConnectionClosed as closed:
                if not closed.answered_nothing:
                    raise httpx.RemoteProtocolError(str(closed)) from None
                # The server had closed the kept-alive connection before our request reached
                # it: one more try on a new connection (an inbox ignores an activity it has seen).
        connection = await self._connect(origin)
        try:
            return await self._exchange(connection, request, read_timeout, read_limit)
        except _ConnectionClosed as closed:
            raise httpx.RemoteProtocolError(str(closed)) from None

    async def aclose(self) -> None:
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for connection in list(self._open):
            connection._close()
        self._idle.clear()
        self._idle_order.clear()
        # Lookups still running end on their own (a blocked resolver call cannot be stopped).
        self._resolvers.shutdown(wait=False, cancel_futures=True)

    # -- the pool

    async def _exchange(
        self, connection: _Connection, request: bytes, read_timeout: float, read_limit: int
    ) -> PostResult:
        waiter = connection.exchange(request, time.monotonic() + read_timeout, read_limit)
        # Busy until its answer's body is skipped too (`_release`) or it closes (`_forget`): the
        # deadline covers the whole answer, so a body that stalls does not hold a connection.
        self._busy.add(connection)
        try:
            return await waiter
        except asyncio.CancelledError:
            # Cancelled before the answer came: the connection is mid-exchange and useless. After
            # it came, the connection may already be carrying somebody else's request: leave it.
            if waiter.cancelled() or not waiter.done():
                connection._close()
            raise

    def _take_idle(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        while idle:
            connection = idle[-1]  # the most recently used: the least likely to be closed by now
            self._unidle(connection)
            if not connection.closed:
                return connection
        return None

    def _release(self, connection: _Connection) -> None:
        """An answer was read to its end and the connection may carry another request."""
        self._busy.discard(connection)
        if self._closed:
            connection._close()
            return
        self._idle.setdefault(connection.origin, []).append(connection)
        connection.idle_since = time.monotonic()
        self._idle_order[connection] = None
        while len(self._open) > self.max_connections and self._idle_order:
            oldest = next(iter(self._idle_order))
            # Out of the count now: it leaves `_open` only when its close completes, later.
            self._forget(oldest)
            oldest._close()

    def _forget(self, connection: _Connection) -> None:
        """Out of every list: the connection is closed or about to be."""
        self._open.discard(connection)
        self._busy.discard(connection)
        self._unidle(connection)

    def _unidle(self, connection: _Connection) -> None:
        if self._idle_order.pop(connection, False) is None:  # it was idle
            idle = self._idle[connection.origin]
            idle.remove(connection)
            if not idle:
                del self._idle[connection.origin]

    def _sweep(self) -> None:
        """Time out late answers and close connections idle too long; again later while any are open."""
        self._sweeper = None
        now = time.monotonic()
        for connection in [busy for busy in self._busy if busy.connecting_until]:
            connection.check_connected(now)
        for connection in [busy for busy in self._busy if busy.deadline <= now and not busy.closed]:
            connection.timed_out()
        stale = now - self.idle_timeout
        while self._idle_order:
            oldest = next(iter(self._idle_order))
            if oldest.idle_since > stale:
                break
            self._forget(oldest)
            oldest._close()
        self._schedule_sweep()

    def _schedule_sweep(self) -> None:
        if self._sweeper is None and self._open and not self._closed:
            self._sweeper = asyncio.get_running_loop().call_later(self._sweep_interval, self._sweep)

    async def _connect(self, origin: Origin) -> _Connection:
        if self._closed:
            raise httpx.ConnectError("the delivery connections are closed")
        # One deadline for resolving the name and trying its addresses, as a connect timeout means.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.connect_timeout
        error: httpx.TransportError | None = None
        addresses = await self._resolve(origin, deadline)
        for position, (family, address) in enumerate(addresses):
            if loop.time() >= deadline:
                break
            try:
                connection = await self._dial(
                    origin, family, address, deadline, last=position == len(addresses) - 1
                )
            except TimeoutError:
                error = httpx.ConnectTimeout(f"connecting to {_naming(origin.host, address)} timed out")
            except (OSError, ssl.SSLError) as failure:
                error = httpx.ConnectError(f"cannot connect to {_naming(origin.host, address)}: {failure}")
            else:
                self._open.add(connection)
                self._schedule_sweep()
                return connection
        raise error or httpx.ConnectTimeout(f"connecting to {origin.host} timed out")

    async def _dial(
        self, origin: Origin, family: int, address: str, deadline: float, *, last: bool
    ) -> _Connection:
        """A connection to an address already resolved and checked.

        The socket is connected here rather than by `loop.create_connection(host=...)`, which
        would resolve the address again and run its happy-eyeballs machinery: on a fan-out's
        first contact with thousands of hosts that was a fifth of the event loop's time.

        When this is the last address to try, the handshake is not waited for either: the
        request is written at once and leaves when the connection is up, and a connection that
        never comes about fails the exchange instead (refused or unreachable: `connection_lost`;
        past the deadline: the sweep's `check_connected`), with the same httpx errors. That
        saves the event loop a wait of its own per new connection, a third of what first
        contact costs it. With other addresses left, the handshake is awaited, so that a
        failure can move on to the next one.
        """
        loop = asyncio.get_running_loop()
        sock = socket.socket(family, socket.SOCK_STREAM)
        connecting = False
        try:
            sock.setblocking(False)
            try:
                sock.connect((address, origin.port))
            except BlockingIOError:
                if last:
                    connecting = True
                else:
                    await _writable(loop, sock, deadline)
                    failure = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if failure:
                        raise OSError(failure, os.strerror(failure)) from None
            secure = origin.scheme == "https"
            async with asyncio.timeout_at(deadline) if secure else _NO_TIMEOUT:  # the TLS handshake
                _transport, connection = await loop.create_connection(
                    lambda: _Connection(self, origin),
                    sock=sock,
                    ssl=self.ssl_context if secure else None,
                    server_hostname=origin.host if secure else None,
                )
        except BaseException:
            sock.close()
            raise
        connection.address = address
        if connecting and not secure:  # a TLS handshake, awaited above, needed the connection
            # On the pool's clock (time.monotonic); `deadline` is on the loop's, which may differ.
            connection.connecting_until = time.monotonic() + max(0.0, deadline - loop.time())
        return connection

    async def _resolve(self, origin: Origin, deadline: float) -> list[tuple[int, str]]:
        """Where to connect, allowed addresses only (literal addresses as they are)."""
        host, port = origin.host, origin.port
        key = (host, port)
        cached = self._addresses.get(key)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        literal = ip_literal(host)
        if literal is not None:
            # Cached as a resolved name is: the policy's check costs more than the connection.
            self.policy.check(literal, host)
            family = socket.AF_INET6 if literal.version == 6 else socket.AF_INET
            return self._remember(key, [(family, host)])
        try:
            async with asyncio.timeout_at(deadline):
                found = await asyncio.get_running_loop().run_in_executor(
                    self._resolvers, functools.partial(self._lookup, host, port, type=socket.SOCK_STREAM)
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"resolving {host} timed out") from None
        except (OSError, UnicodeError) as failure:
            raise httpx.ConnectError(f"cannot resolve {host}: {failure}") from None
        addresses: list[tuple[int, str]] = list(
            dict.fromkeys((int(family), str(sockaddr[0])) for family, _, _, _, sockaddr in found)
        )
        allowed = [(family, address) for family, address in addresses if self.policy.is_allowed(address)]
        if not allowed:
            if not addresses:
                raise httpx.ConnectError(f"{host} resolved to no address")
            self.policy.check(addresses[0][1], host)
        return self._remember(key, allowed)

    def _remember(self, key: tuple[str, int], addresses: list[tuple[int, str]]) -> list[tuple[int, str]]:
        self._addresses[key] = (time.monotonic() + DNS_TTL, addresses)
        while len(self._addresses) > DNS_CACHE_SIZE:
            self._addresses.popitem(last=False)
        return addresses


async def _writable(loop: asyncio.AbstractEventLoop, sock: socket.socket, deadline: float) -> None:
    """Wait until a connecting socket is writable (connected or failed), until `deadline` at most."""
    writable: asyncio.Future[None] = loop.create_future()
    descriptor = sock.fileno()
    loop.add_writer(descriptor, _settle_once, writable)
    timer = loop.call_at(deadline, _settle_once, writable, TimeoutError())
    try:
        await writable
    finally:
        timer.cancel()
        loop.remove_writer(descriptor)


def _naming(host: str, address: str) -> str:
    return host if host == address else f"{host} ({address})"


def _settle_once(future: asyncio.Future[None], error: BaseException | None = None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)


# The common inbox URL, for which the full parse below has nothing to do: http(s), a plain host
# name or IPv4 address, an optional port, and a path and query of characters that go on the wire
# as they are. Anything else (user info, IPv6, IDN, a fragment, an empty query, odd characters)
# takes the long way.
_PLAIN_URL = re.compile(
    r"(https?)://([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)(?::([1-9][0-9]{0,4}))?"
    r"((?:/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?(?:\?[A-Za-z0-9._~!$&'()*+,;=:@%/?-]+)?)"
)


def parse_target(url: str) -> Target:
    """Where an http(s) URL leads and what its request says; httpx's errors for a URL that is
    not one a request can be made to."""
    plain = _PLAIN_URL.fullmatch(url)
    if plain is not None:
        scheme, name, digits, path = plain.groups()
        port = int(digits) if digits else None
        if port is None or port <= 65535:
            host = name.lower()
            if not path or path[0] == "?":
                path = "/" + path
            return Target(
                url,
                Origin(scheme, host, port or DEFAULT_PORTS[scheme]),
                path,
                host_header(host, port, scheme),
            )
    return parse_any_target(url)


def parse_any_target(url: str) -> Target:
    """`parse_target` the long way, whatever the URL's shape."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise httpx.InvalidURL(f"{url[:200]!r}: {error}") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise httpx.UnsupportedProtocol(f"{url[:200]!r}: only http and https are delivered to")
    if not parts.hostname:
        raise httpx.InvalidURL(f"{url[:200]!r} names no host")
    if port == 0:
        raise httpx.InvalidURL(f"{url[:200]!r}: port 0 is no port")
    try:
        host = ascii_hostname(parts.hostname)  # as signed in the Host header
    except UnicodeError as error:
        raise httpx.InvalidURL(f"{url[:200]!r}: {error}") from None
    origin = Origin(scheme, host, port or DEFAULT_PORTS[scheme])
    return Target(url, origin, request_target(parts), host_header(host, port, scheme))


def _request_bytes(target: str, authority: str, headers: Mapping[str, str], body: bytes) -> bytes:
    lines = [f"POST {target} HTTP/1.1"]
    has_host = False
    for name, value in headers.items():
        lowered = name.lower()
        if lowered == "content-length":
            continue
        has_host = has_host or lowered == "host"
        lines.append(f"{name}: {value}")
    if not has_host:
        lines.append(f"Host: {authority}")
    lines.append(f"Content-Length: {len(body)}")
    head = "\r\n".join(lines)
    # One CR and one LF between lines and none elsewhere, and no colon in a name: else a header
    # smuggles in another (checked on the whole head at once, for it is built for every request).
    breaks = len(lines) - 1
    if head.count("\r") != breaks or head.count("\n") != breaks or any(":" in name for name in headers):
        culprit = next(
            (
                name
                for name, value in headers.items()
                if ":" in name or any(c in name + value for c in "\r\n")
            ),
            "",
        )
        raise httpx.LocalProtocolError(f"header {culprit[:40]!r} holds a line break or its name a colon")
    try:
        return (head + "\r\n\r\n").encode("latin-1") + body
    except UnicodeEncodeError as error:
        raise httpx.LocalProtocolError(f"a header that is not latin-1: {error}") from None


def _head_end(buffer: bytearray, start: int) -> tuple[int, int]:
    """(where the head ends, where the body starts) in `buffer`, searched from `start`; (-1, -1)
    while the blank line that ends the head has not arrived. CRLF or bare LF line ends."""
    crlf = buffer.find(b"\n\r\n", start)
    lf = buffer.find(b"\n\n", start)
    if lf >= 0 and (crlf < 0 or lf < crlf):
        return lf, lf + 2
    if crlf >= 0:
        return crlf, crlf + 3
    return -1, -1
