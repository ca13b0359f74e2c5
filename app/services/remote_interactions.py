"""What remote accounts do to posts: boosts, likes and emoji reactions, and taking them back.

Likes and reactions are kept for local posts only (the counts of remote posts are their server's
business); boosts are kept when they concern local accounts, as a post whose `reblog_of_id`
points at the boosted one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.context import AppContext
from app.models import Account, Favourite, NotificationType, Post, Reaction, Visibility
from app.models.base import new_id, utcnow
from app.services.notifications import notify
from app.services.remote_posts import local_follower_ids
from app.services.timelines import add_to_home, hidden_from, insert_ignoring_duplicates


class RemoteInteractionService:
    def __init__(self, context: AppContext) -> None:
        self.context = context

    async def boost(
        self,
        announcer: Account,
        original: Post,
        *,
        uri: str,
        published: datetime | None,
        to: list[str],
        cc: list[str],
        visibility: Visibility,
    ) -> Post | None:
        """Keep a boost (once); None when the boosted post may not be boosted."""
        if (
            original.visibility in (Visibility.FOLLOWERS, Visibility.DIRECT)
            or original.reblog_of_id is not None
        ):
            return None
        async with self.context.sessions() as session:
            existing = await session.scalar(select(Post).where(col(Post.uri) == uri))
            if existing is not None:
                return existing
            now = utcnow()
            boost = Post(
                uri=uri,
                account_id=announcer.id,
                local=False,
                object_type="Announce",
                visibility=visibility,
                reblog_of_id=original.id,
                to=to,
                cc=cc,
                published_at=min(published or now, now),
            )
            session.add(boost)
            await session.flush()
            await session.execute(
                update(Post)
                .where(col(Post.id) == original.id)
                .values(reblogs_count=col(Post.reblogs_count) + 1)
            )
            hidden = await hidden_from(session, announcer)
            if visibility != Visibility.DIRECT:
                readers = set(await local_follower_ids(session, announcer)) - hidden
                await add_to_home(session, readers, boost.id)
            if original.local:
                author = await session.get(Account, original.account_id)
                if author is not None and author.id not in hidden:
                    await notify(
                        session,
                        account=author,
                        from_account=announcer,
                        kind=NotificationType.REBLOG,
                        post_id=original.id,
                    )
            await session.commit()
            return boost

    async def unboost(self, announcer: Account, uri: str) -> bool:
        async with self.context.sessions() as session:
            boost = await session.scalar(
                select(Post).where(
                    col(Post.uri) == uri,
                    col(Post.account_id) == announcer.id,
                    col(Post.reblog_of_id).is_not(None),
                )
            )
            if boost is None:
                return False
            await session.execute(
                update(Post)
                .where(col(Post.id) == boost.reblog_of_id, col(Post.reblogs_count) > 0)
                .values(reblogs_count=col(Post.reblogs_count) - 1)
            )
            await session.execute(delete(Post).where(col(Post.id) == boost.id))
            await session.commit()
            return True

    async def like(self, account: Account, post: Post, uri: str | None) -> bool:
        if not post.local:
            return False
        async with self.context.sessions() as session:
            result = await session.execute(
                insert_ignoring_duplicates(
                    session,
                    Favourite,
                    [
                        {
                            "id": new_id(),
                            "account_id": account.id,
                            "post_id": post.id,
                            "uri": uri,
                            "created_at": utcnow(),
                        }
                    ],
                )
            )
            if not _inserted(result):
                return False
            await session.execute(
                update(Post)
                .where(col(Post.id) == post.id)
                .values(favourites_count=col(Post.favourites_count) + 1)
            )
            await self._notify_author(session, post, account, NotificationType.FAVOURITE)
            await session.commit()
            return True

    async def unlike(self, account: Account, *, uri: str | None, post_uri: str | None) -> bool:
        async with self.context.sessions() as session:
            favourite = await self._find(session, Favourite, account, uri, post_uri)
            if favourite is None:
                return False
            await session.execute(delete(Favourite).where(col(Favourite.id) == favourite.id))
            await session.execute(
                update(Post)
                .where(col(Post.id) == favourite.post_id, col(Post.favourites_count) > 0)
                .values(favourites_count=col(Post.favourites_count) - 1)
            )
            await session.commit()
            return True

    async def react(
        self, account: Account, post: Post, *, content: str, emoji_url: str | None, uri: str | None
    ) -> bool:
        if not post.local:
            return False
        async with self.context.sessions() as session:
            result = await session.execute(
                insert_ignoring_duplicates(
                    session,
                    Reaction,
                    [
                        {
                            "id": new_id(),
                            "account_id": account.id,
                            "post_id": post.id,
                            "content": content,
                            "emoji_url": emoji_url,
                            "uri": uri,
                            "created_at": utcnow(),
                        }
                    ],
                )
            )
            if not _inserted(result):
                return False
            await self._notify_author(session, post, account, NotificationType.REACTION, detail=content)
            await session.commit()
            return True

    async def unreact(
        self, account: Account, *, uri: str | None, post_uri: str | None, content: str | None
    ) -> bool:
        async with self.context.sessions() as session:
            reaction = await self._find(session, Reaction, account, uri, post_uri, content=content)
            if reaction is None:
                return False
            await session.execute(delete(Reaction).where(col(Reaction.id) == reaction.id))
            await session.commit()
            return True

    async def _find(
        self,
        session: AsyncSession,
        model: type[Favourite] | type[Reaction],
        account: Account,
        uri: str | None,
        post_uri: str | None,
        content: str | None = None,
    ) -> Favourite | Reaction | None:
        """By the activity's own id when we have it, else by (account, post)."""
        table: Any = model
        if uri:
            found = await session.scalar(
                select(table).where(col(table.uri) == uri, col(table.account_id) == account.id)
            )
            if found is not None:
                return found
        if not post_uri:
            return None
        query = (
            select(table)
            .join(Post, col(Post.id) == col(table.post_id))
            .where(col(Post.uri) == post_uri, col(table.account_id) == account.id)
        )
        if content is not None and table is Reaction:
            query = query.where(col(Reaction.content) == content)
        return await session.scalar(query.limit(1))

    async def _notify_author(
        self,
        session: AsyncSession,
        post: Post,
        actor: Account,
        kind: NotificationType,
        detail: str | None = None,
    ) -> None:
        author = await session.get(Account, post.account_id)
        if author is None or author.id in await hidden_from(session, actor):
            return
        await notify(session, account=author, from_account=actor, kind=kind, post_id=post.id, detail=detail)


def _inserted(result: object) -> bool:
    return bool(getattr(result, "rowcount", 0))
