"""A remote server that delivers to Herold's inbox, written without any of Herold's own code.

It signs with `cryptography` alone (draft-cavage rsa-sha256 as Mastodon signs, or RFC 9421),
serves its actors' documents (Mastodon-style with the key inside, or GoToSocial-style with a
separate key document), any other JSON it is given, and records every request it receives, so
tests can see what Herold fetched and in which order. Register it under as many hosts as needed.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from sqlmodel import col, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from app.activitypub.resolver import ActorResolver
from app.federation.worker import Worker, build_worker
from app.models import Account, Follow, FollowState, InboxItem, Post, Role, User
from app.models.base import new_id
from app.queue_names import INBOX_QUEUE
from tests.lab import Instance, Lab

AS2 = "application/activity+json"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
MASTODON_CONTEXT: list[Any] = [
    "https://www.w3.org/ns/activitystreams",
    "https://w3id.org/security/v1",
    {"manuallyApprovesFollowers": "as:manuallyApprovesFollowers", "toot": "http://joinmastodon.org/ns#"},
]


@functools.cache
def throwaway_key(index: int) -> rsa.RSAPrivateKey:
    """Throwaway RSA keys, made once per test run (generating one takes ~100 ms)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: rsa.RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


@dataclass
class PeerActor:
    uri: str
    key: rsa.RSAPrivateKey
    key_id: str
    document: dict[str, Any]

    @property
    def followers(self) -> str:
        return str(self.document["followers"])


def sign_cavage(
    *,
    key: rsa.RSAPrivateKey,
    key_id: str,
    method: str,
    url: str,
    body: bytes | None,
    date: datetime | None = None,
    signed: tuple[str, ...] = ("(request-target)", "host", "date", "digest", "content-type"),
    algorithm: str = "rsa-sha256",
) -> dict[str, str]:
    """Headers for a draft-cavage signature, built the way Mastodon's Ruby code builds them."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    headers = {
        "Host": parts.netloc,
        "Date": format_datetime((date or datetime.now(UTC)).replace(microsecond=0), usegmt=True),
    }
    if body is not None:
        headers["Digest"] = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
        headers["Content-Type"] = AS2
    lines = []
    for name in signed:
        if name == "(request-target)":
            lines.append(f"(request-target): {method.lower()} {target}")
        else:
            value = next((v for k, v in headers.items() if k.lower() == name), "")
            lines.append(f"{name}: {value}")
    signature = key.sign("\n".join(lines).encode(), padding.PKCS1v15(), hashes.SHA256())
    headers["Signature"] = (
        f'keyId="{key_id}",algorithm="{algorithm}",headers="{" ".join(signed)}",'
        f'signature="{base64.b64encode(signature).decode()}"'
    )
    return headers


def sign_rfc9421(
    *, key: rsa.RSAPrivateKey, key_id: str, method: str, url: str, body: bytes, created: int | None = None
) -> dict[str, str]:
    """RFC 9421 headers as Mastodon 4.5 sends them: @method, @target-uri, content-digest."""
    digest = "sha-256=:" + base64.b64encode(hashlib.sha256(body).digest()).decode() + ":"
    created = created if created is not None else int(datetime.now(UTC).timestamp())
    params = (
        f'("@method" "@target-uri" "content-digest");created={created};keyid="{key_id}";alg="rsa-v1_5-sha256"'
    )
    base = "\n".join(
        [
            f'"@method": {method.upper()}',
            f'"@target-uri": {url}',
            f'"content-digest": {digest}',
            f'"@signature-params": {params}',
        ]
    )
    signature = key.sign(base.encode(), padding.PKCS1v15(), hashes.SHA256())
    return {
        "Content-Type": AS2,
        "Content-Digest": digest,
        "Signature-Input": f"sig1={params}",
        "Signature": f"sig1=:{base64.b64encode(signature).decode()}:",
    }


@dataclass
class Peer:
    """One or more remote hosts in the lab. `documents` maps a URL (without fragment) to what it serves:
    a JSON document, or a status code (404, 410...)."""

    lab: Lab
    documents: dict[str, dict[str, Any] | int] = field(default_factory=dict)
    # Hosts that answer 401 to unsigned GETs (Mastodon's authorized-fetch mode).
    authorized_fetch: set[str] = field(default_factory=set)
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    # POSTs received: (url, activity).
    inbox: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # URLs (without fragment) whose GET answers 302 to another URL.
    redirects: dict[str, str] = field(default_factory=dict)
    # URLs that serve a file: its bytes and the Content-Type the peer declares (which may lie).
    files: dict[str, tuple[bytes, str]] = field(default_factory=dict)
    _key_counter: int = 0

    def __post_init__(self) -> None:
        self.app = Starlette(routes=[Route("/{path:path}", self._serve, methods=["GET", "POST"])])

    def host(self, name: str) -> Peer:
        self.lab.network.register(name, self.app)  # type: ignore[arg-type]
        return self

    def next_key(self) -> rsa.RSAPrivateKey:
        self._key_counter += 1
        return throwaway_key(self._key_counter)

    def actor(
        self,
        uri: str,
        *,
        key: rsa.RSAPrivateKey | None = None,
        key_document: bool = False,
        actor_type: str = "Person",
        **extra: Any,
    ) -> PeerActor:
        """An actor served at `uri`; with `key_document`, its key is a separate document (GoToSocial)."""
        key = key or self.next_key()
        parts = urlsplit(uri)
        base = f"{parts.scheme}://{parts.netloc}"
        username = uri.rstrip("/").rsplit("/", 1)[-1]
        key_id = f"{uri}/main-key" if key_document else f"{uri}#main-key"
        key_block = {"id": key_id, "owner": uri, "publicKeyPem": public_pem(key)}
        document: dict[str, Any] = {
            "@context": MASTODON_CONTEXT,
            "id": uri,
            "type": actor_type,
            "preferredUsername": username,
            "name": username.title(),
            "inbox": f"{uri}/inbox",
            "outbox": f"{uri}/outbox",
            "followers": f"{uri}/followers",
            "following": f"{uri}/following",
            "featured": f"{uri}/collections/featured",
            "url": f"{base}/@{username}",
            "endpoints": {"sharedInbox": f"{base}/inbox"},
            "manuallyApprovesFollowers": False,
            "publicKey": key_block,
        }
        document.update(extra)
        self.documents[uri] = document
        if key_document:
            self.documents[key_id] = {"@context": MASTODON_CONTEXT, **key_block}
        return PeerActor(uri=uri, key=key, key_id=key_id, document=document)

    def rotate_key(self, actor: PeerActor) -> PeerActor:
        """The actor gets a new key pair (served from now on); returns the actor signing with it."""
        key = self.next_key()
        block = {**actor.document["publicKey"], "publicKeyPem": public_pem(key)}
        document = {**actor.document, "publicKey": block}
        self.documents[actor.uri] = document
        if actor.key_id in self.documents:
            self.documents[actor.key_id] = {"@context": MASTODON_CONTEXT, **block}
        return PeerActor(uri=actor.uri, key=key, key_id=actor.key_id, document=document)

    def redirect(self, url: str, to: str) -> None:
        """GETs of `url` answer 302 to `to`, which may be on another host."""
        self.redirects[url] = to

    def serve(self, document: dict[str, Any]) -> dict[str, Any]:
        self.documents[str(document["id"]).split("#", 1)[0]] = document
        return document

    def fetches(self, url: str) -> int:
        """How many GETs reached `url` (fragment ignored)."""
        wanted = url.split("#", 1)[0]
        return sum(1 for method, requested, _ in self.requests if method == "GET" and requested == wanted)

    async def _serve(self, request: Request) -> Response:
        url = f"http://{request.headers['host']}{request.url.path}"
        self.requests.append((request.method, url, dict(request.headers)))
        if request.method == "POST":
            self.inbox.append((url, json.loads(await request.body())))
            return Response(status_code=202)
        if request.headers["host"] in self.authorized_fetch and "signature" not in request.headers:
            return JSONResponse({"error": "Request not signed"}, status_code=401)
        if url in self.redirects:
            return RedirectResponse(self.redirects[url], status_code=302)
        if url in self.files:
            data, declared = self.files[url]
            return Response(data, media_type=declared)
        found = self.documents.get(url) or self.documents.get(url.replace("http://", "https://", 1))
        if found is None:
            return JSONResponse({"error": "Record not found"}, status_code=404)
        if isinstance(found, int):
            return JSONResponse({"error": f"status {found}"}, status_code=found)
        return JSONResponse(found, media_type=AS2)

    async def deliver(
        self,
        instance: Instance,
        actor: PeerActor,
        activity: dict[str, Any] | bytes,
        *,
        path: str = "/inbox",
        date: datetime | None = None,
        signed: tuple[str, ...] = ("(request-target)", "host", "date", "digest", "content-type"),
        extra_headers: dict[str, str] | None = None,
        rfc9421: bool = False,
    ) -> httpx.Response:
        """POST `activity` to the instance's inbox, signed with `actor`'s key."""
        body = activity if isinstance(activity, bytes) else json.dumps(activity).encode()
        url = f"{instance.base_url}{path}"
        if rfc9421:
            headers = sign_rfc9421(key=actor.key, key_id=actor.key_id, method="POST", url=url, body=body)
        else:
            headers = sign_cavage(
                key=actor.key,
                key_id=actor.key_id,
                method="POST",
                url=url,
                body=body,
                date=date,
                signed=signed,
            )
        headers.update(extra_headers or {})
        return await instance.client.post(path, content=body, headers=headers)


# ------------------------------------------------------------------------------------------------
# Helpers for the receiving side

# The cast of the receiving tests: alice on the instance under test, bob on a peer.
ALICE = "http://a.test/users/alice"
BOB = "http://remote.test/users/bob"


async def home_of_alice(lab: Lab, **overrides: Any) -> tuple[Instance, Account]:
    """a.test with a local alice. Its worker does not run on its own: the test runs it
    (process_inbox, run_worker) when it wants deliveries handled."""
    instance = await lab.instance("a.test", embedded_worker=False, **overrides)
    return instance, await local_account(instance, "alice")


async def local_account(instance: Instance, name: str, *, role: Role = Role.STAFF) -> Account:
    """A local account as AccountService makes one, minus the costly parts (a fresh RSA key, a
    password hash) that these tests never use: its key is one of the throwaway keys."""
    urls = instance.context.urls
    key = throwaway_key(0)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    account = Account(
        username=name,
        domain=None,
        display_name=name,
        uri=urls.actor(name),
        url=urls.profile_page(name),
        inbox_url=urls.inbox(name),
        shared_inbox_url=urls.shared_inbox,
        outbox_url=urls.outbox(name),
        followers_url=urls.followers(name),
        following_url=urls.following(name),
        featured_url=urls.featured(name),
        key_id=urls.key_id(name),
        public_key_pem=public_pem(key),
        private_key_pem=private_pem,
    )
    async with instance.context.sessions() as session:
        session.add(account)
        await session.flush()
        session.add(User(account_id=account.id, role=role, password_hash="!unusable"))
        await session.commit()
    return account


async def run_worker(*instances: Instance, rounds: int = 3) -> None:
    """Run every queue (inbox and deliveries) of each instance until idle, a few rounds, so that
    what one instance sends is also processed by the other."""
    async with asyncio.timeout(60):
        for _ in range(rounds):
            for instance in instances:
                await build_worker(instance.context).run_until_idle()


async def process_inbox(instance: Instance) -> None:
    """Run the inbox queue of `instance` until nothing is due (deliveries are left alone)."""
    full = build_worker(instance.context)
    worker = Worker(instance.context, [queue for queue in full.queues if queue.name == INBOX_QUEUE])
    async with asyncio.timeout(60):
        await worker.run_until_idle()


async def deliver_and_process(
    instance: Instance, peer: Peer, actor: PeerActor, document: dict[str, object]
) -> InboxItem:
    """`actor` delivers `document`, which must be accepted; the inbox handles it; its item."""
    response = await peer.deliver(instance, actor, document)
    assert response.status_code == 202, response.text
    await process_inbox(instance)
    [item] = await rows(instance, InboxItem, InboxItem.activity_uri == document["id"])
    return item


async def inbox_items(instance: Instance) -> list[InboxItem]:
    async with instance.context.sessions() as session:
        return list((await session.scalars(select(InboxItem).order_by(col(InboxItem.received_at)))).all())


async def rows(instance: Instance, model: Any, *conditions: Any) -> list[Any]:
    async with instance.context.sessions() as session:
        return list((await session.scalars(select(model).where(*conditions))).all())


def note(
    actor: PeerActor, number: int, *, to: list[str] | None = None, cc: list[str] | None = None, **extra: Any
) -> dict[str, Any]:
    """A Mastodon-shaped Note by `actor`, public unless addressed otherwise."""
    uri = f"{actor.uri}/statuses/{number}"
    document: dict[str, Any] = {
        "id": uri,
        "type": "Note",
        "summary": None,
        "inReplyTo": None,
        "published": "2024-05-01T12:00:00Z",
        "url": uri.replace("/users/", "/@").replace("/statuses/", "/"),
        "attributedTo": actor.uri,
        "to": [PUBLIC] if to is None else to,
        "cc": [actor.followers] if cc is None else cc,
        "sensitive": False,
        "content": f"<p>post number {number}</p>",
        "contentMap": {"en": f"<p>post number {number}</p>"},
        "attachment": [],
        "tag": [],
    }
    document.update(extra)
    return document


def create(actor: PeerActor, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "@context": MASTODON_CONTEXT,
        "id": f"{obj['id']}/activity",
        "type": "Create",
        "actor": actor.uri,
        "published": obj.get("published", "2024-05-01T12:00:00Z"),
        "to": obj.get("to", [PUBLIC]),
        "cc": obj.get("cc", []),
        "object": obj,
    }


def activity(actor: PeerActor, kind: str, obj: Any, suffix: str, **extra: Any) -> dict[str, Any]:
    return {
        "@context": MASTODON_CONTEXT,
        "id": f"{actor.uri}#{suffix}",
        "type": kind,
        "actor": actor.uri,
        "object": obj,
        **extra,
    }


async def local_post(instance: Instance, author: Account, text: str = "hello", **fields: Any) -> Post:
    """A post of a local account, stored directly (how it was written does not matter here)."""
    post_id = new_id()
    post = Post(
        id=post_id,
        uri=instance.context.urls.post(author.username, post_id),
        account_id=author.id,
        local=True,
        content_html=f"<p>{text}</p>",
        to=[PUBLIC],
        cc=[author.followers_url or ""],
        **fields,
    )
    async with instance.context.sessions() as session:
        session.add(post)
        await session.commit()
    return post


async def follow_locally(instance: Instance, follower: Account, followee_uri: str) -> None:
    """`follower` (local) follows the already known remote actor at `followee_uri`, accepted."""
    async with instance.context.sessions() as session:
        followee = await session.scalar(select(Account).where(col(Account.uri) == followee_uri))
        assert followee is not None
        existing = await session.scalar(
            select(Follow).where(
                col(Follow.follower_id) == follower.id, col(Follow.followee_id) == followee.id
            )
        )
        if existing is None:
            session.add(Follow(follower_id=follower.id, followee_id=followee.id, state=FollowState.ACCEPTED))
            await session.commit()


async def known_actor(instance: Instance, peer_actor: PeerActor) -> Account:
    """Make `instance` fetch and store the actor (as a first delivery would)."""
    return await ActorResolver(instance.context).fetch_actor(peer_actor.uri)
