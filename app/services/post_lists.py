"""Lists of posts a viewer may see: a thread, a hashtag, the local timeline, an account's posts, feeds.

Each adds the one visibility rule (app.services.visibility.visible_to) to its query, so nothing
is dropped after loading; the read model (app.services.read_model) turns the rows into views.
The web pages use them now, the client API's timelines will.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import not_, or_
from sqlmodel import col, select

from app.context import AppContext
from app.models import Account, Post, PostTag, Tag, Visibility
from app.services.moderation import on_domain
from app.services.viewer import Viewer
from app.services.visibility import visible_to

THREAD_DEPTH = 40
THREAD_REPLIES = 200


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


async def visible_post_ids(context: AppContext, viewer: Viewer, post_ids: Sequence[int]) -> set[int]:
    """Which of these posts the viewer may see in a list (the SQL form of the rule, mutes included)."""
    if not post_ids:
        return set()
    async with context.sessions() as session:
        found = await session.scalars(
            select(col(Post.id)).where(col(Post.id).in_(list(post_ids)), visible_to(viewer))
        )
        return set(found.all())


async def posts_by_id(context: AppContext, viewer: Viewer, post_ids: Sequence[int]) -> list[Post]:
    """These posts, those the viewer may see in a list, in the order given."""
    if not post_ids:
        return []
    async with context.sessions() as session:
        found = {
            post.id: post
            for post in (
                await session.scalars(
                    select(Post).where(col(Post.id).in_(list(post_ids)), visible_to(viewer))
                )
            ).all()
        }
    return [found[post_id] for post_id in post_ids if post_id in found]
