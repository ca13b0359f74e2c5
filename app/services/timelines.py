"""Home timelines: written at fan-in time (one row per local reader), read newest first.

Also the read-side summaries of posts and accounts that the CLI prints as JSON (shaped like
Mastodon's client API entities, so scripts written against one read the other).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.context import AppContext
from app.db import dialect_insert
from app.models import (
    Account,
    AccountBlock,
    AccountMute,
    Follow,
    FollowState,
    MediaAttachment,
    Poll,
    Post,
    PostTag,
    Tag,
    TimelineEntry,
    UserDomainBlock,
)
from app.models.base import new_id, new_ids, table_of, utcnow
from app.services import events
from app.services.moderation import is_silenced
from app.services.read_model import PostViewLoader
from app.services.viewer import Viewer
from app.services.visibility import mute_in_force, visible_to

DEFAULT_LIMIT = 40
MAX_LIMIT = 200


def insert_ignoring_duplicates(session: AsyncSession, model: Any, rows: list[dict[str, Any]]) -> Any:
    """An INSERT that skips rows a unique constraint already holds (both backends speak ON CONFLICT)."""
    return dialect_insert(session, model).values(rows).on_conflict_do_nothing()


async def ensure_tags(
    session: AsyncSession, names: Iterable[str], known: dict[str, int] | None = None
) -> dict[str, int]:
    """Ids of the hashtags `names` (and whatever `known` held), created where missing.

    Another writer may create the same tag at the same moment: insert-or-ignore, then read back.
    Tags are never deleted, so a caller may keep `known` across transactions.
    """
    known = {} if known is None else known
    unknown = sorted({name for name in names if name not in known})
    if unknown:
        now = utcnow()
        rows = [{"id": new_id(), "name": name, "created_at": now} for name in unknown]
        await session.execute(insert_ignoring_duplicates(session, Tag, rows))
        found = await session.execute(select(Tag.name, Tag.id).where(col(Tag.name).in_(unknown)))
        known.update(dict(found.all()))
    return known


async def tag_post(session: AsyncSession, post_id: int, names: Sequence[str]) -> None:
    """Link a post to its hashtags (once each, however often it is called)."""
    if not names:
        return
    ids = await ensure_tags(session, names)
    links = [{"id": new_id(), "post_id": post_id, "tag_id": ids[name]} for name in dict.fromkeys(names)]
    await session.execute(insert_ignoring_duplicates(session, PostTag, links))


async def hidden_from(session: AsyncSession, author: Account, *, notifications: bool = False) -> set[int]:
    """Local accounts that must not see `author` in their timelines (or, with `notifications`, in
    their notifications): they block or mute the account, or hide its whole domain. A mute that
    keeps notifications (Mastodon's `notifications=false`) hides the posts only."""
    return (await hidden_from_each(session, [author], notifications=notifications))[author.id]


async def hidden_from_each(
    session: AsyncSession, authors: Sequence[Account], *, notifications: bool = False
) -> dict[int, set[int]]:
    """`hidden_from` for many authors at once (three queries however many): the inbox worker asks
    it for every author of a batch."""
    hidden: dict[int, set[int]] = {author.id: set() for author in authors}
    if not authors:
        return hidden
    ids = list(hidden)
    blocks = await session.execute(
        select(col(AccountBlock.target_account_id), col(AccountBlock.account_id)).where(
            col(AccountBlock.target_account_id).in_(ids)
        )
    )
    mutes = await session.execute(
        select(col(AccountMute.target_account_id), col(AccountMute.account_id)).where(
            col(AccountMute.target_account_id).in_(ids),
            mute_in_force(),
            *([col(AccountMute.hide_notifications).is_(True)] if notifications else []),
        )
    )
    for target, account_id in [*blocks.all(), *mutes.all()]:
        hidden[target].add(account_id)
    domains = {author.domain for author in authors if author.domain is not None}
    if domains:
        domain_rows = await session.execute(
            select(col(UserDomainBlock.domain), col(UserDomainBlock.account_id)).where(
                col(UserDomainBlock.domain).in_(sorted(domains))
            )
        )
        by_domain: dict[str, set[int]] = {}
        for domain, account_id in domain_rows.all():
            by_domain.setdefault(domain, set()).add(account_id)
        for author in authors:
            if author.domain is not None:
                hidden[author.id] |= by_domain.get(author.domain, set())
    return hidden


async def local_follower_ids(
    session: AsyncSession, account: Account, *, boosts: bool = False, notify: bool = False
) -> list[int]:
    """Local accounts following `account`; with `boosts`, only those who take its boosts at home,
    with `notify`, only those who asked to be told of each post (the follow's options)."""
    followers = (await local_followers_of(session, [account.id]))[account.id]
    return [
        follower.account_id
        for follower in followers
        if (follower.boosts or not boosts) and (follower.notify or not notify)
    ]


@dataclass(frozen=True)
class LocalFollower:
    account_id: int
    # The follow's options: boosts shown at home, told of each post.
    boosts: bool
    notify: bool


async def local_followers_of(
    session: AsyncSession, account_ids: Sequence[int]
) -> dict[int, list[LocalFollower]]:
    """The local accounts following each of `account_ids`, with their follows' options (one query
    however many accounts)."""
    followers: dict[int, list[LocalFollower]] = {account_id: [] for account_id in account_ids}
    if not followers:
        return followers
    rows = await session.execute(
        select(col(Follow.followee_id), col(Follow.follower_id), col(Follow.show_reblogs), col(Follow.notify))
        .join(Account, col(Account.id) == col(Follow.follower_id))
        .where(
            col(Follow.followee_id).in_(list(followers)),
            col(Follow.state) == FollowState.ACCEPTED,
            col(Account.domain).is_(None),
        )
    )
    for followee, follower, boosts, notify in rows.all():
        followers[followee].append(LocalFollower(follower, bool(boosts), bool(notify)))
    return followers


async def boost_audience(
    session: AsyncSession, context: AppContext, boosted_author: Account, readers: Iterable[int]
) -> set[int]:
    """Which of `readers` a boost of `boosted_author`'s post reaches at home: all of them, unless the
    author's domain is silenced; then only those who follow the author, as on Mastodon (a silenced
    server's posts reach people through their own follows, not through someone else's boost)."""
    audience = set(readers)
    if audience and await is_silenced(context, boosted_author):
        audience &= set(await local_follower_ids(session, boosted_author))
    return audience


async def add_to_home(session: AsyncSession, account_ids: Iterable[int], post_id: int) -> None:
    """Put a post into these local accounts' home timelines (once each, however often it is called)."""
    now = utcnow()
    readers = sorted(set(account_ids))
    # The ids must differ (`new_id` never repeats within a process): a repeat would be skipped
    # silently by the conflict clause, leaving that reader without the post.
    rows = [
        {"id": entry_id, "account_id": account_id, "post_id": post_id, "created_at": now}
        for entry_id, account_id in zip(new_ids(len(readers)), readers, strict=True)
    ]
    if not rows:
        return
    statement = insert_ignoring_duplicates(session, TimelineEntry, rows)
    if not events.listening(session):
        await session.execute(statement)
        return
    # Only the entries actually added are announced: one already there was announced when it was.
    added = await session.scalars(statement.returning(table_of(TimelineEntry).c.account_id))
    events.announce(session, [events.TimelineEntryAdded(account_id, post_id) for account_id in added.all()])


# --------------------------------------------------------------------------------------------
# Read side


@dataclass(frozen=True)
class AccountSummary:
    id: int
    username: str
    acct: str
    display_name: str
    uri: str
    url: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "username": self.username,
            "acct": self.acct,
            "display_name": self.display_name,
            "uri": self.uri,
            "url": self.url,
        }


def summarize_account(account: Account) -> AccountSummary:
    return AccountSummary(
        id=account.id,
        username=account.username,
        acct=account.acct,
        display_name=account.display_name,
        uri=account.uri,
        url=account.url,
    )


@dataclass(frozen=True)
class PostSummary:
    post: Post
    account: AccountSummary
    reblog: PostSummary | None = None
    media: list[MediaAttachment] = field(default_factory=list)
    mentions: list[AccountSummary] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    poll: Poll | None = None

    def to_dict(self) -> dict[str, Any]:
        post = self.post
        return {
            "id": str(post.id),
            "uri": post.uri,
            "url": post.url or post.uri,
            "created_at": api_timestamp(post.published_at),
            "edited_at": api_timestamp(post.edited_at) if post.edited_at else None,
            "account": self.account.to_dict(),
            "content": post.content_html,
            "spoiler_text": post.summary or "",
            "sensitive": post.sensitive,
            "visibility": post.visibility,
            "language": post.language,
            "in_reply_to_uri": post.in_reply_to_uri,
            "in_reply_to_id": str(post.in_reply_to_id) if post.in_reply_to_id else None,
            "replies_count": post.replies_count,
            "reblogs_count": post.reblogs_count,
            "favourites_count": post.favourites_count,
            "reblog": self.reblog.to_dict() if self.reblog else None,
            "media_attachments": [
                {
                    "id": str(media.id),
                    "type": _media_kind(media.media_type),
                    "url": media.url,
                    "remote_url": media.remote_url,
                    "description": media.description,
                    "blurhash": media.blurhash,
                }
                for media in self.media
            ],
            "mentions": [
                {"id": str(m.id), "username": m.username, "acct": m.acct, "url": m.url or m.uri}
                for m in self.mentions
            ],
            "tags": [{"name": tag} for tag in self.tags],
            "emojis": list(post.emojis),
            "poll": _poll_dict(self.poll) if self.poll else None,
        }


def api_timestamp(moment: Any) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _media_kind(media_type: str) -> str:
    major = media_type.split("/", 1)[0]
    if media_type == "image/gif":
        return "gifv"
    return {"image": "image", "video": "video", "audio": "audio"}.get(major, "unknown")


def _poll_dict(poll: Poll) -> dict[str, Any]:
    return {
        "id": str(poll.id),
        "expires_at": api_timestamp(poll.expires_at) if poll.expires_at else None,
        "expired": bool(poll.expires_at and poll.expires_at <= utcnow()),
        "multiple": poll.multiple,
        "votes_count": poll.votes_count,
        "voters_count": poll.voters_count,
        "options": [
            {"title": option.get("title", ""), "votes_count": option.get("votes", 0)}
            for option in poll.options
        ],
    }


async def summarize_posts(
    session: AsyncSession, post_ids: list[int], viewer: Viewer | None = None
) -> dict[int, PostSummary]:
    """Summaries (with authors, boosted posts, media, mentions, tags and polls) from the read model."""
    if not post_ids:
        return {}
    rows = {
        post.id: post
        for post in (await session.scalars(select(Post).where(col(Post.id).in_(post_ids)))).all()
    }
    views = await PostViewLoader(session, viewer or Viewer.nobody()).load(
        [rows[post_id] for post_id in dict.fromkeys(post_ids) if post_id in rows]
    )
    summaries: dict[int, PostSummary] = {}
    for view in views:
        shown = PostSummary(
            post=view.post,
            account=summarize_account(view.author),
            media=view.media,
            mentions=[summarize_account(account) for account in view.mentions],
            tags=view.tags,
            poll=view.poll,
        )
        if view.boosted_by is not None:
            shown = PostSummary(post=view.item, account=summarize_account(view.boosted_by), reblog=shown)
        summaries[view.item.id] = shown
    return summaries


class TimelineService:
    def __init__(self, context: AppContext) -> None:
        self.context = context

    async def home(
        self, account: Account, *, limit: int = DEFAULT_LIMIT, max_id: int | None = None
    ) -> list[PostSummary]:
        """The account's home timeline, newest first (page further back with `max_id`)."""
        limit = max(1, min(limit, MAX_LIMIT))
        query = (
            select(TimelineEntry.id, TimelineEntry.post_id)
            .join(Post, col(Post.id) == col(TimelineEntry.post_id))
            # What the account may see now: a follow ended or a block made since fan-in counts.
            .where(
                col(TimelineEntry.account_id) == account.id,
                visible_to(Viewer(account=account, acting_ids=frozenset({account.id}))),
            )
            .order_by(col(TimelineEntry.id).desc())
            .limit(limit)
        )
        if max_id is not None:
            query = query.where(col(TimelineEntry.id) < max_id)
        async with self.context.sessions() as session:
            rows = (await session.execute(query)).all()
            post_ids = [post_id for _entry, post_id in rows]
            summaries = await summarize_posts(session, post_ids)
        return [summaries[post_id] for post_id in post_ids if post_id in summaries]
