"""Search (accounts here and elsewhere, hashtags) and following or unfollowing what was found."""

from __future__ import annotations

import logging

import httpx
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from app.activitypub.resolver import ResolveError
from app.context import AppContext
from app.dependencies import get_context
from app.http_errors import BadRequest
from app.i18n import N_
from app.models import Account
from app.services.following import FollowingError, FollowingService
from app.services.post_lists import visible_posts_of
from app.services.search import SearchError, SearchService, looks_remote
from app.web.lookups import lookup_error
from app.web.notices import redirect
from app.web.post_views import build_cards, follow_state
from app.web.session import Viewer, current_user
from app.web.staff_common import here
from app.web.templating import render, translate

log = logging.getLogger(__name__)

router = APIRouter()


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
        if looks_remote(query):
            try:
                result = await SearchService(context, viewer).resolve_account(query)
            except ResolveError as error_:
                error = lookup_error(request, error_)
            except SearchError:  # network trouble with user-given input is a message, not a 500
                error = translate(request, N_("That account could not be looked up right now."))
        else:
            local_matches = await SearchService(context, viewer).local_accounts(query)
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
            "return_to": here(request),
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
