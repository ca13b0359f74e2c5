"""Mastodon's Conversation entity (direct messages), for /api/v1/conversations and the `direct` stream."""

from __future__ import annotations

from typing import Any

from app.api.entities.account import account_entity
from app.api.entities.common import api_id
from app.api.entities.status import statuses
from app.context import AppContext
from app.services.conversations import Conversation
from app.services.viewer import Viewer


async def conversation_entities(
    context: AppContext, viewer: Viewer, found: list[Conversation]
) -> list[dict[str, Any]]:
    shown = {
        int(entity["id"]): entity
        for entity in await statuses(context, viewer, [conversation.last_post for conversation in found])
    }
    return [
        {
            "id": api_id(conversation.id),
            "unread": conversation.unread,
            "accounts": [account_entity(context, account) for account in conversation.accounts],
            "last_status": shown.get(conversation.last_post.id),
        }
        for conversation in found
    ]


__all__ = ["conversation_entities"]
