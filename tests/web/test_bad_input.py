"""Whatever is typed into a URL or a form, the answer is a page with a 4xx, never a 500."""

from __future__ import annotations

import pytest

from app.models import Role
from tests.lab import Instance
from tests.web.helpers import BROWSER, logged_in, make_user

HUGE = "9" * 25
BIG = str(2**63)
ODD = "²³"

PUBLIC_PATHS = [
    f"/@alice/{HUGE}",
    f"/@alice/{BIG}",
    f"/@alice/{ODD}",
    f"/tags/garden?max_id={BIG}",
    f"/tags/garden?max_id={ODD}",
    "/tags/" + "x" * 500,
    "/@alice?page=-1",
    "/@" + "a" * 2000,
    "/@alice/remote-follow?server=" + "a" * 3000,
    "/@alice/remote-follow?server=münchen.social",
    "/@alice/remote-follow?server=xn--.social",
    f"/invite/{BIG}.{BIG}.sig",
    f"/invite/{ODD}.1.sig",
    "/invite/" + "1." * 200,
    "/login?next=" + "%00" * 10,
]
STAFF_PATHS = [
    f"/posts/{HUGE}",
    f"/posts/{BIG}",
    f"/posts/{ODD}/edit",
    f"/home?max_id={BIG}",
    f"/local?max_id={ODD}",
    f"/notifications?max_id={HUGE}",
    f"/compose?reply_to={BIG}",
    "/search?q=" + "@" * 50,
    "/search?q=@a@" + "b" * 300,
    "/search?q=https://",
    "/search?q=http://[::1",
    f"/admin/staff?x={BIG}",
]


@pytest.fixture
async def alice(instance: Instance) -> Instance:
    await make_user(instance, "alice")
    return instance


async def test_odd_urls_for_visitors_answer_4xx(alice: Instance) -> None:
    for path in PUBLIC_PATHS:
        response = await alice.client.get(path, headers=BROWSER)
        assert 200 <= response.status_code < 500, (path, response.status_code)


async def test_odd_urls_and_forms_for_staff_answer_4xx(alice: Instance) -> None:
    admin = await logged_in(alice, "boss", role=Role.ADMIN)
    for path in STAFF_PATHS:
        response = await admin.get(path)
        assert response.status_code < 500, (path, response.status_code)
    for path, data in (
        (f"/posts/{BIG}/like", {}),
        (f"/posts/{ODD}/boost", {}),
        (f"/notifications/requests/{BIG}/approve", {"account": "boss"}),
        (f"/admin/staff/{BIG}/role", {"role": "admin"}),
        (f"/admin/staff/{HUGE}/disable", {}),
        (f"/admin/organizations/{BIG}/delegates", {"user_id": BIG}),
        ("/admin/organizations/1/delegates", {"user_id": ODD}),
        ("/compose", {"text": "hi", "author": "boss", "in_reply_to": BIG}),
        ("/compose", {"text": "x" * 200_000, "author": "boss"}),
        ("/settings/profile", {"account": "boss", "aliases": "@x@" + "y" * 300}),
        ("/settings/profile", {"account": "boss", "field_name_0": "a" * 10_000, "field_value_0": "b"}),
        ("/follow", {"target": "http://[::1"}),
        ("/follow", {"target": "@" * 40}),
        ("/unfollow", {"target": "@nobody@nowhere.test"}),
        ("/admin/federation/retry", {"host": "h" * 300}),
        ("/settings/language", {"locale": "x" * 100}),
    ):
        response = await admin.post(path, data)
        assert 400 <= response.status_code < 500, (path, response.status_code)
