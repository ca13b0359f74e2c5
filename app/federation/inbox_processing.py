"""Processing of received activities (inbound federation): one handler per activity type."""

from __future__ import annotations

from app.context import AppContext
from app.models import InboxItem


class InboxProcessor:
    def __init__(self, context: AppContext) -> None:
        self.context = context

    async def __call__(self, item: InboxItem) -> None:
        raise NotImplementedError("inbound processing arrives with the inbox")
