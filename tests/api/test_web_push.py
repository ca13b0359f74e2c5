"""Web Push: subscriptions through the API, and notifications that reach a push service encrypted
for the subscriber's keys and signed with the instance's VAPID key; the test decrypts them as a
phone would."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import http_ece
import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi import FastAPI, Request, Response
from sqlmodel import select

from app.models import Account, PushSubscription
from app.services.following import FollowingService
from app.services.oauth import OAuthService
from app.services.posting import PostingService
from tests.lab import Instance, Lab
from tests.web.helpers import make_user

PUSH_HOST = "push.example"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Phone:
    """What a phone's app holds: its key pair and auth secret, and the messages it was sent."""

    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: b"0123456789abcdef")
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    answer: int = 201

    @property
    def p256dh(self) -> str:
        return b64url(
            self.private_key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        )

    def decrypt(self, headers: dict[str, str], body: bytes) -> dict[str, Any]:
        if headers["content-encoding"] == "aes128gcm":
            plain = http_ece.decrypt(
                body, private_key=self.private_key, auth_secret=self.auth, version="aes128gcm"
            )
        else:
            salt = headers["encryption"].split("salt=", 1)[1]
            dh = headers["crypto-key"].split("dh=", 1)[1].split(";")[0]
            plain = http_ece.decrypt(
                body,
                salt=unb64url(salt),
                dh=unb64url(dh),
                private_key=self.private_key,
                auth_secret=self.auth,
                version="aesgcm",
            )
        message: dict[str, Any] = json.loads(plain)
        return message


def push_service(phone: Phone) -> FastAPI:
    app = FastAPI()

    @app.post("/push/{path:path}")
    async def receive(request: Request) -> Response:
        phone.received.append(
            ({key.lower(): value for key, value in request.headers.items()}, await request.body())
        )
        return Response(status_code=phone.answer)

    return app


@pytest.fixture
async def phone(lab: Lab) -> AsyncIterator[Phone]:
    found = Phone()
    lab.network.register(PUSH_HOST, push_service(found))
    yield found


async def token_of(
    instance: Instance, username: str, scopes: str = "read write follow push"
) -> tuple[Account, str]:
    user, account = await make_user(instance, username)
    token = await OAuthService(instance.context).issue_personal_token(
        user, scopes=scopes, app_name="Phone app", acting_as=account
    )
    return account, token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def wait_for(phone: Phone, count: int) -> None:
    for _ in range(200):
        if len(phone.received) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the push service got {len(phone.received)} messages, not {count}")


def verify_vapid(headers: dict[str, str], server_key: str) -> dict[str, Any]:
    """Check the VAPID JWT as a push service does: signed by the key the instance advertises."""
    scheme, _, value = headers["authorization"].partition(" ")
    assert scheme == "vapid"
    fields = dict(part.split("=", 1) for part in value.split(","))
    assert fields["k"] == server_key
    header, claims, signature = fields["t"].split(".")
    raw = unb64url(signature)
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(server_key))
    public.verify(
        encode_dss_signature(int.from_bytes(raw[:32]), int.from_bytes(raw[32:])),
        f"{header}.{claims}".encode(),
        ec.ECDSA(hashes.SHA256()),
    )
    decoded: dict[str, Any] = json.loads(unb64url(claims))
    return decoded


async def test_a_mention_reaches_the_phone_encrypted_and_signed(instance: Instance, phone: Phone) -> None:
    client = instance.client
    _, token = await token_of(instance, "alice")
    bob, _ = await token_of(instance, "bob")
    subscribed = await client.post(
        "/api/v1/push/subscription",
        json={
            "subscription": {
                "endpoint": f"http://{PUSH_HOST}/push/alice-phone",
                "keys": {"p256dh": phone.p256dh, "auth": b64url(phone.auth)},
                "standard": True,
            },
            "data": {"alerts": {"mention": True, "follow": True}, "policy": "all"},
        },
        headers=bearer(token),
    )
    assert subscribed.status_code == 200, subscribed.text
    body = subscribed.json()
    assert body["endpoint"] == f"http://{PUSH_HOST}/push/alice-phone" and body["standard"] is True
    assert body["alerts"]["mention"] is True and body["alerts"]["favourite"] is False
    instance_key = (await client.get("/api/v2/instance")).json()["configuration"]["vapid"]["public_key"]
    assert body["server_key"] == instance_key and len(unb64url(instance_key)) == 65

    mention = await PostingService(instance.context).create(bob, "@alice the report is ready")
    await wait_for(phone, 1)
    headers, encrypted = phone.received[0]
    assert headers["content-encoding"] == "aes128gcm" and int(headers["ttl"]) > 0
    claims = verify_vapid(headers, instance_key)
    assert claims["aud"] == f"http://{PUSH_HOST}" and claims["sub"].startswith("mailto:")
    message = phone.decrypt(headers, encrypted)
    assert message["access_token"] == token
    assert message["notification_type"] == "mention"
    assert message["title"] == "bob mentioned you"
    assert "the report is ready" in message["body"] and message["preferred_locale"]
    assert message["icon"].startswith("http")
    notifications = (await client.get("/api/v1/notifications", headers=bearer(token))).json()
    assert message["notification_id"] == notifications[0]["id"]
    assert notifications[0]["status"]["id"] == str(mention.id)

    await FollowingService(instance.context).follow(bob, "@alice@a.test")
    await wait_for(phone, 2)
    follow = phone.decrypt(*phone.received[1])
    assert follow["notification_type"] == "follow" and follow["title"] == "bob followed you"


async def test_the_older_aesgcm_encoding_by_default_and_policies(instance: Instance, phone: Phone) -> None:
    client = instance.client
    alice, token = await token_of(instance, "alice")
    stranger, _ = await token_of(instance, "stranger")
    friend, _ = await token_of(instance, "friend")
    await FollowingService(instance.context).follow(alice, "@friend@a.test")
    form = {
        "subscription[endpoint]": f"http://{PUSH_HOST}/push/1",
        "subscription[keys][p256dh]": phone.p256dh,
        "subscription[keys][auth]": b64url(phone.auth),
        "data[alerts][mention]": "true",
        "data[policy]": "followed",
    }
    made = await client.post("/api/v1/push/subscription", data=form, headers=bearer(token))
    assert made.status_code == 200 and made.json()["policy"] == "followed"
    assert made.json()["standard"] is False

    await PostingService(instance.context).create(stranger, "@alice hello from a stranger")
    await PostingService(instance.context).create(friend, "@alice hello from a friend")
    await wait_for(phone, 1)
    await asyncio.sleep(0.5)
    assert len(phone.received) == 1
    headers, encrypted = phone.received[0]
    assert headers["content-encoding"] == "aesgcm"
    assert "from a friend" in phone.decrypt(headers, encrypted)["body"]

    changed = await client.put(
        "/api/v1/push/subscription", json={"data": {"policy": "none"}}, headers=bearer(token)
    )
    assert changed.json()["policy"] == "none" and changed.json()["alerts"]["mention"] is True
    assert (await client.get("/api/v1/push/subscription", headers=bearer(token))).json()["id"] == made.json()[
        "id"
    ]


async def test_a_gone_endpoint_removes_the_subscription(instance: Instance, phone: Phone) -> None:
    client = instance.client
    _, token = await token_of(instance, "alice")
    bob, _ = await token_of(instance, "bob")
    phone.answer = 410
    await client.post(
        "/api/v1/push/subscription",
        json={
            "subscription": {
                "endpoint": f"http://{PUSH_HOST}/push/old",
                "keys": {"p256dh": phone.p256dh, "auth": b64url(phone.auth)},
            },
            "data": {"alerts": {"mention": True}},
        },
        headers=bearer(token),
    )
    await PostingService(instance.context).create(bob, "@alice are you still there?")
    await wait_for(phone, 1)
    for _ in range(100):
        async with instance.context.sessions() as session:
            if not (await session.scalars(select(PushSubscription))).all():
                break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the subscription was kept after 410 Gone")
    gone = await client.get("/api/v1/push/subscription", headers=bearer(token))
    assert gone.status_code == 404 and gone.json() == {"error": "Record not found"}


async def test_bad_subscriptions_are_refused_with_the_field_named(instance: Instance) -> None:
    client = instance.client
    _, token = await token_of(instance, "alice")
    _, no_push = await token_of(instance, "bob", scopes="read write")
    keys = {"p256dh": b64url(b"\x04" + b"\x01" * 64), "auth": b64url(b"a" * 16)}

    async def subscribe(payload: dict[str, Any], using: str = token) -> httpx.Response:
        return await client.post("/api/v1/push/subscription", json=payload, headers=bearer(using))

    outside = await subscribe({"subscription": {"endpoint": "https://push.example/x", "keys": keys}}, no_push)
    assert outside.status_code == 403
    assert (await client.post("/api/v1/push/subscription", json={})).status_code == 401
    missing = await subscribe({"subscription": {"keys": keys}})
    assert missing.status_code == 422 and "subscription[endpoint]" in missing.json()["error"]
    not_url = await subscribe({"subscription": {"endpoint": "ftp://push.example/x", "keys": keys}})
    assert not_url.status_code == 422 and "endpoint" in not_url.json()["error"]
    short_key = await subscribe(
        {"subscription": {"endpoint": "https://push.example/x", "keys": {**keys, "p256dh": "AAAA"}}}
    )
    assert short_key.status_code == 422 and "p256dh" in short_key.json()["error"]
    policy = await subscribe(
        {"subscription": {"endpoint": "https://push.example/x", "keys": keys}, "data": {"policy": "friends"}}
    )
    assert policy.status_code == 422 and "policy" in policy.json()["error"]
    assert (await client.get("/api/v1/push/subscription", headers=bearer(token))).status_code == 404
    assert (await client.delete("/api/v1/push/subscription", headers=bearer(token))).json() == {}
    app = await client.post(
        "/api/v1/apps", data={"client_name": "Phone", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob"}
    )
    assert len(unb64url(app.json()["vapid_key"])) == 65
