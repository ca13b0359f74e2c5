"""What lies between the account a viewer acts as and other accounts: follows both ways (and
their options), requests, blocks, mutes, hidden domains, private notes; and the lists an account
keeps of them (followers, following, blocks, mutes, requests, hidden domains), paged by row id as
Mastodon pages them.

Every answer is about the account the viewer acts as; the rules for changing a relationship stay
in following, follow_requests and account_moderation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, func, select

from app.context import AppContext
from app.models import (
    Account,
    AccountBlock,
    AccountMute,
    AccountNote,
    Follow,
    FollowState,
    UserDomainBlock,
)
from app.models.base import utcnow
from app.services.errors import Invalid
from app.services.paged_lists import PageRequest
from app.services.viewer import Viewer
from app.services.visibility import mute_in_force

MAX_RELATIONSHIPS = 100
MAX_NOTE = 2_000


@dataclass(frozen=True)
class Relationship:
    """Mastodon's Relationship, about `target` as seen by the viewer's account."""

    target: Account
    following: bool = False
    showing_reblogs: bool = False
    notifying: bool = False
    languages: list[str] | None = None
    followed_by: bool = False
    blocking: bool = False
    blocked_by: bool = False
    muting: bool = False
    muting_notifications: bool = False
    muting_expires_at: Any = None
    requested: bool = False
    requested_by: bool = False
    domain_blocking: bool = False
    endorsed: bool = False
    note: str = ""


@dataclass(frozen=True)
class AccountPage:
    """Accounts in the list's order, and the row ids the page is made of (for Link headers)."""

    accounts: list[Account] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)


def _acting(viewer: Viewer) -> Account:
    if viewer.account is None:
        raise Invalid("this needs an account")
    return viewer.account


async def relationships(
    context: AppContext, viewer: Viewer, target_ids: Sequence[int], *, with_suspended: bool = False
) -> list[Relationship]:
    """The relationships to `target_ids` (in that order, unknown ones left out), in a fixed number
    of queries whatever their count."""
    me = _acting(viewer)
    wanted = list(dict.fromkeys(target_ids))[:MAX_RELATIONSHIPS]
    if not wanted:
        return []
    async with context.sessions() as session:
        query = select(Account).where(col(Account.id).in_(wanted), col(Account.deleted_at).is_(None))
        if not with_suspended:
            query = query.where(col(Account.suspended_at).is_(None))
        targets = {account.id: account for account in (await session.scalars(query)).all()}
        ids = list(targets)
        if not ids:
            return []
        mine = {
            follow.followee_id: follow
            for follow in (
                await session.scalars(
                    select(Follow).where(col(Follow.follower_id) == me.id, col(Follow.followee_id).in_(ids))
                )
            ).all()
        }
        theirs = {
            follow.follower_id: follow
            for follow in (
                await session.scalars(
                    select(Follow).where(col(Follow.followee_id) == me.id, col(Follow.follower_id).in_(ids))
                )
            ).all()
        }
        blocking = set(
            (
                await session.scalars(
                    select(AccountBlock.target_account_id).where(
                        col(AccountBlock.account_id) == me.id, col(AccountBlock.target_account_id).in_(ids)
                    )
                )
            ).all()
        )
        blocked_by = set(
            (
                await session.scalars(
                    select(AccountBlock.account_id).where(
                        col(AccountBlock.target_account_id) == me.id, col(AccountBlock.account_id).in_(ids)
                    )
                )
            ).all()
        )
        mutes = {
            mute.target_account_id: mute
            for mute in (
                await session.scalars(
                    select(AccountMute).where(
                        col(AccountMute.account_id) == me.id,
                        col(AccountMute.target_account_id).in_(ids),
                        mute_in_force(),
                    )
                )
            ).all()
        }
        domains = {account.domain for account in targets.values() if account.domain is not None}
        hidden_domains = (
            set(
                (
                    await session.scalars(
                        select(UserDomainBlock.domain).where(
                            col(UserDomainBlock.account_id) == me.id, col(UserDomainBlock.domain).in_(domains)
                        )
                    )
                ).all()
            )
            if domains
            else set()
        )
        notes = {
            note.target_account_id: note.comment
            for note in (
                await session.scalars(
                    select(AccountNote).where(
                        col(AccountNote.account_id) == me.id, col(AccountNote.target_account_id).in_(ids)
                    )
                )
            ).all()
        }
    answers = []
    for target_id in wanted:
        target = targets.get(target_id)
        if target is None:
            continue
        follow = mine.get(target_id)
        accepted = follow is not None and follow.state == FollowState.ACCEPTED
        incoming = theirs.get(target_id)
        mute = mutes.get(target_id)
        answers.append(
            Relationship(
                target=target,
                following=accepted,
                showing_reblogs=follow.show_reblogs if follow is not None else False,
                notifying=follow.notify if follow is not None else False,
                languages=(follow.languages or None) if follow is not None else None,
                followed_by=incoming is not None and incoming.state == FollowState.ACCEPTED,
                blocking=target_id in blocking,
                blocked_by=target_id in blocked_by,
                muting=mute is not None,
                muting_notifications=mute is not None and mute.hide_notifications,
                muting_expires_at=mute.expires_at if mute is not None else None,
                requested=follow is not None and not accepted,
                requested_by=incoming is not None and incoming.state == FollowState.PENDING,
                domain_blocking=target.domain in hidden_domains,
                note=notes.get(target_id, ""),
            )
        )
    return answers


async def relationship(context: AppContext, viewer: Viewer, target: Account) -> Relationship:
    found = await relationships(context, viewer, [target.id], with_suspended=True)
    return found[0] if found else Relationship(target=target)


async def set_note(context: AppContext, viewer: Viewer, target: Account, comment: str) -> None:
    """The viewer's account's private comment on `target` (empty removes it); nothing is sent."""
    me = _acting(viewer)
    viewer.require_act_as(me)
    comment = comment.strip()
    if len(comment) > MAX_NOTE:
        raise Invalid(f"comment: at most {MAX_NOTE} characters")
    async with context.sessions() as session:
        stored = await session.scalar(
            select(AccountNote).where(
                col(AccountNote.account_id) == me.id, col(AccountNote.target_account_id) == target.id
            )
        )
        if not comment:
            if stored is not None:
                await session.delete(stored)
        elif stored is None:
            session.add(AccountNote(account_id=me.id, target_account_id=target.id, comment=comment))
        else:
            stored.comment = comment
            stored.updated_at = utcnow()
            session.add(stored)
        await session.commit()


async def _accounts_page(session: AsyncSession, page: PageRequest, query: Any, row_id: Any) -> AccountPage:
    rows = page.newest_first(list((await session.execute(page.apply(query, row_id))).all()))
    return AccountPage([row[0] for row in rows], [row[1] for row in rows])


def _shown_accounts(query: Any) -> Any:
    return query.where(col(Account.deleted_at).is_(None), col(Account.suspended_at).is_(None))


async def blocks_viewer(context: AppContext, viewer: Viewer, account: Account) -> bool:
    """Whether `account` blocks the account the viewer acts as (Mastodon then shows the viewer
    none of its followers or follows)."""
    if viewer.account is None:
        return False
    async with context.sessions() as session:
        found = await session.scalar(
            select(AccountBlock.id).where(
                col(AccountBlock.account_id) == account.id,
                col(AccountBlock.target_account_id) == viewer.account.id,
            )
        )
    return found is not None


async def followers_of(context: AppContext, account: Account, page: PageRequest) -> AccountPage:
    """Accounts following `account` (accepted follows), newest follow first."""
    query = _shown_accounts(
        select(Account, col(Follow.id))
        .join(Follow, col(Follow.follower_id) == col(Account.id))
        .where(col(Follow.followee_id) == account.id, col(Follow.state) == FollowState.ACCEPTED)
    )
    async with context.sessions() as session:
        return await _accounts_page(session, page, query, col(Follow.id))


async def following_of(context: AppContext, account: Account, page: PageRequest) -> AccountPage:
    """Accounts `account` follows (accepted follows), newest follow first."""
    query = _shown_accounts(
        select(Account, col(Follow.id))
        .join(Follow, col(Follow.followee_id) == col(Account.id))
        .where(col(Follow.follower_id) == account.id, col(Follow.state) == FollowState.ACCEPTED)
    )
    async with context.sessions() as session:
        return await _accounts_page(session, page, query, col(Follow.id))


async def follow_requests_to(context: AppContext, viewer: Viewer, page: PageRequest) -> AccountPage:
    """Who asks to follow the viewer's account, newest request first."""
    me = _acting(viewer)
    query = _shown_accounts(
        select(Account, col(Follow.id))
        .join(Follow, col(Follow.follower_id) == col(Account.id))
        .where(col(Follow.followee_id) == me.id, col(Follow.state) == FollowState.PENDING)
    )
    async with context.sessions() as session:
        return await _accounts_page(session, page, query, col(Follow.id))


async def blocked_by_viewer(context: AppContext, viewer: Viewer, page: PageRequest) -> AccountPage:
    me = _acting(viewer)
    query = select(Account, col(AccountBlock.id)).join(
        AccountBlock, col(AccountBlock.target_account_id) == col(Account.id)
    )
    query = query.where(col(AccountBlock.account_id) == me.id)
    async with context.sessions() as session:
        return await _accounts_page(session, page, query, col(AccountBlock.id))


@dataclass(frozen=True)
class MutePage:
    entries: list[tuple[Account, AccountMute]] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)


async def muted_by_viewer(context: AppContext, viewer: Viewer, page: PageRequest) -> MutePage:
    """Mutes still in force, with when each ends (Mastodon's `mute_expires_at`)."""
    me = _acting(viewer)
    query = (
        select(Account, AccountMute)
        .join(AccountMute, col(AccountMute.target_account_id) == col(Account.id))
        .where(col(AccountMute.account_id) == me.id, mute_in_force())
    )
    async with context.sessions() as session:
        rows = page.newest_first(list((await session.execute(page.apply(query, col(AccountMute.id)))).all()))
    return MutePage([(row[0], row[1]) for row in rows], [row[1].id for row in rows])


async def hidden_domains_of(
    context: AppContext, viewer: Viewer, page: PageRequest
) -> tuple[list[str], list[int]]:
    """The domains the viewer's account hides for itself, newest first, and the page's row ids."""
    me = _acting(viewer)
    query = select(UserDomainBlock.domain, col(UserDomainBlock.id)).where(
        col(UserDomainBlock.account_id) == me.id
    )
    async with context.sessions() as session:
        rows = page.newest_first(
            list((await session.execute(page.apply(query, col(UserDomainBlock.id)))).all())
        )
    return [row[0] for row in rows], [row[1] for row in rows]


async def familiar_followers(
    context: AppContext, viewer: Viewer, target_ids: Sequence[int], *, per_account: int = 40
) -> dict[int, list[Account]]:
    """For each target, accounts the viewer's account follows that follow it too."""
    me = _acting(viewer)
    wanted = list(dict.fromkeys(target_ids))[:MAX_RELATIONSHIPS]
    if not wanted:
        return {}
    mine = select(Follow.followee_id).where(
        col(Follow.follower_id) == me.id, col(Follow.state) == FollowState.ACCEPTED
    )
    query = _shown_accounts(
        select(col(Follow.followee_id), Account)
        .join(Account, col(Account.id) == col(Follow.follower_id))
        .where(
            col(Follow.followee_id).in_(wanted),
            col(Follow.state) == FollowState.ACCEPTED,
            col(Follow.follower_id).in_(mine),
            col(Follow.follower_id) != me.id,
        )
        .order_by(col(Follow.id).desc())
    )
    found: dict[int, list[Account]] = {target_id: [] for target_id in wanted}
    async with context.sessions() as session:
        for target_id, account in (await session.execute(query)).all():
            if len(found[target_id]) < per_account:
                found[target_id].append(account)
    return found


__all__ = [
    "MAX_RELATIONSHIPS",
    "AccountPage",
    "MutePage",
    "Relationship",
    "blocked_by_viewer",
    "blocks_viewer",
    "familiar_followers",
    "follow_requests_to",
    "followers_of",
    "following_of",
    "hidden_domains_of",
    "muted_by_viewer",
    "relationship",
    "relationships",
    "set_note",
    "waiting_requests_count",
]


async def waiting_requests_count(context: AppContext, account: Account) -> int:
    """How many follow requests wait for `account`'s answer."""
    async with context.sessions() as session:
        counted = await session.scalar(
            select(func.count())
            .select_from(Follow)
            .where(col(Follow.followee_id) == account.id, col(Follow.state) == FollowState.PENDING)
        )
    return int(counted or 0)
