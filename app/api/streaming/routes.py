"""The streaming API as Mastodon serves it: Server-Sent Events at /api/v1/streaming/<stream>, and
one WebSocket at /api/v1/streaming carrying any number of subscriptions.

The token comes as Mastodon accepts it: `Authorization: Bearer`, the `access_token` query
parameter, or (WebSocket only) `Sec-WebSocket-Protocol`, which browsers' WebSocket API can set
where it cannot set headers; the server then answers with that same subprotocol, or Chromium drops
the connection.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.auth import INVALID_TOKEN, ApiCaller, api_caller, caller_of_token
from app.api.streaming.hub import Connection, StreamingHub, hub_of
from app.api.streaming.streams import Stream, StreamRefused, stream_for
from app.context import AppContext
from app.dependencies import get_context
from app.http_errors import BUSY_MESSAGE, BUSY_RETRY_AFTER
from app.services.errors import NotFound
from app.services.lists import ListService
from app.services.viewer import Viewer

WEBSOCKET_PATH = "/api/v1/streaming"
router = APIRouter(prefix=WEBSOCKET_PATH)

# The Server-Sent Events paths and the streams they open.
SSE_PATHS = {
    "user": "user",
    "user/notification": "user:notification",
    "public": "public",
    "public/local": "public:local",
    "public/remote": "public:remote",
    "hashtag": "hashtag",
    "hashtag/local": "hashtag:local",
    "list": "list",
    "direct": "direct",
}
MAX_WEBSOCKET_MESSAGE = 4096


def _truthy(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1", "on", "yes")


def _stream_name(name: str | None, only_media: bool) -> str | None:
    """`public` with only_media=true is Mastodon's `public:media` (and so on for local and remote)."""
    if name and only_media and name.startswith("public") and not name.endswith(":media"):
        return f"{name}:media"
    return name


@router.get("/health")
async def health() -> PlainTextResponse:
    return PlainTextResponse("OK")


@router.get("/{path:path}")
async def server_sent_events(
    request: Request,
    path: str,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(api_caller),
) -> Response:
    name = SSE_PATHS.get(path.strip("/"))
    if name is None:
        return JSONResponse({"error": "Unknown stream type"}, status_code=404)
    params = request.query_params
    try:
        stream = stream_for(
            caller.viewer,
            _stream_name(name, _truthy(params.get("only_media"))),
            tag=params.get("tag"),
            list_id=params.get("list"),
        )
        await check_list(context, caller.viewer, stream)
    except StreamRefused as refused:
        return JSONResponse({"error": refused.message}, status_code=refused.status)
    hub = hub_of(request.app.state)
    ready = asyncio.Event()
    connection = hub.open(caller.viewer, caller.holder.token.id if caller.holder else None, wake=ready.set)
    connection.streams.add(stream)
    return StreamingResponse(
        _sse_body(hub, connection, ready),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _sse_body(hub: StreamingHub, connection: Connection, ready: asyncio.Event) -> AsyncIterator[str]:
    try:
        yield ":)\n\n"
        while True:
            try:
                await asyncio.wait_for(ready.wait(), hub.heartbeat_seconds)
            except TimeoutError:
                yield ":thump\n\n"
                continue
            ready.clear()
            for message in connection.take():
                yield message.sse_text()
            if connection.closed_because is not None:
                return
    finally:
        hub.close(connection)


def _websocket_token(websocket: WebSocket) -> tuple[str | None, str | None]:
    """The token, and the subprotocol to answer with when it came as one."""
    header = websocket.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), None
    if websocket.query_params.get("access_token"):
        return websocket.query_params["access_token"], None
    offered = [item.strip() for item in websocket.headers.get("sec-websocket-protocol", "").split(",")]
    if offered and offered[0]:
        return offered[0], offered[0]
    return None, None


async def _refuse(
    websocket: WebSocket, status: int, message: str, headers: dict[str, str] | None = None
) -> None:
    """Refuse the upgrade with an HTTP answer (Mastodon answers 401 so), where the server can."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(
            JSONResponse({"error": message}, status_code=status, headers=headers)
        )
    else:
        await websocket.close(code=4000 + status, reason=message)


async def websocket_stream(websocket: WebSocket) -> None:
    """One WebSocket of the streaming API, for as long as it is open.

    Reached through StreamingSocketEntrance, past the router: everything this coroutine and its
    callers hold stays alive with the connection."""
    context: AppContext = websocket.app.state.context
    hub = hub_of(websocket.app.state)
    token, subprotocol = _websocket_token(websocket)
    try:
        async with hub.handshakes:
            found = await _websocket_caller(websocket, context, token)
    except PoolTimeout:
        # Every database connection busy: the client comes back, as an HTTP client would.
        await _refuse(websocket, 503, BUSY_MESSAGE, {"Retry-After": str(BUSY_RETRY_AFTER)})
        return
    if found is None:
        return
    viewer, token_id, first = found
    await websocket.accept(subprotocol=subprotocol)
    writer = _SocketWriter(websocket)
    connection = writer.connection = hub.open(viewer, token_id, wake=writer.wake)
    if first is not None:
        connection.streams.add(first)
    try:
        await _receive_forever(websocket, context, connection)
    except WebSocketDisconnect:
        pass
    finally:
        writer.stop()
        hub.close(connection)


async def _websocket_caller(
    websocket: WebSocket, context: AppContext, token: str | None
) -> tuple[Viewer, int | None, Stream | None] | None:
    """The viewer, their token's id and the stream named in the URL; None when refused (the
    refusal sent). The token's rows are not kept: an open connection needs no more than this."""
    caller = await caller_of_token(context, token) if token else None
    if caller is None:
        await _refuse(websocket, 401, INVALID_TOKEN if token else "Missing access token")
        return None
    first: Stream | None = None
    if websocket.query_params.get("stream"):
        try:
            first = _subscription(caller.viewer, dict(websocket.query_params))
            await check_list(context, caller.viewer, first)
        except StreamRefused as refused:
            await _refuse(websocket, refused.status, refused.message)
            return None
    return caller.viewer, caller.holder.token.id if caller.holder else None, first


class _SocketWriter:
    """Sends what waits on a WebSocket connection, from a task that lives only while there is
    something to send: an idle connection has no task of its own besides the one that reads."""

    __slots__ = ("connection", "task", "websocket")

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self.connection: Connection | None = None
        self.task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        if self.task is None:
            self.task = asyncio.create_task(self._send_waiting())

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task = None

    async def _send_waiting(self) -> None:
        connection = self.connection
        assert connection is not None
        try:
            # Messages offered while one is sent wait for the next round of this loop; the task
            # ends (and `task` is cleared) with nothing left, with no await in between.
            while messages := connection.take():
                for message in messages:
                    if connection.closed_because is not None:
                        break  # what was taken before the end is dropped, as what was waiting
                    await self.websocket.send_text(message.websocket_text())
            if connection.closed_because is not None:
                reason = connection.closed_because
                await self.websocket.send_text(json.dumps({"error": reason, "status": 410}))
                await self.websocket.close(code=1008 if "token" in reason else 1013, reason=reason[:120])
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the client is gone: the reading side ends the connection
        finally:
            self.task = None


async def check_list(context: AppContext, viewer: Viewer, stream: Stream) -> None:
    """A list stream opens only for one of the viewer's own lists."""
    if stream.list_id is None:
        return
    try:
        await ListService(context, viewer).get(stream.list_id)
    except NotFound:
        raise StreamRefused("Unknown list", 404) from None


def _subscription(viewer: Viewer, fields: dict[str, Any]) -> Stream:
    name = fields.get("stream")
    return stream_for(
        viewer,
        _stream_name(name if isinstance(name, str) else None, _truthy(str(fields.get("only_media") or ""))),
        tag=str(fields["tag"]) if fields.get("tag") is not None else None,
        list_id=str(fields["list"]) if fields.get("list") is not None else None,
    )


async def _receive_forever(websocket: WebSocket, context: AppContext, connection: Connection) -> None:
    """Subscribe and unsubscribe messages; a bad one is answered with an error and ignored."""
    while connection.closed_because is None:
        text = await websocket.receive_text()
        try:
            if len(text) > MAX_WEBSOCKET_MESSAGE:
                raise StreamRefused("Message too long")
            try:
                fields = json.loads(text)
            except ValueError:
                raise StreamRefused("Message is not JSON") from None
            if not isinstance(fields, dict) or fields.get("type") not in ("subscribe", "unsubscribe"):
                raise StreamRefused("Unknown message type: use subscribe or unsubscribe")
            stream = _subscription(connection.viewer, fields)
            await check_list(context, connection.viewer, stream)
        except StreamRefused as refused:
            await websocket.send_text(json.dumps({"error": refused.message, "status": refused.status}))
            continue
        except PoolTimeout:
            # A list subscription found every database connection busy: the client may ask again.
            await websocket.send_text(json.dumps({"error": BUSY_MESSAGE, "status": 503}))
            continue
        if fields["type"] == "subscribe":
            connection.streams.add(stream)
        else:
            connection.streams.discard(stream)


class StreamingSocketEntrance:
    """ASGI middleware, outermost of the app's own: a WebSocket to /api/v1/streaming goes straight
    to websocket_stream.

    Every layer a connection passes through waits, suspended, for as long as the connection is
    open: the HTTP middleware (which lets WebSockets through untouched), the exception handlers
    and FastAPI's router kept some 13 KB per idle connection alive (tracemalloc, 1,000 connections;
    bench/bench_streaming.py). Nothing on that way applies to a WebSocket: the handler authenticates
    and refuses by itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"].rstrip("/") == WEBSOCKET_PATH:
            await websocket_stream(WebSocket(scope, receive, send))
            return
        await self.app(scope, receive, send)


__all__ = ["StreamingSocketEntrance", "router", "websocket_stream"]
