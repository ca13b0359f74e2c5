"""Discovery: WebFinger, host-meta and NodeInfo."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from app import __version__
from app.context import AppContext
from app.dependencies import get_context
from app.http_errors import BadRequest, NotFound
from app.public_cache import PAGE_SECONDS, SITE, account_tag, cache_publicly
from app.services.accounts import INSTANCE_ACTOR_USERNAME
from app.services.instance import InstanceService
from app.services.profiles import ProfileService

router = APIRouter()

JRD = "application/jrd+json"
NODEINFO_SCHEMAS = {
    "2.0": "http://nodeinfo.diaspora.software/ns/schema/2.0",
    "2.1": "http://nodeinfo.diaspora.software/ns/schema/2.1",
}
CORS = {"Access-Control-Allow-Origin": "*"}


def _redirect_to_web_domain(request: Request, context: AppContext) -> RedirectResponse | None:
    """When handles live on LOCAL_DOMAIN but Herold is served from WEB_DOMAIN, discovery moves over.

    The one rule of every /.well-known document (WebFinger, host-meta, NodeInfo), as the README
    tells the main domain's web server to redirect them."""
    settings = context.settings
    if settings.web_domain == settings.local_domain:
        return None
    host = (request.headers.get("host") or "").lower()
    if host != settings.local_domain:
        return None
    target = f"{settings.base_url}{request.url.path}"
    if request.url.query:
        target += f"?{request.url.query}"
    return RedirectResponse(target, status_code=301, headers=CORS)


def username_from_resource(resource: str, context: AppContext) -> str | None:
    """The local user name a WebFinger resource names; None when it names nobody here; BadRequest if malformed."""
    settings, urls = context.settings, context.urls
    resource = resource.strip()
    if resource.startswith(("http://", "https://")):
        parts = urlsplit(resource)
        if parts.netloc.lower() not in {settings.web_domain, settings.local_domain}:
            return None
        path = unquote(parts.path).rstrip("/")
        if resource.rstrip("/") == urls.instance_actor:
            return INSTANCE_ACTOR_USERNAME
        for prefix in ("/users/", "/@"):
            if path.startswith(prefix) and "/" not in path[len(prefix) :]:
                return path[len(prefix) :] or None
        return None
    address = resource.removeprefix("acct:").removeprefix("@")
    if "@" not in address:
        raise BadRequest(f"resource {resource!r} is neither acct:user@domain nor a profile URL")
    username, _, domain = address.rpartition("@")
    if not username or not domain or "@" in username:
        raise BadRequest(f"resource {resource!r} is neither acct:user@domain nor a profile URL")
    if domain.lower() not in {settings.local_domain, settings.web_domain}:
        return None
    return username


@router.get("/.well-known/webfinger")
async def webfinger(request: Request, context: AppContext = Depends(get_context)) -> Response:
    redirect = _redirect_to_web_domain(request, context)
    if redirect is not None:
        return redirect
    resource = request.query_params.get("resource")
    if not resource:
        raise BadRequest("the resource parameter is required, e.g. ?resource=acct:user@domain")
    username = username_from_resource(resource, context)
    account = await ProfileService(context).local_account(username) if username else None
    if account is None:
        raise NotFound(f"no account here matches {resource}")
    urls = context.urls
    subject = f"acct:{account.username}@{context.settings.local_domain}"
    is_instance_actor = account.username == INSTANCE_ACTOR_USERNAME
    links: list[dict[str, Any]] = [
        {"rel": "self", "type": "application/activity+json", "href": account.uri},
    ]
    if not is_instance_actor:
        links.insert(
            0,
            {
                "rel": "http://webfinger.net/rel/profile-page",
                "type": "text/html",
                "href": urls.profile_page(account.username),
            },
        )
        links.append(
            {"rel": "http://ostatus.org/schema/1.0/subscribe", "template": urls.authorize_interaction}
        )
    aliases = [account.uri] if is_instance_actor else [urls.profile_page(account.username), account.uri]
    document = {"subject": subject, "aliases": aliases, "links": links}
    cache_publicly(request, [account_tag(account.id)])
    return JSONResponse(document, media_type=JRD, headers=CORS)


@router.get("/.well-known/host-meta")
async def host_meta(request: Request, context: AppContext = Depends(get_context)) -> Response:
    redirect = _redirect_to_web_domain(request, context)
    if redirect is not None:
        return redirect
    template = f"{context.settings.base_url}/.well-known/webfinger?resource={{uri}}"
    accept = request.headers.get("accept", "")
    cache_publicly(request, [SITE])
    # One URL, two formats: caches must key on Accept.
    headers = {**CORS, "Vary": "Accept"}
    if "json" in accept and "xml" not in accept:
        return JSONResponse({"links": [{"rel": "lrdd", "template": template}]}, headers=headers)
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<XRD xmlns="http://docs.oasis-open.org/ns/xri/xrd-1.0">\n'
        f'  <Link rel="lrdd" template="{template}"/>\n'
        "</XRD>\n"
    )
    return Response(xml, media_type="application/xrd+xml", headers=headers)


@router.get("/.well-known/host-meta.json")
async def host_meta_json(request: Request, context: AppContext = Depends(get_context)) -> Response:
    redirect = _redirect_to_web_domain(request, context)
    if redirect is not None:
        return redirect
    template = f"{context.settings.base_url}/.well-known/webfinger?resource={{uri}}"
    cache_publicly(request, [SITE])
    return JSONResponse({"links": [{"rel": "lrdd", "template": template}]}, headers=CORS)


@router.get("/.well-known/nodeinfo")
async def nodeinfo_links(request: Request, context: AppContext = Depends(get_context)) -> Response:
    redirect = _redirect_to_web_domain(request, context)
    if redirect is not None:
        return redirect
    base = context.settings.base_url
    links = [
        {"rel": schema, "href": f"{base}/nodeinfo/{version}"} for version, schema in NODEINFO_SCHEMAS.items()
    ]
    cache_publicly(request, [SITE])
    return JSONResponse({"links": links}, headers=CORS)


@router.get("/nodeinfo/{version}")
async def nodeinfo(request: Request, version: str, context: AppContext = Depends(get_context)) -> Response:
    if version not in NODEINFO_SCHEMAS:
        raise NotFound(f"NodeInfo {version} is not served here; try 2.0 or 2.1")
    instance = InstanceService(context)
    usage = await instance.usage()
    software: dict[str, str] = {"name": "herold", "version": __version__}
    if version == "2.1":
        software["homepage"] = f"{context.settings.base_url}/about"
    document = {
        "version": version,
        "software": software,
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": []},
        "openRegistrations": context.settings.open_registrations,
        "usage": {
            "users": {
                "total": usage.users_total,
                "activeMonth": usage.users_active_month,
                "activeHalfyear": usage.users_active_halfyear,
            },
            "localPosts": usage.local_posts,
        },
        "metadata": {"nodeName": await instance.name(), "nodeDescription": await instance.description()},
    }
    media_type = f'application/json; profile="{NODEINFO_SCHEMAS[version]}#"'
    # The monthly active users change without an event: kept as long as a page.
    cache_publicly(request, [SITE], seconds=PAGE_SECONDS)
    return JSONResponse(document, media_type=media_type, headers=CORS)
