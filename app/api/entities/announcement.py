"""Mastodon's Announcement entity (one serializer for /api/v1/announcements and the streaming
API's `announcement` event) and the payload of its `announcement.reaction` event."""

from __future__ import annotations

from typing import Any

from app.api.entities.common import api_id, api_time
from app.context import AppContext
from app.services.announcements import AnnouncementView
from app.services.text_format import render_plain_text


def announcement_entity(context: AppContext, view: AnnouncementView) -> dict[str, Any]:
    row = view.announcement
    return {
        "id": api_id(row.id),
        "content": render_plain_text(row.text, mention_hrefs={}, hashtag_href=context.urls.tag),
        "starts_at": api_time(row.starts_at),
        "ends_at": api_time(row.ends_at),
        "all_day": row.all_day,
        "published_at": api_time(row.published_at),
        "updated_at": api_time(row.updated_at),
        "read": view.read,
        "mentions": [],
        "statuses": [],
        "tags": [],
        "emojis": [],
        "reactions": [{"name": item.name, "count": item.count, "me": item.me} for item in view.reactions],
    }


def reaction_event_payload(view: AnnouncementView, name: str) -> dict[str, Any]:
    """What Mastodon streams when a reaction is added or taken back: the reaction's count now,
    for everyone (no `me`)."""
    count = next((item.count for item in view.reactions if item.name == name), 0)
    return {"name": name, "count": count, "announcement_id": api_id(view.announcement.id)}


__all__ = ["announcement_entity", "reaction_event_payload"]
