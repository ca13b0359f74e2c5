"""Every router of the client API, for create_app to include at once."""

from __future__ import annotations

from fastapi import APIRouter

from app.api import instance, oauth
from app.api.v1 import (
    accounts,
    conversations,
    filters,
    instance_info,
    lists,
    statuses,
    tags,
    timelines,
    trends,
)
from app.api.v2 import filters as filters_v2
from app.api.v2 import search

router = APIRouter()
# search before accounts: /api/v1/accounts/search is not an account id.
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
    accounts,
    statuses,
    timelines,
):
    router.include_router(part.router)

__all__ = ["router"]
