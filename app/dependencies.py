"""Request dependencies shared by every surface (web pages, ActivityPub, discovery, the client API).

Outside app/web/ so that no other surface imports the web package for them.
"""

from __future__ import annotations

from fastapi import Request

from app.context import AppContext


def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context
