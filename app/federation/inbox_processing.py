"""Processing of received activities (inbound federation), run by the worker for each InboxItem.

An item is finished in one of two ways: handled, or deliberately ignored (irrelevant, refused by
an origin rule, pointing at something we do not have), the reason then kept in `last_error`.
Only unexpected exceptions escape, and the worker retries those with backoff; every handler is
idempotent, so a retry or a second delivery after a crash changes nothing twice.
"""

from __future__ import annotations

import logging

from sqlalchemy import update
from sqlmodel import col

from app.activitypub.parsers import InvalidObject, authority, parse_activity
from app.context import AppContext
from app.federation.handlers.base import Ignored, Inbound
from app.federation.handlers.dispatch import dispatch
from app.models import InboxItem, JobState
from app.models.base import utcnow
from app.services.moderation import suspending_block

log = logging.getLogger(__name__)


class InboxProcessor:
    def __init__(self, context: AppContext) -> None:
        self.context = context

    async def __call__(self, item: InboxItem) -> None:
        outcome = None
        try:
            await self._handle(item)
        except (Ignored, InvalidObject) as reason:
            outcome = str(reason) or type(reason).__name__
            log.debug("inbox item %s (%s) ignored: %s", item.id, item.activity_type, outcome)
        async with self.context.sessions() as session:
            await session.execute(
                update(InboxItem)
                .where(col(InboxItem.id) == item.id)
                .values(state=JobState.DONE, processed_at=utcnow(), locked_until=None, last_error=outcome)
            )
            await session.commit()

    async def _handle(self, item: InboxItem) -> None:
        activity = parse_activity(item.payload)
        # A domain blocked after the delivery arrived is not acted on either.
        async with self.context.sessions() as session:
            if await suspending_block(session, authority(activity.actor)) is not None:
                raise Ignored("the actor's domain is blocked")
        await dispatch(
            Inbound(
                context=self.context,
                activity=activity,
                document=item.payload,
                signer=item.signer_uri,
                recipient_account_id=item.recipient_account_id,
            )
        )
