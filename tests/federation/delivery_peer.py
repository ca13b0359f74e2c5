"""A remote server for delivery tests that checks signatures with `cryptography` alone.

Nothing of Herold's own signing or verification code is used here: the peer parses the
Signature header itself, fetches the signer's actor document over the lab network, rebuilds the
signing string from the headers the signature lists and verifies it with RSA PKCS#1 v1.5 SHA-256.
So a delivery it accepts is one a server written by somebody else would accept.

The peer serves any number of hosts (register its app under each), answers WebFinger and actor
documents for the accounts it is told about, records every POST, and answers them with a
scripted status per host (202 by default).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

AS2 = "application/activity+json"
EXPECTED_SIGNED_HEADERS = ["(request-target)", "host", "date", "digest", "content-type"]
_PARAM = re.compile(r'(\w+)="([^"]*)"')


@dataclass
class Received:
    host: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    # Why the signature or the headers would be refused; empty when all is well.
    problems: list[str]
    signer: str | None
    received_at: float

    @property
    def activity(self) -> dict[str, Any]:
        document: dict[str, Any] = json.loads(self.body)
        return document


@dataclass
class PeerAccount:
    username: str
    host: str
    shared_inbox: bool = True

    @property
    def uri(self) -> str:
        return f"http://{self.host}/users/{self.username}"

    @property
    def inbox(self) -> str:
        return f"{self.uri}/inbox"

    @property
    def shared_inbox_url(self) -> str | None:
        return f"http://{self.host}/inbox" if self.shared_inbox else None


@dataclass
class Peer:
    """The peer's state; `app` serves it. `client` reaches the lab network (to fetch signers' keys)."""

    client: httpx.AsyncClient
    received: list[Received] = field(default_factory=list)
    # Scripted answers per host, consumed in order; afterwards `default_status`.
    script: dict[str, deque[int | tuple[int, dict[str, str]]]] = field(
        default_factory=lambda: defaultdict(deque)
    )
    default_status: int = 202
    # Seconds each POST takes to answer (per host), to observe concurrency.
    delay: dict[str, float] = field(default_factory=dict)
    accounts: dict[tuple[str, str], PeerAccount] = field(default_factory=dict)
    in_flight: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    max_in_flight: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    _private_key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    def __post_init__(self) -> None:
        self.app = Starlette(
            routes=[
                Route("/.well-known/webfinger", self._webfinger),
                Route("/users/{username}", self._actor),
                Route("/inbox", self._inbox, methods=["POST"]),
                Route("/users/{username}/inbox", self._inbox, methods=["POST"]),
            ]
        )

    def add_account(self, username: str, host: str, *, shared_inbox: bool = True) -> PeerAccount:
        account = PeerAccount(username, host, shared_inbox)
        self.accounts[(host, username)] = account
        return account

    def answer(self, host: str, *statuses: int | tuple[int, dict[str, str]]) -> None:
        self.script[host].extend(statuses)

    def at(self, host: str) -> list[Received]:
        return [item for item in self.received if item.host == host]

    def public_pem(self) -> str:
        return (
            self._private_key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )

    # ------------------------------------------------------------------------------------------

    async def _webfinger(self, request: Request) -> Response:
        resource = request.query_params.get("resource", "").removeprefix("acct:")
        username, _, host = resource.partition("@")
        account = self.accounts.get((host, username))
        if account is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        return JSONResponse(
            {
                "subject": f"acct:{username}@{host}",
                "links": [{"rel": "self", "type": AS2, "href": account.uri}],
            },
            media_type="application/jrd+json",
        )

    async def _actor(self, request: Request) -> Response:
        host = request.headers["host"]
        account = self.accounts.get((host, request.path_params["username"]))
        if account is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        document: dict[str, Any] = {
            "@context": ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"],
            "id": account.uri,
            "type": "Person",
            "preferredUsername": account.username,
            "name": account.username.title(),
            "inbox": account.inbox,
            "outbox": f"{account.uri}/outbox",
            "followers": f"{account.uri}/followers",
            "following": f"{account.uri}/following",
            "url": f"http://{host}/@{account.username}",
            "publicKey": {
                "id": f"{account.uri}#main-key",
                "owner": account.uri,
                "publicKeyPem": self.public_pem(),
            },
        }
        if account.shared_inbox_url:
            document["endpoints"] = {"sharedInbox": account.shared_inbox_url}
        return JSONResponse(document, media_type=AS2)

    async def _inbox(self, request: Request) -> Response:
        host = request.headers["host"]
        body = await request.body()
        self.in_flight[host] += 1
        self.max_in_flight[host] = max(self.max_in_flight[host], self.in_flight[host])
        try:
            problems, signer = await self._verify(request, body)
            if host in self.delay:
                await asyncio.sleep(self.delay[host])
        finally:
            self.in_flight[host] -= 1
        scripted = self.script[host].popleft() if self.script[host] else self.default_status
        status, headers = scripted if isinstance(scripted, tuple) else (scripted, {})
        self.received.append(
            Received(
                host=host,
                path=request.url.path,
                headers={name.lower(): value for name, value in request.headers.items()},
                body=body,
                status=status,
                problems=problems,
                signer=signer,
                received_at=asyncio.get_running_loop().time(),
            )
        )
        return Response(status_code=status, headers=headers)

    async def _verify(self, request: Request, body: bytes) -> tuple[list[str], str | None]:
        """Everything a strict receiver checks, each failure described."""
        problems: list[str] = []
        headers = request.headers
        if headers.get("content-type") != AS2:
            problems.append(f"content-type is {headers.get('content-type')!r}")
        digest = headers.get("digest", "")
        expected_digest = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
        if digest != expected_digest:
            problems.append(f"digest {digest!r} is not {expected_digest!r}")
        try:
            sent = parsedate_to_datetime(headers.get("date", ""))
            if abs((datetime.now(UTC) - sent).total_seconds()) > 60:
                problems.append("date is more than a minute off")
        except (TypeError, ValueError):
            problems.append("no usable date")
        params = dict(_PARAM.findall(headers.get("signature", "")))
        if params.get("algorithm") != "rsa-sha256":
            problems.append(f"algorithm is {params.get('algorithm')!r}")
        signed = params.get("headers", "").split()
        if signed != EXPECTED_SIGNED_HEADERS:
            problems.append(f"signed headers are {signed}")
        key_id = params.get("keyId")
        if not key_id or "signature" not in params:
            return [*problems, "no keyId or signature"], None
        lines = []
        for name in signed:
            if name == "(request-target)":
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                lines.append(f"(request-target): {request.method.lower()} {target}")
            else:
                lines.append(f"{name}: {headers.get(name, '')}")
        actor = await self.client.get(key_id.split("#", 1)[0], headers={"Accept": AS2})
        document = actor.json()
        key = document.get("publicKey", {})
        if key.get("id") != key_id or key.get("owner") != document.get("id"):
            return [*problems, "keyId does not match the actor's key"], None
        public_key = serialization.load_pem_public_key(key["publicKeyPem"].encode())
        assert isinstance(public_key, rsa.RSAPublicKey)
        try:
            public_key.verify(
                base64.b64decode(params["signature"]),
                "\n".join(lines).encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            problems.append("signature does not verify")
        activity = json.loads(body)
        if activity.get("actor") != document.get("id"):
            problems.append("the activity's actor is not the signer")
        return problems, document.get("id")
