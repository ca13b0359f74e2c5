"""What staff do about single remote accounts: block, mute, hide a domain for themselves, report.

A block is a `Block` activity to the account's server and ends follows both ways, as on
Mastodon. A report lands in the same queue inbound `Flag`s do; forwarded, it goes to the
reported account's server as a `Flag` from the instance actor, so no staff member is named.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.context import AppContext
from app.federation.publisher import Publisher
from app.models import (
    Account,
    AccountBlock,
    AccountMute,
    AuditLogEntry,
    Follow,
    Post,
    Report,
    Role,
    User,
    UserDomainBlock,
)
from app.models.base import new_id, utcnow
from app.services import events
from app.services.accounts import AccountService
from app.services.domain_blocks import normalize_domain
from app.services.errors import Forbidden, Invalid
from app.services.instance import InstanceService
from app.services.timelines import insert_ignoring_duplicates
from app.services.viewer import Viewer

MAX_REPORT_COMMENT = 1000
# Mastodon's report categories, which apps offer to choose from.
REPORT_CATEGORIES = ("spam", "legal", "violation", "other")
# Mastodon offers mutes of up to a week in its menus; a year bounds what an app may send.
MAX_MUTE_SECONDS = 366 * 24 * 3600


class ModerationError(Invalid):
    """Refused as asked; the message says why."""


async def record_block(session: AsyncSession, blocker: Account, target: Account, uri: str | None) -> bool:
    """`blocker` blocks `target` (either may be remote), in the caller's transaction: the follows
    between them end in both directions. False when the block was there already."""
    inserted = await session.execute(
        insert_ignoring_duplicates(
            session,
            AccountBlock,
            [
                {
                    "id": new_id(),
                    "account_id": blocker.id,
                    "target_account_id": target.id,
                    "uri": uri,
                    "created_at": utcnow(),
                }
            ],
        )
    )
    # The follows end even when the block was known: one may have been made since (a follow
    # of ours is not checked against blocks received), and a repeated Block still means it.
    await session.execute(
        delete(Follow).where(
            ((col(Follow.follower_id) == blocker.id) & (col(Follow.followee_id) == target.id))
            | ((col(Follow.follower_id) == target.id) & (col(Follow.followee_id) == blocker.id))
        )
    )
    # A local account's block may hide the target's replies under its posts: every public page is
    # made again. A remote account's block only ends follows.
    changed: list[events.Event] = [events.FollowsChanged((blocker.id, target.id))]
    if blocker.domain is None:
        changed.append(events.PublicContentChanged())
    events.announce(session, changed)
    return bool(getattr(inserted, "rowcount", 0))


class AccountModerationService:
    def __init__(self, context: AppContext, viewer: Viewer | None = None) -> None:
        """`viewer` is who asks (None: the server itself or the command line); the service checks
        that it may act as the account each call names."""
        self.context = context
        self.viewer = viewer if viewer is not None else Viewer.system()
        self.publisher = Publisher(context)

    async def block(self, account: Account, target: Account) -> bool:
        """`account` blocks `target`: follows end both ways; a remote target's server gets a Block."""
        self.viewer.require_act_as(account)
        if target.id == account.id:
            raise ModerationError("an account cannot block itself")
        async with self.context.sessions() as session:
            block_uri = self.publisher.new_activity_id(account)
            if not await record_block(session, account, target, block_uri):
                return False
            if target.domain is not None:
                await self.publisher.blocked(session, account, target, block_uri)
            await session.commit()
        return True

    async def unblock(self, account: Account, target: Account) -> bool:
        self.viewer.require_act_as(account)
        async with self.context.sessions() as session:
            existing = await session.scalar(
                select(AccountBlock).where(
                    col(AccountBlock.account_id) == account.id,
                    col(AccountBlock.target_account_id) == target.id,
                )
            )
            if existing is None:
                return False
            await session.execute(delete(AccountBlock).where(col(AccountBlock.id) == existing.id))
            events.announce(session, [events.PublicContentChanged()])
            if target.domain is not None:
                await self.publisher.unblocked(session, account, target, existing.uri)
            await session.commit()
        return True

    async def mute(
        self,
        account: Account,
        target: Account,
        *,
        mute: bool = True,
        notifications: bool = True,
        duration: int | None = None,
    ) -> bool:
        """Mutes are private: nothing is sent; the target's posts leave the home timeline
        (timelines.hidden_from), and its notifications too unless `notifications` is False.
        `duration` (seconds; None or 0: until unmuted) makes the mute end by itself. Muting again
        changes the options, as on Mastodon; False when nothing changed."""
        self.viewer.require_act_as(account)
        if mute and target.id == account.id:
            raise ModerationError("an account cannot mute itself")
        if duration is not None and not 0 <= duration <= MAX_MUTE_SECONDS:
            raise ModerationError(f"duration: must be between 0 and {MAX_MUTE_SECONDS} seconds")
        expires_at = utcnow() + timedelta(seconds=duration) if duration else None
        async with self.context.sessions() as session:
            existing = await session.scalar(
                select(AccountMute).where(
                    col(AccountMute.account_id) == account.id, col(AccountMute.target_account_id) == target.id
                )
            )
            if not mute:
                if existing is None:
                    return False
                await session.execute(delete(AccountMute).where(col(AccountMute.id) == existing.id))
            elif existing is None:
                session.add(
                    AccountMute(
                        account_id=account.id,
                        target_account_id=target.id,
                        hide_notifications=notifications,
                        expires_at=expires_at,
                    )
                )
            else:
                expired = existing.expires_at is not None and existing.expires_at <= utcnow()
                if (
                    not expired
                    and existing.hide_notifications == notifications
                    and existing.expires_at == expires_at
                ):
                    return False
                existing.hide_notifications = notifications
                existing.expires_at = expires_at
                session.add(existing)
            await session.commit()
        return True

    async def hide_domain(self, account: Account, domain: str, *, hide: bool = True) -> bool:
        """A domain block for one account only (Mastodon's user domain block). As on Mastodon, the
        follows between the account and that domain's accounts end: its followers there get a
        Reject of their Follow, and the account's own follows there are undone. Nothing else is sent."""
        self.viewer.require_act_as(account)
        name = normalize_domain(domain)
        async with self.context.sessions() as session:
            existing = await session.scalar(
                select(UserDomainBlock.id).where(
                    col(UserDomainBlock.account_id) == account.id, col(UserDomainBlock.domain) == name
                )
            )
            if hide == (existing is not None):
                return False
            if hide:
                session.add(UserDomainBlock(account_id=account.id, domain=name))
                await self._end_follows_with_domain(session, account, name)
            else:
                await session.execute(delete(UserDomainBlock).where(col(UserDomainBlock.id) == existing))
            await session.commit()
        return True

    async def _end_follows_with_domain(self, session: AsyncSession, account: Account, domain: str) -> None:
        rows = (
            await session.execute(
                select(Follow, Account)
                .join(
                    Account,
                    ((col(Follow.follower_id) == col(Account.id)) & (col(Follow.followee_id) == account.id))
                    | (
                        (col(Follow.followee_id) == col(Account.id)) & (col(Follow.follower_id) == account.id)
                    ),
                )
                .where(col(Account.domain) == domain)
            )
        ).all()
        for follow, other in rows:
            if follow.follower_id == other.id:
                await self.publisher.follow_answered(session, "Reject", account, other, follow.uri)
            else:
                await self.publisher.unfollowed(session, account, other, follow)
            await session.execute(delete(Follow).where(col(Follow.id) == follow.id))

    async def report(
        self,
        by: User,
        reporter: Account,
        target: Account,
        *,
        post_ids: list[int] | None = None,
        comment: str = "",
        forward: bool = False,
        category: str = "other",
        rule_ids: Sequence[int] = (),
    ) -> Report:
        """Report `target` (and some of its posts) to this server's admins; `forward` also sends a Flag.
        `rule_ids` (numbers of this server's rules) are kept for a `violation` only, as on Mastodon."""
        if category not in REPORT_CATEGORIES:
            raise Invalid(f"category: must be one of {', '.join(REPORT_CATEGORIES)}")
        if rule_ids:
            # A rule's id is its number in /api/v1/instance/rules.
            rules = (await InstanceService(self.context).about()).rules
            if not all(1 <= rule_id <= len(rules) for rule_id in rule_ids):
                raise Invalid("rule_ids: must be ids of this server's rules (GET /api/v1/instance/rules)")
        self.viewer.require_act_as(reporter)
        comment = comment.strip()[:MAX_REPORT_COMMENT]
        async with self.context.sessions() as session:
            posts = []
            if post_ids:
                posts = list(
                    (
                        await session.scalars(
                            select(Post).where(col(Post.id).in_(post_ids), col(Post.account_id) == target.id)
                        )
                    ).all()
                )
            report = Report(
                reporter_account_id=reporter.id,
                target_account_id=target.id,
                target_uri=target.uri,
                target_handle=target.acct,
                post_ids=[post.id for post in posts],
                comment=comment,
                category=category,
                rule_ids=sorted(set(rule_ids)) if category == "violation" else [],
                forwarded=forward and target.domain is not None,
            )
            session.add(report)
            await session.flush()
            data: dict[str, Any] = {"report_id": report.id, "forwarded": report.forwarded}
            if report.forwarded:
                # From the instance actor, as Mastodon forwards: the remote admins learn what, not who.
                instance_actor = await AccountService(self.context).instance_actor()
                report.uri = await self.publisher.report_forwarded(
                    session, instance_actor, target, comment, posts
                )
            session.add(
                AuditLogEntry(user_id=by.id, action="report.create", target=target.uri[:2048], data=data)
            )
            await session.commit()
            await session.refresh(report)
        return report


class ReportQueue:
    """The reports admins work through: from staff here and from other servers' Flags alike."""

    def __init__(self, context: AppContext) -> None:
        self.context = context

    async def open_reports(self, limit: int = 100) -> list[tuple[Report, Account | None, Account | None]]:
        """Unresolved reports, newest first, with the reported and the reporting account where they
        are still stored (a purged target is named by the report's own target_uri and target_handle)."""
        async with self.context.sessions() as session:
            reports = (
                await session.scalars(
                    select(Report)
                    .where(col(Report.resolved_at).is_(None))
                    .order_by(col(Report.created_at).desc())
                    .limit(limit)
                )
            ).all()
            ids = {report.target_account_id for report in reports if report.target_account_id is not None} | {
                report.reporter_account_id for report in reports if report.reporter_account_id is not None
            }
            accounts = {
                account.id: account
                for account in (await session.scalars(select(Account).where(col(Account.id).in_(ids)))).all()
            }
        return [
            (
                report,
                accounts.get(report.target_account_id or 0),
                accounts.get(report.reporter_account_id or 0),
            )
            for report in reports
        ]

    async def resolve(self, report_id: int, *, by: User) -> bool:
        if by.role != Role.ADMIN:
            raise Forbidden("only administrators may resolve reports")
        async with self.context.sessions() as session:
            report = await session.get(Report, report_id)
            if report is None or report.resolved_at is not None:
                return False
            report.resolved_at = utcnow()
            report.resolved_by_user_id = by.id
            session.add(report)
            session.add(AuditLogEntry(user_id=by.id, action="report.resolve", target=str(report_id), data={}))
            await session.commit()
        return True
