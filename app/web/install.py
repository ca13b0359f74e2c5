"""Wiring of the HTML surface into an app: templates, translations, session handling, media files."""

from __future__ import annotations

import contextlib
from pathlib import Path

from fastapi import FastAPI

from app.context import AppContext
from app.i18n import Catalogs
from app.services.media_store import media_root
from app.web.media_files import router as media_router
from app.web.security import SecurityHeadersMiddleware
from app.web.session import install_session_handlers
from app.web.templating import build_templates


def install_web(app: FastAPI, context: AppContext, templates_dir: Path) -> None:
    app.state.catalogs = Catalogs()
    app.state.templates = build_templates(templates_dir, context, app.state.catalogs)
    install_session_handlers(app)
    app.add_middleware(SecurityHeadersMiddleware, https=context.settings.scheme == "https")
    directory = media_root(context.settings)
    with contextlib.suppress(OSError):  # reported when an upload is stored, not at start-up
        directory.mkdir(parents=True, exist_ok=True)
    # Files under /media are served by a route that sends only allowlisted types (app.web.media_files).
    app.include_router(media_router)
