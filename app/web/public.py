"""Pages anyone may read: the front page, first-admin setup, About, posts, hashtags, feeds, remote follow."""

from __future__ import annotations

import re
import secrets
from urllib.parse import quote

import httpx
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from app.activitypub.negotiation import wants_activity_json
from app.context import AppContext
from app.dependencies import get_context
from app.http_errors import BadRequest, Forbidden, NotFound
from app.i18n import N_
from app.models import Account, Post, Role
from app.public_cache import PAGE_SECONDS, SITE, account_tag, cache_publicly, post_tag
from app.services.accounts import INSTANCE_ACTOR_USERNAME, AccountError, AccountService
from app.services.domain_blocks import DomainBlockService
from app.services.instance import InstanceService
from app.services.post_lists import recent_public_posts, tagged_posts, thread_posts
from app.services.profiles import ProfileService
from app.services.text_format import render_plain_text
from app.services.viewer import Viewer as ServiceViewer
from app.services.visibility import can_see
from app.web.feeds import atom_feed, rss_feed
from app.web.ids import parse_id
from app.web.notices import redirect
from app.web.post_views import PUBLIC_VISIBILITIES, build_cards
from app.web.session import Viewer, anon_csrf_token, page_state
from app.web.templating import render, translate

router = APIRouter()

PUBLIC_MAX_AGE = 60
FEED_MAX_AGE = 300
_DOMAIN_RE = re.compile(r"^[a-z0-9.\-]+(?::\d{1,5})?$|^\[[0-9a-f:.]+\](?::\d{1,5})?$")
_TAG_RE = re.compile(r"^[\w\u0300-\u036f]{1,100}$")


def prose_html(context: AppContext, text: str) -> str:
    """Admin-written text (description, privacy policy) as HTML: paragraphs and links, nothing else."""
    return render_plain_text(text, mention_hrefs={}, hashtag_href=context.urls.tag)


@router.get("/")
async def front_page(request: Request, context: AppContext = Depends(get_context)) -> Response:
    accounts = AccountService(context)
    if await accounts.count_users() == 0:
        anon_csrf_token(request)
        return render(request, "setup.html", {"error": None, "username": ""})
    about = await InstanceService(context).about()
    listed = [
        item.account
        for item in await accounts.list_local_accounts()
        if item.account.discoverable and item.account.deleted_at is None and item.account.suspended_at is None
    ]
    if request.state.viewer is None:
        cache_publicly(
            request, [SITE, *(account_tag(account.id) for account in listed)], seconds=PAGE_SECONDS
        )
    return render(
        request,
        "home.html",
        {"about": about, "description_html": prose_html(context, about.description), "accounts": listed},
        public_max_age=PUBLIC_MAX_AGE,
    )


@router.post("/setup")
async def create_first_admin(
    request: Request,
    setup_token: str = Form(""),
    username: str = Form(""),
    password: str = Form(""),
    context: AppContext = Depends(get_context),
) -> Response:
    accounts = AccountService(context)
    if await accounts.count_users() > 0:
        raise NotFound(translate(request, N_("Setup is already done; log in instead.")))
    if not secrets.compare_digest(setup_token.strip().encode(), context.setup_token.encode()):
        raise Forbidden(
            translate(request, N_("The setup token is wrong: copy it from the server's console output."))
        )
    try:
        await accounts.create_local_account(username, role=Role.ADMIN, password=password or "")
    except AccountError as error:
        anon_csrf_token(request)
        return render(request, "setup.html", {"error": str(error), "username": username}, status_code=400)
    return redirect("/login", "setup_done", username=accounts.normalize_username(username))


@router.get("/about")
async def about(request: Request, context: AppContext = Depends(get_context)) -> Response:
    instance = InstanceService(context)
    details = await instance.about()
    contact = (
        await AccountService(context).get_local_account(details.contact_account)
        if details.contact_account
        else None
    )
    if request.state.viewer is None:
        cache_publicly(request, [SITE], seconds=PAGE_SECONDS)
    return render(
        request,
        "about.html",
        {
            "about": details,
            "description_html": prose_html(context, details.description),
            "privacy_html": prose_html(context, details.privacy_policy),
            "contact": contact,
            "usage": await instance.usage(),
            "domain_blocks": await DomainBlockService(context).blocks(),
        },
        public_max_age=PUBLIC_MAX_AGE,
    )


async def _public_account(request: Request, context: AppContext, username: str) -> Account:
    account = await ProfileService(context).local_account(username)
    if account is None or account.username == INSTANCE_ACTOR_USERNAME or account.suspended_at is not None:
        raise NotFound(translate(request, N_("There is no account with this name here.")))
    return account


@router.get("/@{username}/feed.rss")
async def rss(request: Request, username: str, context: AppContext = Depends(get_context)) -> Response:
    account = await _public_account(request, context, username)
    posts = await recent_public_posts(context, account)
    cache_publicly(request, [account_tag(account.id), *(post_tag(post.id) for post in posts)])
    return Response(
        rss_feed(context, account, posts, await InstanceService(context).name()),
        media_type="application/rss+xml; charset=utf-8",
        headers={"Cache-Control": f"public, max-age={FEED_MAX_AGE}"},
    )


@router.get("/@{username}/feed.atom")
async def atom(request: Request, username: str, context: AppContext = Depends(get_context)) -> Response:
    account = await _public_account(request, context, username)
    posts = await recent_public_posts(context, account)
    cache_publicly(request, [account_tag(account.id), *(post_tag(post.id) for post in posts)])
    return Response(
        atom_feed(context, account, posts),
        media_type="application/atom+xml; charset=utf-8",
        headers={"Cache-Control": f"public, max-age={FEED_MAX_AGE}"},
    )


@router.get("/@{username}/remote-follow")
async def remote_follow(
    request: Request, username: str, server: str = "", context: AppContext = Depends(get_context)
) -> Response:
    """Send a visitor to their own server's "follow this account" page (Mastodon's authorize_interaction)."""
    account = await _public_account(request, context, username)
    entered = server.strip().lower()
    for prefix in ("https://", "http://", "acct:"):
        entered = entered.removeprefix(prefix)
    entered = entered.strip("/").lstrip("@")
    handle_user, _, domain = entered.rpartition("@")
    domain = domain.split("/", 1)[0]
    try:  # münchen.social → xn--mnchen-3ya.social
        domain = domain.encode("idna").decode("ascii") if not domain.isascii() else domain
    except UnicodeError:
        domain = ""
    if not domain or not _DOMAIN_RE.match(domain) or len(domain) > 255 or not _usable_host(domain):
        raise BadRequest(
            translate(
                request, N_("Enter the domain of your server, such as mastodon.social, or your handle.")
            )
        )
    template = None
    if handle_user:
        template = await _subscribe_template(context, handle_user, domain)
    if template is None or "{uri}" not in template or not template.startswith(("https://", "http://")):
        scheme = "http" if domain.startswith(("localhost", "127.")) else "https"
        template = f"{scheme}://{domain}/authorize_interaction?uri={{uri}}"
    target = template.replace("{uri}", quote(account.uri, safe=""))
    return RedirectResponse(target, status_code=303, headers={"Cache-Control": "no-store"})


def _usable_host(domain: str) -> bool:
    try:
        return bool(httpx.URL(f"https://{domain}/").host)  # .host decodes IDNA labels, strictly
    except (httpx.InvalidURL, UnicodeError, ValueError):
        return False


async def _subscribe_template(context: AppContext, user: str, domain: str) -> str | None:
    """The OStatus subscribe template from the visitor's WebFinger document, if their server answers."""
    scheme = "http" if domain.startswith(("localhost", "127.")) else "https"
    try:
        response = await context.http.get(
            f"{scheme}://{domain}/.well-known/webfinger",
            params={"resource": f"acct:{user}@{domain}"},
            headers={"Accept": "application/jrd+json"},
            timeout=5.0,
        )
        if response.status_code != 200 or len(response.content) > 100_000:
            return None
        for link in response.json().get("links", []):
            if isinstance(link, dict) and link.get("rel") == "http://ostatus.org/schema/1.0/subscribe":
                template = link.get("template")
                return template if isinstance(template, str) else None
    except Exception:  # the visitor's server is unreachable or odd: fall back to the usual path
        return None
    return None


@router.get("/@{username}/{post_id}")
async def post_page(
    request: Request,
    username: str,
    post_id: str,
    context: AppContext = Depends(get_context),
    viewer: Viewer | None = Depends(page_state),
) -> Response:
    account = await _public_account(request, context, username)
    post = await _post_of(context, account, post_id)
    if post is None or post.deleted_at is not None:
        raise NotFound(translate(request, N_("This post does not exist or was deleted.")))
    if wants_activity_json(request.headers.get("accept")):
        return RedirectResponse(post.uri, status_code=302, headers={"Vary": "Accept"})
    who = viewer or ServiceViewer.nobody()
    if not await can_see(context, who, post):
        raise NotFound(translate(request, N_("This post does not exist or was deleted.")))
    if post.visibility not in PUBLIC_VISIBILITIES:
        # Only a logged-in reader gets this far with it; their page is the staff thread view.
        return RedirectResponse(f"/posts/{post.id}", status_code=303)
    ancestors, replies = await thread_posts(context, post, who)
    cards = {card.post.id: card for card in await build_cards(context, [post, *ancestors, *replies], viewer)}
    focus = cards.get(post.id)
    if focus is None:
        raise NotFound(translate(request, N_("This post does not exist or was deleted.")))
    image = next((item.url for item in focus.media if item.media_type.startswith("image/")), None)
    if viewer is None:
        shown = [post, *ancestors, *replies]
        cache_publicly(
            request,
            [
                *(post_tag(item.id) for item in shown),
                *(account_tag(item.account_id) for item in shown),
            ],
            seconds=PAGE_SECONDS,
        )
    return render(
        request,
        "post.html",
        {
            "post": post,
            "author": account,
            "focus_card": focus,
            "ancestors": [cards[item.id] for item in ancestors if item.id in cards],
            "replies": [cards[item.id] for item in replies if item.id in cards],
            "image": image,
            "staff": viewer is not None,
            "return_to": request.url.path,
        },
        public_max_age=PUBLIC_MAX_AGE,
        headers={"Vary": "Accept"},
    )


async def _post_of(context: AppContext, account: Account, post_id: str) -> Post | None:
    number = parse_id(post_id)
    if number is None:
        return None
    # Found whoever may see it: the caller decides (an AS2 client is sent to the object's URL).
    post = (await ProfileService(context).posts_by_id([number], ServiceViewer.system())).get(number)
    if post is None or post.account_id != account.id or post.reblog_of_id is not None:
        return None
    return post


@router.get("/tags/{name}")
async def tag_page(
    request: Request,
    name: str,
    max_id: str | None = None,
    context: AppContext = Depends(get_context),
    viewer: Viewer | None = Depends(page_state),
) -> Response:
    if not _TAG_RE.match(name):
        raise NotFound(translate(request, N_("That is not a hashtag.")))
    cursor = _cursor(request, max_id)
    posts, next_max_id = await tagged_posts(context, name, viewer or ServiceViewer.nobody(), max_id=cursor)
    if viewer is None:
        cache_publicly(request, [SITE, *(post_tag(post.id) for post in posts)], seconds=PAGE_SECONDS)
    return render(
        request,
        "tag.html",
        {
            "tag": name.lower(),
            "cards": await build_cards(context, posts, viewer),
            "next_max_id": next_max_id,
            "staff": viewer is not None,
            "return_to": str(request.url.path),
        },
        public_max_age=PUBLIC_MAX_AGE,
    )


def _cursor(request: Request, max_id: str | None) -> int | None:
    if max_id is None or max_id == "":
        return None
    cursor = parse_id(max_id)
    if cursor is None:
        raise BadRequest(translate(request, N_("The page cursor is not valid.")))
    return cursor
