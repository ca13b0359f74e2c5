"""The outbound HTTP transport every server-side fetch and delivery goes through.

Callers hold an `httpx.AsyncClient` (see `build_client`); underneath it runs aiohttp, through a
subclass of `httpx_aiohttp.AiohttpTransport`, because httpx's own transport costs roughly ten
times the CPU per request under concurrency.

Deliveries, the one hot path, skip httpx and aiohttp alike: `post_bytes`, or `poster_for` for a
caller posting thousands of times, hands them to the transport's own lean connections
(app/activitypub/delivery_connections.py), which follow the same address policy
(app/activitypub/addresses.py).

The SSRF guard sits at three places, because each covers what the others cannot see:

- `GuardedTransport` refuses IP-literal URL hosts before anything else happens. aiohttp never
  calls the resolver for those, and httpx calls the transport again for every redirect hop, so
  the rule also holds after redirects.
- `GuardedResolver` checks what a host name resolves to, which is the address we would actually
  connect to: a public-looking name can point at 127.0.0.1 or at the cloud metadata service.
- The connector's socket factory checks every address right before a socket is created, as a
  last line should aiohttp ever route an address around the two checks above.

Addresses inside `ALLOWED_PRIVATE_ADDRESSES` pass all three (test labs, internal peers).
"""

from __future__ import annotations

import functools
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from http.cookiejar import CookieJar
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from aiohappyeyeballs import AddrInfoType
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from httpx_aiohttp import AiohttpTransport
from multidict import CIMultiDict

from app.activitypub.addresses import (
    AddressPolicy,
    ForbiddenAddressError,
    IPNetwork,
    ip_literal,
)
from app.activitypub.delivery_connections import DeliveryConnections, PostResult, Target

DEFAULT_BODY_LIMIT = 1_048_576


class ResponseTooLarge(httpx.HTTPError):
    """A response body larger than the caller was willing to read."""

    def __init__(self, response: httpx.Response, limit: int, *, declared: int | None = None) -> None:
        detail = f"declares {declared} bytes" if declared is not None else "is larger"
        super().__init__(f"response from {response.url} {detail}, over the limit of {limit} bytes")
        self.request = response.request
        self.limit = limit
        self.declared = declared


class _RefusedAddress(OSError):
    """How the resolver and socket factory refuse: aiohttp only wraps OSErrors from them cleanly.

    `GuardedTransport` finds it in the exception chain and raises `ForbiddenAddressError`.
    """

    def __init__(self, *, address: str, host: str, reason: str) -> None:
        super().__init__(f"refusing to connect to {address} ({reason}) for {host}")
        self.address = address
        self.host = host
        self.reason = reason


class GuardedResolver(AbstractResolver):
    """Resolves through aiohttp's default resolver and keeps only the addresses the policy allows."""

    def __init__(self, policy: AddressPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner if inner is not None else DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        try:
            results = await self._inner.resolve(host, port, family)
        except UnicodeError:
            # getaddrinfo's IDNA step refuses empty and over-long labels: a name that cannot exist.
            raise OSError(f"{host} is not a valid host name") from None
        allowed = [result for result in results if self._policy.is_allowed(result["host"])]
        if allowed:
            return allowed
        if not results:
            raise OSError(f"{host} resolved to no address")
        first = results[0]["host"]
        raise _RefusedAddress(address=first, host=host, reason=self._policy.refusal(first) or "refused")

    async def close(self) -> None:
        await self._inner.close()


def _guarded_socket_factory(policy: AddressPolicy) -> Callable[[AddrInfoType], socket.socket]:
    def create_socket(addr_info: AddrInfoType) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        address = str(sockaddr[0])
        reason = policy.refusal(address)
        if reason is not None:
            raise _RefusedAddress(address=address, host=address, reason=reason)
        return socket.socket(family=family, type=type_, proto=proto)

    return create_socket


def _exception_chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _translate(exc: Exception, host: str) -> httpx.TransportError:
    """The httpx exception callers see for an aiohttp one.

    httpx-aiohttp 0.2.0 maps every aiohttp connection error, refused connections included, to
    `httpx.ConnectTimeout`, and lets parser errors escape as aiohttp exceptions: callers that
    retry on timeouts or catch `httpx.HTTPError` would get both wrong.
    """
    for link in _exception_chain(exc):
        if isinstance(link, _RefusedAddress):
            return ForbiddenAddressError(address=link.address, host=host, reason=link.reason)
    message = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message)
    if isinstance(exc, aiohttp.ServerTimeoutError | TimeoutError):
        return httpx.ReadTimeout(message)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message)
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientResponseError):
        return httpx.RemoteProtocolError(message)
    if isinstance(exc, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError):
        return httpx.ReadError(message)
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx.UnsupportedProtocol(message)
    return httpx.TransportError(message)


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse, host: str) -> None:
        self._response = response
        self._host = host

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _translate(exc, self._host) from exc

    async def aclose(self) -> None:
        # Returns the connection to the pool when the body was read to the end; closes it
        # otherwise, so an abandoned large body is never drained.
        self._response.release()
        await self._response.wait_for_close()


class _SessionFactory:
    """Builds the aiohttp session on first use: aiohttp binds it to the running event loop,
    and `build_transport` is usually called before there is one."""

    def __init__(
        self, policy: AddressPolicy, *, ssl_context: ssl.SSLContext, max_connections: int, max_per_host: int
    ) -> None:
        self._policy = policy
        self._ssl_context = ssl_context
        self._max_connections = max_connections
        self._max_per_host = max_per_host
        self.resolver: GuardedResolver | None = None

    def __call__(self) -> aiohttp.ClientSession:
        self.resolver = GuardedResolver(self._policy)
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            limit_per_host=self._max_per_host,
            ttl_dns_cache=300,
            resolver=self.resolver,
            socket_factory=_guarded_socket_factory(self._policy),
            ssl=self._ssl_context,
        )
        # httpx owns cookies; a second jar here would send them twice. trust_env=False: an
        # environment proxy would connect on our behalf and bypass the address checks.
        return aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False
        )

    async def aclose(self) -> None:
        # The connector does not own a resolver it was handed, so it never closes it.
        if self.resolver is not None:
            await self.resolver.close()
            self.resolver = None


def _client_timeout(timeout: dict[str, float | None], connect_cap: float) -> aiohttp.ClientTimeout:
    """aiohttp's timeouts for httpx's per-request ones.

    connect → sock_connect (capped: without one, an unresponsive peer holds us for as long as
    the kernel lets it), read → sock_read (between reads, headers and body alike), pool →
    connect (aiohttp's covers waiting for a pooled connection plus connecting). aiohttp has no
    write timeout; request bodies here are small enough for the socket buffer.
    """
    connect = timeout.get("connect")
    return aiohttp.ClientTimeout(
        sock_connect=connect_cap if connect is None else min(connect, connect_cap),
        sock_read=timeout.get("read"),
        connect=timeout.get("pool"),
    )


class GuardedTransport(AiohttpTransport):
    """httpx-aiohttp's transport with the SSRF guard, a leaner request path, and httpx
    exceptions only.

    The request path is our own rather than `AiohttpTransport.handle_async_request`: that one
    maps exceptions wrongly (see `_translate`) and converts headers through several layers.
    """

    def __init__(
        self,
        *,
        policy: AddressPolicy,
        max_connections: int,
        max_per_host: int,
        connect_timeout: float,
        max_delivery_connections: int,
        extra_ca_certificates: Path | None = None,
    ) -> None:
        ssl_context = httpx.create_ssl_context()
        if extra_ca_certificates is not None:
            # A private PKI's roots, trusted beside the default ones (EXTRA_CA_CERTIFICATES).
            ssl_context.load_verify_locations(cafile=str(extra_ca_certificates))
        self._sessions = _SessionFactory(
            policy, ssl_context=ssl_context, max_connections=max_connections, max_per_host=max_per_host
        )
        super().__init__(verify=ssl_context, client=self._sessions)
        self.policy = policy
        self._connect_timeout = connect_timeout
        self._deliveries = DeliveryConnections(
            policy,
            ssl_context=ssl_context,
            connect_timeout=connect_timeout,
            max_connections=max_delivery_connections,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        literal = ip_literal(host)
        if literal is not None:
            self.policy.check(literal, host)
        session = self.client
        if not isinstance(session, aiohttp.ClientSession):
            session = self.client = self.get_client()

        headers = CIMultiDict(
            (key.decode("latin-1"), value.decode("latin-1")) for key, value in request.headers.raw
        )
        data: bytes | httpx.AsyncByteStream | None
        try:
            data = request.content or None
        except httpx.RequestNotRead:
            assert isinstance(request.stream, httpx.AsyncByteStream)
            data = request.stream
            # aiohttp frames a streamed body itself and refuses a preset Transfer-Encoding.
            headers.popall("Transfer-Encoding", None)

        try:
            response = await session.request(
                request.method,
                str(request.url),
                headers=headers,
                data=data,
                allow_redirects=False,  # httpx follows them, through this transport, hop by hop
                auto_decompress=False,  # httpx decodes
                timeout=_client_timeout(request.extensions.get("timeout", {}), self._connect_timeout),
                server_hostname=request.extensions.get("sni_hostname"),
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _translate(exc, host) from exc

        extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
        if response.reason:
            extensions["reason_phrase"] = response.reason.encode()
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=_ResponseStream(response, host),
            request=request,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        try:
            await super().aclose()
        finally:
            await self._deliveries.aclose()
            await self._sessions.aclose()


async def post_bytes(
    client: httpx.AsyncClient,
    url: str | Target,
    body: bytes,
    headers: Mapping[str, str],
    *,
    read_limit: int = DEFAULT_BODY_LIMIT,
) -> PostResult:
    """POST `body` without following redirects; the answer's status and Retry-After.

    The hot path of deliveries. When `client` runs on the guarded transport the request goes
    to the transport's delivery connections: httpx's request and response models, and aiohttp's,
    cost more CPU than the whole request (bench/bench_http_client.py measures each). The address
    policy and the exceptions (httpx's) are the same. Any other transport (the test lab's) is used
    through `client.stream`.

    `url` may be a `Target`, the URL already taken apart (`parse_target`). `headers` without a
    "User-Agent" get the client's.
    """
    direct = _direct_poster(client, read_limit)
    if direct is not None:
        if "User-Agent" not in headers:
            headers = {"User-Agent": client.headers.get("User-Agent", ""), **headers}
        return await direct(url, body, headers)
    plain_url = url.url if isinstance(url, Target) else url
    async with client.stream(
        "POST", plain_url, content=body, headers=headers, follow_redirects=False
    ) as response:
        result = PostResult(response.status_code, response.headers.get("Retry-After"))
        try:
            await read_capped(response, read_limit)
        except httpx.HTTPError:
            pass  # only the status was wanted; read_capped has closed the connection
        return result


Poster = Callable[[str | Target, bytes, Mapping[str, str]], Awaitable[PostResult]]


def _direct_poster(client: httpx.AsyncClient, read_limit: int) -> Poster | None:
    """The guarded transport's delivery connections' `post`, with the client's read timeout
    bound: the same address policy and httpx exceptions as the transport's requests, without any
    request or response model. None for any other transport (the test lab's)."""
    transport = getattr(client, "_transport", None)  # httpx keeps its transport private
    if not isinstance(transport, GuardedTransport):
        return None
    read = client.timeout.read
    return functools.partial(
        transport._deliveries.post, read_timeout=read if read is not None else 10.0, read_limit=read_limit
    )


def poster_for(client: httpx.AsyncClient, *, read_limit: int = DEFAULT_BODY_LIMIT) -> Poster:
    """`post_bytes` with `client` bound once, for a caller that posts thousands of times.

    On the guarded transport it is the delivery connections' own `post`: one coroutine less per
    request than `post_bytes`, and the headers go as given, so the caller puts the User-Agent in
    them (the deliverer does). Any other transport goes through `post_bytes`.
    """
    direct = _direct_poster(client, read_limit)
    if direct is not None:
        return direct

    async def post(url: str | Target, body: bytes, headers: Mapping[str, str]) -> PostResult:
        return await post_bytes(client, url, body, headers, read_limit=read_limit)

    return post


def build_transport(
    *,
    allowed_private: Sequence[IPNetwork],
    max_connections: int = 1024,
    max_per_host: int = 4,
    connect_timeout: float = 5.0,
    max_delivery_connections: int = 8192,
    extra_ca_certificates: Path | None = None,
) -> httpx.AsyncBaseTransport:
    """The guarded aiohttp transport; keep-alive connections are pooled and reused.

    Deliveries keep their own, larger pool: a fan-out reaches thousands of hosts at once, and the
    next post to the same followers should find their connections still open (the worker raises
    its open-file limit to allow for it).
    """
    return GuardedTransport(
        policy=AddressPolicy(allowed=tuple(allowed_private)),
        max_connections=max_connections,
        max_per_host=max_per_host,
        connect_timeout=connect_timeout,
        max_delivery_connections=max_delivery_connections,
        extra_ca_certificates=extra_ca_certificates,
    )


class _CookielessJar(httpx.Cookies):
    """Sends the cookies it was given, never keeps one from a response."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class ServerClient(httpx.AsyncClient):
    """An `httpx.AsyncClient` that keeps no cookies between requests.

    Server-to-server requests should carry no state from one peer's answer into the next
    request (Mastodon's client keeps none either), and extracting cookies through the stdlib
    cookie jar is a quarter of httpx's own CPU cost per request.
    """

    def __init__(self, **kwargs: Any) -> None:
        self._cookieless = _CookielessJar()
        super().__init__(**kwargs)

    @property
    def cookies(self) -> httpx.Cookies:
        return self._cookieless

    @cookies.setter
    def cookies(self, cookies: httpx.Cookies | CookieJar | dict[str, str] | list[tuple[str, str]]) -> None:
        self._cookieless = _CookielessJar(cookies)


def build_client(*, transport: httpx.AsyncBaseTransport, user_agent: str) -> httpx.AsyncClient:
    # trust_env=False: no proxies or .netrc credentials from the environment on server-side fetches.
    return ServerClient(
        transport=transport,
        follow_redirects=True,
        max_redirects=3,
        timeout=httpx.Timeout(connect=5.0, read=10.0, write=10.0, pool=10.0),
        headers={"User-Agent": user_agent},
        trust_env=False,
    )


async def read_capped(response: httpx.Response, limit: int = DEFAULT_BODY_LIMIT) -> bytes:
    """Read a streamed response body, refusing (and closing the connection) past `limit` bytes.

    The limit counts decoded bytes, so a small compressed body cannot expand past it.
    """
    declared = _content_length(response)
    if declared is not None and declared > limit:
        await response.aclose()
        raise ResponseTooLarge(response, limit, declared=declared)
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limit:
            await response.aclose()
            raise ResponseTooLarge(response, limit)
    return bytes(body)


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length")
    if value is None:
        return None
    try:
        declared = int(value)
    except ValueError:
        return None
    return declared if declared >= 0 else None
