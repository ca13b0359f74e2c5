"""Sending Web Push notifications: the `push.send` job (queued by app.services.web_push).

The payload is Mastodon's (Web::NotificationSerializer), so Tusky, Ivory and Elk show it; it is
encrypted for the subscriber's keys (RFC 8291 aes128gcm when the app asked for `standard`, else
the aesgcm draft Mastodon still sends by default) and signed with the instance's VAPID key
(RFC 8292). Push endpoints are third-party URLs: they go through the same guarded HTTP client as
every other outgoing request, so a private address is refused unless ALLOWED_PRIVATE_ADDRESSES
names it (a push relay inside the organisation's network).
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any
from urllib.parse import urlsplit

import http_ece
import httpx
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import delete, select
from sqlmodel import col

from app.activitypub.transport import ForbiddenAddressError
from app.context import AppContext
from app.models import Account, Follow, FollowState, Notification, Post, PushSubscription, User
from app.services.html_sanitizer import html_to_plain_text
from app.services.web_push import ALERT_OF_KIND, TokenSeal, b64url, b64url_decode, vapid_key

log = logging.getLogger(__name__)

# How long a push service keeps an undelivered message (Mastodon's 48 hours).
TIME_TO_LIVE = 48 * 3600
BODY_LENGTH = 140
# Mastodon's English titles, by alert.
TITLES = {
    "mention": "{name} mentioned you",
    "status": "{name} just posted",
    "reblog": "{name} boosted your post",
    "follow": "{name} followed you",
    "follow_request": "{name} has requested to follow you",
    "favourite": "{name} favorited your post",
    "poll": "A poll you voted in has ended",
    "update": "{name} edited a post",
    "admin.sign_up": "{name} signed up",
    "admin.report": "{name} filed a report",
}


class PushRetry(Exception):
    """The push service could not take it now (5xx, 429, the network): try again later."""


class PushRefused(Exception):
    """The push service refused this message for good (another 4xx)."""


async def send_web_push(context: AppContext, payload: dict[str, Any]) -> None:
    """Send one notification to one subscription; a gone subscription or notification ends quietly."""
    async with context.sessions() as session:
        subscription = await session.get(PushSubscription, int(payload.get("subscription_id") or 0))
        notification = await session.get(Notification, int(payload.get("notification_id") or 0))
        if subscription is None or notification is None:
            return
        alert = ALERT_OF_KIND.get(notification.type)
        if alert is None or alert not in subscription.alerts.split():
            return
        if not await _policy_allows(session, subscription, notification):
            return
        sender = await session.get(Account, notification.from_account_id)
        post = await session.get(Post, notification.post_id) if notification.post_id else None
        user = (
            await session.scalars(select(User).where(col(User.account_id) == subscription.account_id))
        ).first()
    if sender is None:
        return
    message = _payload(context, subscription, notification, alert, sender, post, user)
    status = await _post(context, subscription, json.dumps(message).encode())
    if status in (404, 410):
        # The app was uninstalled or the subscription expired: Mastodon removes it, as we do.
        async with context.sessions() as session:
            await session.execute(delete(PushSubscription).where(col(PushSubscription.id) == subscription.id))
            await session.commit()
        log.info("push subscription %s removed: its endpoint answered %s", subscription.id, status)
        return
    if status == 429 or status >= 500:
        raise PushRetry(f"the push service answered {status}")
    if status >= 400:
        raise PushRefused(f"the push service refused the message with {status}")


async def _policy_allows(session: Any, subscription: PushSubscription, notification: Notification) -> bool:
    if subscription.policy == "all":
        return True
    if subscription.policy == "none":
        return False
    if subscription.policy == "followed":
        follower, followee = subscription.account_id, notification.from_account_id
    else:  # "follower": only from accounts that follow the subscriber
        follower, followee = notification.from_account_id, subscription.account_id
    found = await session.scalar(
        select(col(Follow.id)).where(
            col(Follow.follower_id) == follower,
            col(Follow.followee_id) == followee,
            col(Follow.state) == FollowState.ACCEPTED,
        )
    )
    return found is not None


def _payload(
    context: AppContext,
    subscription: PushSubscription,
    notification: Notification,
    alert: str,
    sender: Account,
    post: Post | None,
    user: User | None,
) -> dict[str, Any]:
    name = sender.display_name or sender.username
    text = html_to_plain_text(post.content_html) if post is not None and post.deleted_at is None else ""
    if post is not None and post.summary:
        text = post.summary
    if len(text) > BODY_LENGTH:
        text = text[: BODY_LENGTH - 1] + "…"
    try:
        token = TokenSeal(context.settings.secret_key).open(subscription.sealed_token)
    except InvalidTag:
        raise PushRefused("the subscription's token cannot be unsealed: SECRET_KEY changed since") from None
    return {
        "access_token": token,
        "preferred_locale": (user.locale if user is not None and user.locale else "en"),
        "notification_id": str(notification.id),
        "notification_type": alert,
        "icon": sender.avatar_url or f"{context.settings.base_url}/static/default-avatar.png",
        "title": TITLES[alert].format(name=name),
        "body": text,
    }


async def _post(context: AppContext, subscription: PushSubscription, data: bytes) -> int:
    receiver = b64url_decode(subscription.key_p256dh)
    auth = b64url_decode(subscription.key_auth)
    sender_key = ec.generate_private_key(ec.SECP256R1())
    headers = {"TTL": str(TIME_TO_LIVE), "Urgency": "normal", "Content-Type": "application/octet-stream"}
    if subscription.standard:
        body = http_ece.encrypt(
            data, private_key=sender_key, dh=receiver, auth_secret=auth, version="aes128gcm"
        )
        headers["Content-Encoding"] = "aes128gcm"
    else:
        salt = os.urandom(16)
        body = http_ece.encrypt(
            data, salt=salt, private_key=sender_key, dh=receiver, auth_secret=auth, version="aesgcm"
        )
        public = sender_key.public_key().public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
        headers["Content-Encoding"] = "aesgcm"
        headers["Encryption"] = f"salt={b64url(salt)}"
        headers["Crypto-Key"] = f"dh={b64url(public)}"
    endpoint = urlsplit(subscription.endpoint)
    claims = {
        "aud": f"{endpoint.scheme}://{endpoint.netloc}",
        "sub": f"mailto:admin@{context.settings.local_domain}",
    }
    headers.update((await vapid_key(context)).sign(claims))
    try:
        response = await context.http.post(subscription.endpoint, content=body, headers=headers, timeout=15)
    except ForbiddenAddressError as error:
        raise PushRefused(f"the push endpoint is not allowed: {error}") from None
    except httpx.HTTPError as error:
        raise PushRetry(f"the push service could not be reached: {error}") from None
    return response.status_code


__all__ = ["PushRefused", "PushRetry", "send_web_push"]
