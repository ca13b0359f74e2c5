"""The delivery path over real sockets: `post_bytes` straight on the guarded aiohttp session.

Deliveries skip httpx's request and response models (see `post_bytes`), so this path needs its
own proof that it keeps what the httpx path guarantees: the SSRF guard, no redirects followed,
the User-Agent, capped reads, timeouts and refused connections as httpx exceptions, and
connections reused.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from ipaddress import ip_network

import httpx
import pytest
from aiohttp import web

from app.activitypub.addresses import ForbiddenAddressError
from app.activitypub.transport import build_client, build_transport, post_bytes

LOOPBACK = ip_network("127.0.0.0/8")


@dataclass
class Inbox:
    port: int = 0
    bodies: list[bytes] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    client_ports: set[int] = field(default_factory=set)

    def url(self, path: str = "/inbox") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
async def inbox() -> AsyncIterator[Inbox]:
    state = Inbox()

    async def accept(request: web.Request) -> web.Response:
        state.bodies.append(await request.read())
        state.headers.append(dict(request.headers))
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer:
            state.client_ports.add(peer[1])
        return web.Response(status=202)

    async def busy(request: web.Request) -> web.Response:
        return web.Response(status=429, headers={"Retry-After": "30"})

    async def moved(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect("/inbox")

    async def big(request: web.Request) -> web.Response:
        return web.Response(status=500, body=b"x" * 3_000_000)

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(3)
        return web.Response(status=202)

    app = web.Application()
    app.router.add_post("/inbox", accept)
    app.router.add_post("/busy", busy)
    app.router.add_post("/moved", moved)
    app.router.add_post("/big", big)
    app.router.add_post("/slow", slow)
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server = site._server
    assert isinstance(server, asyncio.base_events.Server)
    state.port = server.sockets[0].getsockname()[1]
    yield state
    await runner.cleanup()


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    client = build_client(
        transport=build_transport(allowed_private=[LOOPBACK]), user_agent="herold/test (+x)"
    )
    yield client
    await client.aclose()


async def test_posts_the_body_with_our_headers_and_reuses_the_connection(
    inbox: Inbox, client: httpx.AsyncClient
) -> None:
    for number in range(3):
        result = await post_bytes(
            client, inbox.url(), b'{"n":%d}' % number, {"Content-Type": "application/activity+json"}
        )
        assert (result.status, result.retry_after) == (202, None)
    assert inbox.bodies == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
    assert all(headers["User-Agent"] == "herold/test (+x)" for headers in inbox.headers)
    assert all(headers["Content-Type"] == "application/activity+json" for headers in inbox.headers)
    assert len(inbox.client_ports) == 1  # one kept-alive connection


async def test_status_and_retry_after_without_following_redirects(
    inbox: Inbox, client: httpx.AsyncClient
) -> None:
    assert (await post_bytes(client, inbox.url("/busy"), b"{}", {})).retry_after == "30"
    assert (await post_bytes(client, inbox.url("/moved"), b"{}", {})).status == 307
    assert inbox.bodies == []
    assert (await post_bytes(client, inbox.url("/big"), b"{}", {}, read_limit=1000)).status == 500


@pytest.mark.parametrize(
    "headers",
    [
        {"Digest": "SHA-256=x\r\nX-Forged: 1"},
        {"Digest": "SHA-256=x\nX-Forged: 1"},
        {"Digest": "SHA-256=x\rX-Forged: 1"},
        {"X-Forged: 1\r\nDigest": "x"},
        {"X-Forged: 1": "x"},
    ],
)
async def test_a_header_that_would_smuggle_in_another_is_refused_and_nothing_is_sent(
    inbox: Inbox, client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    with pytest.raises(httpx.LocalProtocolError):
        await post_bytes(client, inbox.url(), b"{}", headers)
    assert (await post_bytes(client, inbox.url(), b"{}", {"Digest": "SHA-256=x"})).status == 202
    assert inbox.bodies == [b"{}"]
    assert "X-Forged" not in inbox.headers[0] and inbox.headers[0]["Digest"] == "SHA-256=x"


async def test_forbidden_addresses_are_refused_without_connecting() -> None:
    guarded = build_client(transport=build_transport(allowed_private=[]), user_agent="x")
    try:
        for url in ("http://127.0.0.1:9/inbox", "http://[::1]:9/inbox", "http://169.254.169.254/inbox"):
            with pytest.raises(ForbiddenAddressError):
                await post_bytes(guarded, url, b"{}", {})
        with pytest.raises(ForbiddenAddressError):
            await post_bytes(guarded, "http://localhost:9/inbox", b"{}", {})
    finally:
        await guarded.aclose()


async def test_refused_and_slow_peers_are_httpx_errors(inbox: Inbox) -> None:
    client = build_client(transport=build_transport(allowed_private=[LOOPBACK]), user_agent="x")
    try:
        # Bound, never listening: refused, and the port stays ours while we ask.
        with socket.socket() as unused, pytest.raises(httpx.ConnectError) as refused:
            unused.bind(("127.0.0.1", 0))
            await post_bytes(client, f"http://127.0.0.1:{unused.getsockname()[1]}/inbox", b"{}", {})
        assert not isinstance(refused.value, httpx.TimeoutException)
        client.timeout = httpx.Timeout(connect=5.0, read=0.2, write=5.0, pool=5.0)
        with pytest.raises(httpx.ReadTimeout):
            await post_bytes(client, inbox.url("/slow"), b"{}", {})
    finally:
        await client.aclose()
