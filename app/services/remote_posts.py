"""Posts from other servers: kept when they matter here, then edited, deleted, voted on and pinned.

A remote post matters when a local account follows its author, is mentioned or addressed in it,
or is being replied to. Keeping it means the post with its mentions of local accounts, hashtags,
media metadata and poll; a place in the home timeline of each local follower (of each addressed
local account for a direct message); and mention and reply notifications.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, func, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import col, select

from app.activitypub.parsers import NoteData, is_public
from app.context import AppContext
from app.models import (
    Account,
    Follow,
    FollowState,
    MediaAttachment,
    Mention,
    NotificationType,
    Pin,
    Poll,
    PollVote,
    Post,
    PostEdit,
    PostTag,
    Tag,
    Visibility,
)
from app.models.base import new_id, utcnow
from app.services.notifications import notify
from app.services.timelines import add_to_home, hidden_from, insert_ignoring_duplicates

# A post dated further ahead than this is taken to have been written now (clocks drift).
MAX_FUTURE_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class Relevance:
    followed: bool
    # Local accounts mentioned or addressed in the post.
    local_recipients: list[Account]
    parent: Post | None

    @property
    def relevant(self) -> bool:
        return self.followed or bool(self.local_recipients) or (self.parent is not None and self.parent.local)


async def local_follower_ids(session: AsyncSession, account: Account) -> list[int]:
    rows = await session.scalars(
        select(Follow.follower_id)
        .join(Account, col(Account.id) == col(Follow.follower_id))
        .where(
            col(Follow.followee_id) == account.id,
            col(Follow.state) == FollowState.ACCEPTED,
            col(Account.domain).is_(None),
        )
    )
    return list(rows.all())


class RemotePostService:
    def __init__(self, context: AppContext) -> None:
        self.context = context

    async def find(self, uri: str) -> Post | None:
        async with self.context.sessions() as session:
            return await session.scalar(select(Post).where(col(Post.uri) == uri))

    async def has_local_followers(self, account: Account) -> bool:
        async with self.context.sessions() as session:
            return bool(await local_follower_ids(session, account))

    async def relevance(self, note: NoteData, author: Account) -> Relevance:
        async with self.context.sessions() as session:
            return await self._relevance(session, note, author)

    async def _relevance(self, session: AsyncSession, note: NoteData, author: Account) -> Relevance:
        followed = bool(await local_follower_ids(session, author))
        recipients = await self._local_recipients(session, note)
        parent = None
        if note.in_reply_to:
            parent = await session.scalar(select(Post).where(col(Post.uri) == note.in_reply_to))
        return Relevance(followed=followed, local_recipients=recipients, parent=parent)

    async def _local_recipients(self, session: AsyncSession, note: NoteData) -> list[Account]:
        # Only our own URLs can name local accounts; everything else is skipped before the query.
        prefix = self.context.urls.base + "/"
        hrefs = {mention.href for mention in note.mentions}
        candidates = {
            uri for uri in (*hrefs, *note.to, *note.cc) if uri.startswith(prefix) and not is_public(uri)
        }
        if not candidates:
            return []
        rows = await session.scalars(
            select(Account).where(
                col(Account.domain).is_(None),
                col(Account.deleted_at).is_(None),
                col(Account.uri).in_(candidates) | col(Account.url).in_(candidates & hrefs),
            )
        )
        return list(rows.all())

    async def store(
        self, note: NoteData, author: Account, visibility: Visibility, *, delivered: bool = True
    ) -> Post:
        """Keep `note` (once; a second call returns the post kept the first time).

        `delivered` is False for posts fetched only to complete a thread: they are kept but put in
        no timeline and notify nobody, as they were never sent to us.
        """
        for attempt in range(2):
            async with self.context.sessions() as session:
                existing = await session.scalar(select(Post).where(col(Post.uri) == note.uri))
                if existing is not None:
                    return existing
                try:
                    post = await self._insert(session, note, author, visibility, delivered=delivered)
                    await session.commit()
                    return post
                except IntegrityError:
                    # The same post arrived by another route at the same moment (a boost and the
                    # Create, say); the other transaction's copy is the one to use.
                    await session.rollback()
                    if attempt:
                        raise
        raise AssertionError("unreachable")

    async def _insert(
        self,
        session: AsyncSession,
        note: NoteData,
        author: Account,
        visibility: Visibility,
        *,
        delivered: bool,
    ) -> Post:
        relevance = await self._relevance(session, note, author)
        parent = relevance.parent
        now = utcnow()
        published = note.published if note.published and note.published <= now + MAX_FUTURE_SKEW else now
        edited = note.updated if note.updated and note.updated > published else None
        post = Post(
            uri=note.uri,
            url=note.url if note.url and len(note.url) <= 2048 else None,
            account_id=author.id,
            local=False,
            object_type=note.object_type,
            visibility=visibility,
            content_html=note.content_html,
            summary=note.summary,
            sensitive=note.sensitive,
            language=note.language,
            in_reply_to_uri=note.in_reply_to[:2048] if note.in_reply_to else None,
            in_reply_to_id=parent.id if parent else None,
            in_reply_to_account_id=parent.account_id if parent else None,
            conversation_uri=note.conversation,
            to=note.to,
            cc=note.cc,
            emojis=note.emojis,
            published_at=min(published, now),
            edited_at=edited,
        )
        session.add(post)
        await session.flush()
        for account in relevance.local_recipients:
            session.add(Mention(post_id=post.id, account_id=account.id))
        await self._set_tags(session, post, note.hashtags)
        self._add_media(session, post, author, note)
        if note.poll is not None:
            session.add(
                Poll(
                    post_id=post.id,
                    options=[{"title": title, "votes": votes} for title, votes in note.poll.options],
                    multiple=note.poll.multiple,
                    expires_at=note.poll.expires_at,
                    voters_count=note.poll.voters_count or 0,
                    votes_count=sum(votes for _title, votes in note.poll.options),
                )
            )
        if parent is not None:
            await session.execute(
                update(Post)
                .where(col(Post.id) == parent.id)
                .values(replies_count=col(Post.replies_count) + 1)
            )
        if not delivered:
            return post

        hidden = await hidden_from(session, author)
        readers: set[int] = set()
        if visibility == Visibility.DIRECT:
            readers.update(account.id for account in relevance.local_recipients)
        else:
            readers.update(await local_follower_ids(session, author))
        await add_to_home(session, readers - hidden, post.id)

        replied_to = None
        if parent is not None and parent.local:
            replied_to = await session.get(Account, parent.account_id)
            if replied_to is not None and replied_to.id not in hidden:
                await notify(
                    session,
                    account=replied_to,
                    from_account=author,
                    kind=NotificationType.REPLY,
                    post_id=post.id,
                )
        for account in relevance.local_recipients:
            if account.id not in hidden and (replied_to is None or account.id != replied_to.id):
                await notify(
                    session,
                    account=account,
                    from_account=author,
                    kind=NotificationType.MENTION,
                    post_id=post.id,
                )
        return post

    async def _set_tags(self, session: AsyncSession, post: Post, names: list[str]) -> None:
        if not names:
            return
        now = utcnow()
        await session.execute(
            insert_ignoring_duplicates(
                session, Tag, [{"id": new_id(), "name": name, "created_at": now} for name in names]
            )
        )
        tag_ids = (await session.scalars(select(Tag.id).where(col(Tag.name).in_(names)))).all()
        await session.execute(
            insert_ignoring_duplicates(
                session,
                PostTag,
                [{"id": new_id(), "post_id": post.id, "tag_id": tag_id} for tag_id in tag_ids],
            )
        )

    def _add_media(self, session: AsyncSession, post: Post, author: Account, note: NoteData) -> None:
        for position, attachment in enumerate(note.attachments):
            session.add(
                MediaAttachment(
                    post_id=post.id,
                    account_id=author.id,
                    media_type=attachment.media_type,
                    url=attachment.url,
                    remote_url=attachment.url,
                    description=attachment.description,
                    blurhash=attachment.blurhash,
                    width=attachment.width,
                    height=attachment.height,
                    position=position,
                )
            )

    async def edit(self, note: NoteData, author: Account) -> Post | None:
        """Apply an Update: the previous version is kept as a PostEdit. None if the post is not known here."""
        async with self.context.sessions() as session:
            try:
                return await self._edit(session, note, author)
            except (StaleDataError, IntegrityError):
                # Deleted while we were editing it (a Delete processed at the same moment).
                await session.rollback()
                return None

    async def _edit(self, session: AsyncSession, note: NoteData, author: Account) -> Post | None:
        post = await session.scalar(select(Post).where(col(Post.uri) == note.uri))
        if post is None or post.account_id != author.id or post.reblog_of_id is not None:
            return None
        if note.updated and post.edited_at and note.updated <= post.edited_at:
            return post  # an older Update arriving late
        changed = (
            note.content_html != post.content_html
            or note.summary != post.summary
            or note.sensitive != post.sensitive
            or [a.url for a in note.attachments]
            != list(
                (
                    await session.scalars(
                        select(MediaAttachment.url)
                        .where(col(MediaAttachment.post_id) == post.id)
                        .order_by(col(MediaAttachment.position))
                    )
                ).all()
            )
        )
        if changed:
            session.add(
                PostEdit(
                    post_id=post.id,
                    content_html=post.content_html,
                    summary=post.summary,
                    sensitive=post.sensitive,
                    created_at=post.edited_at or post.published_at,
                )
            )
            post.content_html = note.content_html
            post.summary = note.summary
            post.sensitive = note.sensitive
            post.language = note.language or post.language
            post.emojis = note.emojis
            post.edited_at = min(note.updated or utcnow(), utcnow())
            await session.execute(delete(PostTag).where(col(PostTag.post_id) == post.id))
            await self._set_tags(session, post, note.hashtags)
            await session.execute(delete(MediaAttachment).where(col(MediaAttachment.post_id) == post.id))
            self._add_media(session, post, author, note)
            await self._notify_new_mentions(session, post, author, note)
            await self._notify_boosters(session, post, author)
        if note.poll is not None:
            poll = await session.scalar(select(Poll).where(col(Poll.post_id) == post.id))
            if poll is not None:
                # The author's server counts the votes; its numbers replace ours.
                poll.options = [{"title": title, "votes": votes} for title, votes in note.poll.options]
                poll.votes_count = sum(votes for _title, votes in note.poll.options)
                poll.voters_count = note.poll.voters_count or poll.voters_count
                poll.expires_at = note.poll.expires_at
                session.add(poll)
        session.add(post)
        await session.commit()
        return post

    async def _notify_new_mentions(
        self, session: AsyncSession, post: Post, author: Account, note: NoteData
    ) -> None:
        already = set(
            (await session.scalars(select(Mention.account_id).where(col(Mention.post_id) == post.id))).all()
        )
        hidden = await hidden_from(session, author)
        for account in await self._local_recipients(session, note):
            if account.id in already:
                continue
            session.add(Mention(post_id=post.id, account_id=account.id))
            if account.id not in hidden:
                await notify(
                    session,
                    account=account,
                    from_account=author,
                    kind=NotificationType.MENTION,
                    post_id=post.id,
                )

    async def _notify_boosters(self, session: AsyncSession, post: Post, author: Account) -> None:
        boosters = await session.scalars(
            select(Account)
            .join(Post, col(Post.account_id) == col(Account.id))
            .where(col(Post.reblog_of_id) == post.id, col(Account.domain).is_(None))
        )
        for account in boosters.all():
            await notify(
                session, account=account, from_account=author, kind=NotificationType.UPDATE, post_id=post.id
            )

    async def delete(self, uri: str, author: Account) -> bool:
        """Remove a post (or boost) of `author`, with everything hanging off it."""
        async with self.context.sessions() as session:
            post = await session.scalar(select(Post).where(col(Post.uri) == uri))
            if post is None or post.account_id != author.id:
                return False
            if post.in_reply_to_id is not None:
                await _decrement(session, post.in_reply_to_id, "replies_count")
            if post.reblog_of_id is not None:
                await _decrement(session, post.reblog_of_id, "reblogs_count")
            # Mentions, tags, media, polls, likes, boosts of it, timeline entries and notifications
            # go with it (ON DELETE CASCADE); replies keep their text and lose the link.
            await session.execute(delete(Post).where(col(Post.id) == post.id))
            await session.commit()
            return True

    async def record_vote(self, note: NoteData, voter: Account) -> str | None:
        """Count a remote vote on a local poll; the reason it was not counted otherwise."""
        async with self.context.sessions() as session:
            post = await session.scalar(select(Post).where(col(Post.uri) == note.in_reply_to))
            if post is None or not post.local:
                return "the vote is not for a poll of this server"
            # Locked on PostgreSQL so concurrent votes are counted one after the other (SQLite has
            # one writer at a time anyway).
            poll = await session.scalar(select(Poll).where(col(Poll.post_id) == post.id).with_for_update())
            if poll is None:
                return "the post voted on has no poll"
            if poll.expires_at is not None and poll.expires_at <= utcnow():
                return "the poll has ended"
            titles = [str(option.get("title", "")) for option in poll.options]
            if note.name not in titles:
                return f"the poll has no option {note.name!r}"
            choice = titles.index(note.name)
            earlier = set(
                (
                    await session.scalars(
                        select(PollVote.choice).where(
                            col(PollVote.poll_id) == poll.id, col(PollVote.account_id) == voter.id
                        )
                    )
                ).all()
            )
            if choice in earlier or (earlier and not poll.multiple):
                return "already voted"
            session.add(PollVote(poll_id=poll.id, account_id=voter.id, choice=choice, uri=note.uri))
            await session.flush()
            counts = dict(
                (
                    await session.execute(
                        select(PollVote.choice, func.count())
                        .where(col(PollVote.poll_id) == poll.id)
                        .group_by(col(PollVote.choice))
                    )
                ).all()
            )
            voters = await session.scalar(
                select(func.count(func.distinct(PollVote.account_id))).where(col(PollVote.poll_id) == poll.id)
            )
            poll.options = [
                {**option, "votes": int(counts.get(index, 0))} for index, option in enumerate(poll.options)
            ]
            poll.votes_count = int(sum(counts.values()))
            poll.voters_count = int(voters or 0)
            session.add(poll)
            await session.commit()
        return None

    async def pin(self, account: Account, post_uri: str) -> bool:
        async with self.context.sessions() as session:
            post = await session.scalar(select(Post).where(col(Post.uri) == post_uri))
            if post is None or post.account_id != account.id:
                return False
            await session.execute(
                insert_ignoring_duplicates(
                    session,
                    Pin,
                    [{"id": new_id(), "account_id": account.id, "post_id": post.id, "created_at": utcnow()}],
                )
            )
            await session.commit()
            return True

    async def unpin(self, account: Account, post_uri: str) -> bool:
        async with self.context.sessions() as session:
            post_id = await session.scalar(select(Post.id).where(col(Post.uri) == post_uri))
            if post_id is None:
                return False
            result = await session.execute(
                delete(Pin).where(col(Pin.account_id) == account.id, col(Pin.post_id) == post_id)
            )
            await session.commit()
            return bool(getattr(result, "rowcount", 0))


async def _decrement(session: AsyncSession, post_id: int, counter: str) -> None:
    column = getattr(Post, counter)
    await session.execute(
        update(Post).where(col(Post.id) == post_id, column > 0).values({counter: column - 1})
    )
