"""The streaming hub: one per instance (on the app's state), between the after-commit events and
the open streaming connections.

Events arrive from `AppContext.events` (this process's writers, and those of the other processes
once the event channel carries them here). A dispatcher task turns each into the messages every
connection should get, with the rules of the REST API: a post goes to a connection only when the
SQL form of the visibility rule says its viewer may see it (blocks, mutes and hidden domains
included) and, like the REST timelines, with the viewer's content filters applied (hidden, or
marked `filtered`); a status is rendered once per distinct viewer, not once per connection.

A connection's messages wait in a bounded line: a client that does not read falls behind, its
line fills, and it is disconnected rather than holding memory without bound. An idle connection
holds no line and no task of its own (see Connection): a server's connections are mostly idle, and
what each one holds is what bench/bench_streaming.py measures per connection.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from app.api.entities.announcement import announcement_entity, reaction_event_payload
from app.api.entities.conversation import conversation_entities
from app.api.entities.notification import notification_entities
from app.api.entities.status import statuses
from app.api.streaming.streams import PUBLIC_STREAMS, Stream
from app.context import AppContext
from app.models import Post, Visibility
from app.services import events
from app.services.announcements import Announcements, AnnouncementView
from app.services.content_filters import active_filters
from app.services.conversations import ConversationService
from app.services.errors import NotFound
from app.services.lists import ListService
from app.services.oauth import OAuthService
from app.services.paged_lists import lists_showing
from app.services.post_lists import posts_by_id, visible_post_ids
from app.services.viewer import Viewer

log = logging.getLogger(__name__)

# Messages a connection may have waiting before it counts as fallen behind.
QUEUE_LIMIT = 500
HEARTBEAT_SECONDS = 15.0
TOKEN_CHECK_SECONDS = 5.0
# WebSocket handshakes looking up their token at once (per process). When every app reconnects at
# once (after a restart), the rest wait their turn here instead of taking every database connection
# from the API's requests; one handshake's lookup takes a few milliseconds.
HANDSHAKES_AT_ONCE = 4
# Why a connection was closed by the server, as the client is told.
TOO_SLOW = "The client fell behind: too many events waiting"
TOKEN_GONE = "The access token was revoked"  # noqa: S105 (a message, not a secret)


@dataclass(frozen=True)
class Message:
    """One event on one stream: `payload` is already the JSON string (or the bare id of `delete`);
    None for the events that carry nothing (`filters_changed`)."""

    stream: Stream
    event: str
    payload: str | None

    def websocket_text(self) -> str:
        body: dict[str, Any] = {"stream": self.stream.label, "event": self.event}
        if self.payload is not None:
            body["payload"] = self.payload
        return json.dumps(body)

    def sse_text(self) -> str:
        # Mastodon's streaming server writes an absent payload as JavaScript prints it, and the
        # clients (Mastodon.py among them) expect that word.
        payload = "undefined" if self.payload is None else self.payload
        return f"event: {self.event}\ndata: {payload}\n\n"


def _nothing_to_wake() -> None:
    return None


@dataclass(eq=False)
class Connection:
    """One open streaming connection (an SSE response or a WebSocket) and what it subscribed to.

    Messages wait in `waiting` only while there are some: an idle connection holds no queue. The
    transport sets `wake`, called when something waits or the connection closed; it then `take`s
    what waits and sends it (the WebSocket in a task that lives only while it has something to
    send)."""

    viewer: Viewer
    token_id: int | None
    wake: Callable[[], None] = _nothing_to_wake
    streams: set[Stream] = field(default_factory=set)
    waiting: deque[Message] | None = None
    closed_because: str | None = None

    @property
    def viewer_key(self) -> tuple[int | None, int | None]:
        return (self.viewer.account_id, self.viewer.user.id if self.viewer.user is not None else None)

    def offer(self, message: Message) -> None:
        if self.closed_because is not None:
            return
        if self.waiting is None:
            self.waiting = deque()
        elif len(self.waiting) >= QUEUE_LIMIT:
            self.close(TOO_SLOW)
            return
        self.waiting.append(message)
        self.wake()

    def take(self) -> deque[Message] | tuple[()]:
        """What waits to be sent, in order (nothing once the connection is closed)."""
        waiting, self.waiting = self.waiting, None
        return waiting if waiting is not None else ()

    def close(self, reason: str) -> None:
        """Ends the connection: what waits is dropped, and the transport, woken, says why."""
        if self.closed_because is not None:
            return
        self.closed_because = reason
        self.waiting = None
        self.wake()


class StreamingHub:
    def __init__(self, context: AppContext) -> None:
        self.context = context
        self.connections: set[Connection] = set()
        self.heartbeat_seconds = HEARTBEAT_SECONDS
        self.token_check_seconds = TOKEN_CHECK_SECONDS
        self.handshakes = asyncio.Semaphore(HANDSHAKES_AT_ONCE)
        self._events: asyncio.Queue[events.Event] = asyncio.Queue()
        self._unsubscribe: Callable[[], None] | None = None
        self._tasks: list[asyncio.Task[None]] = []

    # Connections come and go --------------------------------------------------------------

    def open(
        self, viewer: Viewer, token_id: int | None, wake: Callable[[], None] = _nothing_to_wake
    ) -> Connection:
        connection = Connection(viewer, token_id, wake)
        self.connections.add(connection)
        self.context.metrics.streaming_connections.inc()
        if self._unsubscribe is None:
            # Listening costs every writer an event list: only while somebody is connected.
            self._unsubscribe = self.context.events.subscribe(self._events.put_nowait)
            self._tasks = [
                asyncio.create_task(self._dispatch_forever(), name="herold-streaming"),
                asyncio.create_task(self._check_tokens_forever(), name="herold-streaming-tokens"),
            ]
        return connection

    def close(self, connection: Connection) -> None:
        if connection not in self.connections:
            return
        self.connections.discard(connection)
        self.context.metrics.streaming_connections.dec()
        if not self.connections:
            self._stop_listening()

    async def aclose(self) -> None:
        for connection in list(self.connections):
            connection.close("The server is shutting down")
            self.close(connection)
        self._stop_listening()

    def _stop_listening(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for task in self._tasks:
            task.cancel()
        self._tasks = []
        while not self._events.empty():
            self._events.get_nowait()

    # Events become messages ---------------------------------------------------------------

    async def _dispatch_forever(self) -> None:
        while True:
            event = await self._events.get()
            try:
                await self.dispatch(event)
            except Exception:
                log.exception("streaming could not dispatch %r", event)

    async def dispatch(self, event: events.Event) -> None:
        if isinstance(event, events.TimelineEntryAdded):
            await self._home_entry(event)
        elif isinstance(event, events.NotificationAdded):
            await self._notification(event)
        elif isinstance(event, events.PostPublished):
            await self._published(event.post_id, "update")
            await self._listed(event.post_id, "update")
        elif isinstance(event, events.PostEdited):
            await self._edited(event.post_id)
        elif isinstance(event, events.PostDeleted):
            self._deleted(event.post_id)
        elif isinstance(event, events.FiltersChanged):
            self._to_user_streams("filters_changed", None, account_id=event.account_id)
        elif isinstance(event, events.AnnouncementPublished):
            await self._announcement(event.announcement_id)
        elif isinstance(event, events.AnnouncementReacted):
            await self._announcement_reaction(event)
        elif isinstance(event, events.AnnouncementWithdrawn):
            self._to_user_streams("announcement.delete", str(event.announcement_id))

    def _subscribed(self, names: Iterable[str]) -> list[tuple[Connection, Stream]]:
        wanted = set(names)
        return [
            (connection, stream)
            for connection in self.connections
            for stream in connection.streams
            if stream.name in wanted
        ]

    async def _home_entry(self, event: events.TimelineEntryAdded) -> None:
        targets = [
            (connection, stream)
            for connection, stream in self._subscribed(["user"])
            if connection.viewer.account_id == event.account_id
        ]
        await self._send_status(targets, event.post_id, "update", filter_context="home")
        direct = [
            (connection, stream)
            for connection, stream in self._subscribed(["direct"])
            if connection.viewer.account_id == event.account_id
        ]
        if direct:
            await self._conversation(direct, event.post_id)

    async def _conversation(self, targets: list[tuple[Connection, Stream]], post_id: int) -> None:
        """A direct post: its conversation, as /api/v1/conversations lists it, to each participant."""

        async def render(viewer: Viewer) -> str | None:
            try:
                found = await ConversationService(self.context, viewer).containing(post_id)
            except NotFound:
                return None  # not a direct post, or not one this viewer may see
            return json.dumps((await conversation_entities(self.context, viewer, [found]))[0])

        await self._offer_each(targets, "conversation", render)

    async def _notification(self, event: events.NotificationAdded) -> None:
        targets = [
            (connection, stream)
            for connection, stream in self._subscribed(["user", "user:notification"])
            if connection.viewer.account_id == event.account_id
        ]
        notification_id = event.notification_id
        if not targets or notification_id is None:
            return

        async def render(viewer: Viewer) -> str | None:
            entities = await notification_entities(self.context, viewer, [notification_id])
            return json.dumps(entities[0]) if entities else None

        await self._offer_each(targets, "notification", render)

    async def _send_status(
        self, targets: list[tuple[Connection, Stream]], post_id: int, name: str, *, filter_context: str
    ) -> None:
        """The post to each target whose viewer may see it, with their content filters for
        `filter_context` applied as the REST timelines apply them."""

        async def render(viewer: Viewer) -> str | None:
            return await self._status_for(viewer, post_id, filter_context)

        await self._offer_each(targets, name, render)

    async def _offer_each(
        self,
        targets: list[tuple[Connection, Stream]],
        name: str,
        render: Callable[[Viewer], Awaitable[str | None]],
    ) -> None:
        """Render once per distinct viewer (None: nothing for them) and queue it on each target."""
        rendered: dict[tuple[int | None, int | None], str | None] = {}
        for connection, stream in targets:
            key = connection.viewer_key
            if key not in rendered:
                rendered[key] = await render(connection.viewer)
            payload = rendered[key]
            if payload is not None:
                connection.offer(Message(stream, name, payload))

    async def _status_for(self, viewer: Viewer, post_id: int, filter_context: str) -> str | None:
        posts = await posts_by_id(self.context, viewer, [post_id])
        if not posts:
            return None
        entities = await statuses(self.context, viewer, posts, filter_context=filter_context)
        return json.dumps(entities[0]) if entities else None

    async def _published(self, post_id: int, name: str) -> None:
        """A public post (not a boost) on the public and hashtag streams it belongs to.

        It is rendered once as a visitor sees it, as Mastodon renders its public streams; each
        viewer then gets it only if the visibility rule lets them see it (their blocks, mutes and
        hidden domains)."""
        targets = self._subscribed([*PUBLIC_STREAMS, "hashtag", "hashtag:local"])
        if not targets:
            return
        posts = await posts_by_id(self.context, Viewer.nobody(), [post_id])
        if not posts or posts[0].reblog_of_id is not None or posts[0].visibility != Visibility.PUBLIC:
            return
        post = posts[0]
        entities = await statuses(self.context, Viewer.nobody(), posts)
        if not entities:
            return
        entity = entities[0]
        payload = json.dumps(entity)
        tags = {tag["name"].lower() for tag in entity.get("tags", [])}
        has_media = bool(entity.get("media_attachments"))
        matching = [
            (connection, stream)
            for connection, stream in targets
            if _belongs(stream, local=post.local, tags=tags, has_media=has_media)
        ]
        # Per viewer: nothing when they may not see it, else the shared payload (or their own
        # render when one of their content filters for public timelines matches it).

        async def render(viewer: Viewer) -> str | None:
            return await self._public_payload_for(viewer, post, payload)

        await self._offer_each(matching, name, render)

    async def _public_payload_for(self, viewer: Viewer, post: Post, shared: str) -> str | None:
        if not await visible_post_ids(self.context, viewer, [post.id]):
            return None
        if viewer.account is None or viewer.may_act_as(post.account_id):
            return shared
        async with self.context.sessions() as session:
            filters = await active_filters(session, viewer.account.id, "public")
        if not filters:
            return shared
        return await self._status_for(viewer, post.id, "public")

    async def _listed(self, post_id: int, name: str) -> None:
        """A post on the viewer's list streams whose lists show it (members, replies policy)."""
        targets = self._subscribed(["list"])
        if not targets:
            return
        by_viewer: dict[tuple[int | None, int | None], list[tuple[Connection, Stream]]] = {}
        for connection, stream in targets:
            by_viewer.setdefault(connection.viewer_key, []).append((connection, stream))
        for group in by_viewer.values():
            viewer = group[0][0].viewer
            wanted = {stream.list_id for _, stream in group if stream.list_id is not None}
            owned = []
            for list_id in wanted:
                try:
                    owned.append(await ListService(self.context, viewer).get(list_id))
                except NotFound:
                    continue
            showing = await lists_showing(self.context, viewer, post_id, owned)
            if not showing:
                continue
            payload = await self._status_for(viewer, post_id, "home")
            if payload is None:
                continue
            for connection, stream in group:
                if stream.list_id in showing:
                    connection.offer(Message(stream, name, payload))

    async def _edited(self, post_id: int) -> None:
        await self._send_status(self._subscribed(["user"]), post_id, "status.update", filter_context="home")
        await self._published(post_id, "status.update")
        await self._listed(post_id, "status.update")

    def _deleted(self, post_id: int) -> None:
        """The id alone, on every stream that could have shown the post: it says nothing more than
        that something with this id is gone, and the post can no longer be read to narrow it."""
        for connection in list(self.connections):
            for stream in connection.streams:
                if stream.name != "user:notification":
                    connection.offer(Message(stream, "delete", str(post_id)))

    # What Mastodon sends on the `user` stream alone --------------------------------------------

    def _to_user_streams(self, name: str, payload: str | None, *, account_id: int | None = None) -> None:
        """`name` on the `user` streams of `account_id` (None: of every account)."""
        for connection, stream in self._subscribed(["user"]):
            if account_id is None or connection.viewer.account_id == account_id:
                connection.offer(Message(stream, name, payload))

    async def _announcement_in_force(self, announcement_id: int) -> AnnouncementView | None:
        """The announcement as everyone sees it (nobody's read flag or reactions: Mastodon streams
        one rendering to all), or None while it is not in force (it starts later, or is gone)."""
        if not self._subscribed(["user"]):
            return None
        views = await Announcements(self.context, Viewer.nobody()).active()
        return next((view for view in views if view.announcement.id == announcement_id), None)

    async def _announcement(self, announcement_id: int) -> None:
        view = await self._announcement_in_force(announcement_id)
        if view is not None:
            self._to_user_streams("announcement", json.dumps(announcement_entity(self.context, view)))

    async def _announcement_reaction(self, event: events.AnnouncementReacted) -> None:
        view = await self._announcement_in_force(event.announcement_id)
        if view is not None:
            payload = json.dumps(reaction_event_payload(view, event.name))
            self._to_user_streams("announcement.reaction", payload)

    # Revoked tokens -------------------------------------------------------------------------

    async def _check_tokens_forever(self) -> None:
        while True:
            await asyncio.sleep(self.token_check_seconds)
            try:
                await self.check_tokens()
            except Exception:
                # The database may be briefly away: the next check closes what this one missed.
                log.warning("streaming could not check its connections' tokens", exc_info=True)

    async def check_tokens(self) -> None:
        """Close the connections whose token was revoked (or whose person or account is gone)."""
        token_ids = {
            connection.token_id for connection in self.connections if connection.token_id is not None
        }
        if not token_ids:
            return
        live = await OAuthService(self.context).live_token_ids(token_ids)
        for connection in list(self.connections):
            if connection.token_id is not None and connection.token_id not in live:
                connection.close(TOKEN_GONE)


def _belongs(stream: Stream, *, local: bool, tags: set[str], has_media: bool) -> bool:
    if stream.local_only and not local:
        return False
    if stream.remote_only and local:
        return False
    if stream.only_media and not has_media:
        return False
    if stream.tag is not None:
        return stream.tag in tags
    return True


def hub_of(app_state: Any) -> StreamingHub:
    hub: StreamingHub = app_state.streaming
    return hub


__all__ = ["Connection", "Message", "StreamingHub", "hub_of"]
