"""What remote accounts do as accounts: block local ones, report them, move, and delete themselves."""

from __future__ import annotations

from sqlalchemy import delete, func, or_, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.context import AppContext
from app.federation.publisher import Publisher
from app.models import (
    Account,
    AccountBlock,
    AccountMute,
    Favourite,
    Follow,
    FollowState,
    Notification,
    NotificationType,
    Poll,
    PollVote,
    Post,
    Reaction,
    Report,
    Role,
    User,
)
from app.models.base import new_id, utcnow
from app.services import events
from app.services.account_moderation import record_block
from app.services.media import stored_keys_of_posts
from app.services.notifications import notify
from app.services.remote_posts import local_follower_ids


class MoveRefused(Exception):
    """A Move that cannot be followed; the message says why."""


class RemoteAccountService:
    def __init__(self, context: AppContext) -> None:
        self.context = context

    async def blocked_by(self, blocker: Account, target: Account, uri: str | None) -> bool:
        """`blocker` (remote) blocks `target` (local): the follows between them end, in both directions,
        so nothing of the target is delivered to the blocker any more."""
        async with self.context.sessions() as session:
            # Again, after the first time, is fine: a peer may repeat its Block.
            await record_block(session, blocker, target, uri)
            await session.commit()
        return True

    async def unblocked_by(self, blocker: Account, *, uri: str | None, target_uri: str | None) -> bool:
        async with self.context.sessions() as session:
            condition = col(AccountBlock.account_id) == blocker.id
            if uri:
                by_uri = await session.execute(
                    delete(AccountBlock).where(condition, col(AccountBlock.uri) == uri)
                )
                if getattr(by_uri, "rowcount", 0):
                    await session.commit()
                    return True
            if not target_uri:
                return False
            target_id = await session.scalar(select(Account.id).where(col(Account.uri) == target_uri))
            if target_id is None:
                return False
            result = await session.execute(
                delete(AccountBlock).where(condition, col(AccountBlock.target_account_id) == target_id)
            )
            await session.commit()
            return bool(getattr(result, "rowcount", 0))

    async def is_blocked_by(self, remote: Account, local: Account) -> bool:
        """Whether `remote` blocks `local`: then nothing `local` does is delivered to it."""
        async with self.context.sessions() as session:
            found = await session.scalar(
                select(AccountBlock.id).where(
                    col(AccountBlock.account_id) == remote.id, col(AccountBlock.target_account_id) == local.id
                )
            )
        return found is not None

    async def delete_account(self, account: Account) -> None:
        """A remote actor deleted itself: its posts, likes, reactions, votes and follows go; the account row
        stays, marked gone, so that reports about it survive and a replayed Delete changes nothing."""
        if account.domain is None:
            return
        async with self.context.sessions() as session:
            touched = await self._posts_it_counted_on(session, account)
            polls = list(
                (
                    await session.scalars(
                        select(PollVote.poll_id).where(col(PollVote.account_id) == account.id).distinct()
                    )
                ).all()
            )
            await events.announce_deleted_posts(session, col(Post.account_id) == account.id)
            # Its follows, likes and replies leave counts and pages everywhere.
            events.announce(session, [events.PublicContentChanged()])
            # Cached copies of its media and pictures go from the store once this is committed.
            cached_files: list[str | None] = list(
                await stored_keys_of_posts(session, col(Post.account_id) == account.id)
            )
            gone = await session.get(Account, account.id)
            if gone is not None:
                cached_files += [
                    self.context.media.key_of_url(url)
                    for url in (gone.avatar_cached_url, gone.header_cached_url)
                ]
            await session.execute(delete(Post).where(col(Post.account_id) == account.id))
            for model in (Favourite, Reaction, PollVote):
                table: type[Favourite] | type[Reaction] | type[PollVote] = model
                await session.execute(delete(table).where(col(table.account_id) == account.id))
            await session.execute(
                delete(Follow).where(
                    or_(col(Follow.follower_id) == account.id, col(Follow.followee_id) == account.id)
                )
            )
            await session.execute(
                delete(AccountBlock).where(
                    or_(
                        col(AccountBlock.account_id) == account.id,
                        col(AccountBlock.target_account_id) == account.id,
                    )
                )
            )
            await session.execute(delete(AccountMute).where(col(AccountMute.target_account_id) == account.id))
            await session.execute(delete(Notification).where(col(Notification.from_account_id) == account.id))
            await self._recount(session, touched, polls)
            await session.execute(
                update(Account)
                .where(col(Account.id) == account.id)
                .values(
                    gone_at=utcnow(),
                    avatar_cached_url=None,
                    avatar_cached_from=None,
                    header_cached_url=None,
                    header_cached_from=None,
                    pictures_cached_at=None,
                )
            )
            await session.commit()
        await self.context.media.delete(*cached_files)

    async def _posts_it_counted_on(self, session: AsyncSession, account: Account) -> set[int]:
        """Posts of others whose counters include something of `account`'s."""
        touched: set[int] = set()
        touched.update(
            (
                await session.scalars(
                    select(Favourite.post_id).where(col(Favourite.account_id) == account.id)
                )
            ).all()
        )
        for column in (Post.reblog_of_id, Post.in_reply_to_id):
            touched.update(
                value
                for value in (
                    await session.scalars(
                        select(column).where(col(Post.account_id) == account.id, col(column).is_not(None))
                    )
                ).all()
                if value is not None
            )
        return touched

    async def _recount(self, session: AsyncSession, post_ids: set[int], poll_ids: list[int]) -> None:
        for post_id in post_ids:
            favourites = select(func.count()).select_from(Favourite).where(col(Favourite.post_id) == post_id)
            reblogs = select(func.count()).select_from(Post).where(col(Post.reblog_of_id) == post_id)
            replies = select(func.count()).select_from(Post).where(col(Post.in_reply_to_id) == post_id)
            await session.execute(
                update(Post)
                .where(col(Post.id) == post_id)
                .values(
                    favourites_count=favourites.scalar_subquery(),
                    reblogs_count=reblogs.scalar_subquery(),
                    replies_count=replies.scalar_subquery(),
                )
            )
        for poll_id in poll_ids:
            poll = await session.get(Poll, poll_id)
            if poll is None:
                continue
            counts = dict(
                (
                    await session.execute(
                        select(PollVote.choice, func.count())
                        .where(col(PollVote.poll_id) == poll_id)
                        .group_by(col(PollVote.choice))
                    )
                ).all()
            )
            voters = await session.scalar(
                select(func.count(func.distinct(PollVote.account_id))).where(col(PollVote.poll_id) == poll_id)
            )
            poll.options = [
                {**option, "votes": int(counts.get(index, 0))} for index, option in enumerate(poll.options)
            ]
            poll.votes_count = int(sum(counts.values()))
            poll.voters_count = int(voters or 0)
            session.add(poll)

    async def move(self, old: Account, new: Account) -> int:
        """`old` moved to `new`: local followers of old now follow new (a Follow is sent for each, and an
        Undo of the old follow), and are told. Refused unless `new` names `old` in alsoKnownAs."""
        if old.uri not in new.also_known_as:
            raise MoveRefused(f"{new.uri} does not list {old.uri} in alsoKnownAs")
        if new.id == old.id or new.moved_to_uri:
            raise MoveRefused(f"{new.uri} cannot be moved to")
        urls = self.context.urls
        publisher = Publisher(self.context)
        moved = 0
        async with self.context.sessions() as session:
            await session.execute(
                update(Account).where(col(Account.id) == old.id).values(moved_to_uri=new.uri)
            )
            follower_ids = await local_follower_ids(session, old)
            already = set(
                (
                    await session.scalars(
                        select(Follow.follower_id).where(
                            col(Follow.followee_id) == new.id, col(Follow.follower_id).in_(follower_ids)
                        )
                    )
                ).all()
            )
            followers = (
                await session.scalars(select(Account).where(col(Account.id).in_(follower_ids)))
            ).all()
            for follower in followers:
                old_follow = await session.scalar(
                    select(Follow).where(
                        col(Follow.follower_id) == follower.id, col(Follow.followee_id) == old.id
                    )
                )
                if follower.id not in already:
                    follow = Follow(
                        follower_id=follower.id,
                        followee_id=new.id,
                        state=FollowState.PENDING,
                        uri=urls.activity(follower.username, new_id()),
                    )
                    session.add(follow)
                    await publisher.followed(session, follower, new, follow)
                if old_follow is not None:
                    await publisher.unfollowed(session, follower, old, old_follow)
                    await session.execute(delete(Follow).where(col(Follow.id) == old_follow.id))
                await notify(session, account=follower, from_account=old, kind=NotificationType.MOVE)
                moved += 1
            await session.commit()
        return moved

    async def report(
        self, reporter: Account, target: Account, *, post_ids: list[int], comment: str, uri: str | None
    ) -> Report:
        """A Flag: a report for the admins (each is notified), kept once per Flag id."""
        async with self.context.sessions() as session:
            if uri:
                existing = await session.scalar(select(Report).where(col(Report.uri) == uri))
                if existing is not None:
                    return existing
            report = Report(
                reporter_account_id=reporter.id,
                target_account_id=target.id,
                target_uri=target.uri,
                target_handle=target.acct,
                post_ids=post_ids,
                comment=comment,
                uri=uri,
            )
            session.add(report)
            admins = await session.scalars(
                select(Account)
                .join(User, col(User.account_id) == col(Account.id))
                .where(col(User.role) == Role.ADMIN, col(User.disabled_at).is_(None))
            )
            for admin in admins.all():
                await notify(
                    session,
                    account=admin,
                    from_account=reporter,
                    kind=NotificationType.REPORT,
                    detail=str(report.id),
                )
            await session.commit()
            return report
