"""Posts written as an organisation account: who sees the writer, and where the writer finds the post."""

from __future__ import annotations

import html

from sqlmodel import select

from app.models import Account, Post, Role, User
from app.services.posting import PostingService
from app.services.staff import StaffService
from app.services.timelines import TimelineService
from tests.lab import Instance
from tests.web.helpers import Browser, logged_in, make_user


async def town_hall_team(instance: Instance) -> tuple[Browser, Browser, Browser, User, Account, Account]:
    """An admin (boss), the town hall's team (alice), unrelated staff (carol) and the organisation."""
    boss = await logged_in(instance, "boss", role=Role.ADMIN)
    alice = await logged_in(instance, "alice")
    carol = await logged_in(instance, "carol")
    _, townhall = await make_user(instance, "townhall", organization=True)
    async with instance.context.sessions() as session:
        alice_user, alice_account = (
            await session.execute(
                select(User, Account)
                .join(Account, Account.id == User.account_id)
                .where(Account.username == "alice")
            )
        ).one()
        boss_user = (
            await session.scalars(
                select(User).join(Account, Account.id == User.account_id).where(Account.username == "boss")
            )
        ).one()
    await StaffService(instance.context).grant_delegate(townhall.id, alice_user.id, by=boss_user)
    return boss, alice, carol, alice_user, alice_account, townhall


async def test_the_writer_shows_to_admins_and_the_team_never_to_visitors_or_other_staff(
    instance: Instance,
) -> None:
    boss, alice, carol, _, _, _ = await town_hall_team(instance)
    form = await alice.get("/compose")
    help_text = "administrators and the organisation's team see it, visitors never do"
    assert help_text in html.unescape(form.text), "the compose help must say who sees the writer"
    published = await alice.post("/compose", {"text": "The library opens on Sundays", "author": "townhall"})
    assert published.status_code == 303
    async with instance.context.sessions() as session:
        post = (
            await session.scalars(select(Post).where(Post.content_source == "The library opens on Sundays"))
        ).one()

    for reader in (boss, alice):
        page = await reader.get(f"/posts/{post.id}")
        assert "Written by @alice@a.test" in page.text
    staff_page = await carol.get(f"/posts/{post.id}")
    assert "The library opens on Sundays" in staff_page.text and "Written by" not in staff_page.text
    public = await instance.client.get(f"/@townhall/{post.id}")
    assert "The library opens on Sundays" in public.text and "Written by" not in public.text
    profile = await instance.client.get("/@townhall")
    assert "The library opens on Sundays" in profile.text and "Written by" not in profile.text


async def test_a_post_written_as_the_organisation_is_on_the_writers_home_timeline(instance: Instance) -> None:
    _, alice, carol, alice_user, alice_account, townhall = await town_hall_team(instance)

    # Through the service: the writer's home holds it at once, as the organisation's post.
    post = await PostingService(instance.context).create(
        townhall, "Bins are collected on Friday", written_by_user_id=alice_user.id
    )
    home = await TimelineService(instance.context).home(alice_account)
    assert [summary.post.id for summary in home] == [post.id]
    assert home[0].account.username == "townhall"

    # Through the page: published from the form, shown at /home under the organisation's name.
    await alice.post("/compose", {"text": "The pool reopens in June", "author": "townhall"})
    page = await alice.get("/home")
    assert "The pool reopens in June" in page.text and "Bins are collected on Friday" in page.text
    assert "@townhall@a.test" in page.text and "Written by @alice@a.test" in page.text
    # Somebody else on the team's server who does not follow the organisation does not get it.
    assert "The pool reopens in June" not in (await carol.get("/home")).text
