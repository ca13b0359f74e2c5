"""/api/v2/search with resolve=true across two instances of the lab (real HTTP between them):
a handle and a post URL from the other server are fetched through the guarded resolver, and a
followers-only post is not shown to someone who may not see it."""

from __future__ import annotations

from app.services.oauth import OAuthService
from app.services.posting import PostingService
from tests.lab import Lab
from tests.web.helpers import make_user


async def test_search_resolves_accounts_and_posts_of_another_server(lab: Lab) -> None:
    here = await lab.instance("a.test")
    there = await lab.instance("b.test")
    user, alice = await make_user(here, "alice")
    token = await OAuthService(here.context).issue_personal_token(
        user, scopes="read", app_name="tests", acting_as=alice
    )
    headers = {"Authorization": f"Bearer {token}"}
    _, bob = await make_user(there, "bob")
    posting = PostingService(there.context)
    public = await posting.create(bob, "Harbour festival on Saturday")
    private = await posting.create(bob, "Only for my followers", visibility="followers")

    # Without resolve, an unknown handle finds nothing; with it, the other server is asked.
    unknown = await here.client.get("/api/v2/search", params={"q": "@bob@b.test"}, headers=headers)
    assert unknown.json()["accounts"] == []
    found = await here.client.get(
        "/api/v2/search", params={"q": "@bob@b.test", "resolve": "true", "type": "accounts"}, headers=headers
    )
    assert [account["acct"] for account in found.json()["accounts"]] == ["bob@b.test"]

    by_url = await here.client.get(
        "/api/v2/search", params={"q": public.uri, "resolve": "true", "type": "statuses"}, headers=headers
    )
    statuses = by_url.json()["statuses"]
    assert len(statuses) == 1 and statuses[0]["uri"] == public.uri
    assert "Harbour festival" in statuses[0]["content"]
    hidden = await here.client.get(
        "/api/v2/search", params={"q": private.uri, "resolve": "true", "type": "statuses"}, headers=headers
    )
    assert hidden.status_code == 200 and hidden.json()["statuses"] == []
