"""Shared set-up for the delivery tests: an instance with a local author, remote followers on the
independent peer, and a worker that runs only the delivery queue."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.federation.delivery import Deliverer, delivery_queue
from app.federation.worker import Worker, build_worker
from app.models import Account, DeliveryJob, Follow, FollowState, InboxItem, JobState, OutboxActivity
from app.models.base import new_ids, utcnow
from app.services.accounts import AccountService
from tests.federation.delivery_peer import Peer, PeerAccount
from tests.lab import Instance, Lab


def add_sink_followers(session: AsyncSession, followee_id: int, hosts: Sequence[str]) -> None:
    """One remote follower of `followee_id` per host, its inboxes on that host (a test sink that
    answers every POST); written directly, as if long known, so no actor is fetched. The caller commits."""
    now = utcnow()
    for account_id, host in zip(new_ids(len(hosts)), hosts, strict=True):
        session.add(
            Account(
                id=account_id,
                username="f",
                domain=host,
                uri=f"http://{host}/users/f",
                inbox_url=f"http://{host}/users/f/inbox",
                shared_inbox_url=f"http://{host}/inbox",
                fetched_at=now,
            )
        )
        session.add(Follow(follower_id=account_id, followee_id=followee_id, state=FollowState.ACCEPTED))


@asynccontextmanager
async def serving_peer(lab: Lab, *hosts: str) -> AsyncIterator[Peer]:
    """The independent peer, answering on the lab's network for each of `hosts`."""
    client = httpx.AsyncClient(transport=lab.network)
    peer = Peer(client)
    for host in hosts:
        lab.network.register(host, peer.app)  # type: ignore[arg-type]
    try:
        yield peer
    finally:
        await client.aclose()


async def local_account(instance: Instance, name: str) -> Account:
    created = await AccountService(instance.context).create_local_account(
        name, password="correct horse battery"
    )
    return created.account


async def remote_follower(instance: Instance, followee: Account, peer: Peer, account: PeerAccount) -> Account:
    """`account` on the peer follows `followee` (stored as if its Follow had been accepted)."""
    async with instance.context.sessions() as session:
        remote = Account(
            username=account.username,
            domain=account.host,
            uri=account.uri,
            inbox_url=account.inbox,
            shared_inbox_url=account.shared_inbox_url,
            key_id=f"{account.uri}#main-key",
            public_key_pem=peer.public_pem(),
            followers_url=f"{account.uri}/followers",
            fetched_at=utcnow(),
        )
        session.add(remote)
        await session.flush()
        session.add(Follow(follower_id=remote.id, followee_id=followee.id, state=FollowState.ACCEPTED))
        await session.commit()
    return remote


def delivery_worker(instance: Instance, deliverer: Deliverer | None = None) -> tuple[Worker, Deliverer]:
    deliverer = deliverer or Deliverer(instance.context)
    return Worker(instance.context, [delivery_queue(instance.context, deliverer)]), deliverer


async def deliver(instance: Instance, deliverer: Deliverer | None = None) -> Deliverer:
    """Run every delivery that is due now, then return (with the deliverer, for its breakers)."""
    worker, deliverer = delivery_worker(instance, deliverer)
    await worker.run_until_idle()
    return deliverer


async def jobs(instance: Instance) -> list[DeliveryJob]:
    async with instance.context.sessions() as session:
        return list((await session.scalars(select(DeliveryJob).order_by(col(DeliveryJob.id)))).all())


async def outbox(instance: Instance) -> list[tuple[dict[str, Any], list[str]]]:
    """Each queued activity with the inboxes it goes to, oldest first."""
    async with instance.context.sessions() as session:
        activities = (
            await session.scalars(select(OutboxActivity).order_by(col(OutboxActivity.created_at)))
        ).all()
        found = []
        for activity in activities:
            inboxes = (
                await session.scalars(
                    select(DeliveryJob.inbox_url).where(DeliveryJob.activity_id == activity.id)
                )
            ).all()
            found.append((activity.payload, sorted(inboxes)))
    return found


async def make_due(instance: Instance, **where: Any) -> int:
    """Time passes: queued jobs (optionally filtered by column values) become due now."""
    conditions = [col(DeliveryJob.state) == JobState.QUEUED]
    conditions += [getattr(DeliveryJob, name) == value for name, value in where.items()]
    async with instance.context.sessions() as session:
        result = await session.execute(
            update(DeliveryJob).where(*conditions).values(next_attempt_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()
    return int(getattr(result, "rowcount", 0))


async def due_work(instance: Instance) -> int:
    """Queued inbox items and deliveries that are due now."""
    now = utcnow()
    async with instance.context.sessions() as session:
        total = 0
        for model in (DeliveryJob, InboxItem):
            table: Any = model
            total += int(
                await session.scalar(
                    select(func.count())
                    .select_from(table)
                    .where(col(table.state) == JobState.QUEUED, col(table.next_attempt_at) <= now)
                )
                or 0
            )
    return total


async def settle(lab: Lab, *, rounds: int = 30) -> None:
    """Run every instance's worker until no instance has work due: a delivery becomes inbox work on
    the other side, which may deliver back (an Accept), and so on."""
    for _ in range(rounds):
        for instance in lab.instances.values():
            await build_worker(instance.context).run_until_idle()
        if all([await due_work(instance) == 0 for instance in lab.instances.values()]):
            return
    raise AssertionError("the lab did not settle")
