"""What the staff's pages share: the page size, the page cursor, the address to return to, and
the post a page is about (as the viewer may see it)."""

from __future__ import annotations

from fastapi import Request

from app.context import AppContext
from app.http_errors import BadRequest, NotFound
from app.i18n import N_
from app.models import Post
from app.services.posting import PostingService
from app.web.ids import parse_id
from app.web.session import Viewer
from app.web.templating import translate

PAGE_SIZE = 20


def page_cursor(request: Request, max_id: str | None) -> int | None:
    if not max_id:
        return None
    cursor = parse_id(max_id)
    if cursor is None:
        raise BadRequest(translate(request, N_("The page cursor is not valid.")))
    return cursor


def here(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


async def visible_post(context: AppContext, viewer: Viewer, post_id: int | str) -> Post:
    number = parse_id(post_id)
    post = await PostingService(context, viewer).visible_post(number) if number is not None else None
    if post is None:
        raise NotFound("this post does not exist or was deleted")
    return post
