"""The lean delivery client (`DeliveryConnections`) against a real loopback server.

The server is a bare asyncio socket server whose answers are scripted as raw bytes, so each test
produces exactly the framing it is about (Content-Length, chunked with extensions and trailers,
until close, interim answers, broken heads) and sees exactly what went over the wire and on how
many connections: what an inbox would notice.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from app.activitypub.addresses import AddressPolicy, ForbiddenAddressError
from app.activitypub.delivery_connections import (
    DeliveryConnections,
    PostResult,
    parse_any_target,
    parse_target,
)
from app.activitypub.signatures import parse_signed_request, sign_request

LOOPBACK = AddressPolicy(allowed=(ipaddress.ip_network("127.0.0.0/8"),))
ACCEPTED = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"
CREATED = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"


@dataclass(eq=False)
class Link:
    """The server's side of one connection."""

    number: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    closed: bool = False

    async def send(self, *parts: bytes, pause: float = 0.0) -> None:
        """Write `parts` one TCP write at a time, pausing between them."""
        for part in parts:
            self.writer.write(part)
            await self.writer.drain()
            if pause:
                await asyncio.sleep(pause)

    async def until_closed(self) -> None:
        """Answer nothing; return when the client has closed the connection."""
        while await self.reader.read(65_536):
            pass

    def hang_up(self) -> None:
        self.writer.close()


# (the connection, the raw request, the number of the request counted over all connections)
Responder = Callable[[Link, bytes, int], Awaitable[None]]


async def accept(link: Link, request: bytes, index: int) -> None:
    await link.send(ACCEPTED)


async def read_request(reader: asyncio.StreamReader) -> bytes | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        return head + await reader.readexactly(length)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None


class Inbox:
    """A scripted loopback HTTP server that records every request and connection."""

    def __init__(self, respond: Responder) -> None:
        self.respond = respond
        self.links: list[Link] = []
        self.requests: list[tuple[int, bytes]] = []  # (connection number, raw request)
        self.answered = 0
        self.port = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    def url(self, path: str = "/inbox") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for link in self.links:
            link.writer.transport.abort()
        await asyncio.wait_for(asyncio.gather(*self._tasks, return_exceptions=True), timeout=2.0)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        link = Link(len(self.links), reader, writer)
        self.links.append(link)
        try:
            while not writer.is_closing():
                request = await read_request(reader)
                if request is None:
                    break
                self.requests.append((link.number, request))
                await self.respond(link, request, len(self.requests) - 1)
                self.answered += 1
        except ConnectionError:
            pass
        finally:
            link.closed = True
            writer.close()


async def eventually(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


def parse(request: bytes) -> tuple[bytes, list[tuple[bytes, bytes]], bytes]:
    head, _, body = request.partition(b"\r\n\r\n")
    line, *lines = head.split(b"\r\n")
    fields = []
    for field in lines:
        name, _, value = field.partition(b": ")
        fields.append((name, value))
    return line, fields, body


@pytest.fixture
async def inboxes() -> AsyncIterator[Callable[..., Awaitable[Inbox]]]:
    started: list[Inbox] = []

    async def start(respond: Responder = accept) -> Inbox:
        inbox = Inbox(respond)
        await inbox.start()
        started.append(inbox)
        return inbox

    yield start
    for inbox in started:
        await inbox.stop()


@pytest.fixture
async def pools() -> AsyncIterator[Callable[..., DeliveryConnections]]:
    made: list[DeliveryConnections] = []
    context = ssl.create_default_context()

    def make(policy: AddressPolicy = LOOPBACK, **options: Any) -> DeliveryConnections:
        pool = DeliveryConnections(policy, ssl_context=context, connect_timeout=2.0, **options)
        made.append(pool)
        return pool

    yield make
    for pool in made:
        await pool.aclose()


async def post(
    pool: DeliveryConnections,
    url: str,
    body: bytes = b'{"type":"Create"}',
    headers: dict[str, str] | None = None,
    *,
    read_timeout: float = 2.0,
    read_limit: int = 1024,
) -> PostResult:
    return await pool.post(
        url,
        body,
        headers if headers is not None else {"Content-Type": "application/activity+json"},
        read_timeout=read_timeout,
        read_limit=read_limit,
    )


# -- the request and its answer


async def test_the_request_on_the_wire_and_the_answer_status_and_retry_after(inboxes, pools) -> None:
    async def busy(link: Link, request: bytes, index: int) -> None:
        await link.send(b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 30\r\nContent-Length: 4\r\n\r\nbusy")

    inbox = await inboxes(busy)
    pool = pools()
    body = b'{"type":"Create","content":"h\xc3\xa9"}'
    headers = {
        "Content-Type": "application/activity+json",
        "Signature": 'keyId="https://here.example/actor#main-key",signature="abc=="',
        "Content-Length": "999",  # ours is wrong: the real length is sent instead
    }

    result = await post(pool, inbox.url("/users/bob/inbox?page=2&x=y"), body, headers)

    assert result == PostResult(429, "30")
    [(_, request)] = inbox.requests
    line, fields, sent_body = parse(request)
    assert line == b"POST /users/bob/inbox?page=2&x=y HTTP/1.1"
    assert fields == [
        (b"Content-Type", b"application/activity+json"),
        (b"Signature", b'keyId="https://here.example/actor#main-key",signature="abc=="'),
        (b"Host", f"127.0.0.1:{inbox.port}".encode()),
        (b"Content-Length", str(len(body)).encode()),
    ]
    assert sent_body == body


async def test_a_given_host_is_sent_instead_of_the_derived_one(inboxes, pools) -> None:
    inbox = await inboxes()
    result = await post(pools(), inbox.url(), headers={"Host": "inbox.example", "Date": "now"})

    assert result == PostResult(202, None)
    [(_, request)] = inbox.requests
    _, fields, _ = parse(request)
    assert [value for name, value in fields if name.lower() == b"host"] == [b"inbox.example"]


async def test_a_path_with_spaces_or_non_ascii_is_percent_encoded(inboxes, pools) -> None:
    inbox = await inboxes()
    await post(pools(), inbox.url("/users/zoë/in box"))

    line, _, _ = parse(inbox.requests[0][1])
    assert line == b"POST /users/zo%C3%AB/in%20box HTTP/1.1"


async def test_a_signature_for_such_a_path_verifies_against_the_request_line_sent(inboxes, pools) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    inbox = await inboxes()
    url = inbox.url("/users/zoë/in box?a b")
    body = b'{"type":"Create"}'
    headers = sign_request(
        method="POST", url=url, body=body, key_id="https://a.test/actor#key", private_key=key
    )
    await post(pools(), url, body, headers)

    line, fields, received = parse(inbox.requests[0][1])
    target = line.split(b" ")[1].decode()
    path, _, query = target.partition("?")
    # What the receiving server reads off the wire is what was signed.
    signed = parse_signed_request(
        method="POST",
        path=path,
        query=query,
        headers={name.decode(): value.decode() for name, value in fields},
        body=received,
        now=parsedate_to_datetime(headers["Date"]),
    )
    assert signed.verify(key.public_key())


async def test_an_interim_100_continue_is_skipped_for_the_real_answer(inboxes, pools) -> None:
    async def continue_then_create(link: Link, request: bytes, index: int) -> None:
        await link.send(b"HTTP/1.1 100 Continue\r\n\r\n", CREATED, pause=0.02)

    inbox = await inboxes(continue_then_create)
    pool = pools()

    assert (await post(pool, inbox.url())).status == 201
    await eventually(lambda: inbox.answered == 1)
    assert (await post(pool, inbox.url())).status == 201
    assert len(inbox.links) == 1


# -- keep-alive


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param([b"HTTP/1.1 202 Accepted\r\nContent-Length: 5\r\n\r\nhello"], id="content-length"),
        pytest.param(
            [b"HTTP/1.1 202 Accepted\r\nContent-Len", b"gth: 11\r\n\r\nhello", b" world"],
            id="content-length-split",
        ),
        pytest.param(
            [
                b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n",
                b"5;name=value\r\nhel",
                b"lo\r\n1",
                b"0\r\n0123456789abcdef\r",
                b"\n0\r\nX-Trailer: yes\r",
                b"\nX-Other: no\r\n",
                b"\r\n",
            ],
            id="chunked-extensions-trailers",
        ),
        pytest.param([b"HTTP/1.1 204 No Content\r\n\r\n"], id="204-without-length"),
        pytest.param(
            [b"HTTP/1.0 202 Accepted\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n"], id="http/1.0"
        ),
    ],
)
async def test_posts_in_a_row_share_one_connection(inboxes, pools, answer: list[bytes]) -> None:
    async def respond(link: Link, request: bytes, index: int) -> None:
        if index == 0:
            await link.send(*answer, pause=0.01)
        else:
            await link.send(CREATED)  # a misread first body would turn into a garbled second answer

    inbox = await inboxes(respond)
    pool = pools()

    first = await post(pool, inbox.url())
    await eventually(lambda: inbox.answered == 1)
    await asyncio.sleep(0.02)  # let the client read the rest of the body
    second = await post(pool, inbox.url())

    assert (first.status, second.status) == (int(answer[0][9:12]), 201)
    assert len(inbox.links) == 1
    assert [number for number, _ in inbox.requests] == [0, 0]
    assert not inbox.links[0].closed


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(
            [b"HTTP/1.1 202 Accepted\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"],
            id="connection-close",
        ),
        pytest.param([b"HTTP/1.1 500 Oops\r\n\r\nthe body runs until the connection ends"], id="no-length"),
        pytest.param([b"HTTP/1.0 202 Accepted\r\nContent-Length: 0\r\n\r\n"], id="http/1.0-default"),
        pytest.param(
            [b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: gzip\r\n\r\nnot chunked"], id="non-chunked-coding"
        ),
        pytest.param(
            [b"HTTP/1.1 413 Too Large\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000],
            id="length-over-read-limit",
        ),
        pytest.param(
            [
                b"HTTP/1.1 413 Too Large\r\nTransfer-Encoding: chunked\r\n\r\n",
                b"320\r\n" + b"x" * 800 + b"\r\n",
                b"320\r\n" + b"x" * 800 + b"\r\n",
                b"0\r\n\r\n",
            ],
            id="chunked-over-read-limit",
        ),
        pytest.param(
            [b"HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n", b"0x5\r\nhello\r\n0\r\n\r\n"],
            id="chunk-size-not-hex",
        ),
    ],
)
async def test_answers_that_end_the_connection_give_the_status_and_a_new_connection_next(
    inboxes, pools, answer: list[bytes]
) -> None:
    async def respond(link: Link, request: bytes, index: int) -> None:
        # The server keeps the connection open: the client is the one that must not reuse it.
        if index == 0:
            await link.send(*answer, pause=0.02)
        else:
            await link.send(CREATED)

    inbox = await inboxes(respond)
    pool = pools()

    first = await post(pool, inbox.url(), read_limit=1024)
    await eventually(lambda: inbox.links[0].closed)
    second = await post(pool, inbox.url())

    assert (first.status, second.status) == (int(answer[0][9:12]), 201)
    assert [number for number, _ in inbox.requests] == [0, 1]


async def test_after_a_head_without_framing_the_next_post_does_not_wait_on_that_connection(
    inboxes, pools
) -> None:
    async def slow_body_until_close(link: Link, request: bytes, index: int) -> None:
        if index == 0:
            await link.send(b"HTTP/1.1 500 Oops\r\n\r\n")
            await asyncio.sleep(0.2)
            await link.send(b"the body, then the end of the connection")
            link.hang_up()
        else:
            await link.send(CREATED)

    inbox = await inboxes(slow_body_until_close)
    pool = pools()

    first = await post(pool, inbox.url())
    second = await post(pool, inbox.url())  # at once: the first body is still to come

    assert (first.status, second.status) == (500, 201)
    assert [number for number, _ in inbox.requests] == [0, 1]


async def test_an_idle_connection_the_server_closed_is_not_used_again(inboxes, pools) -> None:
    async def answer_and_hang_up(link: Link, request: bytes, index: int) -> None:
        await link.send(ACCEPTED)  # says nothing of closing, then closes
        link.hang_up()

    inbox = await inboxes(answer_and_hang_up)
    pool = pools()

    await post(pool, inbox.url(), b"first")
    await asyncio.sleep(0.05)
    result = await post(pool, inbox.url(), b"second")

    assert result.status == 202
    assert [(number, parse(request)[2]) for number, request in inbox.requests] == [
        (0, b"first"),
        (1, b"second"),
    ]


async def test_a_kept_alive_connection_closed_without_an_answer_is_retried_once_on_a_new_one(
    inboxes, pools
) -> None:
    async def close_the_reused_one(link: Link, request: bytes, index: int) -> None:
        if link.number == 0 and index == 1:
            link.hang_up()  # as a server closing an idle connection just as our request arrives
        else:
            await link.send(ACCEPTED if index == 0 else CREATED)

    inbox = await inboxes(close_the_reused_one)
    pool = pools()

    await post(pool, inbox.url(), b"first")
    result = await post(pool, inbox.url(), b"second")

    assert result.status == 201
    assert [(number, parse(request)[2]) for number, request in inbox.requests] == [
        (0, b"first"),
        (0, b"second"),
        (1, b"second"),
    ]


async def test_a_kept_alive_connection_closed_mid_answer_is_not_retried(inboxes, pools) -> None:
    async def half_an_answer(link: Link, request: bytes, index: int) -> None:
        if index == 0:
            await link.send(ACCEPTED)
        else:
            await link.send(b"HTTP/1.1 20")
            link.hang_up()

    inbox = await inboxes(half_an_answer)
    pool = pools()
    await post(pool, inbox.url())

    with pytest.raises(httpx.RemoteProtocolError):
        await post(pool, inbox.url())
    assert len(inbox.links) == 1
    assert len(inbox.requests) == 2


async def test_a_new_connection_closed_without_an_answer_raises_and_is_not_retried(inboxes, pools) -> None:
    async def hang_up(link: Link, request: bytes, index: int) -> None:
        link.hang_up()

    inbox = await inboxes(hang_up)

    with pytest.raises(httpx.RemoteProtocolError):
        await post(pools(), inbox.url())
    assert len(inbox.links) == 1
    assert len(inbox.requests) == 1


# -- timeouts


async def test_a_server_that_never_answers_times_out_and_the_connection_is_closed(inboxes, pools) -> None:
    async def silent(link: Link, request: bytes, index: int) -> None:
        await link.until_closed()

    inbox = await inboxes(silent)
    pool = pools()

    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        async with asyncio.timeout(3):  # a missing timeout fails here instead of hanging the run
            await post(pool, inbox.url(), read_timeout=0.3)
    elapsed = time.monotonic() - started

    assert 0.25 <= elapsed < 2.0
    await eventually(lambda: inbox.links[0].closed, timeout=1.0)


async def test_a_head_that_comes_in_time_despite_a_slow_start_is_not_timed_out(inboxes, pools) -> None:
    async def slowish(link: Link, request: bytes, index: int) -> None:
        await link.send(b"HTTP/1.1 2", b"02 Accepted\r\nContent-Length: 0\r\n\r\n", pause=0.1)

    inbox = await inboxes(slowish)
    assert (await post(pools(), inbox.url(), read_timeout=0.5)).status == 202


async def test_a_connection_whose_body_stalls_is_closed_in_time(inboxes, pools) -> None:
    """The read deadline covers the whole answer: a body that stalls after the head does not hold
    a connection open until the server gives up."""

    async def stall_mid_body(link: Link, request: bytes, index: int) -> None:
        await link.send(b"HTTP/1.1 202 Accepted\r\nContent-Length: 100\r\n\r\n0123456789")
        await link.until_closed()

    inbox = await inboxes(stall_mid_body)
    pool = pools(idle_timeout=0.2)

    assert (await post(pool, inbox.url(), read_timeout=0.3)).status == 202
    await eventually(lambda: inbox.links[0].closed, timeout=1.5)


# -- where it connects to, and refusals


async def test_a_refused_connection_raises_connect_error(pools) -> None:
    with socket.socket() as bound:  # bound, never listening: connecting is refused
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        with pytest.raises(httpx.ConnectError) as caught:
            await post(pools(), f"http://127.0.0.1:{port}/inbox")
    assert not isinstance(caught.value, ForbiddenAddressError)


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A port whose handshakes never complete: a listener that accepts nothing, its queue full, so
    the kernel drops further SYNs (a host that swallows packets)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    queued: list[socket.socket] = []
    for _ in range(4):
        waiting = socket.socket()
        waiting.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            waiting.connect(listener.getsockname())
        queued.append(waiting)
    try:
        yield listener.getsockname()[1]
    finally:
        for waiting in queued:
            waiting.close()
        listener.close()


async def test_a_handshake_that_never_completes_is_a_connect_timeout(unanswered_port: int) -> None:
    pool = DeliveryConnections(LOOPBACK, ssl_context=ssl.create_default_context(), connect_timeout=0.3)
    started = time.monotonic()
    try:
        with pytest.raises(httpx.ConnectTimeout, match=r"connecting to 127\.0\.0\.1 timed out"):
            await post(pool, f"http://127.0.0.1:{unanswered_port}/inbox", read_timeout=5.0)
    finally:
        await pool.aclose()
    # The connect timeout, not the read timeout, decided.
    assert time.monotonic() - started < 2.0


async def test_a_connected_server_slow_to_read_a_large_request_is_a_read_timeout_not_a_connect_one() -> None:
    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)  # connected, reading next to nothing: the request stays unsent
        writer.close()

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # accepted sockets inherit it
    listener.bind(("127.0.0.1", 0))
    server = await asyncio.start_server(hold, sock=listener)
    port = listener.getsockname()[1]
    pool = DeliveryConnections(LOOPBACK, ssl_context=ssl.create_default_context(), connect_timeout=0.3)
    try:
        with pytest.raises(httpx.ReadTimeout):
            await post(pool, f"http://127.0.0.1:{port}/inbox", b"x" * 16_000_000, read_timeout=1.0)
    finally:
        await pool.aclose()
        server.close()


async def test_a_name_whose_first_address_refuses_is_reached_at_the_next(inboxes, pools) -> None:
    inbox = await inboxes()  # on 127.0.0.1 only: 127.0.0.2 refuses on the same port
    asked: list[str] = []

    def two_addresses(host: str, port: int, **_kwargs: object) -> list[tuple[object, ...]]:
        asked.append(host)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
        ]

    # The machine's edge: its resolver.
    assert (await post(pools(lookup=two_addresses), f"http://twice.test:{inbox.port}/inbox")).status == 202
    assert asked == ["twice.test"]
    assert len(inbox.requests) == 1


async def test_slow_name_lookups_run_side_by_side_rather_than_queue(inboxes, pools) -> None:
    """A cold fan-out looks up hundreds of names at once. Queued behind each other in the event
    loop's few resolver threads, the later lookups would spend their healthy host's connect
    timeout (2 s here) just waiting for a thread."""
    inbox = await inboxes()

    def slow_resolver(host: str, port: int, **_kwargs: object) -> list[tuple[object, ...]]:
        time.sleep(0.25)  # the machine's edge: a resolver that takes a quarter second a name
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    pool = pools(lookup=slow_resolver)
    names = [f"host{number}.test" for number in range(48)]
    answers = await asyncio.gather(*(post(pool, f"http://{name}:{inbox.port}/inbox") for name in names))
    assert [answer.status for answer in answers] == [202] * len(names)
    assert {
        name for name in names for _, raw in inbox.requests if f"\r\nHost: {name}:".encode() in raw
    } == set(names)


async def test_a_forbidden_address_is_never_connected_to(inboxes, pools) -> None:
    inbox = await inboxes()

    with pytest.raises(ForbiddenAddressError):
        await post(pools(AddressPolicy()), inbox.url())
    await asyncio.sleep(0.05)
    assert inbox.links == []


async def test_a_name_is_resolved_and_its_addresses_checked(inboxes, pools) -> None:
    inbox = await inboxes()
    url = f"http://localhost:{inbox.port}/inbox"

    with pytest.raises(ForbiddenAddressError):
        await post(pools(AddressPolicy()), url)
    await asyncio.sleep(0.05)
    assert inbox.links == []

    assert (await post(pools(LOOPBACK), url)).status == 202
    _, fields, _ = parse(inbox.requests[0][1])
    assert (b"Host", f"localhost:{inbox.port}".encode()) in fields


# -- protocol errors


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(b"HTTP/1.1 OK 200\r\nContent-Length: 0\r\n\r\n", id="status-not-a-number"),
        pytest.param(b"SPDY/3 200 OK\r\nContent-Length: 0\r\n\r\n", id="not-http"),
        pytest.param(b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n", id="header-line"),
        pytest.param(b"HTTP/1.1 200 OK\r\nContent-Length: -4\r\n\r\n", id="content-length"),
        pytest.param(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", id="protocol-switch"),
        pytest.param(b"HTTP/1.1 200 OK\r\nX-Pad: " + b"a" * 70_000, id="endless-head"),
    ],
)
async def test_a_malformed_answer_raises_remote_protocol_error(inboxes, pools, answer: bytes) -> None:
    async def respond(link: Link, request: bytes, index: int) -> None:
        await link.send(answer)
        await link.until_closed()

    inbox = await inboxes(respond)

    with pytest.raises(httpx.RemoteProtocolError):
        await post(pools(), inbox.url())
    await eventually(lambda: inbox.links[0].closed, timeout=1.0)


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Signature": 'keyId="a"\r\nX-Injected: 1'}, id="crlf-in-value"),
        pytest.param({"Signature": "a\nX-Injected: 1"}, id="lf-in-value"),
        pytest.param({"X-Injected: 1\r\nSignature": "a"}, id="crlf-in-name"),
    ],
)
async def test_a_line_break_in_a_header_raises_and_nothing_is_sent(inboxes, pools, headers) -> None:
    inbox = await inboxes()
    pool = pools()
    await post(pool, inbox.url())  # an open connection it could have been written to

    with pytest.raises(httpx.LocalProtocolError):
        await post(pool, inbox.url(), headers=headers)
    await asyncio.sleep(0.05)

    assert len(inbox.requests) == 1
    assert (await post(pool, inbox.url())).status == 202
    assert [number for number, _ in inbox.requests] == [0, 0]


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("ftp://127.0.0.1/inbox", httpx.UnsupportedProtocol),
        ("file:///etc/passwd", httpx.UnsupportedProtocol),
        ("http://127.0.0.1:99999/inbox", httpx.InvalidURL),
        ("http:///inbox", httpx.InvalidURL),
    ],
)
async def test_urls_that_cannot_be_delivered_to(pools, url: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        await post(pools(), url)


# -- closing connections


async def test_an_idle_connection_is_closed_after_idle_timeout(inboxes, pools) -> None:
    inbox = await inboxes()
    pool = pools(idle_timeout=0.2)

    await post(pool, inbox.url())
    await asyncio.sleep(0.1)
    assert not inbox.links[0].closed
    await eventually(lambda: inbox.links[0].closed, timeout=1.5)
    await post(pool, inbox.url())

    assert [number for number, _ in inbox.requests] == [0, 1]


async def test_beyond_max_connections_the_least_recently_used_idle_one_is_closed(inboxes, pools) -> None:
    first, second = await inboxes(), await inboxes()
    pool = pools(max_connections=1)

    await post(pool, first.url())
    await post(pool, second.url())

    await eventually(lambda: first.links[0].closed, timeout=1.0)
    assert (await post(pool, first.url())).status == 202
    assert len(first.links) == 2


async def test_beyond_max_connections_the_most_recently_used_one_stays_open(inboxes, pools) -> None:
    """Only as many idle connections are closed as the cap needs, not every idle one."""

    first, second = await inboxes(), await inboxes()
    pool = pools(max_connections=1)

    await post(pool, first.url())
    await post(pool, second.url())
    await eventually(lambda: first.links[0].closed, timeout=1.0)
    await post(pool, second.url())

    assert not second.links[0].closed
    assert [number for number, _ in second.requests] == [0, 0]


async def test_aclose_closes_idle_connections_and_refuses_new_posts(inboxes, pools) -> None:
    first, second = await inboxes(), await inboxes()
    pool = pools()
    await post(pool, first.url())
    await post(pool, second.url())

    await pool.aclose()

    await eventually(lambda: first.links[0].closed and second.links[0].closed, timeout=1.0)
    with pytest.raises(httpx.ConnectError):
        await post(pool, first.url())
    assert len(first.links) == 1


# -- what the review found: odd names, cancellation, slow lookups, bare LF


async def test_answers_with_bare_lf_line_ends_are_read(inboxes, pools) -> None:
    async def lf_only(link: Link, request: bytes, index: int) -> None:
        await link.send(b"HTTP/1.1 202 Accepted\nContent-Length: 2\n\nok" if index == 0 else CREATED)

    inbox = await inboxes(lf_only)
    pool = pools()
    assert (await post(pool, inbox.url(), read_timeout=5.0)).status == 202
    assert (await post(pool, inbox.url())).status == 201
    assert [number for number, _ in inbox.requests] == [0, 0]  # framing understood: reused


@pytest.mark.parametrize(
    "url", ["http://a..example/inbox", "http://example.org:0/inbox"], ids=["empty-label", "port-0"]
)
async def test_hosts_no_request_can_go_to_are_invalid_urls(pools, url: str) -> None:
    with pytest.raises(httpx.InvalidURL):
        await post(pools(), url)


async def test_an_internationalised_name_is_resolved_as_punycode(pools) -> None:
    asked: list[object] = []

    def resolver(host: object, *_args: object, **_kwargs: object) -> list[tuple[object, ...]]:
        asked.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(httpx.ConnectError, match=r"xn--bcher-kva\.example"):
        await post(pools(lookup=resolver), "http://bücher.example/inbox")  # the machine's edge
    assert asked == ["xn--bcher-kva.example"]


async def test_a_name_that_does_not_resolve_in_time_is_a_connect_timeout() -> None:
    def answers_too_late(*_args: object, **_kwargs: object) -> list[tuple[object, ...]]:
        time.sleep(1.5)
        return []

    pool = DeliveryConnections(
        LOOPBACK,
        ssl_context=ssl.create_default_context(),
        connect_timeout=0.3,
        lookup=answers_too_late,  # the machine's edge: its resolver
    )
    started = time.monotonic()
    try:
        with pytest.raises(httpx.ConnectTimeout):
            await post(pool, "http://slow-dns.test/inbox")
    finally:
        await pool.aclose()
    assert time.monotonic() - started < 2.0


async def test_cancelling_a_delivery_whose_answer_came_leaves_the_next_one_alone(inboxes, pools) -> None:
    async def second_is_slow(link: Link, request: bytes, index: int) -> None:
        if index == 2:
            await asyncio.sleep(0.2)
        await link.send(ACCEPTED if index < 2 else CREATED)

    inbox = await inboxes(second_is_slow)
    pool = pools()
    await post(pool, inbox.url())  # one idle connection now
    (connection,) = pool._open
    receive = connection.data_received
    follower: asyncio.Task[PostResult] | None = None

    def answer_then_race(data: bytes) -> None:
        # The answer completes A and frees the connection; B takes it in the same turn, and A is
        # cancelled before it resumes (a worker stopping, say).
        nonlocal follower
        follower = asyncio.get_running_loop().create_task(post(pool, inbox.url("/inbox?b")))
        receive(data)
        first.cancel()

    connection.data_received = answer_then_race  # type: ignore[method-assign]
    first = asyncio.create_task(post(pool, inbox.url("/inbox?a")))
    with pytest.raises(asyncio.CancelledError):
        await first
    connection.data_received = receive  # type: ignore[method-assign]
    assert follower is not None
    assert (await follower).status == 201
    targets = [parse(request)[0] for _, request in inbox.requests]
    assert targets.count(b"POST /inbox?b HTTP/1.1") == 1, targets


def test_it_runs_on_uvloop_too() -> None:
    """uvicorn picks uvloop when it runs the app itself; its transports are not asyncio's classes."""
    uvloop = pytest.importorskip("uvloop")

    async def two_posts() -> tuple[list[int], int]:
        inbox = Inbox(accept)
        await inbox.start()
        pool = DeliveryConnections(LOOPBACK, ssl_context=ssl.create_default_context(), connect_timeout=2.0)
        try:
            statuses = [(await post(pool, inbox.url())).status for _ in range(2)]
        finally:
            await pool.aclose()
            await inbox.stop()
        return statuses, len(inbox.links)

    assert uvloop.run(two_posts()) == ([202, 202], 1)


def test_connection_failures_on_uvloop_are_httpx_errors(unanswered_port: int) -> None:
    """uvloop reports a connection that never came about through its own transports."""
    uvloop = pytest.importorskip("uvloop")

    async def failures() -> list[type[Exception]]:
        pool = DeliveryConnections(LOOPBACK, ssl_context=ssl.create_default_context(), connect_timeout=0.3)
        found: list[type[Exception]] = []
        with socket.socket() as bound:  # bound, never listening: connecting is refused
            bound.bind(("127.0.0.1", 0))
            for port in (bound.getsockname()[1], unanswered_port):
                try:
                    await post(pool, f"http://127.0.0.1:{port}/inbox", read_timeout=5.0)
                except httpx.HTTPError as error:
                    found.append(type(error))
        await pool.aclose()
        return found

    assert uvloop.run(failures()) == [httpx.ConnectError, httpx.ConnectTimeout]


@pytest.mark.parametrize(
    "url",
    [
        "https://mastodon.example/inbox",
        "https://mastodon.example/users/alice/inbox",
        "https://Misskey.Example/inbox",
        "https://lemmy.example/inbox?x=1&y=%2F",
        "https://peertube.example/accounts/peertube/inbox",
        "https://friendica.example/receive/public",
        "http://127.0.0.2:9100/inbox",
        "http://localhost:8000/users/bob/inbox",
        "https://gts.example:443/users/a/inbox",
        "http://gts.example:80/inbox",
        "https://host.example:8443/inbox",
        "https://host.example",
        "https://host.example?only=query",
        "https://host.example/inbox?",
        "https://host.example?",
        "https://host.example/?",
        "https://host.example/inbox?a?b",
        "https://host.example/inbox??",
        "https://host.example/a;b,c=d@e:f/~g_(h)!*'+$/",
        "https://host.example/%7Euser/inbox",
        "https://host.example/path with space",
        "https://host.example/inbox#fragment",
        "https://user:pass@host.example/inbox",
        "https://bücher.example/inbox",
        "https://[::1]:8443/inbox",
        "https://host.example./inbox",
        "https://host.example:080/inbox",
        "https://host.example:65535/inbox",
        "HTTPS://HOST.EXAMPLE/Inbox",
    ],
)
def test_each_inbox_url_is_taken_apart_as_the_full_parser_does(url: str) -> None:
    """Common inbox URLs take a short way (a fan-out parses thousands); whichever way a URL takes,
    the host, port, request target and Host header (all signed) come out the same."""
    assert parse_target(url) == parse_any_target(url)


@pytest.mark.parametrize("url", ["https://host.example:99999/inbox", "https://host.example:0/inbox"])
def test_ports_out_of_range_are_invalid_whichever_way_the_url_takes(url: str) -> None:
    with pytest.raises(httpx.InvalidURL):
        parse_target(url)
