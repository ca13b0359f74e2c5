"""Bookmarks and muted conversations: what a person keeps or silences for themselves.

Neither is sent to other servers nor seen by anyone else. A bookmark needs a post the account
may see; a muted conversation stops notifications about any post of that thread (app.services.muted_threads).
"""

from __future__ import annotations

from sqlalchemy import and_, delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from app.models import Account, Bookmark, ConversationMute, Post
from app.services.muted_threads import conversation_key
from app.services.paged_lists import PageRequest
from app.services.post_access import PostAccess
from app.services.visibility import visible_to


class PersonalMarks(PostAccess):
    """Bookmark and mute-conversation as an account the viewer may act as, on a post it may see."""

    async def _original(self, account: Account, reference: str | int) -> Post:
        """The post acted on; for a boost, the boosted post (as Mastodon bookmarks and mutes it)."""
        post = await self._visible_post(account, reference)
        if post.reblog_of_id is not None:
            post = await self._visible_post(account, post.reblog_of_id)
        return post

    async def bookmark(self, account: Account, reference: str | int) -> Post:
        post = await self._original(account, reference)
        async with self.context.sessions() as session:
            try:
                session.add(Bookmark(account_id=account.id, post_id=post.id))
                await session.commit()
            except IntegrityError:
                # Already bookmarked: the same answer as the first time.
                await session.rollback()
        return post

    async def unbookmark(self, account: Account, reference: str | int) -> Post:
        post = await self._original(account, reference)
        async with self.context.sessions() as session:
            await session.execute(
                delete(Bookmark).where(
                    col(Bookmark.account_id) == account.id, col(Bookmark.post_id) == post.id
                )
            )
            await session.commit()
        return post

    async def bookmarks(self, account: Account, page: PageRequest) -> tuple[list[Post], list[int]]:
        """The account's bookmarked posts it may still see, newest bookmark first, and the
        bookmarks' ids (what the pages are counted in)."""
        self.viewer.require_act_as(account)
        reader = self._reader(account)
        query = (
            select(Bookmark.id, Post)
            .join(Post, col(Post.id) == col(Bookmark.post_id))
            .where(col(Bookmark.account_id) == account.id, visible_to(reader, hide_muted=False))
        )
        async with self.context.sessions() as session:
            rows = page.newest_first(list((await session.execute(page.apply(query, col(Bookmark.id)))).all()))
        return [post for _, post in rows], [bookmark_id for bookmark_id, _ in rows]

    async def mute_conversation(self, account: Account, reference: str | int) -> Post:
        """No more notifications from the thread of this post (one the account takes part in or sees)."""
        post = await self._original(account, reference)
        async with self.context.sessions() as session:
            try:
                session.add(ConversationMute(account_id=account.id, conversation_uri=conversation_key(post)))
                await session.commit()
            except IntegrityError:
                await session.rollback()
        return post

    async def unmute_conversation(self, account: Account, reference: str | int) -> Post:
        post = await self._original(account, reference)
        async with self.context.sessions() as session:
            await session.execute(
                delete(ConversationMute).where(
                    and_(
                        col(ConversationMute.account_id) == account.id,
                        col(ConversationMute.conversation_uri) == conversation_key(post),
                    )
                )
            )
            await session.commit()
        return post


__all__ = ["PersonalMarks"]
