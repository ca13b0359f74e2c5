"""The client API in the federation lab: what an app does federates exactly as the web UI's
actions do (signed, once per shared inbox), and what arrives from elsewhere shows in the API."""

from __future__ import annotations

import io
import json

import httpx
from PIL import Image
from sqlmodel import select

from app.models import Account, Favourite, MediaAttachment, Post, User
from app.services.following import FollowingService
from app.services.oauth import OAuthService
from app.services.posting import PostingService
from tests.api.media_helpers import GPS_IFD, jpeg_with_gps
from tests.federation.delivery_helpers import local_account, settle
from tests.lab import Instance, Lab


async def token_of(instance: Instance, account: Account) -> dict[str, str]:
    async with instance.context.sessions() as session:
        user = (await session.scalars(select(User).where(User.account_id == account.id))).one()
    token = await OAuthService(instance.context).issue_personal_token(
        user, scopes="read write follow", app_name="lab app", acting_as=account
    )
    return {"Authorization": f"Bearer {token}"}


def deliveries(lab: Lab, activity_id: str) -> list[tuple[str, bool]]:
    """(host, signed) for each POST of the activity to an inbox."""
    found = []
    for request in lab.network.requests:
        if request.method == "POST" and request.url.path.endswith("inbox"):
            if json.loads(request.content).get("id") == activity_id:
                found.append((request.url.host, "Signature" in request.headers))
    return found


async def test_api_posts_likes_boosts_and_mentions_federate(lab: Lab) -> None:
    a = await lab.instance("a.test", embedded_worker=False)
    b = await lab.instance("b.test", embedded_worker=False)
    c = await lab.instance("c.test", embedded_worker=False)
    alice = await local_account(a, "alice")
    bob = await local_account(b, "bob")
    carol = await local_account(c, "carol")
    dave = await local_account(c, "dave")
    for instance, follower in ((c, carol), (c, dave), (b, bob)):
        await FollowingService(instance.context).follow(follower, "@alice@a.test")
    await FollowingService(a.context).follow(alice, "@bob@b.test")
    await settle(lab)
    auth = await token_of(a, alice)

    posted = await a.client.post("/api/v1/statuses", json={"status": "From an app"}, headers=auth)
    assert posted.status_code == 200, posted.text
    await settle(lab)
    async with a.context.sessions() as session:
        post = await session.get(Post, int(posted.json()["id"]))
    assert post is not None
    # carol and dave share c.test's inbox: one delivery there, one to b.test, all signed.
    assert sorted(deliveries(lab, f"{post.uri}/activity")) == [("b.test", True), ("c.test", True)]
    async with c.context.sessions() as session:
        copy = await session.scalar(select(Post).where(Post.uri == post.uri))
    assert copy is not None and "From an app" in copy.content_html

    remote = await PostingService(b.context).create(bob, "Hello @alice@a.test, from b")
    await settle(lab)
    notes = (await a.client.get("/api/v1/notifications", headers=auth)).json()
    mention = next(note for note in notes if note["type"] == "mention")
    assert mention["account"]["acct"] == "bob@b.test"
    local_copy_id = mention["status"]["id"]
    assert mention["status"]["uri"] == remote.uri

    liked = await a.client.post(f"/api/v1/statuses/{local_copy_id}/favourite", headers=auth)
    boosted = await a.client.post(f"/api/v1/statuses/{local_copy_id}/reblog", headers=auth)
    assert liked.status_code == 200 and boosted.status_code == 200
    await settle(lab)
    async with b.context.sessions() as session:
        original = await session.get(Post, remote.id)
        likes = (await session.scalars(select(Favourite).where(Favourite.post_id == remote.id))).all()
    assert original is not None and original.favourites_count == 1 and original.reblogs_count == 1
    assert len(likes) == 1


def delivered_of_type(lab: Lab, kind: str) -> list[tuple[str, bool, dict[str, object]]]:
    found = []
    for request in lab.network.requests:
        if request.method == "POST" and request.url.path.endswith("inbox"):
            body = json.loads(request.content)
            if body.get("type") == kind:
                found.append((request.url.host, "Signature" in request.headers, body))
    return found


async def test_api_edit_and_pin_federate_as_the_web_ui_does(lab: Lab) -> None:
    a = await lab.instance("a.test", embedded_worker=False)
    c = await lab.instance("c.test", embedded_worker=False)
    alice = await local_account(a, "alice")
    carol = await local_account(c, "carol")
    await FollowingService(c.context).follow(carol, "@alice@a.test")
    await settle(lab)
    auth = await token_of(a, alice)
    posted = (await a.client.post("/api/v1/statuses", json={"status": "Meeting at 5"}, headers=auth)).json()
    await settle(lab)

    edited = await a.client.put(
        f"/api/v1/statuses/{posted['id']}",
        json={"status": "Meeting at 6", "spoiler_text": "time"},
        headers=auth,
    )
    assert edited.status_code == 200, edited.text
    await settle(lab)
    updates = delivered_of_type(lab, "Update")
    assert [(host, signed) for host, signed, _ in updates] == [("c.test", True)]
    assert updates[0][2]["object"]["id"] == posted["uri"]  # type: ignore[index]
    async with c.context.sessions() as session:
        copy = await session.scalar(select(Post).where(Post.uri == posted["uri"]))
    assert copy is not None and "Meeting at 6" in copy.content_html and copy.summary == "time"
    assert copy.edited_at is not None

    assert (await a.client.post(f"/api/v1/statuses/{posted['id']}/pin", headers=auth)).status_code == 200
    await settle(lab)
    adds = delivered_of_type(lab, "Add")
    assert [(host, signed) for host, signed, _ in adds] == [("c.test", True)]
    assert adds[0][2]["object"] == posted["uri"] and adds[0][2]["target"] == alice.featured_url
    assert (await a.client.post(f"/api/v1/statuses/{posted['id']}/unpin", headers=auth)).status_code == 200
    await settle(lab)
    assert [host for host, _, _ in delivered_of_type(lab, "Remove")] == ["c.test"]


async def test_an_app_posts_a_picture_and_a_remote_follower_gets_it_without_gps(
    lab: Lab, lab_media_store_settings: dict[str, str]
) -> None:
    a = await lab.instance("a.test", embedded_worker=False, **lab_media_store_settings)
    c = await lab.instance("c.test", embedded_worker=False)
    alice = await local_account(a, "alice")
    carol = await local_account(c, "carol")
    await FollowingService(c.context).follow(carol, "@alice@a.test")
    await settle(lab)
    auth = await token_of(a, alice)
    uploaded = await a.client.post(
        "/api/v2/media",
        files={"file": ("harbour.jpg", jpeg_with_gps((120, 80)), "image/jpeg")},
        data={"description": "The harbour at dawn", "focus": "0.5,-0.25"},
        headers=auth,
    )
    assert uploaded.status_code == 200, uploaded.text
    media = uploaded.json()
    posted = await a.client.post(
        "/api/v1/statuses", json={"status": "From the harbour", "media_ids": [media["id"]]}, headers=auth
    )
    assert posted.status_code == 200, posted.text
    await settle(lab)

    async with c.context.sessions() as session:
        copy = await session.scalar(select(Post).where(Post.uri == posted.json()["uri"]))
        assert copy is not None
        [attachment] = (
            await session.scalars(select(MediaAttachment).where(MediaAttachment.post_id == copy.id))
        ).all()
    assert attachment.remote_url == media["url"] and attachment.description == "The harbour at dawn"
    assert (attachment.focus_x, attachment.focus_y) == (0.5, -0.25)
    assert attachment.blurhash == media["blurhash"] and (attachment.width, attachment.height) == (80, 120)
    # c.test keeps a copy (its worker fetched it from a.test), and neither file has the GPS position.
    assert attachment.state == "ready" and attachment.url.startswith("http://c.test/media/cache/")
    if lab_media_store_settings:
        assert media["url"].startswith(lab_media_store_settings["s3_public_url"] + "/attachments/")
    async with httpx.AsyncClient(transport=lab.network) as browser:
        for url in (media["url"], attachment.url):
            served = await browser.get(url)
            assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
            picture = Image.open(io.BytesIO(served.content))
            assert not picture.getexif().get_ifd(GPS_IFD) and b"Exif" not in served.content
