"""Every endpoint of statuses, notifications, markers and announcements added for apps: no token
→ 401 (unless it is a public read), a token without the scope → 403, as Mastodon answers."""

from __future__ import annotations

from tests.api.api_helpers import another_token, person, post
from tests.lab import Instance

# (method, path, the scope that allows it, public without a token)
ENDPOINTS = [
    ("PUT", "/api/v1/statuses/{id}", "write:statuses", False),
    ("GET", "/api/v1/statuses/{id}/history", "read:statuses", True),
    ("GET", "/api/v1/statuses/{id}/source", "read:statuses", False),
    ("POST", "/api/v1/statuses/{id}/pin", "write:accounts", False),
    ("POST", "/api/v1/statuses/{id}/unpin", "write:accounts", False),
    ("POST", "/api/v1/statuses/{id}/bookmark", "write:bookmarks", False),
    ("POST", "/api/v1/statuses/{id}/unbookmark", "write:bookmarks", False),
    ("POST", "/api/v1/statuses/{id}/mute", "write:mutes", False),
    ("POST", "/api/v1/statuses/{id}/unmute", "write:mutes", False),
    ("GET", "/api/v1/statuses/{id}/favourited_by", "read:accounts", True),
    ("GET", "/api/v1/statuses/{id}/reblogged_by", "read:accounts", True),
    ("GET", "/api/v1/bookmarks", "read:bookmarks", False),
    ("GET", "/api/v1/favourites", "read:favourites", False),
    ("GET", "/api/v1/timelines/tag/news", "read:statuses", True),
    ("GET", "/api/v1/notifications", "read:notifications", False),
    ("GET", "/api/v1/notifications/unread_count", "read:notifications", False),
    ("POST", "/api/v1/notifications/clear", "write:notifications", False),
    ("GET", "/api/v1/notifications/requests", "read:notifications", False),
    ("GET", "/api/v2/notifications", "read:notifications", False),
    ("GET", "/api/v2/notifications/unread_count", "read:notifications", False),
    ("GET", "/api/v2/notifications/policy", "read:notifications", False),
    ("PATCH", "/api/v2/notifications/policy", "write:notifications", False),
    ("GET", "/api/v1/markers", "read:statuses", False),
    ("POST", "/api/v1/markers", "write:statuses", False),
    ("GET", "/api/v1/announcements", "read", False),
]


async def test_each_endpoint_wants_a_token_with_its_scope(instance: Instance) -> None:
    client = instance.client
    alice_account, alice = await person(instance, "alice")
    status = await post(client, alice, "Scoped #news")
    # A token whose only scope belongs to none of the endpoints above.
    unrelated = await another_token(instance, alice_account, scopes="read:lists")
    for method, template, scope, public in ENDPOINTS:
        path = template.format(id=status["id"])
        body = {"status": "x"} if method == "PUT" else {"home[last_read_id]": "1"}
        anonymous = await client.request(method, path, data=body if method != "GET" else None)
        assert anonymous.status_code == (200 if public else 401), (path, anonymous.text)
        refused = await client.request(
            method, path, headers=unrelated, data=body if method != "GET" else None
        )
        assert refused.status_code == 403, (path, refused.text)
        assert refused.json() == {"error": "This action is outside the authorized scopes"}
        allowed = await another_token(instance, alice_account, scopes=scope)
        answer = await client.request(method, path, headers=allowed, data=body if method != "GET" else None)
        assert answer.status_code == 200, (path, scope, answer.text)
