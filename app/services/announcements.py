"""Announcements: what administrators tell everyone on the server, shown by the apps while
active (between their optional start and end), each read (dismissed) and reacted to per account.

Reactions take a Unicode emoji; Herold has no custom emoji, so any other name is unknown.
Publishing (or, for one published to start later, its start), withdrawing and reacting are
announced after commit (app.services.events): the apps' `user` streams carry them as Mastodon's
`announcement`, `announcement.delete` and `announcement.reaction`.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import case, delete, func, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from app.context import AppContext
from app.models import Announcement, AnnouncementDismissal, AnnouncementReaction
from app.models.base import utcnow
from app.services import events
from app.services.errors import Invalid, NotFound
from app.services.jobs import ANNOUNCEMENT_START, queue_job
from app.services.viewer import Viewer

MAX_TEXT = 5000
MAX_EMOJI_LENGTH = 16
# Characters that join or modify an emoji without being symbols themselves.
_EMOJI_JOINERS = {"\u200d", "\ufe0f", "\ufe0e", "\u20e3"}


class AnnouncementError(Invalid):
    """An announcement that cannot be saved; the message names what is wrong."""


def is_unicode_emoji(name: str) -> bool:
    if not name or len(name) > MAX_EMOJI_LENGTH:
        return False
    has_symbol = False
    for character in name:
        category = unicodedata.category(character)
        if category == "So":
            has_symbol = True
        elif (
            character in _EMOJI_JOINERS
            or category in ("Sk", "Mn")
            or "\U0001f3fb" <= character <= "\U0001f3ff"
        ):
            continue
        elif character.isdigit() or character in "#*":
            continue
        else:
            return False
    return has_symbol


@dataclass(frozen=True)
class ReactionCount:
    name: str
    count: int
    me: bool


@dataclass(frozen=True)
class AnnouncementView:
    announcement: Announcement
    read: bool = False
    reactions: list[ReactionCount] = field(default_factory=list)


class Announcements:
    def __init__(self, context: AppContext, viewer: Viewer) -> None:
        self.context = context
        self.viewer = viewer

    # ------------------------------------------------------------------------------------------
    # Administration

    async def all(self) -> list[Announcement]:
        self.viewer.require_admin()
        async with self.context.sessions() as session:
            rows = await session.scalars(select(Announcement).order_by(col(Announcement.id).desc()))
            return list(rows.all())

    async def publish(
        self,
        text: str,
        *,
        starts_at: datetime | None = None,
        ends_at: datetime | None = None,
        all_day: bool = False,
    ) -> Announcement:
        self.viewer.require_admin()
        text = text.strip()
        if not text:
            raise AnnouncementError("An announcement needs some text.")
        if len(text) > MAX_TEXT:
            raise AnnouncementError("An announcement is at most 5000 characters long.")
        if starts_at is not None and ends_at is not None and ends_at <= starts_at:
            raise AnnouncementError("The end must come after the start.")
        announcement = Announcement(
            text=text,
            starts_at=starts_at,
            ends_at=ends_at,
            all_day=all_day,
            created_by_user_id=self.viewer.user.id if self.viewer.user is not None else None,
        )
        async with self.context.sessions() as session:
            session.add(announcement)
            await session.flush()
            if starts_at is not None and starts_at > utcnow():
                # The apps show it from its start (see active), and hear of it then.
                queue_job(
                    self.context,
                    session,
                    ANNOUNCEMENT_START,
                    {"announcement_id": announcement.id},
                    run_at=starts_at,
                )
            else:
                events.announce(session, [events.AnnouncementPublished(announcement.id)])
            await session.commit()
            await session.refresh(announcement)
        return announcement

    async def announce_start(self, announcement_id: int) -> None:
        """An announcement published in advance comes into force (the ANNOUNCEMENT_START job):
        it is announced now, unless it was withdrawn meanwhile."""
        async with self.context.sessions() as session:
            if await session.get(Announcement, announcement_id) is None:
                return
            events.announce(session, [events.AnnouncementPublished(announcement_id)])
            await session.commit()

    async def withdraw(self, announcement_id: int) -> None:
        self.viewer.require_admin()
        async with self.context.sessions() as session:
            for table in (AnnouncementReaction, AnnouncementDismissal):
                await session.execute(delete(table).where(col(table.announcement_id) == announcement_id))
            gone = await session.execute(delete(Announcement).where(col(Announcement.id) == announcement_id))
            if getattr(gone, "rowcount", 0):
                events.announce(session, [events.AnnouncementWithdrawn(announcement_id)])
            await session.commit()

    # ------------------------------------------------------------------------------------------
    # What an account sees and does

    def _account_id(self) -> int:
        if self.viewer.account is None:
            raise NotFound("Record not found")
        return self.viewer.account.id

    async def active(self) -> list[AnnouncementView]:
        """The announcements in force now, newest first, with this account's read flag and reactions."""
        me = self.viewer.account.id if self.viewer.account is not None else None
        now = utcnow()
        async with self.context.sessions() as session:
            rows = list(
                (
                    await session.scalars(
                        select(Announcement)
                        .where(
                            or_(col(Announcement.starts_at).is_(None), col(Announcement.starts_at) <= now),
                            or_(col(Announcement.ends_at).is_(None), col(Announcement.ends_at) > now),
                        )
                        .order_by(col(Announcement.id).desc())
                    )
                ).all()
            )
            ids = [row.id for row in rows]
            if not ids:
                return []
            read = (
                set(
                    (
                        await session.scalars(
                            select(AnnouncementDismissal.announcement_id).where(
                                col(AnnouncementDismissal.account_id) == me,
                                col(AnnouncementDismissal.announcement_id).in_(ids),
                            )
                        )
                    ).all()
                )
                if me is not None
                else set()
            )
            counts = (
                await session.execute(
                    select(
                        AnnouncementReaction.announcement_id,
                        AnnouncementReaction.name,
                        func.count(),
                        func.max(case((col(AnnouncementReaction.account_id) == (me or 0), 1), else_=0)),
                    )
                    .where(col(AnnouncementReaction.announcement_id).in_(ids))
                    .group_by(col(AnnouncementReaction.announcement_id), col(AnnouncementReaction.name))
                    .order_by(func.min(col(AnnouncementReaction.id)))
                )
            ).all()
        reactions: dict[int, list[ReactionCount]] = {}
        for announcement_id, name, count, mine in counts:
            reactions.setdefault(announcement_id, []).append(ReactionCount(name, int(count), bool(mine)))
        return [AnnouncementView(row, row.id in read, reactions.get(row.id, [])) for row in rows]

    async def _active_one(self, announcement_id: int) -> None:
        if announcement_id not in {view.announcement.id for view in await self.active()}:
            raise NotFound("Record not found")

    async def dismiss(self, announcement_id: int) -> None:
        me = self._account_id()
        await self._active_one(announcement_id)
        async with self.context.sessions() as session:
            try:
                session.add(AnnouncementDismissal(announcement_id=announcement_id, account_id=me))
                await session.commit()
            except IntegrityError:
                await session.rollback()

    async def react(self, announcement_id: int, name: str) -> None:
        me = self._account_id()
        await self._active_one(announcement_id)
        if not is_unicode_emoji(name):
            raise NotFound("Unknown emoji")
        async with self.context.sessions() as session:
            try:
                session.add(AnnouncementReaction(announcement_id=announcement_id, account_id=me, name=name))
                events.announce(session, [events.AnnouncementReacted(announcement_id, name)])
                await session.commit()
            except IntegrityError:
                await session.rollback()

    async def unreact(self, announcement_id: int, name: str) -> None:
        me = self._account_id()
        await self._active_one(announcement_id)
        async with self.context.sessions() as session:
            taken_back = await session.execute(
                delete(AnnouncementReaction).where(
                    col(AnnouncementReaction.announcement_id) == announcement_id,
                    col(AnnouncementReaction.account_id) == me,
                    col(AnnouncementReaction.name) == name,
                )
            )
            if getattr(taken_back, "rowcount", 0):
                events.announce(session, [events.AnnouncementReacted(announcement_id, name)])
            await session.commit()


__all__ = ["AnnouncementError", "AnnouncementView", "Announcements", "ReactionCount", "is_unicode_emoji"]
