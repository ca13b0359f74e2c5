"""The staff's daily pages: write, act on posts, read timelines and notifications, search and follow."""

from __future__ import annotations

from sqlmodel import select

from app.models import (
    Account,
    Favourite,
    Follow,
    FollowState,
    Notification,
    Pin,
    Post,
    Role,
    User,
    Visibility,
)
from app.services.following import FollowingService
from app.services.posting import PostingService
from app.services.profile_settings import ProfileChanges, ProfileSettingsService
from tests.lab import Instance, Lab
from tests.web.helpers import logged_in, make_user


async def only_post(instance: Instance, text: str) -> Post:
    async with instance.context.sessions() as session:
        return (await session.scalars(select(Post).where(Post.content_source == text))).one()


async def test_compose_previews_publishes_and_reports_problems(instance: Instance) -> None:
    alice = await logged_in(instance, "alice")
    form = await alice.get("/compose")
    assert 'data-max-chars="500"' in form.text
    assert '<option value="en" lang="en" selected>' in form.text
    preview = await alice.post(
        "/compose", {"text": "Look at #this https://example.org", "author": "alice", "action": "preview"}
    )
    assert preview.status_code == 200
    assert 'class="mention hashtag"' in preview.text
    assert "Look at #this" in preview.text  # the text stays in the form
    async with instance.context.sessions() as session:
        assert (await session.scalars(select(Post))).all() == []

    published = await alice.post(
        "/compose",
        {
            "text": "Hello from the web",
            "spoiler_text": "Greeting",
            "visibility": "unlisted",
            "language": "de",
            "author": "alice",
        },
    )
    assert published.status_code == 303
    post = await only_post(instance, "Hello from the web")
    assert published.headers["location"] == f"/posts/{post.id}?notice=posted"
    assert (post.visibility, post.summary, post.language) == ("unlisted", "Greeting", "de")
    thread = await alice.get(published.headers["location"])
    assert "Your post was published." in thread.text and "Hello from the web" in thread.text

    too_long = await alice.post("/compose", {"text": "x" * 501, "author": "alice"})
    assert too_long.status_code == 400
    assert "the limit is 500" in too_long.text
    assert (await alice.post("/compose", {"text": "", "author": "alice"})).status_code == 400
    assert (
        await alice.post("/compose", {"text": "hi", "author": "alice", "visibility": "everyone"})
    ).status_code == 400
    assert (await alice.post("/compose", {"text": "hi", "author": "someone_else"})).status_code == 403
    assert (
        await alice.post("/compose", {"text": "hi", "author": "alice", "in_reply_to": "999"})
    ).status_code == 404


async def test_character_limit_follows_the_setting(lab: Lab) -> None:
    instance = await lab.instance("a.test", max_post_chars=42)
    alice = await logged_in(instance, "alice")
    assert 'data-max-chars="42"' in (await alice.get("/compose")).text
    assert (await alice.post("/compose", {"text": "y" * 43, "author": "alice"})).status_code == 400


async def test_posting_as_the_organisation_records_the_writer(instance: Instance) -> None:
    admin = await logged_in(instance, "boss", role=Role.ADMIN)
    alice = await logged_in(instance, "alice")
    await admin.post(
        "/admin/staff", {"username": "townhall", "display_name": "Town Hall", "kind": "organization"}
    )
    refused = await alice.post("/compose", {"text": "Not yet allowed", "author": "townhall"})
    assert refused.status_code == 403
    async with instance.context.sessions() as session:
        org_id = (await session.scalars(select(Account.id).where(Account.username == "townhall"))).one()
        alice_id = str(
            (
                await session.scalars(
                    select(User.id)
                    .join(Account, Account.id == User.account_id)
                    .where(Account.username == "alice")
                )
            ).one()
        )
    assert (
        await admin.post(f"/admin/organizations/{org_id}/delegates", {"user_id": alice_id})
    ).status_code == 303

    form = await alice.get("/compose")
    assert '<label for="author">Post as</label>' in form.text
    assert '<option value="townhall">' in form.text
    published = await alice.post("/compose", {"text": "Official announcement", "author": "townhall"})
    assert published.status_code == 303
    post = await only_post(instance, "Official announcement")
    async with instance.context.sessions() as session:
        writer = await session.get(User, post.written_by_user_id)
        author = await session.get(Account, post.account_id)
    assert author is not None and author.username == "townhall"
    assert writer is not None and str(writer.id) == alice_id
    # The team and the admins see who wrote it; the public does not.
    assert "Written by @alice@a.test" in (await alice.get(f"/posts/{post.id}")).text
    assert "Written by @alice@a.test" in (await admin.get(f"/posts/{post.id}")).text
    public = await instance.client.get(f"/@townhall/{post.id}")
    assert "Official announcement" in public.text and "Written by" not in public.text
    # A post written as oneself says nothing extra.
    await alice.post("/compose", {"text": "My own words", "author": "alice"})
    mine = await only_post(instance, "My own words")
    assert "Written by" not in (await alice.get(f"/posts/{mine.id}")).text
    # Delegates can manage the organisation's posts, others cannot.
    carol = await logged_in(instance, "carol")
    assert (await carol.post(f"/posts/{post.id}/pin")).status_code == 403
    assert (await alice.post(f"/posts/{post.id}/pin")).status_code == 303
    assert (await carol.get("/settings/profile?account=townhall")).status_code == 403
    assert (await alice.get("/settings/profile?account=townhall")).status_code == 200


async def test_boost_like_pin_edit_delete_from_the_timeline(instance: Instance) -> None:
    alice = await logged_in(instance, "alice")
    bob = await logged_in(instance, "bob")
    await alice.post("/compose", {"text": "Alice speaks", "author": "alice"})
    post = await only_post(instance, "Alice speaks")

    local = await bob.get("/local")
    assert "Alice speaks" in local.text
    assert f'action="/posts/{post.id}/like"' in local.text
    assert f"/posts/{post.id}/edit" not in local.text  # not bob's to edit
    liked = await bob.post(f"/posts/{post.id}/like", {"return_to": "/local"})
    assert liked.status_code == 303
    assert liked.headers["location"] == f"/local?notice=liked#post-{post.id}"
    boosted = await bob.post(f"/posts/{post.id}/boost", {"return_to": "https://evil.example/"})
    assert boosted.headers["location"].startswith(f"/posts/{post.id}?notice=boosted")
    page = await bob.get("/local")
    assert f'action="/posts/{post.id}/unlike"' in page.text and 'aria-pressed="true"' in page.text
    async with instance.context.sessions() as session:
        assert len((await session.scalars(select(Favourite))).all()) == 1
        assert (await session.scalars(select(Post).where(Post.reblog_of_id == post.id))).one()
    assert (await bob.post(f"/posts/{post.id}/unlike")).status_code == 303
    assert (await bob.post(f"/posts/{post.id}/unboost")).status_code == 303
    assert (await bob.post(f"/posts/{post.id}/edit", {"text": "Bob was here"})).status_code == 403
    assert (await bob.post(f"/posts/{post.id}/delete")).status_code == 403
    assert (await bob.post(f"/posts/{post.id}/explode")).status_code == 404

    assert (await alice.post(f"/posts/{post.id}/pin")).status_code == 303
    async with instance.context.sessions() as session:
        assert (await session.scalars(select(Pin))).one().post_id == post.id
    edit_form = await alice.get(f"/posts/{post.id}/edit")
    assert "Alice speaks</textarea>" in edit_form.text
    edited = await alice.post(f"/posts/{post.id}/edit", {"text": "Alice speaks, edited", "language": "en"})
    assert edited.headers["location"] == f"/posts/{post.id}?notice=edited"
    assert "Alice speaks, edited" in (await alice.get(f"/posts/{post.id}")).text
    assert (await alice.post(f"/posts/{post.id}/edit", {"text": ""})).status_code == 400
    deleted = await alice.post(f"/posts/{post.id}/delete", {"return_to": f"/posts/{post.id}"})
    assert deleted.headers["location"] == "/home?notice=deleted"
    assert (await alice.get(f"/posts/{post.id}")).status_code == 404


async def test_reply_form_quotes_the_post_and_keeps_the_thread(instance: Instance) -> None:
    alice = await logged_in(instance, "alice")
    bob = await logged_in(instance, "bob")
    await alice.post("/compose", {"text": "Question?", "author": "alice", "visibility": "unlisted"})
    post = await only_post(instance, "Question?")
    form = await bob.get(f"/compose?reply_to={post.id}")
    assert "@alice </textarea>" in form.text
    assert '<option value="unlisted" selected>' in form.text
    await bob.post(
        "/compose",
        {"text": "@alice Answer.", "author": "bob", "in_reply_to": str(post.id), "visibility": "unlisted"},
    )
    reply = await only_post(instance, "@alice Answer.")
    assert reply.in_reply_to_id == post.id
    thread = await bob.get(f"/posts/{post.id}")
    body = thread.text.split("<main", 1)[1]
    assert body.index("Question?") < body.index("Answer.")
    assert (await bob.get("/compose?reply_to=nope")).status_code == 404


async def test_home_timeline_shows_own_and_followed_posts(instance: Instance) -> None:
    alice = await logged_in(instance, "alice")
    _user, bob = await make_user(instance, "bob")
    _user, alice_account = await make_user(instance, "zed")
    async with instance.context.sessions() as session:
        alice_row = (await session.scalars(select(Account).where(Account.username == "alice"))).one()
    await FollowingService(instance.context).follow(alice_row, "@bob@a.test")
    posting = PostingService(instance.context)
    await posting.create(bob, "News from Bob")
    await posting.create(alice_account, "Zed is not followed")
    await alice.post("/compose", {"text": "Written by Alice herself", "author": "alice"})
    home = await alice.get("/home")
    assert "News from Bob" in home.text
    assert "Written by Alice herself" in home.text
    assert "Zed is not followed" not in home.text
    assert (await alice.get("/home?max_id=abc")).status_code == 400
    empty = await alice.get("/home?max_id=1")
    assert "Nothing here yet" in empty.text


async def test_notifications_and_follow_requests_are_answered(instance: Instance) -> None:
    alice = await logged_in(instance, "alice")
    async with instance.context.sessions() as session:
        alice_account = (await session.scalars(select(Account).where(Account.username == "alice"))).one()
    await ProfileSettingsService(instance.context).update(
        alice_account.id, ProfileChanges(display_name="Alice", bio="", locked=True)
    )
    _user, bob = await make_user(instance, "bob")
    _user, carol = await make_user(instance, "carol")
    following = FollowingService(instance.context)
    assert (await following.follow(bob, "@alice@a.test")).pending
    assert (await following.follow(carol, "@alice@a.test")).pending
    await alice.post("/compose", {"text": "Hello", "author": "alice"})
    post = await only_post(instance, "Hello")
    await PostingService(instance.context).like(bob, post.id)

    page = await alice.get("/notifications")
    assert page.status_code == 200
    assert "Follow requests" in page.text
    assert 'Approve<span class="visually-hidden"> @bob@a.test</span>' in page.text
    async with instance.context.sessions() as session:
        kinds = set((await session.scalars(select(Notification.type))).all())
    if "favourite" in kinds:
        assert "liked your post" in page.text

    approved = await alice.post(f"/notifications/requests/{bob.id}/approve", {"account": "alice"})
    assert approved.status_code == 303
    assert approved.headers["location"] == "/notifications?notice=approved"
    rejected = await alice.post(f"/notifications/requests/{carol.id}/reject", {"account": "alice"})
    assert rejected.headers["location"] == "/notifications?notice=rejected"
    async with instance.context.sessions() as session:
        follows = {row.follower_id: row.state for row in (await session.scalars(select(Follow))).all()}
    assert follows == {bob.id: FollowState.ACCEPTED}
    again = await alice.post(f"/notifications/requests/{carol.id}/approve", {"account": "alice"})
    assert again.status_code == 404
    assert (
        await alice.post(f"/notifications/requests/{bob.id}/maybe", {"account": "alice"})
    ).status_code == 404
    assert (await alice.get("/notifications?account=bob")).status_code == 403


async def test_search_finds_remote_accounts_and_follows_them(lab: Lab) -> None:
    here = await lab.instance("a.test")
    elsewhere = await lab.instance("b.test")
    _user, bob = await make_user(elsewhere, "bob")
    await PostingService(elsewhere.context).create(bob, "Bob on b.test")
    alice = await logged_in(here, "alice")
    await make_user(here, "alina")

    found = await alice.get("/search?q=@bob@b.test")
    assert found.status_code == 200
    assert "@bob@b.test" in found.text
    assert 'action="/follow"' in found.text
    followed = await alice.post("/follow", {"target": "http://b.test/users/bob"})
    assert followed.status_code == 303
    assert followed.headers["location"] in (
        "/search?q=http%3A%2F%2Fb.test%2Fusers%2Fbob&notice=follow_requested",
        "/search?q=http%3A%2F%2Fb.test%2Fusers%2Fbob&notice=followed",
    )
    after = await alice.get(followed.headers["location"])
    assert 'action="/unfollow"' in after.text
    unfollowed = await alice.post("/unfollow", {"target": "http://b.test/users/bob"})
    assert unfollowed.status_code == 303
    assert 'action="/follow"' in (await alice.get("/search?q=@bob@b.test")).text

    local = await alice.get("/search?q=ali")
    assert "@alina@a.test" in local.text
    assert (await alice.get("/search?q=%23Gardens")).headers["location"] == "/tags/Gardens"
    missing = await alice.get("/search?q=@nobody@b.test")
    assert missing.status_code == 404
    assert "does not exist" in missing.text or "could not" in missing.text
    unreachable = await alice.get("/search?q=@someone@unknown.test")
    assert unreachable.status_code == 404
    assert (await alice.post("/follow", {"target": ""})).status_code == 400
    assert (await alice.post("/follow", {"target": "@nobody@b.test"})).status_code == 400


async def test_direct_posts_stay_with_their_audience(instance: Instance) -> None:
    _user, alice = await make_user(instance, "alice")
    post = await PostingService(instance.context).create(alice, "Private note", visibility=Visibility.DIRECT)
    bob = await logged_in(instance, "bob")
    assert (await bob.get(f"/posts/{post.id}")).status_code == 404
    assert (await bob.post(f"/posts/{post.id}/like")).status_code == 404
    assert (await bob.get(f"/compose?reply_to={post.id}")).status_code == 404
