"""Read markers: how far a person has read their home timeline and their notifications, so that
their apps (a phone and a desktop) pick up where the other left off."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from app.context import AppContext
from app.models import Marker
from app.models.base import utcnow
from app.services.errors import Invalid, NotFound
from app.services.viewer import Viewer

TIMELINES = ("home", "notifications")


class Markers:
    def __init__(self, context: AppContext, viewer: Viewer) -> None:
        self.context = context
        self.viewer = viewer

    @property
    def _account_id(self) -> int:
        if self.viewer.account is None:
            raise NotFound("Record not found")
        return self.viewer.account.id

    async def read(self, timelines: Iterable[str]) -> list[Marker]:
        wanted = [name for name in timelines if name in TIMELINES]
        if not wanted:
            return []
        async with self.context.sessions() as session:
            rows = await session.scalars(
                select(Marker).where(
                    col(Marker.account_id) == self._account_id, col(Marker.timeline).in_(wanted)
                )
            )
            return list(rows.all())

    async def save(self, positions: dict[str, int]) -> list[Marker]:
        """Move each named timeline's marker to the id given; each save counts a new version."""
        for name in positions:
            if name not in TIMELINES:
                raise Invalid(f"{name}: is not a timeline with a marker (home, notifications)")
        account_id = self._account_id
        for _attempt in range(3):
            async with self.context.sessions() as session:
                existing = {
                    marker.timeline: marker
                    for marker in (
                        await session.scalars(
                            select(Marker)
                            .where(
                                col(Marker.account_id) == account_id,
                                col(Marker.timeline).in_(list(positions)),
                            )
                            .with_for_update()
                        )
                    ).all()
                }
                for name, last_read_id in positions.items():
                    marker = existing.get(name) or Marker(account_id=account_id, timeline=name, version=0)
                    marker.last_read_id = last_read_id
                    marker.version += 1
                    marker.updated_at = utcnow()
                    session.add(marker)
                try:
                    await session.commit()
                except IntegrityError:
                    # Another app made the first marker at the same moment: update that one.
                    await session.rollback()
                    continue
            break
        return await self.read(positions)


__all__ = ["TIMELINES", "Markers"]
