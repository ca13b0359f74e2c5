"""Mastodon's Notification and NotificationGroup entities, from the notification lists' entries
(one serializer for the REST lists and the streaming API), and its names for notification kinds."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.api.entities.account import account_entities
from app.api.entities.common import api_id, api_time
from app.api.entities.status import statuses
from app.context import AppContext
from app.models import Notification, NotificationType
from app.services.notification_groups import SAMPLE_ACCOUNTS, NotificationGroup
from app.services.paged_lists import NotificationEntry, notifications_by_id
from app.services.viewer import Viewer

# Mastodon's notification types → the ones Herold stores (a reply is a mention to Mastodon).
NOTIFICATION_TYPES: dict[str, set[str]] = {
    "mention": {NotificationType.MENTION, NotificationType.REPLY},
    "status": {NotificationType.STATUS},
    "reblog": {NotificationType.REBLOG},
    "follow": {NotificationType.FOLLOW},
    "follow_request": {NotificationType.FOLLOW_REQUEST},
    "favourite": {NotificationType.FAVOURITE},
    "poll": {NotificationType.POLL},
    "update": {NotificationType.UPDATE},
    "admin.sign_up": {NotificationType.SIGN_UP},
    "admin.report": {NotificationType.REPORT},
    "move": {NotificationType.MOVE},
    "severed_relationships": set(),
    "moderation_warning": set(),
    "quote": set(),
    "quoted_update": set(),
}
STORED_TO_API = {stored: name for name, stored_set in NOTIFICATION_TYPES.items() for stored in stored_set}
# Stored kinds Mastodon has no name for (emoji reactions) are never listed.
LISTED = frozenset(STORED_TO_API)


def notification_entity(
    row: Notification, sender: dict[str, Any], status: dict[str, Any] | None
) -> dict[str, Any]:
    return {
        "id": api_id(row.id),
        "type": STORED_TO_API[row.type],
        "group_key": f"ungrouped-{row.id}",
        "created_at": api_time(row.created_at),
        "account": sender,
        **({"status": status} if status is not None else {}),
    }


async def notifications(
    context: AppContext, viewer: Viewer, entries: Sequence[NotificationEntry]
) -> list[dict[str, Any]]:
    """Entities of `entries` in the order given; one about a post the viewer can no longer see,
    or from an account that is gone, is left out."""
    senders = await account_entities(context, {entry.sender_id for entry in entries})
    posts = [entry.post for entry in entries if entry.post is not None and entry.sender_id in senders]
    shown = {
        int(entity["id"]): entity
        for entity in await statuses(context, viewer, posts, filter_context="notifications")
    }
    body: list[dict[str, Any]] = []
    for entry in entries:
        row = entry.notification
        sender = senders.get(entry.sender_id)
        if (
            sender is None
            or row.type not in STORED_TO_API
            or (row.post_id is not None and row.post_id not in shown)
        ):
            continue
        body.append(notification_entity(row, sender, shown[row.post_id] if row.post_id is not None else None))
    return body


async def notification_entities(
    context: AppContext, viewer: Viewer, ids: Sequence[int]
) -> list[dict[str, Any]]:
    """The viewer's notifications with these ids, as entities (the streaming API sends them one by one)."""
    return await notifications(context, viewer, await notifications_by_id(context, viewer, ids))


def notification_group_entity(group: NotificationGroup) -> dict[str, Any]:
    latest = group.latest
    oldest = group.notifications[-1]
    return {
        "group_key": group.key,
        "notifications_count": len(group.notifications),
        "type": STORED_TO_API[latest.type],
        "most_recent_notification_id": api_id(latest.id),
        "page_min_id": api_id(oldest.id),
        "page_max_id": api_id(latest.id),
        "latest_page_notification_at": api_time(latest.created_at),
        "sample_account_ids": [api_id(account) for account in group.sender_ids[:SAMPLE_ACCOUNTS]],
        "status_id": api_id(latest.post_id),
    }


__all__ = [
    "LISTED",
    "NOTIFICATION_TYPES",
    "STORED_TO_API",
    "notification_entities",
    "notification_entity",
    "notification_group_entity",
    "notifications",
]
