"""Every router of the client API, for create_app to include at once."""

from __future__ import annotations

from fastapi import APIRouter

from app.api import instance, oauth
from app.api.streaming import routes as streaming
from app.api.v1 import (
    account_actions,
    account_lists,
    accounts,
    announcements,
    conversations,
    filters,
    instance_info,
    lists,
    markers,
    media,
    push,
    registrations,
    reports,
    saved_posts,
    status_actions,
    statuses,
    tag_timeline,
    tags,
    timelines,
    trends,
)
from app.api.v1 import notifications as v1_notifications
from app.api.v2 import filters as filters_v2
from app.api.v2 import notifications as v2_notifications
from app.api.v2 import search

router = APIRouter()
# The accounts' fixed paths (relationships, search, …) come before `/accounts/{id}`.
for part in (
    instance,
    oauth,
    instance_info,
    search,
    lists,
    filters,
    filters_v2,
    tags,
    conversations,
    trends,
    account_actions,
    account_lists,
    reports,
    registrations,
    accounts,
    media,
    statuses,
    timelines,
    status_actions,
    saved_posts,
    tag_timeline,
    v1_notifications,
    v2_notifications,
    markers,
    announcements,
    push,
    streaming,
):
    router.include_router(part.router)

__all__ = ["router"]
