"""What the API keeps per process about a reader (app.services.kept_callers, kept_filters) never
outlives a change: a new or removed filter applies to the next page, a revoked token or a disabled
login is refused at the next request, an edited profile shows in the next answer."""

from __future__ import annotations

from sqlmodel import select

from app.models import OAuthAccessToken, Role, User
from app.services.oauth import OAuthService
from app.services.staff import StaffService
from tests.api.api_helpers import person, post
from tests.lab import Instance


async def test_a_filter_created_or_removed_applies_to_the_very_next_page(instance: Instance) -> None:
    client = instance.client
    alice, alice_auth = await person(instance, "alice")
    _, bob_auth = await person(instance, "bob")
    assert (
        await client.post(f"/api/v1/accounts/{(await _id(instance, 'bob'))}/follow", headers=alice_auth)
    ).status_code == 200
    spoiler = await post(client, bob_auth, "The match ended 2:1")

    async def home_ids() -> list[str]:
        answer = await client.get("/api/v1/timelines/home", headers=alice_auth)
        assert answer.status_code == 200, answer.text
        return [status["id"] for status in answer.json()]

    assert spoiler["id"] in await home_ids()
    assert len(instance.context.filters) == 1 and len(instance.context.callers) == 1
    made = await client.post(
        "/api/v2/filters",
        json={
            "title": "Sport",
            "context": ["home"],
            "filter_action": "hide",
            "keywords_attributes": [{"keyword": "match", "whole_word": True}],
        },
        headers=alice_auth,
    )
    assert made.status_code == 200, made.text
    assert spoiler["id"] not in await home_ids()
    removed = await client.delete(f"/api/v2/filters/{made.json()['id']}", headers=alice_auth)
    assert removed.status_code == 200, removed.text
    assert spoiler["id"] in await home_ids()
    del alice


async def test_a_revoked_token_a_disabled_login_and_an_edited_profile_are_seen_at_the_next_request(
    instance: Instance,
) -> None:
    client = instance.client
    alice, alice_auth = await person(instance, "alice")
    bob, bob_auth = await person(instance, "bob", role=Role.ADMIN)
    carol, carol_auth = await person(instance, "carol")
    for auth in (alice_auth, bob_auth, carol_auth):
        assert (await client.get("/api/v1/accounts/verify_credentials", headers=auth)).status_code == 200
    assert len(instance.context.callers) == 3

    async with instance.context.sessions() as session:
        users = {user.account_id: user for user in (await session.scalars(select(User))).all()}
        tokens = {
            token.account_id: token for token in (await session.scalars(select(OAuthAccessToken))).all()
        }
    await OAuthService(instance.context).revoke_app_for_user(
        users[alice.id].id, tokens[alice.id].application_id
    )
    answer = await client.get("/api/v1/accounts/verify_credentials", headers=alice_auth)
    assert answer.status_code == 401, answer.text

    # A profile edit shows at once in the token's own answers.
    edited = await client.patch(
        "/api/v1/accounts/update_credentials", json={"display_name": "Carol C."}, headers=carol_auth
    )
    assert edited.status_code == 200, edited.text
    again = await client.get("/api/v1/accounts/verify_credentials", headers=carol_auth)
    assert again.json()["display_name"] == "Carol C."

    await StaffService(instance.context).set_disabled(users[carol.id].id, True, by=users[bob.id])
    assert (await client.get("/api/v1/timelines/home", headers=carol_auth)).status_code == 401
    assert (await client.get("/api/v1/timelines/home", headers=bob_auth)).status_code == 200


async def _id(instance: Instance, username: str) -> int:
    from app.models import Account

    async with instance.context.sessions() as session:
        return (await session.scalars(select(Account.id).where(Account.username == username))).one()
