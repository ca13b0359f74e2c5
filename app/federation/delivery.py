"""Delivery of our activities to remote inboxes (outbound federation)."""

from __future__ import annotations

from app.context import AppContext
from app.models import DeliveryJob


class Deliverer:
    def __init__(self, context: AppContext) -> None:
        self.context = context

    async def __call__(self, job: DeliveryJob) -> None:
        raise NotImplementedError("delivery arrives with outbound federation")
