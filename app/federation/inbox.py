"""The inboxes (`/inbox` and `/users/NAME/inbox`): verify a delivery, write it down, answer 202.

Everything a peer sends is checked here, in this order, each failure with its own status and a
precise reason in `{"error": ...}`:

    413  body over 1 MB (from Content-Length, or counted while reading, never read in full)
    401  signature missing, malformed, stale, not covering what it must, or not verifying
    403  the signing key's or the actor's domain is blocked (decided before any key is fetched)
    400  body that is not a JSON object, or an activity without type or actor
    422  an activity addressed to more than MAX_RECIPIENTS_PER_ACTIVITY recipients
    429  too many activities from one host (counted once its signature verifies)
    202  accepted: stored durably, processed later by the worker

The activity is committed to `inbox_item` before the 202 goes out, so a crash after answering
loses nothing; the unique activity id makes redeliveries free. Concurrent deliveries are
committed together (one transaction for whatever arrived meanwhile), which is what lets a
single SQLite file keep up with a busy inbox.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import col, select
from starlette.types import ASGIApp, Receive, Scope, Send

from app import json_text
from app.activitypub.fetcher import Fetcher, FetchError
from app.activitypub.parsers import (
    MAX_URL_LENGTH,
    ActivityData,
    InvalidObject,
    authority,
    parse_activity,
    recipient_count,
    same_origin,
)
from app.activitypub.signatures import SignatureError
from app.activitypub.verification import (
    KeyFetchesBusy,
    RequestVerifier,
    SignerKey,
    VerificationError,
    read_signature,
    request_verifier,
)
from app.context import AppContext
from app.db import dialect_insert, write_session
from app.federation.handlers import HANDLED_TYPES
from app.http_errors import BUSY_RETRY_AFTER
from app.models import Account, InboxItem, JobState
from app.models.base import new_ids, utcnow
from app.queue_names import INBOX_QUEUE
from app.services.accounts import AccountService
from app.services.inbox_backlog import BACKPRESSURE_RETRY_AFTER, BacklogGate

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1_048_576
# Real activities nest a handful of levels; a deep one is an attempt on the JSON code's stack.
MAX_JSON_DEPTH = 64
# Rows committed in one transaction at most; more wait for the next one.
MAX_BATCH = 256

PERSONAL_INBOX = re.compile(r"/users/([^/]+)/inbox")


@dataclass(frozen=True)
class InboxRoute:
    """What FastAPI's router leaves in scope["route"]: request metrics are labelled by its `path`,
    the route's template, never the raw path."""

    path: str


SHARED_INBOX_ROUTE = InboxRoute("/inbox")
PERSONAL_INBOX_ROUTE = InboxRoute("/users/{username}/inbox")


class InboxRefusal(Exception):
    """Answered as `{"error": message}` with `status_code` (JSON whatever the client accepts: peers
    are programs)."""

    def __init__(self, status_code: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.headers = headers


class InboxEntrance:
    """ASGI middleware, innermost of the app's own: a request to `/inbox` or `/users/NAME/inbox`
    goes straight to the receiver.

    Deliveries are the busiest requests a server gets, and FastAPI's way to an endpoint (its
    exception and exit-stack layers, matching the path against every route, solving the endpoint's
    parameters, wrapping the answer) cost the web process about a sixth of each delivery's CPU
    (py-spy under bench/served_inbox.py), none of it needed here: the receiver answers every
    refusal itself. The app's own middleware still apply (request id and access log, metrics,
    the public cache's event wait, security headers), and an error nobody expected still reaches
    Starlette's error middleware, which answers 500.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if path == "/inbox":
            username = None
            scope["route"] = SHARED_INBOX_ROUTE
        elif path.startswith("/users/") and (match := PERSONAL_INBOX.fullmatch(path)) is not None:
            username = match.group(1)
            scope["route"] = PERSONAL_INBOX_ROUTE
        else:
            await self.app(scope, receive, send)
            return
        response: Response
        if scope["method"] != "POST":
            response = JSONResponse(
                {"error": "an inbox only takes POST"}, status_code=405, headers={"Allow": "POST"}
            )
        else:
            request = Request(scope, receive)
            response = await inbox_receiver(request).receive(request, username=username)
        await response(scope, receive, send)


def inbox_receiver(request: Request) -> InboxReceiver:
    """The app's receiver, made on first use (it holds in-flight key fetches and the write queue)."""
    state = request.app.state
    receiver: InboxReceiver | None = getattr(state, "inbox_receiver", None)
    if receiver is None:
        receiver = InboxReceiver(state.context, request_verifier(request))
        state.inbox_receiver = receiver
    return receiver


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed `limit`."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            raise InboxRefusal(400, "Content-Length is not a number")
        if int(declared) > limit:
            raise InboxRefusal(413, f"body is larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise InboxRefusal(413, f"body is larger than {limit} bytes")
    return bytes(body)


class InboxWriter:
    """Commits inbox rows in groups: each caller waits until its own row is durable.

    A drain task runs while rows are waiting and ends when none are left, so nothing outlives a
    quiet period and nothing needs starting or stopping with the app.
    """

    def __init__(self, context: AppContext) -> None:
        self.context = context
        self._waiting: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._drain_task: asyncio.Task[None] | None = None

    async def write(self, row: dict[str, Any]) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((row, future))
        if self._drain_task is None or self._drain_task.done():
            self._drain_task = asyncio.create_task(self._drain(), name="inbox-writer")
        # Shielded: a client that hangs up does not take its row out of a batch being written.
        await asyncio.shield(future)

    async def _drain(self) -> None:
        while self._waiting:
            batch = self._waiting[:MAX_BATCH]
            del self._waiting[:MAX_BATCH]
            # Drawn as the batch is written, so that ids follow the order of the writes.
            for (row, _future), item_id in zip(batch, new_ids(len(batch)), strict=True):
                row["id"] = item_id
            try:
                await self._insert([row for row, _ in batch])
            except PoolTimeout:
                # The database is saturated: each sender is answered 503 and comes back; writing
                # the rows one by one would only ask the saturated pool once per row.
                log.warning("no database connection for %d inbox items; answered 503", len(batch))
                for _row, future in batch:
                    _settle(future, error=True)
                continue
            except Exception:
                if len(batch) == 1:
                    _settle(batch[0][1], error=True)
                    log.exception("could not store an inbox item")
                    continue
                # One unexpected row must not fail the others: write them one by one.
                for row, future in batch:
                    try:
                        await self._insert([row])
                    except Exception:
                        log.exception("could not store an inbox item")
                        _settle(future, error=True)
                    else:
                        _settle(future)
            else:
                for _row, future in batch:
                    _settle(future)
            self.context.work.notify(INBOX_QUEUE)

    async def _insert(self, rows: list[dict[str, Any]]) -> None:
        async with write_session(self.context.write_sessions) as session:
            statement = dialect_insert(session, InboxItem).on_conflict_do_nothing(
                index_elements=["activity_uri"]
            )
            await session.execute(statement, rows)
            await session.commit()


class StoreFailed(Exception):
    pass


def _settle(future: asyncio.Future[None], *, error: bool = False) -> None:
    if future.done():
        return
    if error:
        future.set_exception(StoreFailed())
    else:
        future.set_result(None)


class InboxReceiver:
    def __init__(self, context: AppContext, verifier: RequestVerifier) -> None:
        self.context = context
        self.verifier = verifier
        self.writer = InboxWriter(context)
        self.backlog = BacklogGate(context, context.settings.inbox_backlog_limit_seconds)

    async def receive(self, request: Request, *, username: str | None) -> Response:
        try:
            return await self._receive(request, username)
        except InboxRefusal as refusal:
            return JSONResponse(
                {"error": refusal.message}, status_code=refusal.status_code, headers=refusal.headers
            )
        except (PoolTimeout, KeyFetchesBusy):
            # Saturated (every database connection busy, or too many new keys being fetched):
            # the sender retries after Retry-After, as it does for the backlog's 503.
            return JSONResponse(
                {"error": "the server is busy; deliver it again in a few seconds"},
                status_code=503,
                headers={"Retry-After": str(BUSY_RETRY_AFTER)},
            )

    async def _receive(self, request: Request, username: str | None) -> Response:
        context = self.context
        settings = context.settings
        recipient_id = await self._recipient(username) if username is not None else None
        backlog = await self.backlog.over_limit()
        if backlog is not None:
            # Before the body and the signature: a server that is behind saves that work too.
            raise InboxRefusal(
                503,
                f"this server is {backlog.oldest_seconds:.0f} s behind with incoming activities; retry later",
                {"Retry-After": str(BACKPRESSURE_RETRY_AFTER)},
            )
        body = await read_body(request)

        try:
            signed = read_signature(request, settings, body)
        except SignatureError as error:
            raise InboxRefusal(401, str(error)) from None
        try:
            key_host = authority(signed.key_id)
        except InvalidObject:
            raise InboxRefusal(401, f"keyId {signed.key_id!r} is not an http(s) URL") from None
        await self._check_not_blocked(key_host)

        activity, document = _parse_body(body)
        self._check_audience(document)
        if len(activity.actor) > MAX_URL_LENGTH:
            raise InboxRefusal(400, f"the actor's id is longer than {MAX_URL_LENGTH} characters")
        try:
            actor_host = authority(activity.actor)
        except InvalidObject as error:
            raise InboxRefusal(400, f"actor: {error}") from None
        if actor_host != key_host:
            await self._check_not_blocked(actor_host)

        known = await self.verifier.known_key(signed.key_id)
        if known is None and activity.type == "Delete" and activity.object_id == activity.actor:
            # An actor we never knew deleting itself (Mastodon tells everyone it ever talked to):
            # nothing of it is stored here, and fetching its key would only earn a 410.
            return Response(status_code=202)
        if known is None:
            fetches = context.rate_limits.key_fetches_per_host.hit(key_host)
            if not fetches.allowed:
                raise InboxRefusal(
                    429, f"too many unknown keys from {key_host}; slow down", fetches.headers()
                )
        try:
            key = await self.verifier.verify(signed, known)
        except VerificationError as error:
            raise InboxRefusal(401, str(error)) from None
        # Per remote host, counted once the host has proven it sent this (a forger naming a
        # peer's key must not spend that peer's budget), and before anything is stored.
        rate = context.rate_limits.inbox_per_host.hit(key_host)
        if not rate.allowed:
            raise InboxRefusal(429, f"too many activities from {key_host}; slow down", rate.headers())

        signer = key.owner
        if activity.actor != key.owner:
            document = await self._from_origin(activity, key)
            activity = parse_activity(document)
            self._check_audience(document)
            signer = activity.actor
        if activity.id is not None:
            if len(activity.id) > MAX_URL_LENGTH:
                raise InboxRefusal(400, f"the activity id is longer than {MAX_URL_LENGTH} characters")
            if not same_origin(activity.id, activity.actor):
                raise InboxRefusal(400, f"the activity id {activity.id} is not on the actor's server")
        if activity.type not in HANDLED_TYPES:
            # Accepted and dropped: peers send many kinds we have no use for.
            return Response(status_code=202)

        now = utcnow()
        row = {
            "activity_uri": activity.id,
            "activity_type": activity.type[:64],
            "payload": document,
            "signer_uri": signer,
            "recipient_account_id": recipient_id,
            "state": JobState.QUEUED.value,
            "attempts": 0,
            "next_attempt_at": now,
            "locked_until": None,
            "last_error": None,
            "received_at": now,
            "processed_at": None,
        }
        try:
            await self.writer.write(row)
        except StoreFailed:
            return JSONResponse(
                {"error": "the activity could not be stored; deliver it again later"},
                status_code=503,
                headers={"Retry-After": str(BUSY_RETRY_AFTER)},
            )
        return Response(status_code=202)

    async def _recipient(self, username: str) -> int:
        async with self.context.sessions() as session:
            account_id = await session.scalar(
                select(Account.id).where(
                    col(Account.username) == username.lower(),
                    col(Account.domain).is_(None),
                    col(Account.deleted_at).is_(None),
                )
            )
        if account_id is None:
            raise InboxRefusal(404, f"no account named {username!r} here")
        return account_id

    async def _check_not_blocked(self, host: str) -> None:
        if await self.context.domain_policy.suspending(host) is not None:
            raise InboxRefusal(403, f"{host} is blocked by this server")

    def _check_audience(self, document: dict[str, Any]) -> None:
        limit = self.context.settings.max_recipients_per_activity
        if recipient_count(document) > limit:
            raise InboxRefusal(422, f"the activity is addressed to more than {limit} recipients")

    async def _from_origin(self, activity: ActivityData, key: SignerKey) -> dict[str, Any]:
        """An activity relayed by someone else is believed only as its origin serves it."""
        refusal = InboxRefusal(401, f"the activity's actor {activity.actor} is not the signer {key.owner}")
        if activity.id is None or not same_origin(activity.id, activity.actor):
            raise refusal
        fetcher = Fetcher(self.context, signer=await AccountService(self.context).instance_actor())
        try:
            fetched = await fetcher.fetch(activity.id)
        except FetchError:
            raise refusal from None
        if not same_origin(fetched.url, activity.id):
            raise refusal
        document = fetched.document
        try:
            served = parse_activity(document)
        except InvalidObject:
            raise refusal from None
        if (
            document.get("id") != activity.id
            or served.actor != activity.actor
            or served.type != activity.type
        ):
            raise refusal
        return document


def _parse_body(body: bytes) -> tuple[ActivityData, dict[str, Any]]:
    if b"\\u0000" in body:
        # PostgreSQL text cannot hold NUL; no real activity carries one.
        raise InboxRefusal(400, "body contains a NUL character")
    try:
        document = json_text.loads(body)
    except (ValueError, UnicodeDecodeError) as error:
        raise InboxRefusal(400, f"body is not valid JSON: {error}") from None
    except RecursionError:
        raise InboxRefusal(400, f"body is JSON nested deeper than {MAX_JSON_DEPTH} levels") from None
    if not isinstance(document, dict):
        raise InboxRefusal(400, f"body is a JSON {type(document).__name__}, not an object")
    # Nesting deeper than the limit needs more brackets than that; most bodies have far fewer.
    brackets = body.count(b"{") + body.count(b"[")
    if brackets > MAX_JSON_DEPTH and _nested_deeper_than(document, MAX_JSON_DEPTH):
        raise InboxRefusal(400, f"body is JSON nested deeper than {MAX_JSON_DEPTH} levels")
    try:
        return parse_activity(document), document
    except InvalidObject as error:
        raise InboxRefusal(400, str(error)) from None


def _nested_deeper_than(document: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for item in value.values() if isinstance(item, dict | list))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value if isinstance(item, dict | list))
    return False
