"""Mastodon's Status entity, from the read model's PostView (what the web pages show)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.api.entities.account import account_entity
from app.api.entities.common import api_id, api_time
from app.api.entities.custom_emoji import custom_emoji_entity
from app.api.entities.discovery import filter_result_entity
from app.api.entities.media import media_entity
from app.context import AppContext
from app.models import Post
from app.services.read_model import PostView, load_views
from app.services.viewer import Viewer

# Herold's names for audiences → Mastodon's.
VISIBILITY_NAMES = {"public": "public", "unlisted": "unlisted", "followers": "private", "direct": "direct"}


def _post_entity(context: AppContext, view: PostView) -> dict[str, Any]:
    post = view.post
    return {
        "id": api_id(post.id),
        "created_at": api_time(post.published_at),
        "in_reply_to_id": api_id(post.in_reply_to_id),
        "in_reply_to_account_id": api_id(post.in_reply_to_account_id),
        "sensitive": post.sensitive or bool(post.summary),
        "spoiler_text": post.summary or "",
        "visibility": VISIBILITY_NAMES.get(post.visibility, "public"),
        "language": post.language,
        "uri": post.uri,
        "url": post.url or post.uri,
        "replies_count": post.replies_count,
        "reblogs_count": post.reblogs_count,
        "favourites_count": post.favourites_count,
        "quotes_count": 0,
        "edited_at": api_time(post.edited_at),
        "favourited": view.liked,
        "reblogged": view.boosted,
        "muted": view.muted,
        "bookmarked": view.bookmarked,
        "content": post.content_html,
        "filtered": [filter_result_entity(match) for match in view.filtered],
        "reblog": None,
        "application": None,
        "account": account_entity(context, view.author),
        "media_attachments": [media_entity(media) for media in view.media],
        "mentions": [
            {
                "id": api_id(account.id),
                "username": account.username,
                "acct": account.acct,
                "url": account.url or account.uri,
            }
            for account in view.mentions
        ],
        "tags": [{"name": name, "url": context.urls.tag(name)} for name in view.tags],
        "emojis": [custom_emoji_entity(emoji) for emoji in view.emojis],
        "card": None,
        "poll": None,
        "quote": None,
        **({"pinned": view.pinned} if view.manageable else {}),
    }


def status_entity(context: AppContext, view: PostView) -> dict[str, Any]:
    """A post, or a boost wrapping it (Mastodon's `reblog`)."""
    shown = _post_entity(context, view)
    if view.boosted_by is None:
        return shown
    item = view.item
    wrapper = dict(shown)
    wrapper.update(
        id=api_id(item.id),
        created_at=api_time(item.published_at),
        uri=item.uri,
        url=item.url or item.uri,
        in_reply_to_id=None,
        in_reply_to_account_id=None,
        account=account_entity(context, view.boosted_by),
        content="",
        spoiler_text="",
        media_attachments=[],
        mentions=[],
        tags=[],
        emojis=[],
        reblog=shown,
    )
    return wrapper


async def statuses(
    context: AppContext, viewer: Viewer, posts: Sequence[Post], *, filter_context: str | None = None
) -> list[dict[str, Any]]:
    """Entities of `posts` in the order given, from the read model (a fixed number of queries);
    with `filter_context`, the viewer's content filters applied by the read model."""
    views = await load_views(context, posts, viewer, filter_context=filter_context)
    return [status_entity(context, view) for view in views]


__all__ = ["VISIBILITY_NAMES", "media_entity", "status_entity", "statuses"]
