"""/api/v1/statuses/:id — edit, its history and source, pin, bookmark, mute the thread, and who
liked or boosted it.

Each calls the same services as the web pages (the edit and the pin federate as they do there),
as the account the token acts as. A post the token's account may not see is 404, whether it
exists or not; one it sees but may not change is 403.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlmodel import col, select

from app.api.auth import ApiCaller, scoped
from app.api.entities.account import account_entity
from app.api.entities.common import api_time
from app.api.entities.custom_emoji import custom_emoji_entity
from app.api.entities.status import media_entity
from app.api.form_values import flag
from app.api.pagination import link_header, page_request
from app.api.params import WrongType, request_params
from app.api.v1.statuses import MAX_STATUS_BODY, acting_account, one_status, visible_status
from app.context import AppContext
from app.dependencies import get_context
from app.http_errors import Forbidden, NotFound
from app.models import Account, Post, PostEdit
from app.services.bookmarks import PersonalMarks
from app.services.interaction_lists import favourited_by, reblogged_by
from app.services.posting import PostingService
from app.services.read_model import load_views

router = APIRouter(prefix="/api/v1/statuses")
public_read = scoped("read", "read:statuses", optional=True)
NOT_ALLOWED = "This action is not allowed"


def _own(caller: ApiCaller, post: Post) -> None:
    """A post the token's account sees but may not change: 403, as Mastodon answers."""
    if not post.local or not caller.viewer.may_act_as(post.account_id):
        raise Forbidden(NOT_ALLOWED)


async def _owner(context: AppContext, caller: ApiCaller, post: Post) -> Account:
    """The account that acts on its own post: the token's, or the organisation whose post a
    staff member's token manages (as the web UI lets them)."""
    author = acting_account(caller)
    if author.id == post.account_id:
        return author
    _own(caller, post)
    async with context.sessions() as session:
        owner = await session.get(Account, post.account_id)
    if owner is None:
        raise NotFound("Record not found")
    return owner


@router.put("/{status_id}")
async def edit(
    status_id: str,
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("write", "write:statuses", user=True)),
) -> JSONResponse:
    post = await visible_status(context, caller.viewer, status_id)
    _own(caller, post)
    params = await request_params(request)
    text = params.text("status")
    if text is None:
        raise WrongType("status: is missing")
    if len(text) > MAX_STATUS_BODY:
        raise WrongType("status: is too long")
    sensitive = flag(params, "sensitive", None)
    language = params.text("language")
    edited = await PostingService(context, caller.viewer).edit(
        await _owner(context, caller, post),
        post.id,
        text,
        spoiler_text=params.text("spoiler_text"),
        sensitive=sensitive,
        language=language or None,
        # Absent: the attachments stay; present (even empty): they are replaced, and the Update says so.
        media_ids=params.texts("media_ids") if "media_ids" in params or "media_ids[]" in params else None,
    )
    return JSONResponse(await one_status(context, caller.viewer, edited))


@router.get("/{status_id}/history")
async def history(
    status_id: str, context: AppContext = Depends(get_context), caller: ApiCaller = Depends(public_read)
) -> JSONResponse:
    """Every version, oldest first, the current one last (a post never edited has one)."""
    post = await visible_status(context, caller.viewer, status_id)
    views = await load_views(context, [post], caller.viewer)
    if not views:
        raise NotFound("Record not found")
    view = views[0]
    # A boost's id shows the boosted post's versions.
    post = view.post
    async with context.sessions() as session:
        earlier = (
            await session.scalars(
                select(PostEdit).where(col(PostEdit.post_id) == post.id).order_by(col(PostEdit.id))
            )
        ).all()
    author = account_entity(context, view.author)
    media = [media_entity(item) for item in view.media]

    def version(content: str, summary: str | None, sensitive: bool, moment: Any) -> dict[str, Any]:
        return {
            "content": content,
            "spoiler_text": summary or "",
            "sensitive": sensitive or bool(summary),
            "created_at": api_time(moment),
            "account": author,
            "poll": None,
            "media_attachments": media,
            "emojis": [custom_emoji_entity(emoji) for emoji in view.emojis],
        }

    body = [version(row.content_html, row.summary, row.sensitive, row.created_at) for row in earlier]
    body.append(version(post.content_html, post.summary, post.sensitive, post.edited_at or post.published_at))
    return JSONResponse(body)


@router.get("/{status_id}/source")
async def source(
    status_id: str,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("read", "read:statuses", user=True)),
) -> JSONResponse:
    """What the author typed, for an edit form; only for those who may edit it."""
    post = await visible_status(context, caller.viewer, status_id)
    if not post.local or not caller.viewer.may_act_as(post.account_id):
        raise NotFound("Record not found")
    return JSONResponse(
        {"id": str(post.id), "text": post.content_source or "", "spoiler_text": post.summary or ""}
    )


@router.post("/{status_id}/pin")
async def pin(
    status_id: str,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("write", "write:accounts", user=True)),
) -> JSONResponse:
    post = await visible_status(context, caller.viewer, status_id)
    if not post.local or not caller.viewer.may_act_as(post.account_id):
        raise WrongType("Validation failed: only your own posts can be pinned")
    await PostingService(context, caller.viewer).pin(await _owner(context, caller, post), post.id)
    return JSONResponse(await one_status(context, caller.viewer, post))


@router.post("/{status_id}/unpin")
async def unpin(
    status_id: str,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("write", "write:accounts", user=True)),
) -> JSONResponse:
    post = await visible_status(context, caller.viewer, status_id)
    if post.local and caller.viewer.may_act_as(post.account_id):
        await PostingService(context, caller.viewer).unpin(await _owner(context, caller, post), post.id)
    return JSONResponse(await one_status(context, caller.viewer, post))


@router.post("/{status_id}/bookmark")
async def bookmark(
    status_id: str,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("write", "write:bookmarks", user=True)),
) -> JSONResponse:
    post = await visible_status(context, caller.viewer, status_id)
    await PersonalMarks(context, caller.viewer).bookmark(acting_account(caller), post.id)
    return JSONResponse(await one_status(context, caller.viewer, post))


@router.post("/{status_id}/unbookmark")
async def unbookmark(
    status_id: str,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("write", "write:bookmarks", user=True)),
) -> JSONResponse:
    post = await visible_status(context, caller.viewer, status_id)
    await PersonalMarks(context, caller.viewer).unbookmark(acting_account(caller), post.id)
    return JSONResponse(await one_status(context, caller.viewer, post))


@router.post("/{status_id}/mute")
async def mute(
    status_id: str,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("write", "write:mutes", user=True)),
) -> JSONResponse:
    post = await visible_status(context, caller.viewer, status_id)
    await PersonalMarks(context, caller.viewer).mute_conversation(acting_account(caller), post.id)
    return JSONResponse(await one_status(context, caller.viewer, post))


@router.post("/{status_id}/unmute")
async def unmute(
    status_id: str,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("write", "write:mutes", user=True)),
) -> JSONResponse:
    post = await visible_status(context, caller.viewer, status_id)
    await PersonalMarks(context, caller.viewer).unmute_conversation(acting_account(caller), post.id)
    return JSONResponse(await one_status(context, caller.viewer, post))


@router.get("/{status_id}/favourited_by")
async def liked_by(
    status_id: str,
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("read", "read:accounts", optional=True)),
) -> JSONResponse:
    post = await visible_status(context, caller.viewer, status_id)
    accounts, ids = await favourited_by(context, caller.viewer, post, page_request(request, max_limit=80))
    return JSONResponse(
        [account_entity(context, account) for account in accounts],
        headers=link_header(request, context.settings.base_url, ids),
    )


@router.get("/{status_id}/reblogged_by")
async def boosted_by(
    status_id: str,
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("read", "read:accounts", optional=True)),
) -> JSONResponse:
    post = await visible_status(context, caller.viewer, status_id)
    accounts, ids = await reblogged_by(context, caller.viewer, post, page_request(request, max_limit=80))
    return JSONResponse(
        [account_entity(context, account) for account in accounts],
        headers=link_header(request, context.settings.base_url, ids),
    )


__all__ = ["router"]
