"""Following and unfollowing accounts, here or on other servers, by handle or by URL.

A follow of a remote account is pending until its server answers with an Accept (handled by the
inbox); the Follow activity is committed with the pending row, so it is sent even if the process
stops right after.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete
from sqlmodel import col, select

from app.activitypub.resolver import ActorResolver, ResolveError, parse_handle
from app.context import AppContext
from app.federation.publisher import Publisher
from app.models import Account, AccountBlock, Follow, FollowState, NotificationType, Post, TimelineEntry
from app.models.base import new_id, utcnow
from app.services import events
from app.services.errors import Invalid
from app.services.notifications import notify
from app.services.viewer import Viewer


class FollowingError(Invalid):
    """A follow or unfollow that cannot be carried out; the message is meant for the person asking."""


@dataclass(frozen=True)
class FollowOptions:
    """What the follower chose for this follow (Mastodon's follow parameters); None keeps the
    stored choice when the follow exists already."""

    show_reblogs: bool | None = None
    notify: bool | None = None
    languages: list[str] | None = None

    def apply(self, follow: Follow) -> bool:
        """Store the choices on `follow`; whether anything changed."""
        changed = False
        for name in ("show_reblogs", "notify", "languages"):
            value = getattr(self, name)
            if value is not None and getattr(follow, name) != value:
                setattr(follow, name, value)
                changed = True
        return changed


MAX_FOLLOW_LANGUAGES = 20


@dataclass(frozen=True)
class FollowOutcome:
    follow: Follow
    target: Account
    # False when the follow already existed (a pending one has its Follow sent again).
    created: bool

    @property
    def pending(self) -> bool:
        return self.follow.state == FollowState.PENDING


class FollowingService:
    def __init__(self, context: AppContext, viewer: Viewer | None = None) -> None:
        """`viewer` is who asks (None: the server itself or the command line); the service checks
        that it may act as the account each call names."""
        self.context = context
        self.viewer = viewer if viewer is not None else Viewer.system()
        self.publisher = Publisher(context)

    async def follow(
        self, follower: Account, target: str, options: FollowOptions | None = None
    ) -> FollowOutcome:
        """Follow the account a handle or URL names (looked up, or fetched from its server)."""
        self.viewer.require_act_as(follower)
        try:
            followee = await ActorResolver(self.context).resolve(target)
        except ResolveError as error:
            raise FollowingError(str(error)) from None
        return await self.follow_account(follower, followee, options)

    async def follow_account(
        self, follower: Account, followee: Account, options: FollowOptions | None = None
    ) -> FollowOutcome:
        """Follow an account already stored here (the client API names accounts by id)."""
        self.viewer.require_act_as(follower)
        options = options or FollowOptions()
        if options.languages is not None and len(options.languages) > MAX_FOLLOW_LANGUAGES:
            raise FollowingError(f"languages: at most {MAX_FOLLOW_LANGUAGES}")
        if followee.id == follower.id:
            raise FollowingError("an account cannot follow itself")
        if (
            followee.gone_at is not None
            or followee.deleted_at is not None
            or followee.suspended_at is not None
        ):
            raise FollowingError(f"@{followee.acct} no longer exists")
        remote = followee.domain is not None
        async with self.context.sessions() as session:
            if await session.scalar(
                select(AccountBlock.id).where(
                    (
                        (col(AccountBlock.account_id) == follower.id)
                        & (col(AccountBlock.target_account_id) == followee.id)
                    )
                    | (
                        (col(AccountBlock.account_id) == followee.id)
                        & (col(AccountBlock.target_account_id) == follower.id)
                    )
                )
            ):
                # As on Mastodon: neither side of a block can follow the other.
                raise FollowingError("a block stands between these accounts")
            existing = await session.scalar(
                select(Follow).where(Follow.follower_id == follower.id, Follow.followee_id == followee.id)
            )
            if existing is not None:
                changed = options.apply(existing)
                if changed:
                    session.add(existing)
                if existing.state == FollowState.PENDING and remote:
                    # Sent again, with the same id: the first may have been lost, or refused before a fix.
                    await self.publisher.followed(session, follower, followee, existing)
                if changed or (existing.state == FollowState.PENDING and remote):
                    await session.commit()
                return FollowOutcome(existing, followee, created=False)
            follow_id = new_id()
            follow = Follow(
                id=follow_id,
                follower_id=follower.id,
                followee_id=followee.id,
                uri=self.context.urls.activity(follower.username, follow_id),
            )
            options.apply(follow)
            if not remote and not followee.manually_approves_followers:
                follow.state = FollowState.ACCEPTED
                follow.accepted_at = utcnow()
            session.add(follow)
            await session.flush()
            if remote:
                await self.publisher.followed(session, follower, followee, follow)
            else:
                pending = follow.state == FollowState.PENDING
                kind = NotificationType.FOLLOW_REQUEST if pending else NotificationType.FOLLOW
                await notify(session, account=followee, from_account=follower, kind=kind)
                if not pending:
                    events.announce(session, [events.FollowsChanged((follower.id, followee.id))])
            await session.commit()
        return FollowOutcome(follow, followee, created=True)

    async def unfollow(self, follower: Account, target: str) -> Account | None:
        """Stop following `target`; returns the account unfollowed, or None when it was not followed."""
        self.viewer.require_act_as(follower)
        followee = await self._known_account(target)
        if followee is None:
            return None
        return followee if await self.unfollow_account(follower, followee) else None

    async def unfollow_account(self, follower: Account, followee: Account) -> bool:
        """Stop following (or cancel the request to follow) an account stored here; False when
        there was no follow."""
        self.viewer.require_act_as(follower)
        async with self.context.sessions() as session:
            follow = await session.scalar(
                select(Follow).where(Follow.follower_id == follower.id, Follow.followee_id == followee.id)
            )
            if follow is None:
                return False
            if followee.domain is not None:
                await self.publisher.unfollowed(session, follower, followee, follow)
            await session.execute(delete(Follow).where(col(Follow.id) == follow.id))
            events.announce(session, [events.FollowsChanged((follower.id, followee.id))])
            # Their posts leave the home timeline, as on Mastodon.
            await session.execute(
                delete(TimelineEntry).where(
                    col(TimelineEntry.account_id) == follower.id,
                    col(TimelineEntry.post_id).in_(
                        select(Post.id).where(col(Post.account_id) == followee.id)
                    ),
                )
            )
            await session.commit()
        return True

    async def _known_account(self, target: str) -> Account | None:
        """The account `target` names, from what is stored first: unfollowing needs no network."""
        value = target.strip()
        resolver = ActorResolver(self.context)
        if value.startswith(("http://", "https://")):
            async with self.context.sessions() as session:
                found = await session.scalar(
                    select(Account).where((col(Account.uri) == value) | (col(Account.url) == value)).limit(1)
                )
            if found is not None:
                return found
        else:
            try:
                username, domain = parse_handle(value)
            except ResolveError as error:
                raise FollowingError(str(error)) from None
            settings = self.context.settings
            local = domain in (settings.local_domain, settings.web_domain)
            async with self.context.sessions() as session:
                found = await session.scalar(
                    select(Account)
                    .where(
                        col(Account.username).ilike(username),
                        col(Account.domain).is_(None) if local else col(Account.domain) == domain,
                    )
                    .order_by(col(Account.fetched_at).desc())
                    .limit(1)
                )
            if found is not None:
                return found
        try:
            return await resolver.resolve(value)
        except ResolveError as error:
            raise FollowingError(str(error)) from None
