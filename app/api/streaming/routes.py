"""The streaming API as Mastodon serves it: Server-Sent Events at /api/v1/streaming/<stream>, and
one WebSocket at /api/v1/streaming carrying any number of subscriptions.

The token comes as Mastodon accepts it: `Authorization: Bearer`, the `access_token` query
parameter, or (WebSocket only) `Sec-WebSocket-Protocol`, which browsers' WebSocket API can set
where it cannot set headers; the server then answers with that same subprotocol, or Chromium drops
the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse

from app.api.auth import INVALID_TOKEN, ApiCaller, api_caller, caller_of_token
from app.api.streaming.hub import Connection, StreamingHub, hub_of
from app.api.streaming.streams import Stream, StreamRefused, stream_for
from app.context import AppContext
from app.dependencies import get_context
from app.services.errors import NotFound
from app.services.lists import ListService
from app.services.viewer import Viewer

router = APIRouter(prefix="/api/v1/streaming")

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
    connection = hub.open(caller.viewer, caller.holder.token.id if caller.holder else None)
    connection.streams.add(stream)
    return StreamingResponse(
        _sse_body(hub, connection),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _sse_body(hub: StreamingHub, connection: Connection) -> AsyncIterator[str]:
    try:
        yield ":)\n\n"
        while True:
            try:
                message = await asyncio.wait_for(connection.queue.get(), hub.heartbeat_seconds)
            except TimeoutError:
                yield ":thump\n\n"
                continue
            if message is None:
                return
            yield message.sse_text()
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


async def _refuse(websocket: WebSocket, status: int, message: str) -> None:
    """Refuse the upgrade with an HTTP answer (Mastodon answers 401 so), where the server can."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(JSONResponse({"error": message}, status_code=status))
    else:
        await websocket.close(code=4000 + status, reason=message)


@router.websocket("")
@router.websocket("/")
async def websocket_stream(websocket: WebSocket) -> None:
    context: AppContext = websocket.app.state.context
    token, subprotocol = _websocket_token(websocket)
    caller = await caller_of_token(context, token) if token else None
    if caller is None:
        await _refuse(websocket, 401, INVALID_TOKEN if token else "Missing access token")
        return
    first: Any = None
    if websocket.query_params.get("stream"):
        try:
            first = _subscription(caller.viewer, dict(websocket.query_params))
            await check_list(context, caller.viewer, first)
        except StreamRefused as refused:
            await _refuse(websocket, refused.status, refused.message)
            return
    await websocket.accept(subprotocol=subprotocol)
    hub = hub_of(websocket.app.state)
    connection = hub.open(caller.viewer, caller.holder.token.id if caller.holder else None)
    if first is not None:
        connection.streams.add(first)
    sender = asyncio.create_task(_send_forever(websocket, hub, connection))
    try:
        await _receive_forever(websocket, context, connection)
    except WebSocketDisconnect:
        pass
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await sender
        hub.close(connection)


async def check_list(context: AppContext, viewer: Viewer, stream: Stream) -> None:
    """A list stream opens only for one of the viewer's own lists."""
    if stream.list_id is None:
        return
    try:
        await ListService(context, viewer).get(stream.list_id)
    except NotFound:
        raise StreamRefused("Unknown list", 404) from None


def _subscription(viewer: Viewer, fields: dict[str, Any]) -> Any:
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
        if fields["type"] == "subscribe":
            connection.streams.add(stream)
        else:
            connection.streams.discard(stream)


async def _send_forever(websocket: WebSocket, hub: StreamingHub, connection: Connection) -> None:
    while True:
        try:
            message = await asyncio.wait_for(connection.queue.get(), hub.heartbeat_seconds)
        except TimeoutError:
            # Nothing to send: uvicorn's own ping frames (every 20 s) keep proxies from closing
            # an idle WebSocket, so the wait just starts again.
            continue
        if message is None:
            reason = connection.closed_because or ""
            with contextlib.suppress(Exception):
                await websocket.send_text(json.dumps({"error": reason, "status": 410}))
                await websocket.close(code=1008 if "token" in reason else 1013, reason=reason[:120])
            return
        await websocket.send_text(message.websocket_text())


__all__ = ["router"]
