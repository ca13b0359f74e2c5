"""Outgoing activities (Follow, Accept, Reject, Undo, …) as ActivityStreams JSON.

Services decide *what* happens; these functions only say it in AS2. Activity ids are minted
from `LocalUrls` so they dereference on this server.
"""

from __future__ import annotations

from typing import Any

from app.activitypub.renderers import AS_CONTEXT
from app.models import Account
from app.models.base import new_id
from app.urls import LocalUrls


def activity_id(urls: LocalUrls, actor: Account) -> str:
    return urls.activity(actor.username, new_id())


def render_follow(urls: LocalUrls, follower: Account, followee: Account, follow_uri: str) -> dict[str, Any]:
    return {
        "@context": AS_CONTEXT,
        "id": follow_uri,
        "type": "Follow",
        "actor": follower.uri,
        "object": followee.uri,
    }


def render_follow_response(
    urls: LocalUrls, kind: str, followee: Account, follower: Account, follow_uri: str | None
) -> dict[str, Any]:
    """An Accept or Reject of a Follow, embedding the original Follow with its own id (Mastodon matches on it)."""
    assert kind in ("Accept", "Reject")
    follow: dict[str, Any] = {"type": "Follow", "actor": follower.uri, "object": followee.uri}
    if follow_uri:
        follow["id"] = follow_uri
    return {
        "@context": AS_CONTEXT,
        "id": activity_id(urls, followee),
        "type": kind,
        "actor": followee.uri,
        "object": follow,
    }


def render_undo(urls: LocalUrls, actor: Account, undone: dict[str, Any]) -> dict[str, Any]:
    inner = {key: value for key, value in undone.items() if key != "@context"}
    return {
        "@context": AS_CONTEXT,
        "id": activity_id(urls, actor),
        "type": "Undo",
        "actor": actor.uri,
        "object": inner,
    }
