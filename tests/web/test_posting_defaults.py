"""The posting defaults an app sets (update_credentials' source[privacy|language]) are the compose
page's defaults too: one setting, whichever way a staff member posts."""

from __future__ import annotations

from app.models import Account
from tests.api.account_helpers import token_of
from tests.lab import Instance
from tests.web.helpers import logged_in


async def test_compose_page_starts_from_the_posting_defaults(instance: Instance) -> None:
    browser = await logged_in(instance, "alice")
    before = await browser.get("/compose")
    assert '<option value="public" selected>' in before.text
    me = (await browser.get("/api/v1/accounts/lookup", params={"acct": "alice"})).json()
    async with instance.context.sessions() as session:
        alice = await session.get(Account, int(me["id"]))
    assert alice is not None
    auth = await token_of(instance, alice)
    answer = await instance.client.patch(
        "/api/v1/accounts/update_credentials",
        json={"source": {"privacy": "private", "language": "de"}},
        headers=auth,
    )
    assert answer.status_code == 200, answer.text
    after = await browser.get("/compose")
    assert '<option value="followers" selected>' in after.text
    assert '<option value="de" lang="de" selected>' in after.text
    await browser.aclose()
