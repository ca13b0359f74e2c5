"""Direct-message conversations, as Mastodon's /api/v1/conversations lists them.

A conversation is the direct posts the viewer's account wrote or was mentioned in, grouped by
their thread (`conversation_uri`; a post without one stands alone). It is named by its first
post's id, ordered by its last post, unread while its last post is someone else's and newer than
what the account marked read, and hidden once removed until a newer post arrives (as on
Mastodon). Only what the account may see is listed (the visibility rule picks the posts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, func, or_
from sqlalchemy.orm import aliased
from sqlmodel import col, select

from app.context import AppContext
from app.models import Account, ConversationMark, Mention, Post, Visibility
from app.models.base import new_id, utcnow
from app.services.errors import NotFound
from app.services.paged_lists import PageRequest
from app.services.timelines import insert_ignoring_duplicates
from app.services.viewer import Viewer
from app.services.visibility import visible_to

MAX_PARTICIPANTS = 20


@dataclass(frozen=True)
class Conversation:
    id: int
    key: str
    last_post: Post
    unread: bool
    # The other participants (authors and mentioned accounts), never the viewer's account.
    accounts: list[Account]


def _key() -> Any:
    return func.coalesce(Post.conversation_uri, Post.uri)


class ConversationService:
    def __init__(self, context: AppContext, viewer: Viewer) -> None:
        self.context = context
        self.viewer = viewer

    def _me(self) -> Account:
        if self.viewer.account is None:
            raise NotFound("Record not found")
        return self.viewer.account

    def _involving_me(self, me: int) -> Any:
        return and_(
            col(Post.visibility) == Visibility.DIRECT,
            col(Post.reblog_of_id).is_(None),
            or_(
                col(Post.account_id) == me,
                exists().where(col(Mention.post_id) == col(Post.id), col(Mention.account_id) == me),
            ),
            visible_to(self.viewer),
        )

    async def page(self, page: PageRequest) -> list[Conversation]:
        """Conversations newest first, paged by their last post's id."""
        me = self._me().id
        grouped = (
            select(
                _key().label("key"), func.max(Post.id).label("last_id"), func.min(Post.id).label("first_id")
            )
            .where(self._involving_me(me))
            .group_by(_key())
            .subquery()
        )
        query = (
            select(grouped.c.key, grouped.c.last_id, grouped.c.first_id)
            .outerjoin(
                ConversationMark,
                and_(
                    col(ConversationMark.conversation_uri) == grouped.c.key,
                    col(ConversationMark.account_id) == me,
                ),
            )
            # Removed conversations come back with a newer post.
            .where(
                or_(
                    col(ConversationMark.id).is_(None),
                    grouped.c.last_id > col(ConversationMark.removed_up_to_post_id),
                )
            )
        )
        query = page.apply(query, grouped.c.last_id)
        async with self.context.sessions() as session:
            rows = page.newest_first(list((await session.execute(query)).all()))
            return await self._conversations(session, me, [(row[0], row[1], row[2]) for row in rows])

    async def _conversations(
        self, session: Any, me: int, rows: list[tuple[str, int, int]]
    ) -> list[Conversation]:
        if not rows:
            return []
        keys = [key for key, _, _ in rows]
        posts = {
            post.id: post
            for post in (
                await session.scalars(select(Post).where(col(Post.id).in_([last for _, last, _ in rows])))
            ).all()
        }
        marks = {
            mark.conversation_uri: mark
            for mark in (
                await session.scalars(
                    select(ConversationMark).where(
                        col(ConversationMark.account_id) == me,
                        col(ConversationMark.conversation_uri).in_(keys),
                    )
                )
            ).all()
        }
        # Participants: the authors of the conversation's posts and the accounts they mention.
        in_conversation = and_(_key().in_(keys), self._involving_me(me))
        mentions = aliased(Mention)
        authors = (
            await session.execute(select(_key(), Post.account_id).where(in_conversation).distinct())
        ).all()
        mentioned = (
            await session.execute(
                # An alias: the rule's own EXISTS on Mention must not correlate with this join.
                select(_key(), col(mentions.account_id))
                .join(mentions, col(mentions.post_id) == col(Post.id))
                .where(in_conversation)
                .distinct()
            )
        ).all()
        participants: dict[str, list[int]] = {}
        for key, account_id in [*authors, *mentioned]:
            ids = participants.setdefault(key, [])
            if account_id != me and account_id not in ids and len(ids) < MAX_PARTICIPANTS:
                ids.append(account_id)
        wanted = {account_id for ids in participants.values() for account_id in ids}
        accounts = (
            {
                account.id: account
                for account in (
                    await session.scalars(select(Account).where(col(Account.id).in_(wanted)))
                ).all()
            }
            if wanted
            else {}
        )
        found = []
        for key, last_id, first_id in rows:
            last_post = posts.get(last_id)
            if last_post is None:
                continue
            mark = marks.get(key)
            read_up_to = mark.read_up_to_post_id if mark is not None else 0
            found.append(
                Conversation(
                    id=first_id,
                    key=key,
                    last_post=last_post,
                    unread=last_post.account_id != me and last_id > read_up_to,
                    accounts=[accounts[i] for i in participants.get(key, []) if i in accounts],
                )
            )
        return found

    async def get(self, conversation_id: int) -> Conversation:
        """The conversation whose first post is `conversation_id` (not found unless the viewer takes part)."""
        me = self._me().id
        async with self.context.sessions() as session:
            first = await session.scalar(
                select(Post).where(col(Post.id) == conversation_id, self._involving_me(me))
            )
            if first is None:
                raise NotFound("Record not found")
            key = first.conversation_uri or first.uri
            row = (
                await session.execute(
                    select(func.max(Post.id), func.min(Post.id)).where(_key() == key, self._involving_me(me))
                )
            ).one()
            if row[1] != conversation_id:
                raise NotFound("Record not found")
            found = await self._conversations(session, me, [(key, row[0], row[1])])
        if not found:
            raise NotFound("Record not found")
        return found[0]

    async def containing(self, post_id: int) -> Conversation:
        """The viewer's conversation that `post_id` belongs to (the streaming API announces it)."""
        me = self._me().id
        async with self.context.sessions() as session:
            post = await session.scalar(select(Post).where(col(Post.id) == post_id, self._involving_me(me)))
            if post is None:
                raise NotFound("Record not found")
            first = await session.scalar(
                select(func.min(Post.id)).where(
                    _key() == (post.conversation_uri or post.uri), self._involving_me(me)
                )
            )
        return await self.get(int(first or post_id))

    async def mark_read(self, conversation_id: int) -> Conversation:
        conversation = await self.get(conversation_id)
        await self._mark(conversation, read=True)
        return Conversation(
            conversation.id, conversation.key, conversation.last_post, False, conversation.accounts
        )

    async def remove(self, conversation_id: int) -> None:
        await self._mark(await self.get(conversation_id), read=False)

    async def _mark(self, conversation: Conversation, *, read: bool) -> None:
        me = self._me().id
        last_id = conversation.last_post.id
        async with self.context.sessions() as session:
            await session.execute(
                insert_ignoring_duplicates(
                    session,
                    ConversationMark,
                    [
                        {
                            "id": new_id(),
                            "account_id": me,
                            "conversation_uri": conversation.key,
                            "read_up_to_post_id": 0,
                            "removed_up_to_post_id": 0,
                            "updated_at": utcnow(),
                        }
                    ],
                )
            )
            mark = await session.scalar(
                select(ConversationMark).where(
                    col(ConversationMark.account_id) == me,
                    col(ConversationMark.conversation_uri) == conversation.key,
                )
            )
            assert mark is not None
            mark.read_up_to_post_id = max(mark.read_up_to_post_id, last_id)
            if not read:
                mark.removed_up_to_post_id = max(mark.removed_up_to_post_id, last_id)
            mark.updated_at = utcnow()
            session.add(mark)
            await session.commit()


__all__ = ["Conversation", "ConversationService"]
