"""The writes behind a kept token resolution are announced by every instance's sessions, however
many instances a process has built and closed before (the tests build hundreds)."""

from __future__ import annotations

import gc

from sqlalchemy import update
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel, col

from app.db import create_session_factory, sync_session_class
from app.models import OAuthAccessToken
from app.models.base import table_of
from app.services import events
from app.services.kept_callers import watch_writes

INSTANCES = 20


async def test_each_new_instances_sessions_announce_a_revoked_token() -> None:
    missed = 0
    for _ in range(INSTANCES):
        engine = create_async_engine("sqlite+aiosqlite://")
        async with engine.begin() as connection:
            await connection.run_sync(SQLModel.metadata.create_all, tables=[table_of(OAuthAccessToken)])
        bus = events.EventBus()
        heard: list[events.Event] = []
        bus.subscribe(heard.append)
        sessions = create_session_factory(engine)
        sessions.configure(info=bus.session_info())
        watch_writes(sync_session_class(sessions))
        async with sessions() as session:
            await session.execute(
                update(OAuthAccessToken).where(col(OAuthAccessToken.id) == 1).values(revoked_at=None)
            )
            await session.commit()
        if not any(isinstance(item, events.CredentialsChanged) for item in heard):
            missed += 1
        await engine.dispose()
        # The instance is gone, and its session class with it: the next one may be built at the same
        # address (SQLAlchemy's event registry knew targets by that address alone).
        del sessions, session
        gc.collect()
    assert missed == 0, f"{missed} of {INSTANCES} instances did not announce a revoked token"
