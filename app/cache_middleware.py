"""Serves anonymous GETs from the public cache (app.public_cache), and keeps what routes allow.

Pure ASGI and the outermost middleware: a hit costs a header scan and a dictionary lookup, no
request object, no database, no access-log line (the reverse proxy logs it) and one counter
(herold_public_cache_hits_total). Who is served from the cache:
- GETs without an Authorization header and without a session cookie (a logged-in staff member
  sees their own page, with its CSRF token and their language);
- signed GETs only without AUTHORIZED_FETCH (with it, the answer depends on the signer), and only
  when the key is not a suspended domain's (that is answered 403 whoever asks).
The key is the host, path and query, the Accept header (ActivityStreams and HTML share URLs) and
the language the page would be written in. Every kept answer carries an ETag, and a GET whose
If-None-Match names it is answered 304.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Hashable

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.activitypub.fetch_access import signed_by_suspended_domain
from app.context import AppContext
from app.i18n import negotiate
from app.public_cache import PUBLIC_MAX_AGE, CachedAnswer, etag_of, tags_of
from app.web.cookies import SESSION_COOKIE, cookie_name

# Never public documents (the client API and OAuth answer tokens, streaming stays open): not
# even looked up.
NEVER_KEPT_PREFIXES = ("/api/", "/oauth/")
# How long a reader waits for another's answer to the same GET before making its own.
FOLLOWER_WAIT_SECONDS = 5.0
# Sent back with a 304, as RFC 9110 asks (the headers a 200 would have carried that caches use).
_NOT_MODIFIED_HEADERS = frozenset(
    {b"cache-control", b"content-location", b"date", b"etag", b"expires", b"vary"}
)


class PublicCacheMiddleware:
    def __init__(self, app: ASGIApp, context: AppContext) -> None:
        self.app = app
        self.context = context
        self.cache = context.public_cache
        self.session_cookie = cookie_name(context, SESSION_COOKIE).encode()
        self.count_hit = context.metrics.public_cache_hits.inc
        # Answers being made now, by key: later readers of the same key wait for the first.
        self.making: dict[Hashable, asyncio.Future[None]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] != "GET":
            # A write: its events reach the other web processes before its answer reaches the
            # writer, so the writer's next GET is fresh whichever process answers it.
            await self.app(scope, receive, self._events_first(send))
            return
        if not self.cache.enabled or scope["path"].startswith(NEVER_KEPT_PREFIXES):
            await self.app(scope, receive, send)
            return
        host = accept = language = if_none_match = b""
        signed = credentials = False
        for name, value in scope["headers"]:
            if name == b"host":
                host = value
            elif name == b"accept":
                accept = value
            elif name == b"accept-language":
                language = value
            elif name == b"if-none-match":
                if_none_match = value
            elif name == b"authorization":
                credentials = True
            elif name == b"cookie":
                credentials = credentials or self.session_cookie in value
            elif name == b"signature" or name == b"signature-input":
                signed = True
        if credentials or (signed and self.context.settings.authorized_fetch):
            await self.app(scope, receive, _private(send))
            return
        if signed and await signed_by_suspended_domain(Request(scope), self.context):
            await self.app(scope, receive, send)
            return
        key: Hashable = (
            host,
            scope["path"],
            scope["query_string"],
            accept,
            negotiate(language.decode("latin-1")) if language else "",
        )
        found = self.cache.get(key)
        channel = self.context.channel
        if found is not None and channel is not None:
            # Before answering from memory, what other processes committed and already sent is
            # applied (it may drop this very answer). A miss reads the database: nothing to wait for.
            await channel.catch_up()
            found = self.cache.get(key)
        if found is None and key in self.making:
            # Someone is making this answer now: a stampede of first readers (a post going viral,
            # a page that just expired) waits for that one instead of making it 64 times.
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.making[key]), FOLLOWER_WAIT_SECONDS)
            found = self.cache.get(key)
        if found is not None:
            self.count_hit()
            await _send_answer(send, found, if_none_match)
            return
        made: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        leader = key not in self.making
        if leader:
            self.making[key] = made

        def decided() -> None:
            """The answer is kept, or will not be: those waiting for it need wait no longer."""
            if leader and self.making.get(key) is made:
                del self.making[key]
                made.set_result(None)

        try:
            await self._make_and_keep(scope, receive, send, key, if_none_match, decided)
        finally:
            decided()

    def _events_first(self, send: Send) -> Send:
        async def send_after_events(message: Message) -> None:
            channel = self.context.channel
            if message["type"] == "http.response.start" and channel is not None:
                await channel.flush_now()
            await send(message)

        return send_after_events

    async def _make_and_keep(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        key: Hashable,
        if_none_match: bytes,
        decided: Callable[[], None],
    ) -> None:
        ticket = self.cache.ticket()
        # The routes mark what may be kept in the request's state; it must exist before they run.
        state = scope.setdefault("state", {})
        start: Message | None = None
        chunks: list[bytes] = []

        async def keep(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                marked = tags_of(state)
                headers = message.get("headers", [])
                if (
                    marked is None
                    or message["status"] != 200
                    or any(name.lower() == b"set-cookie" for name, _ in headers)
                ):
                    start = None
                    decided()
                    await send(message)
                    return
                start = message
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            marked = tags_of(state)
            assert marked is not None  # checked at the start
            tags, seconds = marked
            body = b"".join(chunks)
            etag = etag_of(body)
            made_headers = start.get("headers", [])
            headers = [
                (name, value)
                for name, value in made_headers
                # The request id is this request's own (RequestLogMiddleware), not the answer's.
                if name.lower() not in (b"etag", b"content-length", b"x-request-id")
            ]
            if not any(name.lower() == b"cache-control" for name, _ in headers):
                headers.append((b"cache-control", f"public, max-age={PUBLIC_MAX_AGE}".encode()))
            headers.append((b"etag", etag))
            headers.append((b"content-length", str(len(body)).encode()))
            own = [(name, value) for name, value in made_headers if name.lower() == b"x-request-id"]
            answer = CachedAnswer(200, headers + own, body, etag, 0.0, tags, 0)
            self.cache.put(
                key,
                ticket,
                status=200,
                headers=headers,
                body=body,
                etag=etag,
                tags=tags,
                seconds=seconds,
            )
            decided()
            await _send_answer(send, answer, if_none_match)

        await self.app(scope, receive, keep)


async def _send_answer(send: Send, answer: CachedAnswer, if_none_match: bytes) -> None:
    if if_none_match and _matches(if_none_match, answer.etag):
        headers = [(name, value) for name, value in answer.headers if name in _NOT_MODIFIED_HEADERS]
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    await send({"type": "http.response.start", "status": answer.status, "headers": answer.headers})
    await send({"type": "http.response.body", "body": answer.body})


def _matches(if_none_match: bytes, etag: bytes) -> bool:
    if if_none_match.strip() == b"*":
        return True
    # Weak comparison, as If-None-Match uses: W/"x" matches "x".
    return any(candidate.strip().removeprefix(b"W/") == etag for candidate in if_none_match.split(b","))


def _private(send: Send) -> Send:
    """For a request that carries who asks: no shared cache may keep the answer unless it says so."""

    async def send_private(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = message.get("headers", [])
            if not any(name.lower() == b"cache-control" for name, _ in headers):
                message = {**message, "headers": [*headers, (b"cache-control", b"private")]}
        await send(message)

    return send_private
