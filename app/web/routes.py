"""The HTML surface: public pages, logging in, staff pages, settings and administration.

Every route below runs `page_state` (who is logged in, which language, the instance name) and
`verify_csrf` (a POST without the form's token is refused with 403) before its own code.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from app.web import (
    admin,
    announcement_pages,
    app_settings_pages,
    federation_pages,
    login,
    moderation_pages,
    oauth_pages,
    profiles,
    public,
    settings_pages,
    sign_up_pages,
    staff,
)
from app.web.session import page_state, verify_csrf

router = APIRouter(dependencies=[Depends(page_state), Depends(verify_csrf)])
router.include_router(public.router)
router.include_router(profiles.router)
router.include_router(login.router)
router.include_router(sign_up_pages.router)
router.include_router(oauth_pages.router)
router.include_router(staff.router)
router.include_router(moderation_pages.router)
router.include_router(settings_pages.router)
router.include_router(app_settings_pages.router)
router.include_router(admin.router)
router.include_router(federation_pages.router)
router.include_router(announcement_pages.router)
