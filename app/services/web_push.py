"""Web Push subscriptions (Mastodon's /api/v1/push/subscription) and the jobs that send them.

A subscription belongs to one access token and says which notifications its app wants pushed
(`alerts`) and from whom (`policy`). When a notification is written, a `push.send` job is queued
in the same transaction for every subscription of its account whose alerts want it, so a push is
never lost to a crash between the commit and the queueing; the worker encrypts and sends it
(app/federation/web_push.py).

The server's VAPID key pair, which signs every message, is kept by app.services.vapid_keys.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from py_vapid import Vapid02
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.context import AppContext
from app.models import NotificationType, PushSubscription
from app.services.errors import Invalid, NotFound
from app.services.jobs import queue_job_in
from app.services.viewer import Viewer

PUSH_SEND = "push.send"
# Mastodon's alert names, in its order; each stored notification kind maps to one of them.
ALERTS = (
    "mention",
    "status",
    "reblog",
    "follow",
    "follow_request",
    "favourite",
    "poll",
    "update",
    "admin.sign_up",
    "admin.report",
)
ALERT_OF_KIND: dict[str, str] = {
    NotificationType.MENTION: "mention",
    NotificationType.REPLY: "mention",
    NotificationType.REBLOG: "reblog",
    NotificationType.FOLLOW: "follow",
    NotificationType.FOLLOW_REQUEST: "follow_request",
    NotificationType.FAVOURITE: "favourite",
    NotificationType.POLL: "poll",
    NotificationType.UPDATE: "update",
    NotificationType.REPORT: "admin.report",
    NotificationType.STATUS: "status",
    NotificationType.SIGN_UP: "admin.sign_up",
}
POLICIES = ("all", "followed", "follower", "none")
MAX_ENDPOINT = 2048


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenSeal:
    """Seals an access token with a key derived from SECRET_KEY (AES-GCM), so the database alone
    holds no usable token, yet the worker can put it in the payload as Mastodon does."""

    def __init__(self, secret_key: str) -> None:
        self._cipher = AESGCM(hashlib.sha256(f"herold-web-push:{secret_key}".encode()).digest())

    def seal(self, token: str) -> str:
        nonce = os.urandom(12)
        return b64url(nonce + self._cipher.encrypt(nonce, token.encode(), None))

    def open(self, sealed: str) -> str:
        raw = b64url_decode(sealed)
        return self._cipher.decrypt(raw[:12], raw[12:], None).decode()


async def vapid_key(context: AppContext) -> Vapid02:
    return await context.vapid.key(context.sessions)


async def vapid_public_key(context: AppContext) -> str:
    """The public key apps pass to the push service (`vapid_key`)."""
    return await context.vapid.public_key(context.sessions)


@dataclass(frozen=True)
class SubscriptionRequest:
    endpoint: str
    p256dh: str
    auth: str
    alerts: dict[str, bool]
    policy: str = "all"
    standard: bool = False


def _checked_endpoint(endpoint: str) -> str:
    parts = urlsplit(endpoint.strip())
    if parts.scheme not in ("https", "http") or not parts.hostname or len(endpoint) > MAX_ENDPOINT:
        raise Invalid("subscription[endpoint] must be an https URL of at most 2048 characters")
    return endpoint.strip()


def _checked_key(value: str, field: str, length: int) -> str:
    try:
        raw = b64url_decode(value.strip())
    except (ValueError, TypeError):
        raw = b""
    if len(raw) != length:
        raise Invalid(f"subscription[keys][{field}] must be {length} bytes in base64url")
    return value.strip()


def _alerts_text(alerts: dict[str, bool]) -> str:
    unknown = sorted(set(alerts) - set(ALERTS))
    if unknown:
        raise Invalid(f"data[alerts] has unknown types: {', '.join(unknown)}")
    return " ".join(name for name in ALERTS if alerts.get(name))


def _checked_policy(policy: str) -> str:
    if policy not in POLICIES:
        raise Invalid(f"data[policy] must be one of {', '.join(POLICIES)}")
    return policy


class PushSubscriptionService:
    """The subscription of the token the viewer holds: made, read, changed and removed."""

    def __init__(self, context: AppContext, viewer: Viewer) -> None:
        self.context = context
        self.viewer = viewer

    def _account_id(self) -> int:
        self.viewer.require_scope("push")
        if self.viewer.account is None:
            raise Invalid("Web Push needs the token of a user")
        return self.viewer.account.id

    async def subscribe(self, token_id: int, token: str, request: SubscriptionRequest) -> PushSubscription:
        """Subscribe this token, replacing its earlier subscription (as Mastodon does)."""
        account_id = self._account_id()
        row = PushSubscription(
            access_token_id=token_id,
            account_id=account_id,
            endpoint=_checked_endpoint(request.endpoint),
            key_p256dh=_checked_key(request.p256dh, "p256dh", 65),
            key_auth=_checked_key(request.auth, "auth", 16),
            sealed_token=TokenSeal(self.context.settings.secret_key).seal(token),
            alerts=_alerts_text(request.alerts),
            policy=_checked_policy(request.policy),
            standard=request.standard,
        )
        async with self.context.sessions() as session:
            await session.execute(
                delete(PushSubscription).where(col(PushSubscription.access_token_id) == token_id)
            )
            session.add(row)
            await session.commit()
            await session.refresh(row)
        return row

    async def current(self, token_id: int) -> PushSubscription:
        self._account_id()
        async with self.context.sessions() as session:
            row = (
                await session.scalars(
                    select(PushSubscription).where(col(PushSubscription.access_token_id) == token_id)
                )
            ).first()
        if row is None:
            raise NotFound("Record not found")
        return row

    async def change(
        self, token_id: int, *, alerts: dict[str, bool] | None, policy: str | None
    ) -> PushSubscription:
        """Change what is pushed; alerts not named keep their value, as on Mastodon."""
        row = await self.current(token_id)
        if alerts is not None:
            wanted = {name: name in row.alerts.split() for name in ALERTS}
            wanted.update(alerts)
            row.alerts = _alerts_text(wanted)
        if policy is not None:
            row.policy = _checked_policy(policy)
        async with self.context.sessions() as session:
            session.add(row)
            await session.commit()
            await session.refresh(row)
        return row

    async def remove(self, token_id: int) -> None:
        self._account_id()
        async with self.context.sessions() as session:
            await session.execute(
                delete(PushSubscription).where(col(PushSubscription.access_token_id) == token_id)
            )
            await session.commit()


def subscription_alerts(row: PushSubscription) -> dict[str, bool]:
    wanted = set(row.alerts.split())
    return {name: name in wanted for name in ALERTS}


@dataclass(frozen=True)
class NewNotification:
    id: int
    account_id: int
    kind: str


async def queue_pushes(session: AsyncSession, notifications: Sequence[NewNotification]) -> None:
    """In the caller's transaction: a push job per subscription that wants each new notification.

    One indexed query per batch finds the subscriptions; accounts without any cost nothing more."""
    if not notifications:
        return
    account_ids = {item.account_id for item in notifications}
    rows = (
        await session.execute(
            select(
                col(PushSubscription.id), col(PushSubscription.account_id), col(PushSubscription.alerts)
            ).where(col(PushSubscription.account_id).in_(account_ids))
        )
    ).all()
    if not rows:
        return
    for item in notifications:
        alert = ALERT_OF_KIND.get(item.kind)
        for subscription_id, account_id, alerts in rows:
            if account_id == item.account_id and alert is not None and alert in alerts.split():
                queue_job_in(
                    session, PUSH_SEND, {"subscription_id": subscription_id, "notification_id": item.id}
                )


def new_notifications(rows: Iterable[dict[str, Any]]) -> list[NewNotification]:
    return [NewNotification(row["id"], row["account_id"], row["type"]) for row in rows]


__all__ = [
    "ALERTS",
    "PUSH_SEND",
    "NewNotification",
    "PushSubscriptionService",
    "SubscriptionRequest",
    "TokenSeal",
    "b64url",
    "queue_pushes",
    "subscription_alerts",
    "vapid_key",
    "vapid_public_key",
]
