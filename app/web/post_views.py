"""What the pages show of posts: each post with its author, boost, media and the viewer's own marks.

Read-only. Every list adds the one visibility rule (app.services.visibility.visible_to) to its
query; nothing is dropped after loading.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import not_, or_
from sqlmodel import col, select

from app.context import AppContext
from app.models import (
    Account,
    AccountDelegate,
    Favourite,
    Follow,
    MediaAttachment,
    Pin,
    Post,
    PostTag,
    Tag,
    TimelineEntry,
    User,
    Visibility,
)
from app.services.accounts import INSTANCE_ACTOR_USERNAME
from app.services.moderation import on_domain
from app.services.viewer import Viewer
from app.services.visibility import visible_to

PUBLIC_VISIBILITIES = (Visibility.PUBLIC, Visibility.UNLISTED)
THREAD_DEPTH = 40
THREAD_REPLIES = 200


@dataclass(frozen=True)
class PostCard:
    """One entry of a list of posts. For a boost, `post` is the boosted post and `boosted_by` who boosted."""

    post: Post
    author: Account
    item: Post
    boosted_by: Account | None = None
    media: list[MediaAttachment] = field(default_factory=list)
    reply_to: Account | None = None
    # The staff member who wrote a post published as an organisation (shown to admins and delegates).
    written_by: Account | None = None
    liked: bool = False
    boosted: bool = False
    pinned: bool = False
    # The viewer may edit, delete and pin it (their own post or one of an organisation they post for).
    manageable: bool = False

    @property
    def is_public(self) -> bool:
        return self.post.visibility in PUBLIC_VISIBILITIES


@dataclass(frozen=True)
class ViewerMarks:
    """Who is looking, for the per-post buttons: None for visitors."""

    user: User
    account: Account
    # Accounts the viewer may act for (own and delegated organisations).
    acting_ids: frozenset[int]
    is_admin: bool


async def viewer_marks(context: AppContext, user: User, account: Account, is_admin: bool) -> ViewerMarks:
    async with context.sessions() as session:
        granted = (
            await session.scalars(
                select(AccountDelegate.organization_account_id).where(AccountDelegate.user_id == user.id)
            )
        ).all()
    return ViewerMarks(user, account, frozenset({account.id, *granted}), is_admin)


async def build_cards(
    context: AppContext, items: Sequence[Post], viewer: ViewerMarks | None = None
) -> list[PostCard]:
    """Cards for posts (boosts resolved to what they boost), in the order given."""
    if not items:
        return []
    async with context.sessions() as session:
        boosted_ids = {item.reblog_of_id for item in items if item.reblog_of_id}
        originals = (
            {
                post.id: post
                for post in (await session.scalars(select(Post).where(col(Post.id).in_(boosted_ids)))).all()
            }
            if boosted_ids
            else {}
        )
        shown: list[tuple[Post, Post]] = []
        for item in items:
            if item.reblog_of_id:
                original = originals.get(item.reblog_of_id)
                if original is None or original.deleted_at is not None:
                    continue
                shown.append((item, original))
            else:
                shown.append((item, item))
        post_ids = [post.id for _, post in shown]
        account_ids = {post.account_id for _, post in shown} | {item.account_id for item, _ in shown}
        account_ids |= {post.in_reply_to_account_id for _, post in shown if post.in_reply_to_account_id}
        accounts = {
            account.id: account
            for account in (
                await session.scalars(select(Account).where(col(Account.id).in_(account_ids)))
            ).all()
        }
        media: dict[int, list[MediaAttachment]] = {}
        for attachment in (
            await session.scalars(
                select(MediaAttachment)
                .where(col(MediaAttachment.post_id).in_(post_ids))
                .order_by(col(MediaAttachment.position))
            )
        ).all():
            media.setdefault(attachment.post_id or 0, []).append(attachment)
        liked: set[int] = set()
        boosted: set[int] = set()
        pinned = set((await session.scalars(select(Pin.post_id).where(col(Pin.post_id).in_(post_ids)))).all())
        writers: dict[int, Account] = {}
        if viewer is not None:
            liked = set(
                (
                    await session.scalars(
                        select(Favourite.post_id).where(
                            Favourite.account_id == viewer.account.id, col(Favourite.post_id).in_(post_ids)
                        )
                    )
                ).all()
            )
            boosted = set(
                (
                    await session.scalars(
                        select(Post.reblog_of_id).where(
                            Post.account_id == viewer.account.id,
                            col(Post.reblog_of_id).in_(post_ids),
                            col(Post.deleted_at).is_(None),
                        )
                    )
                ).all()
            )
            writer_ids = {
                post.written_by_user_id
                for _, post in shown
                if post.written_by_user_id and (viewer.is_admin or post.account_id in viewer.acting_ids)
            }
            if writer_ids:
                writers = {
                    user_id: account
                    for user_id, account in (
                        await session.execute(
                            select(User.id, Account)
                            .join(Account, col(Account.id) == col(User.account_id))
                            .where(col(User.id).in_(writer_ids))
                        )
                    ).all()
                }
    cards = []
    for item, post in shown:
        author = accounts.get(post.account_id)
        if author is None:
            continue
        cards.append(
            PostCard(
                post=post,
                author=author,
                item=item,
                boosted_by=accounts.get(item.account_id) if item is not post else None,
                media=media.get(post.id, []),
                reply_to=accounts.get(post.in_reply_to_account_id) if post.in_reply_to_account_id else None,
                written_by=_writer(writers, post),
                liked=post.id in liked,
                boosted=post.id in boosted,
                pinned=post.id in pinned,
                manageable=viewer is not None and post.local and post.account_id in viewer.acting_ids,
            )
        )
    return cards


async def thread_posts(context: AppContext, post: Post, viewer: Viewer) -> tuple[list[Post], list[Post]]:
    """(ancestors oldest first, replies in reading order) of `post` that `viewer` may see.

    The walk up follows reply links through every stored post (ids only); what is shown is then
    read in one query with the visibility rule. Replies the viewer may not see are left out with
    the replies to them.
    """
    visible = visible_to(viewer)
    async with context.sessions() as session:
        chain: list[int] = []
        seen = {post.id}
        parent_id = post.in_reply_to_id
        while parent_id is not None and parent_id not in seen and len(chain) < THREAD_DEPTH:
            seen.add(parent_id)
            row = (
                await session.execute(select(Post.id, Post.in_reply_to_id).where(Post.id == parent_id))
            ).first()
            if row is None:
                break
            chain.append(row[0])
            parent_id = row[1]
        shown = (
            {
                item.id: item
                for item in (
                    await session.scalars(select(Post).where(col(Post.id).in_(chain), visible))
                ).all()
            }
            if chain
            else {}
        )
        ancestors = [shown[item_id] for item_id in reversed(chain) if item_id in shown]
        children: dict[int, list[Post]] = {}
        frontier = [post.id]
        found = 0
        while frontier and found < THREAD_REPLIES:
            rows = (
                await session.scalars(
                    select(Post)
                    .where(col(Post.in_reply_to_id).in_(frontier), visible)
                    .order_by(col(Post.id))
                    .limit(THREAD_REPLIES)
                )
            ).all()
            frontier = []
            for reply in rows:
                if reply.id in seen:
                    continue
                seen.add(reply.id)
                children.setdefault(reply.in_reply_to_id or 0, []).append(reply)
                frontier.append(reply.id)
                found += 1
    replies: list[Post] = []

    def walk(parent_id: int) -> None:
        for child in children.get(parent_id, []):
            replies.append(child)
            walk(child.id)

    walk(post.id)
    return ancestors, replies


async def tagged_posts(
    context: AppContext, name: str, viewer: Viewer, *, max_id: int | None, limit: int = 20
) -> tuple[list[Post], int | None]:
    """Public posts carrying hashtag `name` that `viewer` may see, newest first; and the max_id of
    the next page."""
    query = (
        select(Post)
        .join(PostTag, col(PostTag.post_id) == col(Post.id))
        .join(Tag, col(Tag.id) == col(PostTag.tag_id))
        .where(Tag.name == name.lower(), Post.visibility == Visibility.PUBLIC, visible_to(viewer))
        .order_by(col(Post.id).desc())
        .limit(limit + 1)
    )
    if max_id is not None:
        query = query.where(col(Post.id) < max_id)
    silenced = (await context.domain_policy.current()).silenced_domains
    if silenced:
        # Silenced servers stay out of public listings (followers still see their posts at home).
        query = query.join(Account, col(Account.id) == col(Post.account_id)).where(
            col(Account.domain).is_(None)
            | not_(or_(*(on_domain(col(Account.domain), name) for name in silenced)))
        )
    async with context.sessions() as session:
        posts = list((await session.scalars(query)).all())
    return posts[:limit], (posts[limit - 1].id if len(posts) > limit else None)


async def local_posts(
    context: AppContext, viewer: Viewer, *, max_id: int | None, limit: int = 20
) -> tuple[list[Post], int | None]:
    """The local timeline: public posts written here (not boosts) that `viewer` may see, newest first."""
    query = (
        select(Post)
        .where(
            col(Post.local).is_(True),
            Post.visibility == Visibility.PUBLIC,
            col(Post.reblog_of_id).is_(None),
            visible_to(viewer),
        )
        .order_by(col(Post.id).desc())
        .limit(limit + 1)
    )
    if max_id is not None:
        query = query.where(col(Post.id) < max_id)
    async with context.sessions() as session:
        posts = list((await session.scalars(query)).all())
    return posts[:limit], (posts[limit - 1].id if len(posts) > limit else None)


async def recent_public_posts(context: AppContext, account: Account, limit: int = 20) -> list[Post]:
    """An account's latest public posts (not boosts), for its feeds: what every visitor may see."""
    async with context.sessions() as session:
        rows = await session.scalars(
            select(Post)
            .where(
                Post.account_id == account.id,
                Post.visibility == Visibility.PUBLIC,
                col(Post.reblog_of_id).is_(None),
                visible_to(Viewer.nobody()),
            )
            .order_by(col(Post.id).desc())
            .limit(limit)
        )
        return list(rows.all())


async def post_by_id(context: AppContext, post_id: int) -> Post | None:
    async with context.sessions() as session:
        return await session.get(Post, post_id)


async def accounts_by_id(context: AppContext, account_ids: set[int]) -> dict[int, Account]:
    if not account_ids:
        return {}
    async with context.sessions() as session:
        rows = await session.scalars(select(Account).where(col(Account.id).in_(account_ids)))
        return {account.id: account for account in rows.all()}


async def account_by_id(context: AppContext, account_id: int) -> Account | None:
    async with context.sessions() as session:
        return await session.get(Account, account_id)


async def timeline_cursor(context: AppContext, account_id: int, post_id: int) -> int | None:
    """The home-timeline position of a post, to ask for the page after it."""
    async with context.sessions() as session:
        return await session.scalar(
            select(TimelineEntry.id).where(
                TimelineEntry.account_id == account_id, TimelineEntry.post_id == post_id
            )
        )


async def follow_state(context: AppContext, follower_id: int, followee_id: int) -> str | None:
    """ "accepted", "pending" or None: whether `follower_id` follows `followee_id`."""
    async with context.sessions() as session:
        state = await session.scalar(
            select(Follow.state).where(Follow.follower_id == follower_id, Follow.followee_id == followee_id)
        )
    return str(state) if state else None


async def search_local_accounts(context: AppContext, query: str, limit: int = 20) -> list[Account]:
    pattern = "%" + query.strip().lstrip("@").replace("%", "").replace("_", "\\_") + "%"
    async with context.sessions() as session:
        rows = await session.scalars(
            select(Account)
            .where(
                col(Account.domain).is_(None),
                Account.username != INSTANCE_ACTOR_USERNAME,
                col(Account.deleted_at).is_(None),
                col(Account.username).ilike(pattern, escape="\\")
                | col(Account.display_name).ilike(pattern, escape="\\"),
            )
            .order_by(col(Account.username))
            .limit(limit)
        )
        return list(rows.all())


async def visible_posts_of(
    context: AppContext, account: Account, viewer: Viewer, limit: int = 20
) -> list[Post]:
    """An account's latest posts and boosts known here that `viewer` may see, for its card in
    search results."""
    async with context.sessions() as session:
        rows = await session.scalars(
            select(Post)
            .where(Post.account_id == account.id, visible_to(viewer, hide_muted=False))
            .order_by(col(Post.id).desc())
            .limit(limit)
        )
        return list(rows.all())


def _writer(writers: dict[int, Account], post: Post) -> Account | None:
    """The staff member behind an organisation's post (nobody for a post written by its own account)."""
    writer = writers.get(post.written_by_user_id) if post.written_by_user_id else None
    return writer if writer is not None and writer.id != post.account_id else None
