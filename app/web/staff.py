"""The staff's daily pages: timelines, writing, acting on posts, notifications, search and follow.

Every action calls the domain service the CLI uses too (posting, following, follow requests);
these routes only translate forms into calls and outcomes into pages.
"""

from __future__ import annotations

import logging

import httpx
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from app.activitypub.resolver import ActorResolver, ResolveError
from app.context import AppContext
from app.dependencies import get_context
from app.http_errors import BadRequest, Forbidden, NotFound, TooManyRequests
from app.i18n import N_, supported
from app.models import Account, Post, Visibility
from app.services.errors import RateLimited
from app.services.follow_requests import FollowRequestService
from app.services.following import FollowingError, FollowingService
from app.services.notifications import NotificationService
from app.services.post_lists import (
    local_posts,
    thread_posts,
    visible_posts_of,
)
from app.services.posting import PostingError, PostingService, visible_length
from app.services.profiles import ProfileService
from app.services.staff import StaffService
from app.services.text_format import render_plain_text
from app.services.timelines import TimelineService
from app.services.visibility import can_see
from app.web.ids import EntityId, parse_id
from app.web.notices import redirect
from app.web.post_views import (
    account_by_id,
    accounts_by_id,
    build_cards,
    follow_state,
    post_by_id,
    search_local_accounts,
    timeline_cursor,
)
from app.web.session import Viewer, current_user, safe_next
from app.web.templating import render, request_locale, translate

log = logging.getLogger(__name__)

router = APIRouter()

PAGE_SIZE = 20
# Languages offered in the composer (ISO 639-1), by their own names.
POST_LANGUAGES = {
    "en": "English",
    "de": "Deutsch",
    "fr": "Français",
    "es": "Español",
    "it": "Italiano",
    "nl": "Nederlands",
    "pl": "Polski",
    "pt": "Português",
    "da": "Dansk",
    "sv": "Svenska",
    "nb": "Norsk bokmål",
    "fi": "Suomi",
    "cs": "Čeština",
    "tr": "Türkçe",
    "uk": "Українська",
    "ru": "Русский",
    "el": "Ελληνικά",
    "ar": "العربية",
    "ja": "日本語",
    "zh": "中文",
    "ko": "한국어",
}
VISIBILITIES = [v.value for v in Visibility]


def _cursor(request: Request, max_id: str | None) -> int | None:
    if not max_id:
        return None
    cursor = parse_id(max_id)
    if cursor is None:
        raise BadRequest(translate(request, N_("The page cursor is not valid.")))
    return cursor


def _here(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


# ----------------------------------------------------------------------------------------------
# Timelines


@router.get("/home")
async def home_timeline(
    request: Request,
    max_id: str | None = None,
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(current_user),
) -> Response:
    cursor = _cursor(request, max_id)
    summaries = await TimelineService(context).home(viewer.account, limit=PAGE_SIZE, max_id=cursor)
    items = [summary.post for summary in summaries]
    next_max_id = (
        await timeline_cursor(context, viewer.account.id, items[-1].id)
        if len(summaries) >= PAGE_SIZE
        else None
    )
    return render(
        request,
        "staff/timeline.html",
        {
            "title": N_("Home"),
            "intro": N_("Your posts and the posts of the accounts you follow, newest first."),
            "cards": await build_cards(context, items, viewer),
            "next_max_id": next_max_id,
            "return_to": _here(request),
            "empty": N_("Nothing here yet. Write a post, or search for accounts to follow."),
        },
    )


@router.get("/local")
async def local_timeline(
    request: Request,
    max_id: str | None = None,
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(current_user),
) -> Response:
    posts, next_max_id = await local_posts(context, viewer, max_id=_cursor(request, max_id), limit=PAGE_SIZE)
    return render(
        request,
        "staff/timeline.html",
        {
            "title": N_("Local"),
            "intro": N_("Public posts written on this server."),
            "cards": await build_cards(context, posts, viewer),
            "next_max_id": next_max_id,
            "return_to": _here(request),
            "empty": N_("No public posts on this server yet."),
        },
    )


# ----------------------------------------------------------------------------------------------
# Writing


def _default_language(request: Request) -> str:
    return supported(request_locale(request)) or "en"


async def _compose_page(
    request: Request,
    context: AppContext,
    viewer: Viewer,
    *,
    values: dict[str, str],
    reply_to: Post | None,
    error: str | None = None,
    preview: str | None = None,
    status_code: int = 200,
) -> Response:
    accounts = await StaffService(context).postable_accounts(viewer.user)
    reply_card = None
    if reply_to is not None:
        cards = await build_cards(context, [reply_to], viewer)
        reply_card = cards[0] if cards else None
    return render(
        request,
        "staff/compose.html",
        {
            "values": values,
            "accounts": accounts,
            "reply_card": reply_card,
            "error": error,
            "preview": preview,
            "preview_length": visible_length(values.get("text", "")) + len(values.get("spoiler_text", "")),
            "languages": POST_LANGUAGES,
            "visibilities": VISIBILITIES,
        },
        status_code=status_code,
    )


async def _visible_post(context: AppContext, viewer: Viewer, post_id: int | str) -> Post:
    number = parse_id(post_id)
    post = await post_by_id(context, number) if number is not None else None
    if post is None or not await can_see(context, viewer, post):
        raise NotFound("this post does not exist or was deleted")
    return post


@router.get("/compose")
async def compose_form(
    request: Request,
    reply_to: str | None = None,
    mention: str | None = None,
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(current_user),
) -> Response:
    values = {
        "text": "",
        "spoiler_text": "",
        "visibility": Visibility.PUBLIC.value,
        "language": _default_language(request),
        "author": viewer.account.username,
        "in_reply_to": "",
    }
    target = None
    if reply_to:
        target = await _visible_post(context, viewer, reply_to)
        author = await account_by_id(context, target.account_id)
        if author is not None and author.id != viewer.account.id:
            values["text"] = f"@{author.username}{'@' + author.domain if author.domain else ''} "
        values["in_reply_to"] = str(target.id)
        values["spoiler_text"] = target.summary or ""
        # A reply is never more public than what it answers.
        if target.visibility != Visibility.PUBLIC:
            values["visibility"] = target.visibility
    elif mention:
        values["text"] = f"@{mention.strip().lstrip('@')[:300]} "
    return await _compose_page(request, context, viewer, values=values, reply_to=target)


@router.post("/compose")
async def compose(
    request: Request,
    text: str = Form(""),
    spoiler_text: str = Form(""),
    visibility: str = Form("public"),
    language: str = Form(""),
    author: str = Form(""),
    in_reply_to: str = Form(""),
    action: str = Form("publish"),
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(current_user),
) -> Response:
    values = {
        "text": text,
        "spoiler_text": spoiler_text,
        "visibility": visibility,
        "language": language,
        "author": author,
        "in_reply_to": in_reply_to,
    }
    reply_to = await _visible_post(context, viewer, in_reply_to) if in_reply_to else None
    accounts = await StaffService(context).postable_accounts(viewer.user)
    chosen = next((account for account in accounts if account.username == author), None)
    if chosen is None:
        raise Forbidden(translate(request, N_("You may not post as this account.")))
    if visibility not in VISIBILITIES:
        raise BadRequest(translate(request, N_("Choose who can see the post.")))
    if action == "preview":
        preview = render_plain_text(text.strip(), mention_hrefs={}, hashtag_href=context.urls.tag)
        return await _compose_page(
            request, context, viewer, values=values, reply_to=reply_to, preview=preview
        )
    try:
        post = await PostingService(context, viewer).create(
            chosen,
            text,
            visibility=visibility,
            spoiler_text=spoiler_text or None,
            language=language or None,
            in_reply_to=str(reply_to.id) if reply_to else None,
        )
    except RateLimited as error:
        raise TooManyRequests(
            translate(request, N_("Too many posts from this account. Wait a while, then try again.")),
            headers=error.headers,
        ) from None
    except PostingError as error:
        return await _compose_page(
            request, context, viewer, values=values, reply_to=reply_to, error=str(error), status_code=400
        )
    return redirect(f"/posts/{post.id}", "posted")


# ----------------------------------------------------------------------------------------------
# One post: its thread, and what can be done with it


@router.get("/posts/{post_id}")
async def thread(
    request: Request,
    post_id: str,
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(current_user),
) -> Response:
    post = await _visible_post(context, viewer, post_id)
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
    post = await _visible_post(context, viewer, post_id)
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
            post = await _visible_post(context, viewer, post_id)
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


# ----------------------------------------------------------------------------------------------
# Notifications and follow requests


async def _notification_account(
    request: Request, context: AppContext, viewer: Viewer, username: str | None
) -> tuple[Account, list[Account]]:
    accounts = await StaffService(context).postable_accounts(viewer.user)
    if not username:
        return accounts[0], accounts
    for account in accounts:
        if account.username == username.lower():
            return account, accounts
    raise Forbidden(translate(request, N_("You may not read this account's notifications.")))


@router.get("/notifications")
async def notifications(
    request: Request,
    account: str | None = None,
    max_id: str | None = None,
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(current_user),
) -> Response:
    owner, choices = await _notification_account(request, context, viewer, account)
    cursor = _cursor(request, max_id)
    items = await NotificationService(context).for_account(owner, limit=PAGE_SIZE, max_id=cursor)
    requests = await FollowRequestService(context).pending_requests(owner) if cursor is None else []
    post_ids = list(dict.fromkeys(item.notification.post_id for item in items if item.notification.post_id))
    posts = await ProfileService(context).posts_by_id(post_ids, viewer)
    cards = {
        card.item.id: card
        for card in await build_cards(
            context, [posts[post_id] for post_id in post_ids if post_id in posts], viewer
        )
    }
    senders = await accounts_by_id(context, {item.notification.from_account_id for item in items})
    return render(
        request,
        "staff/notifications.html",
        {
            "owner": owner,
            "choices": choices,
            "items": items,
            "senders": senders,
            "cards": cards,
            "requests": requests,
            "next_max_id": items[-1].notification.id if len(items) >= PAGE_SIZE else None,
        },
    )


@router.post("/notifications/requests/{follower_id}/{decision}")
async def answer_request(
    request: Request,
    follower_id: EntityId,
    decision: str,
    account: str = Form(""),
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(current_user),
) -> Response:
    owner, _choices = await _notification_account(request, context, viewer, account or None)
    follower = await account_by_id(context, follower_id)
    if follower is None or decision not in ("approve", "reject"):
        raise NotFound(translate(request, N_("There is no such follow request.")))
    requests = FollowRequestService(context, viewer)
    done = await (requests.approve if decision == "approve" else requests.reject)(owner, follower)
    if not done:
        raise NotFound(translate(request, N_("There is no such follow request.")))
    target = "/notifications" + (f"?account={owner.username}" if owner.id != viewer.account.id else "")
    return redirect(target, "approved" if decision == "approve" else "rejected")


# ----------------------------------------------------------------------------------------------
# Search and follow


@router.get("/search")
async def search(
    request: Request,
    q: str = "",
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(current_user),
) -> Response:
    query = q.strip()[:2048]
    result: Account | None = None
    local_matches: list[Account] = []
    error = None
    state = None
    cards = []
    if query.startswith("#") and len(query) > 1:
        return redirect(f"/tags/{query[1:]}")
    if query:
        looks_remote = query.startswith(("http://", "https://")) or query.lstrip("@").count("@") == 1
        if looks_remote:
            try:
                result = await ActorResolver(context).resolve(query)
            except ResolveError as error_:
                error = str(error_)
            except Exception as unexpected:  # network trouble with user-given input is a message, not a 500
                log.info("search for %r failed: %s", query, unexpected)
                error = translate(request, N_("That account could not be looked up right now."))
        else:
            local_matches = await search_local_accounts(context, query)
    if result is not None:
        state = await follow_state(context, viewer.account.id, result.id)
        cards = await build_cards(context, await visible_posts_of(context, result, viewer), viewer)
    return render(
        request,
        "staff/search.html",
        {
            "query": query,
            "result": result,
            "local_matches": local_matches,
            "state": state,
            "cards": cards,
            "error": error,
            "return_to": _here(request),
        },
        status_code=200 if error is None else 404,
    )


def _account_target(request: Request, target: str, missing: str) -> str:
    """The handle or URL a follow or unfollow form names, stripped; `missing` is the complaint when
    it names nothing usable."""
    target = target.strip()
    if not target or not _valid_target(target):
        raise BadRequest(translate(request, missing))
    return target


def _valid_target(target: str) -> bool:
    """A handle, or a URL that can be requested at all (the services expect one of the two)."""
    if len(target) > 2048:
        return False
    if target.startswith(("http://", "https://")):
        try:
            return bool(httpx.URL(target).host)
        except (httpx.InvalidURL, UnicodeError, ValueError):
            return False
    return True


@router.post("/follow")
async def follow(
    request: Request,
    target: str = Form(""),
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(current_user),
) -> Response:
    target = _account_target(request, target, N_("Name the account to follow."))
    try:
        outcome = await FollowingService(context, viewer).follow(viewer.account, target)
    except FollowingError as error:
        raise BadRequest(str(error)) from None
    return redirect("/search", "follow_requested" if outcome.pending else "followed", q=outcome.target.uri)


@router.post("/unfollow")
async def unfollow(
    request: Request,
    target: str = Form(""),
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(current_user),
) -> Response:
    target = _account_target(request, target, N_("Name the account to unfollow."))
    try:
        await FollowingService(context, viewer).unfollow(viewer.account, target)
    except FollowingError as error:
        raise BadRequest(str(error)) from None
    return redirect("/search", "unfollowed", q=target)
