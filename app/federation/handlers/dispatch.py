"""Routes an activity to its handler."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import MappingProxyType

from app.federation.handlers import HANDLED_TYPES, accounts, collections, follows, interactions, posts
from app.federation.handlers.base import Ignored, Inbound

Handler = Callable[[Inbound], Awaitable[None]]


async def _handle_announce(inbound: Inbound) -> None:
    # A group's Announce may wrap another activity, which is dispatched in turn.
    await interactions.handle_announce(inbound, relay=dispatch)


HANDLERS: MappingProxyType[str, Handler] = MappingProxyType(
    {
        "Follow": follows.handle_follow,
        "Accept": follows.handle_accept,
        "Reject": follows.handle_reject,
        "Create": posts.handle_create,
        "Update": posts.handle_update,
        "Delete": posts.handle_delete,
        "Announce": _handle_announce,
        "Like": interactions.handle_like,
        "EmojiReact": interactions.handle_emoji_react,
        "Undo": interactions.handle_undo,
        "Block": accounts.handle_block,
        "Flag": accounts.handle_flag,
        "Move": accounts.handle_move,
        "Add": collections.handle_add,
        "Remove": collections.handle_remove,
    }
)
assert frozenset(HANDLERS) == HANDLED_TYPES


async def dispatch(inbound: Inbound) -> None:
    handler = HANDLERS.get(inbound.activity.type)
    if handler is None:
        raise Ignored(f"{inbound.activity.type} activities are not handled")
    await handler(inbound)
