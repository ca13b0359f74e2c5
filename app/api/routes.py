"""Every router of the client API, for create_app to include at once."""

from __future__ import annotations

from fastapi import APIRouter

from app.api import instance, oauth
from app.api.streaming import routes as streaming
from app.api.v1 import accounts, instance_info, statuses, timelines
from app.api.v1 import announcements as v1_announcements
from app.api.v1 import markers as v1_markers
from app.api.v1 import notifications as v1_notifications
from app.api.v1 import saved_posts as v1_saved_posts
from app.api.v1 import status_actions as v1_status_actions
from app.api.v1 import tag_timeline as v1_tag_timeline
from app.api.v2 import notifications as v2_notifications

router = APIRouter()
for part in (instance, oauth, instance_info, accounts, statuses, timelines, streaming):
    router.include_router(part.router)
router.include_router(v1_status_actions.router)
router.include_router(v1_saved_posts.router)
router.include_router(v1_tag_timeline.router)
router.include_router(v1_notifications.router)
router.include_router(v2_notifications.router)
router.include_router(v1_markers.router)
router.include_router(v1_announcements.router)

__all__ = ["router"]
