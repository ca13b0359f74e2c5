"""Every router of the client API, for create_app to include at once."""

from __future__ import annotations

from fastapi import APIRouter

from app.api import instance, oauth
from app.api.streaming import routes as streaming
from app.api.v1 import accounts, instance_info, media, statuses, timelines

router = APIRouter()
for part in (instance, oauth, instance_info, accounts, media, statuses, timelines, streaming):
    router.include_router(part.router)

__all__ = ["router"]
