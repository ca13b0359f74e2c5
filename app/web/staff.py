"""The staff's daily pages, one module per page group: timelines, writing, one post, notifications,
search and follow.

Every action calls the domain service the CLI uses too (posting, following, follow requests);
these routes only translate forms into calls and outcomes into pages.
"""

from __future__ import annotations

from fastapi import APIRouter

from app.web import compose_pages, notification_pages, post_pages, search_pages, timeline_pages

router = APIRouter()
for pages in (timeline_pages, compose_pages, post_pages, notification_pages, search_pages):
    router.include_router(pages.router)
