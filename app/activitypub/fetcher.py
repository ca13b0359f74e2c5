"""Fetching documents from other servers: the one helper every server-side GET goes through."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from app.activitypub.addresses import hostname_problem
from app.activitypub.signatures import sign_request
from app.activitypub.transport import ResponseTooLarge, read_capped
from app.context import AppContext
from app.models import Account

AS2_ACCEPT = 'application/activity+json, application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
JRD_ACCEPT = "application/jrd+json, application/json"
MAX_DOCUMENT_BYTES = 1_048_576
MEDIA_ACCEPT = "image/*, video/*, audio/*;q=0.9, */*;q=0.1"

log = logging.getLogger(__name__)


class FetchError(Exception):
    """A remote document could not be had; the message says why (shown to staff and in logs)."""

    def __init__(self, message: str, *, status: int | None = None, unreachable: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        # The host when no answer came at all (no such name, refused, timed out): said as "HOST
        # could not be reached", not as the HTTP library's words.
        self.unreachable = unreachable


class RemoteGone(FetchError):
    """The remote server answered 410: the object or actor was deleted."""


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or url[:200]
    except ValueError:
        return url[:200]


@dataclass(frozen=True)
class FetchedDocument:
    """A JSON object and the URL it finally came from, after redirects: the origin that vouches for it."""

    url: str
    document: dict[str, Any]


class Fetcher:
    def __init__(self, context: AppContext, signer: Account | None = None) -> None:
        """`signer` (normally the instance actor) signs GETs for servers that require authorized fetch."""
        self.context = context
        self.signer = signer

    async def get_json(
        self, url: str, *, accept: str = AS2_ACCEPT, signed: bool | None = None
    ) -> dict[str, Any]:
        """GET a JSON object. With `signed=None`, try unsigned first and sign only when refused (401/403).

        The document alone: a caller that believes what the document says about its own id must use
        `fetch` and check that id against the origin of the final URL, as redirects may cross hosts.
        """
        return (await self.fetch(url, accept=accept, signed=signed)).document

    async def fetch(
        self, url: str, *, accept: str = AS2_ACCEPT, signed: bool | None = None
    ) -> FetchedDocument:
        """Like get_json, also telling the final URL (callers that check origins need it)."""
        if signed is None:
            try:
                return await self._get(url, accept, signed=False)
            except FetchError as error:
                if error.status not in (401, 403) or self.signer is None:
                    raise
            return await self._get(url, accept, signed=True)
        return await self._get(url, accept, signed=signed)

    async def _get(self, url: str, accept: str, *, signed: bool) -> FetchedDocument:
        await self._refuse_blocked(url)
        headers = {"Accept": accept}
        if signed and self.signer is not None and self.signer.private_key_pem:
            headers.update(
                sign_request(
                    method="GET",
                    url=url,
                    body=None,
                    key_id=self.signer.key_id,
                    private_key=self.context.keys.private_key(self.signer.private_key_pem),
                    content_type=None,
                    extra_headers={"Accept": accept},
                )
            )
        try:
            async with self.context.http.stream("GET", url, headers=headers) as response:
                if response.status_code == 410:
                    raise RemoteGone(f"{url} is gone (410)", status=410)
                if response.status_code != 200:
                    raise FetchError(f"{url} answered {response.status_code}", status=response.status_code)
                body = await read_capped(response, MAX_DOCUMENT_BYTES)
                final_url = str(response.url)
        except ResponseTooLarge:
            raise FetchError(f"{url} sent more than {MAX_DOCUMENT_BYTES} bytes") from None
        except httpx.TransportError as error:
            host = _host(url)
            log.info("could not fetch %s: %s", url, error)
            raise FetchError(f"{host} could not be reached", unreachable=host) from None
        except httpx.HTTPError as error:
            raise FetchError(f"could not fetch {url}: {error}") from None
        except (httpx.InvalidURL, UnicodeError):
            # A host no resolver can look up (an empty or over-long label, bad punycode).
            raise FetchError(f"{url} is not a usable address") from None
        if final_url != url:
            await self._refuse_blocked(final_url)  # a redirect into a blocked domain
        try:
            document = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise FetchError(f"{url} did not answer with JSON") from None
        if not isinstance(document, dict):
            raise FetchError(f"{url} answered with JSON that is not an object")
        return FetchedDocument(url=final_url, document=document)

    async def download(self, url: str, target: Path, *, limit: int, accept: str = MEDIA_ACCEPT) -> str:
        """Stream a file (an attachment, an avatar) to `target`, refusing it past `limit` bytes;
        returns the final URL. Through the same client (and so the same address guard) as every
        other fetch; the caller sniffs the bytes and never trusts the declared type."""
        await self._refuse_blocked(url)
        written = 0
        try:
            async with self.context.http.stream("GET", url, headers={"Accept": accept}) as response:
                if response.status_code == 410:
                    raise RemoteGone(f"{url} is gone (410)", status=410)
                if response.status_code != 200:
                    raise FetchError(f"{url} answered {response.status_code}", status=response.status_code)
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise FetchError(f"{url} is larger than {limit} bytes", status=413)
                handle = await asyncio.to_thread(target.open, "wb")
                try:
                    async for chunk in response.aiter_bytes():
                        written += len(chunk)
                        if written > limit:
                            raise FetchError(f"{url} is larger than {limit} bytes", status=413)
                        await asyncio.to_thread(handle.write, chunk)
                finally:
                    await asyncio.to_thread(handle.close)
                final_url = str(response.url)
        except httpx.TransportError as error:
            host = _host(url)
            log.info("could not fetch %s: %s", url, error)
            raise FetchError(f"{host} could not be reached", unreachable=host) from None
        except httpx.HTTPError as error:
            raise FetchError(f"could not fetch {url}: {error}") from None
        except (httpx.InvalidURL, UnicodeError):
            raise FetchError(f"{url} is not a usable address") from None
        if final_url != url:
            await self._refuse_blocked(final_url)
        return final_url

    async def _refuse_blocked(self, url: str) -> None:
        """Nothing is fetched from a suspended domain (nor, in limited federation, an unlisted one)."""
        try:
            host = httpx.URL(url).host if url.startswith(("http://", "https://")) else ""
        except (httpx.InvalidURL, UnicodeError):
            raise FetchError(f"{url} is not a usable address") from None
        problem = hostname_problem(host) if host else None
        if problem is not None:
            # Refused before signing and before DNS, both of which would fail on it less clearly.
            raise FetchError(f"{url} is not a usable address: its host {problem}")
        if host:
            blocked = await self.context.domain_policy.suspending(host)
            if blocked is not None:
                raise FetchError(f"{host} is blocked ({blocked})", status=403)
