"""Profile settings: text, pictures (resized with Pillow), fields, locked account, aliases; the language."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from sqlmodel import select

from app.models import Account, User
from app.services.profile_settings import ProfileError, process_image
from tests.lab import Instance, Lab
from tests.web.helpers import logged_in


def image_bytes(size: tuple[int, int], mode: str = "RGB", image_format: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, (200, 30, 30, 128) if mode == "RGBA" else (30, 120, 200)).save(buffer, image_format)
    return buffer.getvalue()


async def account_named(instance: Instance, username: str) -> Account:
    async with instance.context.sessions() as session:
        return (await session.scalars(select(Account).where(Account.username == username))).one()


async def test_profile_text_fields_and_locked_state_are_saved(instance: Instance) -> None:
    alice = await logged_in(instance, "alice")
    form = await alice.get("/settings/profile")
    assert 'enctype="multipart/form-data"' in form.text
    saved = await alice.post(
        "/settings/profile",
        {
            "account": "alice",
            "display_name": "  Alice   Example ",
            "bio": "Gardener.\n\nSee https://garden.example and #roses",
            "field_name_0": "Garden",
            "field_value_0": "https://garden.example",
            "field_name_1": "Pronouns",
            "field_value_1": "she/her",
            "locked": "on",
            "discoverable": "on",
        },
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == "/settings/profile?notice=saved"
    account = await account_named(instance, "alice")
    assert account.display_name == "Alice Example"
    assert account.summary_html.startswith('<p>Gardener.</p><p>See <a href="https://garden.example"')
    assert 'href="http://a.test/tags/roses"' in account.summary_html
    assert [field["name"] for field in account.fields] == ["Garden", "Pronouns"]
    assert 'rel="me nofollow noopener noreferrer"' in account.fields[0]["value"]
    assert account.manually_approves_followers is True
    # The form shows the text as it was typed.
    again = await alice.get("/settings/profile")
    assert "Gardener.\n\nSee https://garden.example and #roses</textarea>" in again.text
    assert 'value="https://garden.example"' in again.text
    # The actor document carries the change (what followers will fetch).
    actor = await instance.client.get("/users/alice", headers={"Accept": "application/activity+json"})
    assert actor.json()["name"] == "Alice Example"
    assert actor.json()["manuallyApprovesFollowers"] is True


async def test_profile_input_problems_are_reported(instance: Instance) -> None:
    alice = await logged_in(instance, "alice")
    for data, message in (
        ({"display_name": "x" * 101}, "at most 100"),
        ({"bio": "b" * 2001}, "at most 2000"),
        ({"field_name_0": "Only a label"}, "both a label and a content"),
        ({"aliases": "not-a-handle"}, "could not be found"),
    ):
        refused = await alice.post("/settings/profile", {"account": "alice", "display_name": "Alice", **data})
        assert refused.status_code == 400, data
        assert message in refused.text, data
    assert (await alice.post("/settings/profile", {"account": "bob"})).status_code == 403


async def test_avatar_and_header_are_resized_and_served(instance: Instance) -> None:
    alice = await logged_in(instance, "alice")
    saved = await alice.client.post(
        "/settings/profile",
        data={"csrf_token": alice.csrf, "account": "alice", "display_name": "Alice"},
        files={
            "avatar": ("me.png", image_bytes((1000, 800), "RGBA"), "image/png"),
            "header": ("wide.jpg", image_bytes((3000, 600), image_format="JPEG"), "image/jpeg"),
        },
    )
    assert saved.status_code == 303, saved.text
    account = await account_named(instance, "alice")
    assert account.avatar_url and account.avatar_url.startswith("http://a.test/media/profiles/")
    assert account.avatar_url.endswith(".png")  # transparency kept
    assert account.header_url and account.header_url.endswith(".jpg")
    avatar = await instance.client.get(account.avatar_url.removeprefix("http://a.test"))
    assert avatar.status_code == 200
    assert Image.open(io.BytesIO(avatar.content)).size == (400, 400)
    header = await instance.client.get(account.header_url.removeprefix("http://a.test"))
    assert Image.open(io.BytesIO(header.content)).size == (1500, 500)
    actor = (
        await instance.client.get("/users/alice", headers={"Accept": "application/activity+json"})
    ).json()
    assert actor["icon"] == {"type": "Image", "mediaType": "image/png", "url": account.avatar_url}
    assert actor["image"]["mediaType"] == "image/jpeg"

    # Replacing the avatar removes the old file; removing it clears the URL.
    old_path = account.avatar_url.removeprefix("http://a.test")
    await alice.client.post(
        "/settings/profile",
        data={"csrf_token": alice.csrf, "account": "alice", "display_name": "Alice"},
        files={"avatar": ("again.jpg", image_bytes((50, 50), image_format="JPEG"), "image/jpeg")},
    )
    assert (await instance.client.get(old_path)).status_code == 404
    await alice.post(
        "/settings/profile", {"account": "alice", "display_name": "Alice", "remove_avatar": "on"}
    )
    assert (await account_named(instance, "alice")).avatar_url is None


async def test_bad_pictures_are_refused_with_a_message(instance: Instance) -> None:
    alice = await logged_in(instance, "alice")
    for name, content, message in (
        ("notes.txt", b"just text", "not a picture"),
        ("broken.png", image_bytes((10, 10))[:40], "damaged"),
        ("huge.png", b"\x00" * (8 * 1024 * 1024 + 10), "at most 8 MB"),
    ):
        refused = await alice.client.post(
            "/settings/profile",
            data={"csrf_token": alice.csrf, "account": "alice", "display_name": "Alice"},
            files={"avatar": (name, content, "image/png")},
        )
        assert refused.status_code == 400, name
        assert message in refused.text or "not a picture" in refused.text, (name, refused.text[-500:])
    assert (await account_named(instance, "alice")).avatar_url is None


def test_decompression_bombs_are_refused_before_decoding() -> None:
    buffer = io.BytesIO()
    Image.new("1", (7_000, 7_000)).save(buffer, "PNG")  # 49 megapixels, from a few kilobytes
    with pytest.raises(ProfileError, match="too large"):
        process_image(buffer.getvalue(), (400, 400))


async def test_aliases_name_other_accounts_by_handle(lab: Lab) -> None:
    here = await lab.instance("a.test")
    elsewhere = await lab.instance("b.test")
    from tests.web.helpers import make_user

    await make_user(elsewhere, "oldme")
    alice = await logged_in(here, "alice")
    saved = await alice.post(
        "/settings/profile", {"account": "alice", "display_name": "Alice", "aliases": "@oldme@b.test"}
    )
    assert saved.status_code == 303
    account = await account_named(here, "alice")
    assert account.also_known_as == ["http://b.test/users/oldme"]
    actor = (await here.client.get("/users/alice", headers={"Accept": "application/activity+json"})).json()
    assert actor["alsoKnownAs"] == ["http://b.test/users/oldme"]


async def test_language_follows_the_browser_then_the_setting(instance: Instance) -> None:
    alice = await logged_in(instance, "alice")
    german = await alice.get("/home", headers={"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"})
    assert '<html lang="de">' in german.text
    assert "Beitrag schreiben" in german.text
    english = await alice.get("/home", headers={"Accept-Language": "fr, en;q=0.8"})
    assert '<html lang="en">' in english.text and "Write a post" in english.text

    saved = await alice.post("/settings/language", {"locale": "de"})
    assert saved.status_code == 303
    async with instance.context.sessions() as session:
        assert (await session.scalars(select(User.locale))).one() == "de"
    page = await alice.get("/settings/account", headers={"Accept-Language": "en"})
    assert "Sprache der Oberfläche" in page.text and "Deine Änderungen wurden gespeichert." not in page.text
    assert (await alice.post("/settings/language", {"locale": "tlh"})).status_code == 400
    await alice.post("/settings/language", {"locale": ""})
    assert "Write a post" in (await alice.get("/home", headers={"Accept-Language": "en"})).text
