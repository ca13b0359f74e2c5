"""Processing of received activities (inbound federation), run by the worker for each InboxItem.

An item is finished in one of two ways: handled, or deliberately ignored (irrelevant, refused by
an origin rule, pointing at something we do not have), the reason then kept in `last_error`.
Only unexpected exceptions escape, and the worker retries those with backoff; every handler is
idempotent, so a retry or a second delivery after a crash changes nothing twice.

Items the worker hands over together are processed as one batch: their handlers run side by
side, reading what they need and adding the rows they would write to a WriteBatch, and then one
transaction writes every row of the batch and marks its items done. The effects of an item and
the record that it was processed are committed together; a crash before the commit leaves the
items queued, to be processed again.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import bindparam, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncSession

from app.activitypub.parsers import MAX_URL_LENGTH, InvalidObject, authority, parse_activity
from app.activitypub.resolver import ActorResolver
from app.context import AppContext
from app.db import write_session
from app.federation.handlers.base import Ignored, Inbound, actor_cache_key
from app.federation.handlers.dispatch import dispatch
from app.federation.queue import QueueSpec
from app.models import InboxItem, JobState
from app.models.base import table_of, utcnow
from app.queue_names import INBOX_QUEUE
from app.services.batch_writes import WriteBatch
from app.services.read_cache import ReadCache
from app.services.remote_posts import RemotePostService

log = logging.getLogger(__name__)

MAX_BATCH = 64
# Items started together form one batch, so this is also the usual batch size: large enough to
# spread a transaction's fixed cost over many items (8 gives about half the throughput of 32 on
# SQLite), small enough that one slow remote fetch holds few items back.
INBOX_CONCURRENCY = 32
INBOX_LEASE = timedelta(minutes=5)
# How long the answers to repeated reads (followers, blocks, actors) are reused.
READ_CACHE_SECONDS = 2.0


def inbox_queue(context: AppContext) -> QueueSpec[InboxItem]:
    """The worker's inbox queue."""
    return QueueSpec(
        name=INBOX_QUEUE,
        model=InboxItem,
        handler=InboxProcessor(context),
        concurrency=INBOX_CONCURRENCY,
        batch_size=MAX_BATCH,
        lease=INBOX_LEASE,
    )


class InboxProcessor:
    """One per worker: it holds the batch being gathered and the short-lived read cache."""

    def __init__(self, context: AppContext) -> None:
        self.context = context
        self.cache = ReadCache(ttl=READ_CACHE_SECONDS)
        # Hashtag ids, which never change once made.
        self.tag_ids: dict[str, int] = {}
        self._waiting: list[tuple[InboxItem, asyncio.Future[None]]] = []
        self._drain_task: asyncio.Task[None] | None = None

    async def __call__(self, item: InboxItem) -> None:
        """Process `item` (in a batch with those the worker starts at the same moment)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._drain_task is None or self._drain_task.done():
            self._drain_task = asyncio.create_task(self._drain(), name="inbox-batch")
        try:
            await future
        except asyncio.CancelledError:
            # The worker is stopping (it cancels every job it holds): the batch stops with it, its
            # items left queued for the next run, rather than go on against a closing database.
            if self._drain_task is not None and not self._drain_task.done():
                self._drain_task.cancel()
            raise

    async def _drain(self) -> None:
        # One turn of the event loop, so that every job the worker is starting right now joins.
        await asyncio.sleep(0)
        batch: list[tuple[InboxItem, asyncio.Future[None]]] = []
        try:
            while self._waiting:
                batch = self._waiting[:MAX_BATCH]
                del self._waiting[:MAX_BATCH]
                await self._process(batch)
        except asyncio.CancelledError:
            for _item, future in [*batch, *self._waiting]:
                future.cancel()
            self._waiting.clear()
            raise

    async def _process(self, batch: list[tuple[InboxItem, asyncio.Future[None]]]) -> None:
        await self._read_ahead([item for item, _future in batch])
        units = [(item, future, WriteBatch()) for item, future in batch]
        outcomes = await asyncio.gather(
            *(self._handle(item, writes) for item, _future, writes in units), return_exceptions=True
        )
        ready: list[tuple[InboxItem, asyncio.Future[None], WriteBatch, str | None]] = []
        for (item, future, writes), outcome in zip(units, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                # Unexpected: the worker records the failure and retries the item later.
                _settle(future, outcome)
            else:
                ready.append((item, future, writes, outcome))
        if not ready:
            return
        combined = WriteBatch()
        for _item, _future, writes, _outcome in ready:
            combined.merge(writes)
        try:
            await self._commit(combined, [(item, outcome) for item, _f, _w, outcome in ready])
        except Exception:
            # Something in one item's rows must not hold the others back: each on its own.
            log.warning("committing a batch of %s inbox items failed; committing them one by one", len(ready))
            for item, future, writes, outcome in ready:
                try:
                    await self._commit_alone(item, writes, outcome)
                except Exception as error:
                    _settle(future, error)
                else:
                    _settle(future)
        else:
            for _item, future, _writes, _outcome in ready:
                _settle(future)

    async def _read_ahead(self, items: list[InboxItem]) -> None:
        """What the handlers will ask about the batch's actors, read for all of them at once.

        Their actors' accounts, who here follows them and who hides them: each handler would
        otherwise read these for its own item, a few queries apiece, which under load cost more
        than everything else the worker does (bench/bench_worker_load.py). The answers go into
        the read cache the handlers ask; whatever is not read here (an actor to fetch, an error)
        the handler reads itself as before.
        """
        uris = {uri for item in items if (uri := _actor_uri(item.payload)) is not None}
        uris -= {uri for uri in uris if self.cache.fresh(actor_cache_key(uri))}
        try:
            accounts = await ActorResolver(self.context).usable_actors(uris)
            for uri, account in accounts.items():
                self.cache.put(actor_cache_key(uri), account)
            remote = [account for account in accounts.values() if not account.is_local]
            await RemotePostService(self.context, self.cache).read_ahead(remote)
        except (PoolTimeout, SQLAlchemyError):
            log.warning("reading ahead for %d inbox items failed; each reads for itself", len(items))

    async def _commit_alone(self, item: InboxItem, writes: WriteBatch, outcome: str | None) -> None:
        try:
            await self._commit(writes, [(item, outcome)])
        except IntegrityError:
            # What it read changed before its rows went in (the post a boost points at was deleted
            # by another item of the batch): handled once more from fresh reads, which now say so.
            self.cache = ReadCache(ttl=READ_CACHE_SECONDS)
            again = WriteBatch()
            outcome = await self._handle(item, again)
            await self._commit(again, [(item, outcome)])

    async def _handle(self, item: InboxItem, writes: WriteBatch) -> str | None:
        """Run the item's handler; the reason it was ignored, or None when it was handled."""
        try:
            activity = parse_activity(item.payload)
            # A domain blocked after the delivery arrived is not acted on either.
            if await self.context.domain_policy.suspending(authority(activity.actor)) is not None:
                raise Ignored("the actor's domain is blocked")
            await dispatch(
                Inbound(
                    context=self.context,
                    activity=activity,
                    document=item.payload,
                    signer=item.signer_uri,
                    recipient_account_id=item.recipient_account_id,
                    writes=writes,
                    cache=self.cache,
                )
            )
        except (Ignored, InvalidObject) as reason:
            # Whatever the handler had planned before giving up is not written.
            writes.posts.clear()
            writes.favourites.clear()
            outcome = str(reason) or type(reason).__name__
            log.debug("inbox item %s (%s) ignored: %s", item.id, item.activity_type, outcome)
            return outcome
        return None

    async def _commit(self, writes: WriteBatch, finished: list[tuple[InboxItem, str | None]]) -> None:
        async with write_session(self.context.write_sessions) as session:
            try:
                await writes.apply(session, tag_ids=self.tag_ids)
            except Exception:
                # An id remembered from a rolled-back transaction may not exist; start afresh.
                self.tag_ids.clear()
                raise
            await _mark_done(session, finished)
            await session.commit()


async def _mark_done(session: AsyncSession, finished: list[tuple[InboxItem, str | None]]) -> None:
    table = table_of(InboxItem)
    done = {"state": JobState.DONE.value, "processed_at": utcnow(), "locked_until": None}
    # The handled items (most of them) in one statement; an UPDATE per row, as the ignored ones
    # with their reasons need, costs its parameters' processing once per row, inside the write
    # transaction.
    handled = [item.id for item, outcome in finished if outcome is None]
    if handled:
        await session.execute(update(table).where(table.c.id.in_(handled)).values(last_error=None, **done))
    ignored = [{"item_id": item.id, "outcome": outcome} for item, outcome in finished if outcome is not None]
    if ignored:
        await session.execute(
            update(table)
            .where(table.c.id == bindparam("item_id"))
            .values(last_error=bindparam("outcome"), **done),
            ignored,
        )


def _actor_uri(payload: object) -> str | None:
    actor = payload.get("actor") if isinstance(payload, dict) else None
    if isinstance(actor, dict):
        actor = actor.get("id")
    return actor if isinstance(actor, str) and len(actor) <= MAX_URL_LENGTH else None


def _settle(future: asyncio.Future[None], error: BaseException | None = None) -> None:
    if future.done():
        return
    if isinstance(error, asyncio.CancelledError):
        future.cancel()
    elif error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
