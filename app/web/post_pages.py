"""One post: its thread, editing, deleting, and boost, like and pin."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from app.context import AppContext
from app.dependencies import get_context
from app.http_errors import BadRequest, Forbidden, NotFound
from app.i18n import N_
from app.models import Account, Post
from app.services.post_lists import thread_posts
from app.services.posting import PostingError, PostingService
from app.web.compose_pages import POST_LANGUAGES
from app.web.notices import redirect
from app.web.post_views import account_by_id, build_cards
from app.web.session import Viewer, current_user, safe_next
from app.web.staff_common import visible_post
from app.web.templating import render, translate

router = APIRouter()


@router.get("/posts/{post_id}")
async def thread(
    request: Request,
    post_id: str,
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(current_user),
) -> Response:
    post = await visible_post(context, viewer, post_id)
    if post.reblog_of_id:
        return redirect(f"/posts/{post.reblog_of_id}")
    ancestors, replies = await thread_posts(context, post, viewer)
    cards = {card.post.id: card for card in await build_cards(context, [post, *ancestors, *replies], viewer)}
    author = await account_by_id(context, post.account_id)
    return render(
        request,
        "post.html",
        {
            "post": post,
            "author": author,
            "focus_card": cards[post.id],
            "ancestors": [cards[item.id] for item in ancestors if item.id in cards],
            "replies": [cards[item.id] for item in replies if item.id in cards],
            "image": None,
            "staff": True,
            "return_to": request.url.path,
        },
    )


async def _managed_post(
    request: Request, context: AppContext, viewer: Viewer, post_id: str
) -> tuple[Post, Account]:
    """A local post the viewer may edit, delete or pin, with the account it belongs to."""
    post = await visible_post(context, viewer, post_id)
    if not post.local or not viewer.may_act_as(post.account_id):
        raise Forbidden(
            translate(request, N_("Only the author (or the organisation's team) can change this post."))
        )
    author = await account_by_id(context, post.account_id)
    assert author is not None
    return post, author


@router.get("/posts/{post_id}/edit")
async def edit_form(
    request: Request,
    post_id: str,
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(current_user),
) -> Response:
    post, author = await _managed_post(request, context, viewer, post_id)
    values = {
        "text": post.content_source or "",
        "spoiler_text": post.summary or "",
        "language": post.language or "",
    }
    return render(
        request,
        "staff/edit.html",
        {"post": post, "author": author, "values": values, "error": None, "languages": POST_LANGUAGES},
    )


@router.post("/posts/{post_id}/edit")
async def edit(
    request: Request,
    post_id: str,
    text: str = Form(""),
    spoiler_text: str = Form(""),
    language: str = Form(""),
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(current_user),
) -> Response:
    post, author = await _managed_post(request, context, viewer, post_id)
    try:
        await PostingService(context, viewer).edit(
            author, post.id, text, spoiler_text=spoiler_text or None, language=language or None
        )
    except PostingError as error:
        values = {"text": text, "spoiler_text": spoiler_text, "language": language}
        return render(
            request,
            "staff/edit.html",
            {
                "post": post,
                "author": author,
                "values": values,
                "error": str(error),
                "languages": POST_LANGUAGES,
            },
            status_code=400,
        )
    return redirect(f"/posts/{post.id}", "edited")


def _back(return_to: str, fallback: str) -> str:
    return safe_next(return_to, fallback)


@router.post("/posts/{post_id}/delete")
async def delete(
    request: Request,
    post_id: str,
    return_to: str = Form(""),
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(current_user),
) -> Response:
    post, author = await _managed_post(request, context, viewer, post_id)
    try:
        await PostingService(context, viewer).delete(author, post.id)
    except PostingError as error:
        raise BadRequest(str(error)) from None
    target = _back(return_to, "/home")
    if target.startswith(f"/posts/{post.id}") or target.startswith(f"/@{author.username}/{post.id}"):
        target = "/home"
    return redirect(target, "deleted")


@router.post("/posts/{post_id}/{action}")
async def act_on_post(
    request: Request,
    post_id: str,
    action: str,
    return_to: str = Form(""),
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(current_user),
) -> Response:
    posting = PostingService(context, viewer)
    try:
        if action in ("boost", "unboost", "like", "unlike"):
            post = await visible_post(context, viewer, post_id)
            if action == "boost":
                await posting.boost(viewer.account, post.id)
            elif action == "unboost":
                await posting.unboost(viewer.account, post.id)
            elif action == "like":
                await posting.like(viewer.account, post.id)
            else:
                await posting.unlike(viewer.account, post.id)
        elif action in ("pin", "unpin"):
            post, author = await _managed_post(request, context, viewer, post_id)
            if action == "pin":
                await posting.pin(author, post.id)
            else:
                await posting.unpin(author, post.id)
        else:
            raise NotFound(translate(request, N_("Unknown action.")))
    except PostingError as error:
        raise BadRequest(str(error)) from None
    notice = {
        "boost": "boosted",
        "unboost": "unboosted",
        "like": "liked",
        "unlike": "unliked",
        "pin": "pinned",
        "unpin": "unpinned",
    }[action]
    target = _back(return_to, f"/posts/{post.id}")
    return redirect(f"{target}#post-{post.id}" if "#" not in target else target, notice)
