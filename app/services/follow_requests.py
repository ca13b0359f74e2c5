"""Follows that cross the boundary inwards: remote accounts following local ones, and the answers
remote servers give to our own Follows.

A Follow of a local account is accepted at once (an Accept embedding the original Follow, same id,
goes back to the follower's inbox), or kept pending when the account approves followers by hand;
`approve` and `reject` answer pending requests. Every answer is queued in the same transaction
as the change it announces (transactional outbox) and the worker is woken after the commit.
"""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.context import AppContext
from app.federation.publisher import Publisher
from app.models import Account, AccountBlock, Follow, FollowState, Notification, NotificationType
from app.models.base import utcnow
from app.services import events
from app.services.accounts import INSTANCE_ACTOR_USERNAME
from app.services.moderation import is_silenced
from app.services.notifications import notify
from app.services.viewer import Viewer


class FollowRequestService:
    def __init__(self, context: AppContext, viewer: Viewer | None = None) -> None:
        """`viewer` is who asks (None: the server itself or the command line); the service checks
        that it may act as the account each call names."""
        self.context = context
        self.viewer = viewer if viewer is not None else Viewer.system()
        self.publisher = Publisher(context)

    async def receive_follow(
        self, follower: Account, followee: Account, follow_uri: str | None
    ) -> FollowState | None:
        """A remote Follow of a local account: the resulting state, or None when refused (a Reject is sent)."""
        if followee.domain is not None:
            return None
        if await self._refuses(follower, followee):
            async with self.context.sessions() as session:
                await self.publisher.follow_answered(session, "Reject", followee, follower, follow_uri)
                await session.commit()
            return None
        for attempt in range(2):
            async with self.context.sessions() as session:
                try:
                    state = await self._record_follow(session, follower, followee, follow_uri)
                    await session.commit()
                except IntegrityError:
                    # The same follow being stored by a concurrent delivery; look again.
                    await session.rollback()
                    if attempt:
                        raise
                    continue
            return state
        return None

    async def _record_follow(
        self, session: AsyncSession, follower: Account, followee: Account, follow_uri: str | None
    ) -> FollowState:
        follow = await self._find(session, follower, followee)
        if follow is not None:
            # A repeated Follow: the follower's server has lost track, so tell it again.
            follow.uri = follow_uri or follow.uri
            session.add(follow)
            if follow.state == FollowState.ACCEPTED:
                await self.publisher.follow_answered(session, "Accept", followee, follower, follow.uri)
            return FollowState(follow.state)
        # A silenced domain's accounts may follow only with the account's approval, as on Mastodon.
        pending = followee.manually_approves_followers or await is_silenced(self.context, follower)
        session.add(
            Follow(
                follower_id=follower.id,
                followee_id=followee.id,
                state=FollowState.PENDING if pending else FollowState.ACCEPTED,
                uri=follow_uri,
                accepted_at=None if pending else utcnow(),
            )
        )
        kind = NotificationType.FOLLOW_REQUEST if pending else NotificationType.FOLLOW
        await notify(session, account=followee, from_account=follower, kind=kind)
        if not pending:
            events.announce(session, [events.FollowsChanged((follower.id, followee.id))])
        if not pending:
            await self.publisher.follow_answered(session, "Accept", followee, follower, follow_uri)
        await session.flush()
        return FollowState.PENDING if pending else FollowState.ACCEPTED

    async def _refuses(self, follower: Account, followee: Account) -> bool:
        if followee.username == INSTANCE_ACTOR_USERNAME or followee.deleted_at or followee.suspended_at:
            return True
        async with self.context.sessions() as session:
            blocked = await session.scalar(
                select(AccountBlock.id).where(
                    col(AccountBlock.account_id) == followee.id,
                    col(AccountBlock.target_account_id) == follower.id,
                )
            )
        return blocked is not None

    async def pending_requests(self, followee: Account) -> list[Account]:
        async with self.context.sessions() as session:
            rows = await session.scalars(
                select(Account)
                .join(Follow, col(Follow.follower_id) == col(Account.id))
                .where(col(Follow.followee_id) == followee.id, col(Follow.state) == FollowState.PENDING)
                .order_by(col(Follow.id))
            )
            return list(rows.all())

    async def approve(self, followee: Account, follower: Account) -> bool:
        """Accept a pending follow request (the web UI calls this); False if there was none."""
        self.viewer.require_act_as(followee)
        async with self.context.sessions() as session:
            follow = await self._find(session, follower, followee)
            if follow is None or follow.state != FollowState.PENDING:
                return False
            follow.state = FollowState.ACCEPTED
            follow.accepted_at = utcnow()
            session.add(follow)
            events.announce(session, [events.FollowsChanged((follower.id, followee.id))])
            if follower.domain is not None:
                await self.publisher.follow_answered(session, "Accept", followee, follower, follow.uri)
            await session.commit()
        return True

    async def reject(self, followee: Account, follower: Account) -> bool:
        """Refuse a follow request, or remove an accepted follower; False if there was neither."""
        self.viewer.require_act_as(followee)
        async with self.context.sessions() as session:
            follow = await self._find(session, follower, followee)
            if follow is None:
                return False
            await session.execute(delete(Follow).where(col(Follow.id) == follow.id))
            events.announce(session, [events.FollowsChanged((follower.id, followee.id))])
            if follower.domain is not None:
                await self.publisher.follow_answered(session, "Reject", followee, follower, follow.uri)
            await session.commit()
        return True

    async def undo_follow(
        self, follower: Account, *, followee_uri: str | None, follow_uri: str | None
    ) -> bool:
        """The remote follower unfollowed (Undo Follow)."""
        async with self.context.sessions() as session:
            query = select(Follow).where(col(Follow.follower_id) == follower.id)
            follow = None
            if follow_uri:
                follow = await session.scalar(query.where(col(Follow.uri) == follow_uri))
            if follow is None and followee_uri:
                follow = await session.scalar(
                    query.join(Account, col(Account.id) == col(Follow.followee_id)).where(
                        col(Account.uri) == followee_uri
                    )
                )
            if follow is None:
                return False
            await session.execute(delete(Follow).where(col(Follow.id) == follow.id))
            events.announce(session, [events.FollowsChanged((follower.id, follow.followee_id))])
            await session.execute(
                delete(Notification).where(
                    col(Notification.account_id) == follow.followee_id,
                    col(Notification.from_account_id) == follower.id,
                    col(Notification.type).in_([NotificationType.FOLLOW, NotificationType.FOLLOW_REQUEST]),
                )
            )
            await session.commit()
            return True

    async def our_follow_answered(
        self, followee: Account, *, accepted: bool, follow_uri: str | None, follower_uri: str | None
    ) -> bool:
        """A remote account accepted or rejected a Follow one of our accounts sent it.

        Matched by the Follow's id when the answer embeds it, else by who follows whom.
        """
        async with self.context.sessions() as session:
            query = (
                select(Follow)
                .join(Account, col(Account.id) == col(Follow.follower_id))
                .where(col(Follow.followee_id) == followee.id, col(Account.domain).is_(None))
            )
            follow = None
            if follow_uri:
                follow = await session.scalar(query.where(col(Follow.uri) == follow_uri))
            if follow is None and follower_uri:
                follow = await session.scalar(query.where(col(Account.uri) == follower_uri))
            if follow is None:
                return False
            events.announce(session, [events.FollowsChanged((follow.follower_id, followee.id))])
            if accepted:
                if follow.state == FollowState.ACCEPTED:
                    return True
                follow.state = FollowState.ACCEPTED
                follow.accepted_at = utcnow()
                session.add(follow)
            else:
                await session.execute(delete(Follow).where(col(Follow.id) == follow.id))
            await session.commit()
            return True

    async def _find(self, session: AsyncSession, follower: Account, followee: Account) -> Follow | None:
        return await session.scalar(
            select(Follow).where(
                col(Follow.follower_id) == follower.id, col(Follow.followee_id) == followee.id
            )
        )
