"""The list condition is built once per reader and kept: what changes in the database (a block
made since) and with time (a mute running out) must still count on the next page read."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlmodel import col, select

from app.models import AccountBlock, AccountMute, Post
from app.models.base import utcnow
from app.services.posting import PostingService
from app.services.viewer import Viewer
from app.services.visibility import visible_to
from tests.lab import Instance
from tests.web.helpers import make_user


async def visible_ids(instance: Instance, viewer: Viewer) -> set[int]:
    async with instance.context.sessions() as session:
        return set((await session.scalars(select(Post.id).where(visible_to(viewer)))).all())


async def test_memoized_condition_sees_new_blocks_and_expiring_mutes(instance: Instance) -> None:
    _, alice = await make_user(instance, "alice")
    _, bob = await make_user(instance, "bob")
    post = await PostingService(instance.context).create(bob, "Hello")
    viewer = Viewer(account=alice, acting_ids=frozenset({alice.id}))
    assert visible_to(viewer) is visible_to(Viewer(account=alice, acting_ids=frozenset({alice.id})))
    assert post.id in await visible_ids(instance, viewer)

    async with instance.context.sessions() as session:
        session.add(
            AccountMute(
                account_id=alice.id, target_account_id=bob.id, expires_at=utcnow() + timedelta(seconds=1)
            )
        )
        await session.commit()
    assert post.id not in await visible_ids(instance, viewer)
    await asyncio.sleep(1.2)
    # The same kept condition, read after the mute ran out.
    assert post.id in await visible_ids(instance, viewer)

    async with instance.context.sessions() as session:
        session.add(AccountBlock(account_id=bob.id, target_account_id=alice.id))
        await session.commit()
    assert post.id not in await visible_ids(instance, viewer)
    async with instance.context.sessions() as session:
        assert await session.scalar(select(col(AccountBlock.id))) is not None
