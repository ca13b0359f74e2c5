"""The outbound transport against real sockets on loopback: SSRF guard, reuse, caps, timeouts."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Network, IPv6Network, ip_network

import httpx
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from app.activitypub.addresses import AddressPolicy, ForbiddenAddressError
from app.activitypub.transport import (
    GuardedResolver,
    ResponseTooLarge,
    _client_timeout,
    _guarded_socket_factory,
    build_client,
    build_transport,
    read_capped,
)

BIG = 2 * 1024 * 1024
LOOPBACK = ip_network("127.0.0.0/8")


@dataclass
class Peer:
    """A tiny HTTP server on one loopback address that remembers who talked to it."""

    host: str
    port: int = 0
    client_ports: set[int] = field(default_factory=set)
    paths: list[str] = field(default_factory=list)
    user_agents: list[str] = field(default_factory=list)
    cookies: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"


async def _start_peer(peer: Peer) -> web.AppRunner:
    @web.middleware
    async def record(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        peername = request.transport.get_extra_info("peername") if request.transport else None
        if peername:
            peer.client_ports.add(peername[1])
        peer.paths.append(request.path)
        peer.user_agents.append(request.headers.get("User-Agent", ""))
        peer.cookies.append(request.headers.get("Cookie", ""))
        return await handler(request)

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def set_cookie(request: web.Request) -> web.Response:
        response = web.Response(text="ok")
        response.set_cookie("session", "tracked")
        return response

    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read(), content_type="application/activity+json")

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * BIG)

    async def big_chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        chunk = b"x" * 65_536
        for _ in range(BIG // len(chunk)):
            await response.write(chunk)
        await response.write_eof()
        return response

    async def redirect_to_loopback(request: web.Request) -> web.Response:
        raise web.HTTPFound(f"http://127.0.0.1:{peer.port}/ok")

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(3)
        return web.Response(text="late")

    async def slow_body(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.content_length = 10
        await response.prepare(request)
        await response.write(b"x")
        await asyncio.sleep(3)
        return response

    app = web.Application(middlewares=[record])
    app.router.add_get("/ok", ok)
    app.router.add_get("/set-cookie", set_cookie)
    app.router.add_post("/echo", echo)
    app.router.add_get("/big", big)
    app.router.add_get("/big-chunked", big_chunked)
    app.router.add_get("/redirect-to-loopback", redirect_to_loopback)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/slow", slow)
    app.router.add_get("/slow-body", slow_body)
    # Cancel handlers whose client went away, so the slow ones do not hold up teardown.
    runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=1.0, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, peer.host, 0)
    await site.start()
    server = site._server
    assert isinstance(server, asyncio.base_events.Server)
    peer.port = server.sockets[0].getsockname()[1]
    return runner


@pytest.fixture
async def peer() -> AsyncIterator[Peer]:
    started = Peer("127.0.0.1")
    runner = await _start_peer(started)
    yield started
    await runner.cleanup()


@pytest.fixture
async def second_peer() -> AsyncIterator[Peer]:
    # Linux answers on all of 127.0.0.0/8, which gives a second, separately allowable address.
    started = Peer("127.0.0.2")
    runner = await _start_peer(started)
    yield started
    await runner.cleanup()


ClientFactory = Callable[[Sequence[IPv4Network | IPv6Network]], httpx.AsyncClient]


@pytest.fixture
async def make_client() -> AsyncIterator[ClientFactory]:
    clients: list[httpx.AsyncClient] = []

    def make(allowed: Sequence[IPv4Network | IPv6Network]) -> httpx.AsyncClient:
        client = build_client(transport=build_transport(allowed_private=allowed), user_agent="herold-test/1")
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.aclose()


# --- AddressPolicy -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.254", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.1", "shared address space"),
        ("100.127.255.254", "shared address space"),
        ("127.0.0.1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("255.255.255.255", "private"),
        ("240.0.0.1", "private"),
        ("192.0.2.1", "private"),
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("ff02::1", "multicast"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "link-local"),
        ("64:ff9b::7f00:1", "loopback"),
        ("2002:7f00:1::", "loopback"),
        ("::7f00:1", "reserved"),
        ("2001:db8::1", "private"),
        ("not-an-address", "not an IP address"),
    ],
)
def test_policy_refuses_non_public_addresses(address: str, reason: str) -> None:
    policy = AddressPolicy()
    assert not policy.is_allowed(address)
    assert policy.refusal(address) == reason


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]
)
def test_policy_allows_public_addresses(address: str) -> None:
    policy = AddressPolicy()
    assert policy.is_allowed(address)
    policy.check(address, "example.test")


def test_policy_allows_configured_networks_only() -> None:
    policy = AddressPolicy(allowed=(ip_network("10.0.0.0/8"), ip_network("fd00::/8")))
    assert policy.is_allowed("10.1.2.3")
    assert policy.is_allowed("::ffff:10.1.2.3")
    assert policy.is_allowed("fd00::5")
    assert not policy.is_allowed("192.168.1.1")
    assert not policy.is_allowed("127.0.0.1")
    assert not policy.is_allowed("fc00::1")


def test_check_names_host_and_address() -> None:
    with pytest.raises(ForbiddenAddressError) as caught:
        AddressPolicy().check("127.0.0.1", "example.test")
    assert str(caught.value) == "refusing to connect to 127.0.0.1 (loopback) for example.test"
    assert isinstance(caught.value, httpx.ConnectError)
    assert (caught.value.address, caught.value.host, caught.value.reason) == (
        "127.0.0.1",
        "example.test",
        "loopback",
    )


# --- Resolver and socket factory -----------------------------------------------------------------


class _FixedResolver(AbstractResolver):
    def __init__(self, addresses: list[str]) -> None:
        self._addresses = addresses

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(
                hostname=host,
                host=address,
                port=port,
                family=socket.AF_INET6 if ":" in address else socket.AF_INET,
                proto=0,
                flags=0,
            )
            for address in self._addresses
        ]

    async def close(self) -> None:
        pass


async def test_resolver_drops_forbidden_addresses() -> None:
    resolver = GuardedResolver(AddressPolicy(), _FixedResolver(["10.0.0.1", "93.184.215.14", "::1"]))
    results = await resolver.resolve("mixed.example", 443)
    assert [result["host"] for result in results] == ["93.184.215.14"]


async def test_resolver_refuses_when_nothing_is_left() -> None:
    resolver = GuardedResolver(AddressPolicy(), _FixedResolver(["169.254.169.254", "fe80::1"]))
    with pytest.raises(OSError, match=r"169\.254\.169\.254 \(link-local\) for metadata\.example"):
        await resolver.resolve("metadata.example", 80)


def test_socket_factory_refuses_forbidden_addresses() -> None:
    create_socket = _guarded_socket_factory(AddressPolicy())
    with pytest.raises(OSError, match="loopback"):
        create_socket((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 80)))
    allowed = _guarded_socket_factory(AddressPolicy(allowed=(LOOPBACK,)))
    allowed((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 80))).close()


# --- The transport over real sockets -------------------------------------------------------------


async def test_ip_literal_refused(peer: Peer, make_client: ClientFactory) -> None:
    client = make_client([])
    with pytest.raises(ForbiddenAddressError, match=r"127\.0\.0\.1 \(loopback\)") as caught:
        await client.get(peer.url("/ok"))
    assert isinstance(caught.value, httpx.ConnectError)
    assert peer.paths == []


async def test_name_resolving_to_loopback_refused(peer: Peer, make_client: ClientFactory) -> None:
    client = make_client([])
    with pytest.raises(ForbiddenAddressError, match=r"\(loopback\) for localhost"):
        await client.get(f"http://localhost:{peer.port}/ok")
    assert peer.paths == []


async def test_ipv6_literal_refused(make_client: ClientFactory) -> None:
    client = make_client([])
    with pytest.raises(ForbiddenAddressError, match=r"refusing to connect to ::1 \(loopback\)"):
        await client.get("http://[::1]:8080/ok")


@pytest.mark.parametrize("host", ["127.1", "2130706433", "0x7f000001"])
async def test_legacy_numeric_hosts_never_connect(host: str, peer: Peer, make_client: ClientFactory) -> None:
    client = make_client([])
    with pytest.raises(httpx.TransportError):
        await client.get(f"http://{host}:{peer.port}/ok")
    assert peer.paths == []


async def test_allowed_network_connects_and_reuses_the_connection(
    peer: Peer, make_client: ClientFactory
) -> None:
    client = make_client([LOOPBACK])
    first = await client.get(peer.url("/ok"))
    second = await client.get(peer.url("/ok"))
    assert (first.status_code, first.text, second.text) == (200, "ok", "ok")
    assert len(peer.client_ports) == 1
    assert peer.user_agents == ["herold-test/1", "herold-test/1"]


async def test_allowed_network_admits_names_resolving_into_it(peer: Peer, make_client: ClientFactory) -> None:
    client = make_client([LOOPBACK])
    response = await client.get(f"http://localhost:{peer.port}/ok")
    assert response.text == "ok"


async def test_post_body_arrives_intact(peer: Peer, make_client: ClientFactory) -> None:
    client = make_client([LOOPBACK])
    body = b'{"type": "Create", "content": "' + b"a" * 1500 + b'"}'
    response = await client.post(
        peer.url("/echo"), content=body, headers={"Content-Type": "application/activity+json"}
    )
    assert response.content == body


async def test_allowed_redirect_is_followed(peer: Peer, make_client: ClientFactory) -> None:
    client = make_client([LOOPBACK])
    response = await client.get(peer.url("/redirect-to-loopback"))
    assert (response.status_code, response.text) == (200, "ok")
    assert peer.paths == ["/redirect-to-loopback", "/ok"]


async def test_redirect_to_forbidden_address_refused(
    peer: Peer, second_peer: Peer, make_client: ClientFactory
) -> None:
    client = make_client([ip_network("127.0.0.1/32")])
    target = second_peer.url("/ok")
    with pytest.raises(ForbiddenAddressError, match=r"127\.0\.0\.2 \(loopback\)"):
        await client.get(peer.url("/redirect"), params={"to": target})
    assert peer.paths == ["/redirect"]
    assert second_peer.paths == []


async def test_redirect_to_loopback_refused(
    peer: Peer, second_peer: Peer, make_client: ClientFactory
) -> None:
    client = make_client([ip_network("127.0.0.2/32")])
    with pytest.raises(ForbiddenAddressError, match=r"127\.0\.0\.1 \(loopback\)"):
        await client.get(second_peer.url("/redirect"), params={"to": peer.url("/ok")})
    assert second_peer.paths == ["/redirect"]
    assert peer.paths == []


async def test_redirect_to_name_resolving_to_forbidden_address_refused(
    peer: Peer, second_peer: Peer, make_client: ClientFactory
) -> None:
    client = make_client([ip_network("127.0.0.2/32")])
    with pytest.raises(ForbiddenAddressError, match="for localhost"):
        await client.get(second_peer.url("/redirect"), params={"to": f"http://localhost:{peer.port}/ok"})
    assert peer.paths == []


async def test_read_capped_refuses_declared_length(peer: Peer, make_client: ClientFactory) -> None:
    client = make_client([LOOPBACK])
    async with client.stream("GET", peer.url("/big")) as response:
        with pytest.raises(ResponseTooLarge) as caught:
            await read_capped(response)
        assert response.is_closed
    assert caught.value.declared == BIG
    assert isinstance(caught.value, httpx.HTTPError)


async def test_read_capped_refuses_undeclared_length(peer: Peer, make_client: ClientFactory) -> None:
    client = make_client([LOOPBACK])
    request = client.build_request("GET", peer.url("/big-chunked"))
    response = await client.send(request, stream=True)
    try:
        assert "content-length" not in response.headers
        with pytest.raises(ResponseTooLarge) as caught:
            await read_capped(response, limit=100_000)
        assert caught.value.declared is None
        assert response.is_closed
    finally:
        await response.aclose()


async def test_read_capped_returns_small_bodies(peer: Peer, make_client: ClientFactory) -> None:
    client = make_client([LOOPBACK])
    async with client.stream("GET", peer.url("/ok")) as response:
        assert await read_capped(response) == b"ok"


async def test_read_timeout_reaches_aiohttp(peer: Peer, make_client: ClientFactory) -> None:
    client = make_client([LOOPBACK])
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        await client.get(peer.url("/slow"), timeout=httpx.Timeout(5.0, read=0.5))
    assert time.monotonic() - started < 2.0


async def test_read_timeout_applies_while_reading_the_body(peer: Peer, make_client: ClientFactory) -> None:
    client = make_client([LOOPBACK])
    started = time.monotonic()
    async with client.stream("GET", peer.url("/slow-body"), timeout=httpx.Timeout(5.0, read=0.5)) as response:
        with pytest.raises(httpx.ReadTimeout):
            await read_capped(response)
    assert time.monotonic() - started < 2.0


async def test_refused_connection_is_a_connect_error_not_a_timeout(make_client: ClientFactory) -> None:
    client = make_client([LOOPBACK])
    # Bound, never listening: connecting is refused, and no other test's server can take the port
    # meanwhile (a port closed before the request could be handed to one).
    with socket.socket() as placeholder, pytest.raises(httpx.ConnectError) as caught:
        placeholder.bind(("127.0.0.1", 0))
        await client.get(f"http://127.0.0.1:{placeholder.getsockname()[1]}/")
    assert not isinstance(caught.value, httpx.TimeoutException | ForbiddenAddressError)


async def test_connect_timeout_reaches_aiohttp(make_client: ClientFactory) -> None:
    # A listener that never accepts, its queue filled: Linux then drops further SYNs, so
    # connecting hangs until the connect timeout fires.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = [socket.socket() for _ in range(3)]
        try:
            for filler in fillers:
                filler.setblocking(False)
                filler.connect_ex(("127.0.0.1", port))
            await asyncio.sleep(0.1)
            client = make_client([LOOPBACK])
            started = time.monotonic()
            with pytest.raises(httpx.ConnectTimeout):
                await client.get(f"http://127.0.0.1:{port}/", timeout=httpx.Timeout(5.0, connect=0.5))
            assert time.monotonic() - started < 2.0
        finally:
            for filler in fillers:
                filler.close()


async def test_malformed_response_is_an_httpx_error(make_client: ClientFactory) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        client = make_client([LOOPBACK])
        with pytest.raises(httpx.RemoteProtocolError):
            await client.get(f"http://127.0.0.1:{port}/")
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize(
    ("timeout", "expected"),
    [
        (httpx.Timeout(None), (2.0, None, None)),
        (httpx.Timeout(30.0, read=7.0), (2.0, 7.0, 30.0)),
        (httpx.Timeout(1.0), (1.0, 1.0, 1.0)),
    ],
)
def test_httpx_timeouts_map_onto_aiohttp(
    timeout: httpx.Timeout, expected: tuple[float | None, float | None, float | None]
) -> None:
    mapped = _client_timeout(timeout.as_dict(), connect_cap=2.0)
    assert (mapped.sock_connect, mapped.sock_read, mapped.connect) == expected
    assert mapped.total is None


async def test_cookies_from_one_response_are_not_sent_again(peer: Peer, make_client: ClientFactory) -> None:
    client = make_client([LOOPBACK])
    response = await client.get(peer.url("/set-cookie"))
    assert response.cookies["session"] == "tracked"
    await client.get(peer.url("/ok"))
    assert peer.cookies == ["", ""]
    assert not client.cookies


async def test_cookies_given_explicitly_are_sent(peer: Peer, make_client: ClientFactory) -> None:
    client = make_client([LOOPBACK])
    client.cookies = {"lab": "1"}
    await client.get(peer.url("/ok"))
    assert peer.cookies == ["lab=1"]


async def test_streamed_request_body_arrives_intact(peer: Peer, make_client: ClientFactory) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for part in (b'{"type": ', b'"Follow"}'):
            yield part

    client = make_client([LOOPBACK])
    response = await client.post(peer.url("/echo"), content=chunks())
    assert response.content == b'{"type": "Follow"}'


def test_build_client_defaults() -> None:
    client = build_client(
        transport=build_transport(allowed_private=[]), user_agent="herold/0 (+https://h.example/)"
    )
    assert client.follow_redirects is True
    assert client.max_redirects == 3
    assert client.timeout == httpx.Timeout(connect=5.0, read=10.0, write=10.0, pool=10.0)
    assert client.headers["User-Agent"] == "herold/0 (+https://h.example/)"
