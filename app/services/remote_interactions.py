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
from app.services import events
from app.services.batch_writes import FavouriteRows, PostRows, new_row
from app.services.moderation import is_silenced
from app.services.notifications import notification_row, notify, sender_reach
from app.services.read_cache import ReadCache
from app.services.remote_posts import RemotePostService
from app.services.timelines import insert_ignoring_duplicates


class RemoteInteractionService:
    def __init__(self, context: AppContext, cache: ReadCache | None = None) -> None:
        self.context = context
        self.posts = RemotePostService(context, cache)

    async def plan_boost(
        self,
        announcer: Account,
        original: Post,
        *,
        uri: str,
        published: datetime | None,
        to: list[str],
        cc: list[str],
        visibility: Visibility,
    ) -> PostRows | None:
        """The rows of a boost (see WriteBatch); None when the boosted post may not be boosted."""
        if (
            original.visibility in (Visibility.FOLLOWERS, Visibility.DIRECT)
            or original.reblog_of_id is not None
        ):
            return None
        now = utcnow()
        boost = new_row(
            Post,
            uri=uri,
            account_id=announcer.id,
            local=False,
            object_type="Announce",
            visibility=visibility,
            reblog_of_id=original.id,
            to=to,
            cc=cc,
            published_at=min(published or now, now),
            created_at=now,
        )
        hidden = await self.posts.hidden(announcer)
        rows = PostRows(post=boost, reblog_of_id=original.id)
        if visibility != Visibility.DIRECT:
            readers = await self.posts.boost_followers(announcer) - hidden
            if readers and not original.local:
                readers = await self._boost_audience(original, readers)
            rows.readers = sorted(readers)
        if original.local and (await self.posts.reach(announcer)).reaches(original.account_id):
            rows.notifications.append(
                notification_row(original.account_id, announcer.id, NotificationType.REBLOG, original.id)
            )
        return rows

    async def _boost_audience(self, original: Post, readers: frozenset[int]) -> frozenset[int]:
        """A silenced domain's post reaches through a boost only those following its author
        (timelines.boost_audience, here through the inbox worker's cache)."""
        if not (await self.context.domain_policy.current()).silenced_domains:
            return readers
        author = await self.posts.account(original.account_id)
        if author is None or not await is_silenced(self.context, author):
            return readers
        return readers & await self.posts.followers(author)

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
            events.announce(session, [events.PostDeleted(boost.id, boost.account_id)])
            await session.commit()
            return True

    async def plan_like(self, account: Account, post: Post, uri: str | None) -> FavouriteRows | None:
        """The rows of a Like (see WriteBatch); None unless the post is ours."""
        if not post.local:
            return None
        favourite = new_row(Favourite, account_id=account.id, post_id=post.id, uri=uri, created_at=utcnow())
        notification = None
        if (await self.posts.reach(account)).reaches(post.account_id):
            notification = notification_row(post.account_id, account.id, NotificationType.FAVOURITE, post.id)
        return FavouriteRows(favourite=favourite, notification=notification)

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
        if author is None or not (await sender_reach(session, self.context, actor)).reaches(author.id):
            return
        await notify(session, account=author, from_account=actor, kind=kind, post_id=post.id, detail=detail)


def _inserted(result: object) -> bool:
    return bool(getattr(result, "rowcount", 0))
