"""Mastodon's Status entity, from the read model's queries (those the web pages' views use).

Apps poll their timelines all day: the part of each entity that is the same for every reader is
rendered once per post version and kept (app.services.renderings), as is each account's entity;
each request reads the page's counts and the reader's own marks fresh and adds them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from app.api.entities.account import kept_account_entities
from app.api.entities.common import api_id, api_time
from app.api.entities.custom_emoji import custom_emoji_entity
from app.api.entities.discovery import filter_result_entity
from app.api.entities.media import media_entity
from app.context import AppContext
from app.models import MediaAttachment, Post
from app.services.content_filters import FilterMatch, kept_active_filters
from app.services.read_model import (
    PostContents,
    PostMarks,
    accounts_by_id,
    filter_matches,
    load_contents,
    post_marks,
    shown_posts,
)
from app.services.remote_emojis import ShownEmoji, shown_emojis
from app.services.viewer import Viewer

# Herold's names for audiences → Mastodon's.
VISIBILITY_NAMES = {"public": "public", "unlisted": "unlisted", "followers": "private", "direct": "direct"}


# What context.renderings keeps of a post: its Status entity without the reader's part.
STATUS_RENDERING = "api-status"


@dataclass(frozen=True)
class _SharedStatus:
    """What a post's Status entity is for every reader (kept in context.renderings), and the
    media the reader's content filters read. `entity` holds every key, in Mastodon's order; those
    that depend on the reader or change with every like (counts, flags) and the account (kept
    apart, as several posts share it) are filled per request."""

    entity: dict[str, Any]
    media: list[MediaAttachment]


def _shared_status(
    context: AppContext, post: Post, contents: PostContents, emojis: Sequence[ShownEmoji]
) -> _SharedStatus:
    entity = {
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
        "replies_count": 0,
        "reblogs_count": 0,
        "favourites_count": 0,
        "quotes_count": 0,
        "edited_at": api_time(post.edited_at),
        "favourited": False,
        "reblogged": False,
        "muted": False,
        "bookmarked": False,
        "content": post.content_html,
        "filtered": [],
        "reblog": None,
        "application": None,
        "account": None,
        "media_attachments": [media_entity(media) for media in contents.media],
        "mentions": [
            {
                "id": api_id(account.id),
                "username": account.username,
                "acct": account.acct,
                "url": account.url or account.uri,
            }
            for account in contents.mentions
        ],
        "tags": [{"name": name, "url": context.urls.tag(name)} for name in contents.tags],
        "emojis": [custom_emoji_entity(emoji) for emoji in emojis],
        "card": None,
        "poll": None,
        "quote": None,
    }
    return _SharedStatus(entity, contents.media)


def _post_entity(
    shared: _SharedStatus,
    post: Post,
    account: dict[str, Any],
    marks: PostMarks,
    filtered: tuple[FilterMatch, ...],
    manageable: bool,
) -> dict[str, Any]:
    """The shared part with this reader's: a copy, so the kept entity is never changed."""
    entity = dict(shared.entity)
    entity["replies_count"] = post.replies_count
    entity["reblogs_count"] = post.reblogs_count
    entity["favourites_count"] = post.favourites_count
    entity["favourited"] = post.id in marks.liked
    entity["reblogged"] = post.id in marks.boosted
    entity["muted"] = post.id in marks.muted
    entity["bookmarked"] = post.id in marks.bookmarked
    entity["filtered"] = [filter_result_entity(match) for match in filtered]
    entity["account"] = account
    if manageable:
        entity["pinned"] = post.id in marks.pinned
    return entity


def _boost_entity(item: Post, booster: dict[str, Any], shown: dict[str, Any]) -> dict[str, Any]:
    """A boost: Mastodon's wrapper around the boosted post's entity (`reblog`)."""
    wrapper = dict(shown)
    wrapper.update(
        id=api_id(item.id),
        created_at=api_time(item.published_at),
        uri=item.uri,
        url=item.url or item.uri,
        in_reply_to_id=None,
        in_reply_to_account_id=None,
        account=booster,
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
    """Entities of `posts` in the order given (a boost whose post is gone left out); with
    `filter_context`, the viewer's content filters applied (a post a `hide` filter matches left
    out). `posts` are what the caller's list selected with the visibility rule: nothing here
    decides who sees what.

    A fixed number of queries whatever the page's size: the boosted posts (when there are
    boosts), the accounts, the viewer's marks, the filters; and for posts not rendered yet (or
    edited since), their media, mentions and hashtags."""
    if not posts:
        return []
    renderings = context.renderings
    filtering = filter_context is not None and viewer.account is not None
    fresh = False
    if context.channel is not None and (len(renderings.posts) or len(renderings.accounts) or filtering):
        # What other processes committed and already sent (an edited profile, a changed filter) is
        # applied first; with nothing kept or to keep there is nothing it could make stale (on
        # PostgreSQL a round trip saved).
        fresh = await context.channel.catch_up()
    post_ticket = renderings.posts.ticket()
    async with context.sessions() as session:
        shown = await shown_posts(session, posts)
        originals = list({post.id: post for _, post in shown}.values())
        shared: dict[int, _SharedStatus] = {}
        for post in originals:
            kept = renderings.posts.get(STATUS_RENDERING, post.id, post.edited_at)
            if kept is not None:
                shared[post.id] = kept
        missing = [post for post in originals if post.id not in shared]
        if missing:
            contents = await load_contents(session, [post.id for post in missing])
            # Only remote posts naming emoji have copies to show: their authors' domains, read then.
            naming = [post for post in missing if post.emojis and not post.local]
            authors = await accounts_by_id(session, {post.account_id for post in naming}) if naming else {}
            emojis = await shown_emojis(
                session, ((post, authors[post.account_id]) for post in naming if post.account_id in authors)
            )
            for post in missing:
                shared[post.id] = _shared_status(context, post, contents[post.id], emojis.get(post.id, []))
                renderings.posts.put(STATUS_RENDERING, post.id, shared[post.id], post_ticket, post.edited_at)
        accounts = await kept_account_entities(
            context, session, {post.account_id for _, post in shown} | {item.account_id for item, _ in shown}
        )
        marks = await post_marks(session, viewer, [post.id for post in originals])
        filters = (
            await kept_active_filters(context, session, viewer.account.id, filter_context, fresh=fresh)
            if filter_context is not None and viewer.account is not None
            else None
        )
    entities = []
    for item, post in shown:
        author = accounts.get(post.account_id)
        booster = accounts.get(item.account_id)
        if author is None or booster is None:
            continue
        found = shared[post.id]
        filtered: tuple[FilterMatch, ...] = ()
        if filters:
            matches = filter_matches(filters, viewer, post, found.media)
            if matches is None:
                continue
            filtered = matches
        manageable = post.local and viewer.account is not None and viewer.may_act_as(post.account_id)
        entity = _post_entity(found, post, author, marks, filtered, manageable)
        entities.append(entity if item is post else _boost_entity(item, booster, entity))
    return entities


__all__ = ["VISIBILITY_NAMES", "media_entity", "statuses"]
