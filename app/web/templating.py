"""The Jinja2 environment of the HTML pages: translations, filters, and what every page knows.

Every page gets `lang`, `viewer` (the logged-in staff member or None), `csrf_token`, `site` (the
instance's name) and the gettext functions from a context processor, so error pages rendered
outside the web routes are translated and styled like the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from babel.dates import format_datetime, format_skeleton
from fastapi import Request
from fastapi.templating import Jinja2Templates
from starlette.responses import Response

from app import __version__
from app.context import AppContext
from app.i18n import LOCALE_NAMES, Catalogs, negotiate
from app.services.domain_blocks import domain_label
from app.services.html_sanitizer import html_to_plain_text
from app.services.moderation import DomainPolicy
from app.services.remote_emojis import profile_emojis
from app.web.cookies import set_anon_csrf_cookie, set_session_cookie
from app.web.custom_emoji import html_with_emojis, text_with_emojis
from app.web.notices import NOTICES


@dataclass(frozen=True)
class Site:
    name: str
    local_domain: str
    base_url: str
    max_post_chars: int
    # REGISTRATIONS: "closed", "approval" or "open" (the login page offers the sign-up page).
    registrations: str = "closed"


def request_locale(request: Request) -> str:
    locale = getattr(request.state, "locale", None)
    return locale if isinstance(locale, str) else negotiate(request.headers.get("accept-language"))


def translate(request: Request, message: str, **variables: Any) -> str:
    """A message marked with N_ (or a literal) in the request's language, %-formatted with `variables`."""
    catalogs: Catalogs = request.app.state.catalogs
    text = catalogs.gettext(request_locale(request), message)
    return text % variables if variables else text


def build_templates(directory: Path, context: AppContext, catalogs: Catalogs) -> Jinja2Templates:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(directory),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )

    @jinja2.pass_context
    def gettext(template_context: Any, message: str) -> str:
        return catalogs.gettext(template_context.get("lang"), message)

    @jinja2.pass_context
    def ngettext(template_context: Any, singular: str, plural: str, number: int) -> str:
        return catalogs.ngettext(template_context.get("lang"), singular, plural, number)

    # Newstyle gettext: variables are escaped and substituted by Jinja, `%` must be written `%%`.
    environment.install_gettext_callables(gettext, ngettext, newstyle=True)  # type: ignore[attr-defined]

    @jinja2.pass_context
    def localized_datetime(template_context: Any, moment: datetime | None, length: str = "medium") -> str:
        if moment is None:
            return ""
        locale = template_context.get("lang") or "en"
        if length == "short":
            # "Nov 26, 2026, 14:05" / "26. Nov. 2026, 14:05": the locale's order, no seconds.
            day = format_skeleton("yMMMd", moment, tzinfo=UTC, locale=locale)
            return f"{day}, {format_skeleton('Hm', moment, tzinfo=UTC, locale=locale)}"
        return format_datetime(moment, length, tzinfo=UTC, locale=locale)

    @jinja2.pass_context
    def embeds_media(template_context: Any, account: Any, url: str | None) -> bool:
        """Whether the page may load `url`, a file of `account` (domain blocks with reject_media)."""
        policy: DomainPolicy | None = template_context.get("domain_policy")
        if policy is None:
            # A page rendered without the policy (an error page) shows no remote account's files.
            return bool(url) and account.domain is None
        return policy.embeds_media(account.domain, url)

    environment.globals["embeds_media"] = embeds_media
    environment.filters["datetime"] = localized_datetime
    environment.filters["http_url"] = http_url
    environment.filters["with_emojis"] = html_with_emojis
    environment.filters["text_with_emojis"] = text_with_emojis
    environment.globals["profile_emojis"] = profile_emojis
    environment.filters["domain_label"] = domain_label
    environment.filters["plaintext"] = lambda html, limit=300: _shorten(html_to_plain_text(html or ""), limit)
    environment.globals["static_version"] = __version__
    environment.globals["locale_names"] = LOCALE_NAMES

    settings = context.settings
    default_site = Site(
        name=settings.instance_name,
        local_domain=settings.local_domain,
        base_url=settings.base_url,
        max_post_chars=settings.max_post_chars,
        registrations=settings.registrations,
    )

    def page_defaults(request: Request) -> dict[str, Any]:
        viewer = getattr(request.state, "viewer", None)
        csrf = viewer.csrf_token if viewer is not None else getattr(request.state, "anon_csrf", "")
        return {
            "lang": request_locale(request),
            "viewer": viewer,
            "csrf_token": csrf,
            "site": getattr(request.state, "site", None) or default_site,
            "notice": NOTICES.get(request.query_params.get("notice", "")),
            "current_path": request.url.path,
            "domain_policy": getattr(request.state, "domain_policy", None),
        }

    return Jinja2Templates(env=environment, context_processors=[page_defaults])


def http_url(url: str | None) -> str:
    """`url` if a page may carry it (http or https with a host), else "".

    The one filter for every URL that another server gave us and a page writes out: links, the
    canonical link and Open Graph tags, avatars, headers and attachments. Anything else
    (javascript:, data:, a relative path, a URL with spaces or control characters) is dropped, and
    the template shows no link, or the default picture instead of an image.
    """
    if not url or len(url) > 4096 or any(ord(char) <= 32 or ord(char) == 127 for char in url):
        return ""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return ""
    if parts.scheme.lower() not in ("http", "https") or not host:
        return ""
    return url


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def render(
    request: Request,
    name: str,
    values: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    public_max_age: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A page. Logged-in pages are never cached; public pages may be, for `public_max_age` seconds."""
    templates: Jinja2Templates = request.app.state.templates
    all_headers = dict(headers or {})
    viewer = getattr(request.state, "viewer", None)
    if viewer is None and public_max_age is not None and status_code == 200:
        all_headers.setdefault("Cache-Control", f"public, max-age={public_max_age}")
    else:
        all_headers.setdefault("Cache-Control", "private, no-store")
    vary = [part.strip() for part in all_headers.get("Vary", "").split(",") if part.strip()]
    for header in ("Accept-Language", "Cookie"):
        if header not in vary:
            vary.append(header)
    all_headers["Vary"] = ", ".join(vary)
    response = templates.TemplateResponse(
        request, name, dict(values or {}), status_code=status_code, headers=all_headers
    )
    new_token = getattr(request.state, "new_anon_csrf", None)
    renewed = getattr(request.state, "renewed_session_token", None)
    if new_token or renewed:
        if new_token:
            set_anon_csrf_cookie(request, response, new_token)
        if renewed:
            set_session_cookie(request.app.state.context, response, renewed)
    return response
