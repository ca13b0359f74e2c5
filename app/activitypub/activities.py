"""Outgoing activities (Create, Update, Delete, Announce, Like, Add, Remove, Follow, Accept, Reject, Undo)
as ActivityStreams JSON.

Services decide *what* happens; these functions only say it in AS2. Activity ids are minted
from `LocalUrls` so they dereference on this server.
"""

from __future__ import annotations

from typing import Any

from app.activitypub.addressing import AS_PUBLIC, NoteParts
from app.activitypub.renderers import (
    ACTOR_CONTEXT,
    AS_CONTEXT,
    OBJECT_CONTEXT,
    iso,
    render_actor,
    render_announce,
    render_create,
    render_note,
)
from app.models import Account, Post
from app.models.base import new_id, utcnow
from app.urls import LocalUrls

# Create and Announce are also served at their ids, so they live with the renderers.
__all__ = [
    "activity_id",
    "render_add",
    "render_announce",
    "render_create",
    "render_delete",
    "render_follow",
    "render_follow_response",
    "render_like",
    "render_remove",
    "render_undo",
    "render_update",
    "render_update_actor",
]


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


def render_block(blocker: Account, target: Account, block_uri: str) -> dict[str, Any]:
    return {
        "@context": AS_CONTEXT,
        "id": block_uri,
        "type": "Block",
        "actor": blocker.uri,
        "object": target.uri,
    }


def render_flag(flag_uri: str, reporter: Account, comment: str, objects: list[str]) -> dict[str, Any]:
    """A report for another server's admins: the reported account first, then the posts reported."""
    return {
        "@context": AS_CONTEXT,
        "id": flag_uri,
        "type": "Flag",
        "actor": reporter.uri,
        "content": comment,
        "object": objects,
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


def render_update(post: Post, author: Account, parts: NoteParts, urls: LocalUrls) -> dict[str, Any]:
    """An edit: the whole new Note, `updated` set; the id names the edit, as Mastodon's do (in
    milliseconds rather than Mastodon's seconds: two edits within a second are two activities)."""
    edited = post.edited_at or utcnow()
    return {
        "@context": OBJECT_CONTEXT,
        "id": f"{post.uri}#updates/{int(edited.timestamp() * 1000)}",
        "type": "Update",
        "actor": author.uri,
        "published": iso(edited),
        "to": list(post.to),
        "cc": list(post.cc),
        "object": render_note(post, author, parts, urls=urls),
    }


def render_delete(post: Post, author: Account) -> dict[str, Any]:
    """A deleted post: a Tombstone, addressed as the post was so no new audience learns of it."""
    return {
        "@context": OBJECT_CONTEXT,
        "id": f"{post.uri}#delete",
        "type": "Delete",
        "actor": author.uri,
        "to": list(post.to),
        "cc": list(post.cc),
        "object": {"id": post.uri, "type": "Tombstone", "atomUri": post.uri},
    }


def render_like(like_uri: str, actor: Account, post: Post) -> dict[str, Any]:
    return {"@context": AS_CONTEXT, "id": like_uri, "type": "Like", "actor": actor.uri, "object": post.uri}


def _featured_change(kind: str, urls: LocalUrls, actor: Account, post: Post) -> dict[str, Any]:
    return {
        "@context": AS_CONTEXT,
        "id": activity_id(urls, actor),
        "type": kind,
        "actor": actor.uri,
        "object": post.uri,
        "target": actor.featured_url or urls.featured(actor.username),
    }


def render_add(urls: LocalUrls, actor: Account, post: Post) -> dict[str, Any]:
    """A pin: the post added to the actor's featured collection."""
    return _featured_change("Add", urls, actor, post)


def render_remove(urls: LocalUrls, actor: Account, post: Post) -> dict[str, Any]:
    """An unpin."""
    return _featured_change("Remove", urls, actor, post)


def render_update_actor(urls: LocalUrls, actor: Account) -> dict[str, Any]:
    """An Update carrying the whole actor, so followers' servers refresh the profile and key at once."""
    document = render_actor(actor, urls)
    document.pop("@context", None)
    return {
        "@context": ACTOR_CONTEXT,
        "id": activity_id(urls, actor),
        "type": "Update",
        "actor": actor.uri,
        "to": [AS_PUBLIC],
        "cc": [actor.followers_url] if actor.followers_url else [],
        "object": document,
    }
