"""One post: its thread, editing, deleting, and boost, like and pin."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from app.context import AppContext
from app.dependencies import get_context
from app.http_errors import BadRequest, Forbidden, NotFound
from app.i18n import N_
from app.models import Account, Post
from app.services.image_processing import MediaInvalid
from app.services.media import MediaService
from app.services.post_lists import thread_posts
from app.services.posting import PostingError, PostingService
from app.web.compose_pages import (
    POST_LANGUAGES,
    UNDESCRIBED_WARNING,
    MediaSlot,
    accepted_types,
    slots_of,
    upload_slots,
    with_blank_slots,
)
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


async def _edit_page(
    request: Request,
    context: AppContext,
    viewer: Viewer,
    post: Post,
    author: Account,
    *,
    values: dict[str, str],
    slots: list[MediaSlot],
    error: str | None = None,
    warning: str | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "staff/edit.html",
        {
            "post": post,
            "author": author,
            "values": values,
            "error": error,
            "warning": warning,
            "languages": POST_LANGUAGES,
            "slots": slots,
            "accepted_types": accepted_types(),
            "descriptions_required": await MediaService(context, viewer).descriptions_required(),
        },
        status_code=status_code,
    )


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
        "sensitive": "1" if post.sensitive else "",
    }
    attachments = await MediaService(context, viewer).attached_to(author, post.id)
    return await _edit_page(
        request, context, viewer, post, author, values=values, slots=slots_of(attachments)
    )


@router.post("/posts/{post_id}/edit")
async def edit(
    request: Request,
    post_id: str,
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(current_user),
) -> Response:
    """Text, content warning, language, and the attachments: kept (with a new description or focal
    point), removed, or added, as in the composer."""
    post, author = await _managed_post(request, context, viewer, post_id)
    # Read here rather than as Form() parameters: new files come as uploads in the same form.
    form = await request.form()

    def field(name: str) -> str:
        value = form.get(name)
        return value if isinstance(value, str) else ""

    values = {
        "text": field("text"),
        "spoiler_text": field("spoiler_text"),
        "language": field("language"),
        "sensitive": "1" if field("sensitive") else "",
    }
    slots: list[MediaSlot] = []

    async def refused(message: str, status_code: int, *, warning: bool = False) -> Response:
        # The form comes back with what was typed and what was uploaded.
        return await _edit_page(
            request,
            context,
            viewer,
            post,
            author,
            values=values,
            slots=with_blank_slots(slots),
            error=None if warning else message,
            warning=message if warning else None,
            status_code=status_code,
        )

    try:
        slots = await upload_slots(request, context, viewer, author, form)
    except MediaInvalid as error:
        return await refused(error.message, 422)
    attached = [slot.media for slot in slots if slot.media is not None]
    required = await MediaService(context, viewer).descriptions_required()
    if (
        any(not media.description for media in attached)
        and not required
        and not field("without_descriptions")
    ):
        return await refused(translate(request, UNDESCRIBED_WARNING), 400, warning=True)
    # A form without the attachment fields (an older page, a script) leaves them as they are.
    with_media_fields = "description_0" in form
    try:
        await PostingService(context, viewer).edit(
            author,
            post.id,
            values["text"],
            spoiler_text=values["spoiler_text"] or None,
            sensitive=bool(values["sensitive"]) if with_media_fields else None,
            language=values["language"] or None,
            media_ids=[media.id for media in attached] if with_media_fields else None,
        )
    except PostingError as error:
        return await refused(str(error), 400)
    except MediaInvalid as error:
        return await refused(error.message, 422)
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
