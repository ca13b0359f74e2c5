"""OAuth 2 as Mastodon's apps drive it: registering, the authorize page, tokens, revocation."""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs, urlsplit

from sqlmodel import select

from app.models import OAuthAccessToken, OAuthApplication, OAuthAuthorizationCode, Role
from app.services.oauth import OAuthService
from app.services.staff import StaffService
from tests.api.oauth_helpers import REDIRECT, authorize, exchange, register_app, user_token
from tests.lab import Instance
from tests.web.helpers import Browser, logged_in, make_user, new_client


async def test_apps_register_from_json_a_form_or_a_query_string(instance: Instance) -> None:
    client = instance.client
    as_json = await client.post(
        "/api/v1/apps",
        json={
            "client_name": "Elk",
            "redirect_uris": ["https://elk.zone/callback", "icecubesapp://"],
            "scopes": "read write",
        },
    )
    as_form = await client.post(
        "/api/v1/apps",
        data={"client_name": "Tusky", "redirect_uris": REDIRECT, "scopes": "read write follow push"},
    )
    as_query = await client.post(
        "/api/v1/apps",
        params={
            "client_name": "Ivory",
            "redirect_uris": "com.tapbots.Ivory.19300:/request_token",
            "scopes": "read",
        },
    )
    for response in (as_json, as_form, as_query):
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) >= {
            "id",
            "name",
            "website",
            "scopes",
            "redirect_uri",
            "redirect_uris",
            "client_id",
            "client_secret",
            "client_secret_expires_at",
        }
        assert body["id"].isdigit()
    assert as_json.json()["redirect_uris"] == ["https://elk.zone/callback", "icecubesapp://"]
    assert as_json.json()["redirect_uri"] == "https://elk.zone/callback\nicecubesapp://"
    assert as_form.json()["scopes"] == ["read", "write", "follow", "push"]
    assert as_query.json()["redirect_uris"] == ["com.tapbots.Ivory.19300:/request_token"]
    # CORS for browser apps (Elk, Phanpy) and Mastodon's rate-limit headers.
    assert as_json.headers["access-control-allow-origin"] == "*"
    assert as_json.headers["x-ratelimit-limit"] == "300"


async def test_bad_registrations_are_422_naming_the_field(instance: Instance) -> None:
    client = instance.client
    missing_name = await client.post("/api/v1/apps", json={"redirect_uris": REDIRECT})
    relative = await client.post("/api/v1/apps", json={"client_name": "x", "redirect_uris": "/callback"})
    unknown_scope = await client.post(
        "/api/v1/apps", json={"client_name": "x", "redirect_uris": REDIRECT, "scopes": "read everything"}
    )
    wrong_type = await client.post(
        "/api/v1/apps", json={"client_name": ["x", "y"], "redirect_uris": REDIRECT}
    )
    not_json = await client.post(
        "/api/v1/apps", content=b"{nope", headers={"content-type": "application/json"}
    )
    assert missing_name.status_code == 422 and "client_name" in missing_name.json()["error"]
    assert relative.status_code == 422 and "redirect_uris" in relative.json()["error"]
    assert unknown_scope.status_code == 422 and "everything" in unknown_scope.json()["error"]
    assert wrong_type.status_code == 422 and "client_name" in wrong_type.json()["error"]
    assert not_json.status_code == 400 and "JSON" in not_json.json()["error"]


async def test_code_flow_with_pkce_and_the_code_is_single_use(instance: Instance) -> None:
    client = instance.client
    app = await register_app(client)
    await make_user(instance, "alice")
    browser = Browser(new_client(instance))
    query = {
        "response_type": "code",
        "client_id": app["client_id"],
        "redirect_uri": REDIRECT,
        "scope": "read",
    }
    # Logged out: through the login page and back.
    first = await browser.get("/oauth/authorize/", params=query)
    assert first.status_code == 303 and first.headers["location"].startswith(
        "/login?next=%2Foauth%2Fauthorize"
    )
    await browser.login("alice")
    page = await browser.get("/oauth/authorize", params=query)
    assert "Tusky" in page.text and "@alice" in page.text and "Authorize" in page.text and "Deny" in page.text
    assert "cross-origin-opener-policy" not in page.headers

    verifier = secrets.token_urlsafe(48)
    code = await authorize(browser, app, verifier=verifier)
    wrong = await exchange(client, app, code, verifier="x" * 50)
    assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
    assert wrong.json()["error_description"]
    granted = await exchange(client, app, code, verifier=verifier)
    assert granted.status_code == 200, granted.text
    body = granted.json()
    assert body["token_type"] == "Bearer" and body["scope"] == "read write follow"
    assert isinstance(body["created_at"], int)
    again = await exchange(client, app, code, verifier=verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"

    token = body["access_token"]
    verified = await client.get(
        "/api/v1/apps/verify_credentials", headers={"Authorization": f"Bearer {token}"}
    )
    assert verified.status_code == 200 and verified.json()["name"] == "Tusky"
    assert "client_secret" not in verified.json()

    # Stored hashed: neither the token, the code nor the client secret is in the database.
    async with instance.context.sessions() as session:
        tokens = (await session.scalars(select(OAuthAccessToken.token_hash))).all()
        codes = (await session.scalars(select(OAuthAuthorizationCode.code_hash))).all()
        secrets_stored = (await session.scalars(select(OAuthApplication.client_secret_hash))).all()
    assert token not in tokens and code not in codes and app["client_secret"] not in secrets_stored
    await browser.aclose()


async def test_a_code_for_another_redirect_uri_or_without_its_verifier_is_refused(instance: Instance) -> None:
    client = instance.client
    other = "https://app.example/callback"
    app = await register_app(client)
    app_two = (
        await client.post("/api/v1/apps", json={"client_name": "Two", "redirect_uris": [REDIRECT, other]})
    ).json()
    browser = await logged_in(instance, "alice")
    code = await authorize(browser, app_two, scope="read", redirect_uri=other)
    moved = await exchange(client, app_two, code)  # sends REDIRECT, not the URI the code was made for
    assert moved.status_code == 400 and moved.json()["error"] == "invalid_grant"
    verifier = secrets.token_urlsafe(48)
    code = await authorize(browser, app, scope="read", verifier=verifier)
    missing = await exchange(client, app, code)
    assert missing.status_code == 400 and missing.json()["error"] == "invalid_grant"
    wrong_secret = await exchange(client, dict(app, client_secret="nope"), code, verifier=verifier)
    assert wrong_secret.status_code == 401 and wrong_secret.json()["error"] == "invalid_client"
    password = await client.post(
        "/oauth/token",
        json={
            "grant_type": "password",
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "username": "alice",
            "password": "correct horse battery",
        },
    )
    assert password.status_code == 400 and password.json()["error"] == "unsupported_grant_type"
    await browser.aclose()


async def test_deny_unknown_clients_and_unregistered_redirects(instance: Instance) -> None:
    client = instance.client
    app = await register_app(client)
    browser = await logged_in(instance, "alice")
    query = {"response_type": "code", "client_id": app["client_id"], "redirect_uri": REDIRECT, "state": "s1"}
    await browser.get("/oauth/authorize", params=query)
    denied = await browser.post("/oauth/authorize", dict(query, decision="deny"))
    assert denied.status_code == 302
    assert parse_qs(urlsplit(denied.headers["location"]).query) == {
        "error": ["access_denied"],
        "state": ["s1"],
    }

    unknown = await browser.get("/oauth/authorize", params=dict(query, client_id="nope"))
    elsewhere = await browser.get(
        "/oauth/authorize", params=dict(query, redirect_uri="https://evil.example/")
    )
    for page in (unknown, elsewhere):
        assert page.status_code == 400 and "location" not in page.headers
    await browser.aclose()


async def test_oob_shows_the_code_and_a_repeat_authorization_goes_straight_back(instance: Instance) -> None:
    client = instance.client
    oob = "urn:ietf:wg:oauth:2.0:oob"
    app = (await client.post("/api/v1/apps", data={"client_name": "toot", "redirect_uris": oob})).json()
    browser = await logged_in(instance, "alice")
    query = {"response_type": "code", "client_id": app["client_id"], "redirect_uri": oob, "scope": "read"}
    await browser.get("/oauth/authorize", params=query)
    shown = await browser.post("/oauth/authorize", dict(query, decision="authorize"))
    assert shown.status_code == 200 and 'id="authorization-code"' in shown.text

    tusky = await register_app(client)
    await user_token(client, browser, scope="read")
    query = {
        "response_type": "code",
        "client_id": tusky["client_id"],
        "redirect_uri": REDIRECT,
        "scope": "read",
    }
    # A token of another app with these scopes does not count; one of the same app does.
    again = await browser.get("/oauth/authorize", params=query)
    assert again.status_code == 200
    code = await authorize(browser, tusky, scope="read")
    assert (await exchange(client, tusky, code)).status_code == 200
    straight = await browser.get("/oauth/authorize", params=dict(query, state="xyz"))
    assert straight.status_code == 302 and "code=" in straight.headers["location"]
    forced = await browser.get("/oauth/authorize", params=dict(query, force_login="true"))
    assert forced.status_code == 200
    await browser.aclose()


async def test_revoked_tokens_and_disabled_users_are_401(instance: Instance) -> None:
    client = instance.client
    browser = await logged_in(instance, "alice")
    app = await register_app(client)
    code = await authorize(browser, app, scope="read")
    token = (await exchange(client, app, code)).json()["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/apps/verify_credentials", headers=auth)).status_code == 200
    revoked = await client.post(
        "/oauth/revoke",
        data={"client_id": app["client_id"], "client_secret": app["client_secret"], "token": token},
    )
    assert revoked.status_code == 200 and revoked.json() == {}
    dead = await client.get("/api/v1/apps/verify_credentials", headers=auth)
    assert dead.status_code == 401 and dead.json() == {"error": "The access token is invalid"}
    nothing = await client.get("/api/v1/apps/verify_credentials")
    assert nothing.status_code == 401

    admin, _ = await make_user(instance, "boss", role=Role.ADMIN)
    token = await user_token(client, browser, scope="read")
    holder = await OAuthService(instance.context).token_holder(token)
    assert holder is not None and holder.user is not None
    await StaffService(instance.context).set_disabled(holder.user.id, True, by=admin)
    disabled = await client.get(
        "/api/v1/apps/verify_credentials", headers={"Authorization": f"Bearer {token}"}
    )
    assert disabled.status_code == 401
    await browser.aclose()


async def test_client_credentials_and_the_server_metadata(instance: Instance) -> None:
    client = instance.client
    app = await register_app(client)
    issued = await client.post(
        "/oauth/token",
        params={
            "grant_type": "client_credentials",
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
        },
    )
    assert issued.status_code == 200, issued.text
    token = issued.json()["access_token"]
    verified = await client.get(
        "/api/v1/apps/verify_credentials", headers={"Authorization": f"Bearer {token}"}
    )
    assert verified.status_code == 200
    metadata = (await client.get("/.well-known/oauth-authorization-server")).json()
    assert metadata["authorization_endpoint"] == f"{instance.base_url}/oauth/authorize"
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["grant_types_supported"] == ["authorization_code", "client_credentials"]
    assert metadata["app_registration_endpoint"] == f"{instance.base_url}/api/v1/apps"
    assert {"read", "write", "follow", "push", "profile", "read:statuses"} <= set(
        metadata["scopes_supported"]
    )
    preflight = await client.options(
        "/oauth/token",
        headers={
            "Origin": "https://elk.zone",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,idempotency-key",
        },
    )
    assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == "*"
    assert "Idempotency-Key" in preflight.headers["access-control-allow-headers"]
    assert "Link" in preflight.headers["access-control-expose-headers"]


async def test_a_token_may_act_as_an_organisation_its_owner_posts_for(instance: Instance) -> None:
    client = instance.client
    boss, _ = await make_user(instance, "boss", role=Role.ADMIN)
    alice = await logged_in(instance, "alice")
    _, townhall = await make_user(instance, "townhall", organization=True)
    staff = StaffService(instance.context)
    alice_user = next(member.user for member in await staff.members() if member.account.username == "alice")
    await staff.grant_delegate(townhall.id, alice_user.id, by=boss)
    page_app = await register_app(client)
    query = {
        "response_type": "code",
        "client_id": page_app["client_id"],
        "redirect_uri": REDIRECT,
        "scope": "read",
    }
    page = await alice.get("/oauth/authorize", params=query)
    assert "@alice" in page.text and "@townhall" in page.text
    token = await user_token(client, alice, account_id=townhall.id)
    holder = await OAuthService(instance.context).token_holder(token)
    assert holder is not None and holder.acting_account is not None
    assert holder.acting_account.username == "townhall"
    # Once alice leaves the team, the token is dead.
    await staff.revoke_delegate(townhall.id, alice_user.id, by=boss)
    dead = await client.get("/api/v1/apps/verify_credentials", headers={"Authorization": f"Bearer {token}"})
    assert dead.status_code == 401
    # Someone not on the team cannot choose the organisation.
    carol = await logged_in(instance, "carol")
    await carol.get("/oauth/authorize", params=query)
    refused = await carol.post(
        "/oauth/authorize", dict(query, decision="authorize", account_id=str(townhall.id))
    )
    assert refused.status_code == 403 and "location" not in refused.headers
    await alice.aclose()
    await carol.aclose()
