"""Acting on a post: boost, like, pin, and undoing them. Each is committed with its delivery
(the publisher) in one transaction; a like or boost notifies the author unless the author
blocks or mutes the one acting."""

from __future__ import annotations

from sqlalchemy import delete, func, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.activitypub.addressing import address_post
from app.models import Account, Favourite, NotificationType, Pin, Post, Visibility
from app.models.base import new_id
from app.services import events
from app.services.notifications import notify
from app.services.post_access import PostAccess, PostingError, add_to_timelines
from app.services.timelines import boost_audience, hidden_from, local_follower_ids

MAX_PINS = 5


class PostInteractions(PostAccess):
    """Boost, like and pin as an account the viewer may act as, on a post that account may see."""

    async def boost(self, account: Account, reference: str | int) -> Post:
        """Boost a public or unlisted post; returns the boost (already boosted: the existing one)."""
        original = await self._visible_post(account, reference)
        if original.reblog_of_id is not None:
            raise PostingError("a boost cannot be boosted; boost the original post")
        if original.visibility not in (Visibility.PUBLIC, Visibility.UNLISTED):
            raise PostingError("only public and unlisted posts can be boosted")
        async with self.context.sessions() as session:
            existing = await session.scalar(
                select(Post).where(Post.account_id == account.id, Post.reblog_of_id == original.id)
            )
            if existing is not None:
                return existing
            original_author = await session.get(Account, original.account_id)
            assert original_author is not None
            boost_id = new_id()
            to, cc = address_post(original.visibility, account.followers_url, [original_author.uri])
            boost = Post(
                id=boost_id,
                uri=self.urls.post_activity(account.username, boost_id),
                account_id=account.id,
                local=True,
                visibility=original.visibility,
                reblog_of_id=original.id,
                to=to,
                cc=cc,
            )
            session.add(boost)
            await session.flush()
            followers = await local_follower_ids(session, account, boosts=True)
            audience = await boost_audience(session, self.context, original_author, followers)
            await add_to_timelines(session, boost, account, [account.id, *audience])
            await _notify_unless_hidden(
                session,
                account=original_author,
                from_account=account,
                kind=NotificationType.REBLOG,
                post_id=original.id,
            )
            await session.execute(
                update(Post)
                .where(col(Post.id) == original.id)
                .values(reblogs_count=col(Post.reblogs_count) + 1)
            )
            await self.publisher.boosted(session, boost, account, original, original_author)
            events.announce(session, [events.PostPublished(boost.id, account.id, local=True)])
            await session.commit()
        return boost

    async def unboost(self, account: Account, reference: str | int) -> bool:
        """Withdraw a boost (the Announce is undone); False when there was none."""
        self.viewer.require_act_as(account)
        original = await self._known_post(reference)
        async with self.context.sessions() as session:
            boost = await session.scalar(
                select(Post).where(Post.account_id == account.id, Post.reblog_of_id == original.id)
            )
            if boost is None:
                return False
            original_author = await session.get(Account, original.account_id)
            assert original_author is not None
            await self.publisher.unboosted(session, boost, account, original, original_author)
            await session.execute(delete(Post).where(col(Post.id) == boost.id))
            events.announce(session, [events.PostDeleted(boost.id, account.id)])
            await session.execute(
                update(Post)
                .where(col(Post.id) == original.id, col(Post.reblogs_count) > 0)
                .values(reblogs_count=col(Post.reblogs_count) - 1)
            )
            await session.commit()
        return True

    async def like(self, account: Account, reference: str | int) -> Favourite:
        """Like a post (idempotent); the Like goes to the author's inbox."""
        post = await self._visible_post(account, reference)
        async with self.context.sessions() as session:
            existing = await session.scalar(
                select(Favourite).where(Favourite.account_id == account.id, Favourite.post_id == post.id)
            )
            if existing is not None:
                return existing
            favourite_id = new_id()
            favourite = Favourite(
                id=favourite_id,
                account_id=account.id,
                post_id=post.id,
                uri=f"{account.uri}#likes/{favourite_id}",
            )
            session.add(favourite)
            await session.execute(
                update(Post)
                .where(col(Post.id) == post.id)
                .values(favourites_count=col(Post.favourites_count) + 1)
            )
            author = await session.get(Account, post.account_id)
            assert author is not None and favourite.uri is not None
            await _notify_unless_hidden(
                session,
                account=author,
                from_account=account,
                kind=NotificationType.FAVOURITE,
                post_id=post.id,
            )
            await self.publisher.liked(session, favourite, account, post, author)
            await session.commit()
        return favourite

    async def unlike(self, account: Account, reference: str | int) -> bool:
        self.viewer.require_act_as(account)
        post = await self._known_post(reference)
        async with self.context.sessions() as session:
            favourite = await session.scalar(
                select(Favourite).where(Favourite.account_id == account.id, Favourite.post_id == post.id)
            )
            if favourite is None:
                return False
            author = await session.get(Account, post.account_id)
            assert author is not None
            await self.publisher.unliked(session, favourite, account, post, author)
            await session.execute(delete(Favourite).where(col(Favourite.id) == favourite.id))
            await session.execute(
                update(Post)
                .where(col(Post.id) == post.id, col(Post.favourites_count) > 0)
                .values(favourites_count=col(Post.favourites_count) - 1)
            )
            await session.commit()
        return True

    async def pin(self, account: Account, reference: str | int) -> Pin:
        """Feature one of the account's own posts on its profile (Add to the featured collection)."""
        post = await self._own_post(account, reference)
        if post.visibility == Visibility.DIRECT or post.reblog_of_id is not None:
            raise PostingError(
                "only the account's own public, unlisted or followers-only posts can be pinned"
            )
        async with self.context.sessions() as session:
            existing = await session.scalar(
                select(Pin).where(Pin.account_id == account.id, Pin.post_id == post.id)
            )
            if existing is not None:
                return existing
            count = await session.scalar(
                select(func.count()).select_from(Pin).where(col(Pin.account_id) == account.id)
            )
            if int(count or 0) >= MAX_PINS:
                raise PostingError(f"at most {MAX_PINS} posts can be pinned; unpin one first")
            pin = Pin(account_id=account.id, post_id=post.id)
            session.add(pin)
            await self.publisher.pinned(session, account, post)
            events.announce(session, [events.AccountChanged(account.id)])
            await session.commit()
        return pin

    async def unpin(self, account: Account, reference: str | int) -> bool:
        post = await self._own_post(account, reference)
        async with self.context.sessions() as session:
            removed = await session.execute(
                delete(Pin).where(col(Pin.account_id) == account.id, col(Pin.post_id) == post.id)
            )
            if not getattr(removed, "rowcount", 0):
                return False
            await self.publisher.unpinned(session, account, post)
            events.announce(session, [events.AccountChanged(account.id)])
            await session.commit()
        return True


async def _notify_unless_hidden(
    session: AsyncSession,
    *,
    account: Account,
    from_account: Account,
    kind: NotificationType,
    post_id: int,
) -> None:
    """Notify, unless `account` blocks or mutes `from_account` (or hides its domain)."""
    if account.id in await hidden_from(session, from_account, notifications=True):
        return
    await notify(session, account=account, from_account=from_account, kind=kind, post_id=post_id)
