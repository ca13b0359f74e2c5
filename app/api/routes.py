"""Every router of the client API, for create_app to include at once."""

from __future__ import annotations

from fastapi import APIRouter

from app.api import instance, oauth
from app.api.streaming import routes as streaming
from app.api.v1 import (
    account_actions,
    account_lists,
    accounts,
    instance_info,
    push,
    registrations,
    reports,
    statuses,
    timelines,
)

router = APIRouter()
# The accounts' fixed paths (relationships, …) come before `/accounts/{id}`.
for part in (
    instance,
    oauth,
    instance_info,
    account_actions,
    account_lists,
    reports,
    registrations,
    accounts,
    statuses,
    timelines,
    push,
    streaming,
):
    router.include_router(part.router)

__all__ = ["router"]
