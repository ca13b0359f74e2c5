"""Every router of the client API, for create_app to include at once."""

from __future__ import annotations

from fastapi import APIRouter

from app.api import instance, oauth
from app.api.v1 import accounts, instance_info, saved_posts, status_actions, statuses, tag_timeline, timelines

router = APIRouter()
for part in (instance, oauth, instance_info, accounts, statuses, timelines):
    router.include_router(part.router)
router.include_router(status_actions.router)
router.include_router(saved_posts.router)
router.include_router(tag_timeline.router)

__all__ = ["router"]
