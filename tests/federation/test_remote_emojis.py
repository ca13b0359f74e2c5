"""Custom emoji of remote posts (`tag` entries of type `Emoji`, real shapes from Pleroma and Kroeg
in tests/fixtures/corpus) are copied by the worker with the post's media, and shown from the copy:
inline in the web UI and in the API's `emojis`. A rejected domain's emoji are never fetched."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

from PIL import Image
from sqlalchemy import update

from app.models import Account, BackgroundJob, BlockSeverity, Post, RemoteEmoji
from app.models.base import utcnow
from app.services.domain_blocks import DomainBlockService
from app.services.remote_emojis import RemoteEmojiCache
from app.services.remote_media import has_files_to_copy, run_cleanup
from tests.api.media_helpers import fetch_media, png_bytes, stored_files
from tests.federation.inbox_peer import (
    BOB,
    Peer,
    PeerActor,
    activity,
    create,
    deliver_and_process,
    follow_locally,
    home_of_alice,
    known_actor,
    note,
    rows,
)
from tests.federation.test_background_jobs import run_jobs
from tests.federation.test_corpus_replay import load, rewrite
from tests.lab import Instance, Lab
from tests.web.helpers import Browser, make_user, new_client

DISAPPROVE = "http://remote.test/emoji/custom/joker_disapprove.png"
SMILE = "http://remote.test/emoji/custom/joker_smile.png"


def pleroma_note(bob: PeerActor, number: int) -> dict[str, Any]:
    """Pleroma's Note with an emoji in its text and one in its content warning (summary), as
    captured (tesla_mock/emoji-in-summary.json), sent by `bob` from remote.test."""
    captured = rewrite(
        load("pleroma-fixtures/tesla_mock/emoji-in-summary.json"), {"https://patch.cx": "http://remote.test"}
    )
    return note(bob, number, content=captured["content"], summary=captured["summary"], tag=captured["tag"])


async def reader_of_bob(lab: Lab, **settings: Any) -> tuple[Instance, Peer, PeerActor, Browser]:
    here, alice = await home_of_alice(lab, **settings)
    peer = Peer(lab).host("remote.test")
    bob = peer.actor(BOB)
    await known_actor(here, bob)
    await follow_locally(here, alice, bob.uri)
    _, carol = await make_user(here, "carol")
    await follow_locally(here, carol, bob.uri)
    reader = Browser(new_client(here))
    await reader.login("carol")
    return here, peer, bob, reader


async def shown_status(here: Instance) -> dict[str, Any]:
    [status] = (await here.client.get("/api/v1/timelines/public")).json()
    return status


async def test_remote_emoji_are_cached_and_shown_from_here(
    lab: Lab, media_store_settings: dict[str, str]
) -> None:
    here, peer, bob, reader = await reader_of_bob(lab, **media_store_settings)
    peer.files[DISAPPROVE] = (png_bytes((300, 300), (200, 30, 30)), "image/png")
    peer.files[SMILE] = (png_bytes((64, 64), (30, 200, 30)), "image/png")
    await deliver_and_process(here, peer, bob, create(bob, pleroma_note(bob, 1)))

    # Before the worker has copied them, they stay text: no reader loads them from remote.test.
    status = await shown_status(here)
    assert status["emojis"] == []
    await run_jobs(here)

    status = await shown_status(here)
    by_code = {emoji["shortcode"]: emoji for emoji in status["emojis"]}
    assert set(by_code) == {"joker_disapprove", "joker_smile"}
    base = f"{here.settings.s3_public_url or here.base_url + '/media'}/cache/emojis/"
    for emoji in by_code.values():
        assert emoji["url"].startswith(base) and emoji["static_url"] == emoji["url"]
        assert emoji["visible_in_picker"] is False
    served = await fetch_media(here, by_code["joker_disapprove"]["url"])
    assert served.status_code == 200 and served.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(served.content)).size == (128, 128)  # scaled to emoji size

    home = (await reader.get("/home")).text
    await reader.aclose()
    disapprove = by_code["joker_disapprove"]["url"]
    assert f'<img class="custom-emoji" src="{disapprove}" alt=":joker_disapprove:"' in home
    # The content warning is plain text with its emoji inline too.
    assert f'src="{by_code["joker_smile"]["url"]}" alt=":joker_smile:"' in home
    assert "http://remote.test/emoji" not in home

    # Another post with the same emoji uses the same copy: nothing is fetched again.
    await deliver_and_process(here, peer, bob, create(bob, pleroma_note(bob, 2)))
    await run_jobs(here)
    assert peer.fetches(DISAPPROVE) == 1 and peer.fetches(SMILE) == 1
    statuses = (await here.client.get("/api/v1/timelines/public")).json()
    assert {emoji["url"] for emoji in statuses[0]["emojis"]} == {emoji["url"] for emoji in by_code.values()}


async def test_a_single_emoji_tag_object_and_a_bad_picture(lab: Lab) -> None:
    """Kroeg sends `tag` as one object, not an array; a picture that is really a page is not kept."""
    here, peer, bob, reader = await reader_of_bob(lab)
    captured = rewrite(
        load("pleroma-fixtures/kroeg-array-less-emoji.json"), {"https://puckipedia.com": "http://remote.test"}
    )["object"]
    smiley = captured["tag"]["icon"]["url"]
    peer.files[smiley] = (png_bytes((20, 20)), "image/png")
    await deliver_and_process(
        here, peer, bob, create(bob, note(bob, 3, content=captured["content"], tag=captured["tag"]))
    )
    peer.files[DISAPPROVE] = (b"<html><script>alert(1)</script></html>", "image/png")  # a lie
    peer.files[SMILE] = (b"\x89PNG" + b"\x00" * 600_000, "image/png")  # over the limit
    await deliver_and_process(here, peer, bob, create(bob, pleroma_note(bob, 4)))
    await run_jobs(here)

    statuses = {
        status["uri"]: status for status in (await here.client.get("/api/v1/timelines/public")).json()
    }
    [emoji] = statuses[f"{bob.uri}/statuses/3"]["emojis"]
    assert emoji["shortcode"] == "icon_e_smile" and emoji["url"].startswith(
        "http://a.test/media/cache/emojis/"
    )
    assert statuses[f"{bob.uri}/statuses/4"]["emojis"] == []
    home = (await reader.get("/home")).text
    await reader.aclose()
    assert 'alt=":icon_e_smile:"' in home
    assert ":joker_disapprove:" in home and 'alt=":joker_disapprove:"' not in home


async def test_no_emoji_is_fetched_from_a_domain_whose_media_is_rejected(lab: Lab) -> None:
    here, peer, bob, reader = await reader_of_bob(lab)
    await DomainBlockService(here.context).block(
        "remote.test", severity=BlockSeverity.SILENCE, reject_media=True
    )
    peer.files[DISAPPROVE] = (png_bytes(), "image/png")
    peer.files[SMILE] = (png_bytes(), "image/png")
    await deliver_and_process(here, peer, bob, create(bob, pleroma_note(bob, 5)))
    await run_jobs(here)
    assert peer.fetches(DISAPPROVE) == 0 and peer.fetches(SMILE) == 0
    [post] = await rows(here, Post)
    status = (await here.client.get(f"/api/v1/statuses/{post.id}")).json()
    assert status["emojis"] == []
    home = (await reader.get("/home")).text
    await reader.aclose()
    assert ":joker_disapprove:" in home and "custom-emoji" not in home


async def test_an_edit_with_a_new_emoji_and_picture_is_copied_too(lab: Lab) -> None:
    here, peer, bob, reader = await reader_of_bob(lab)
    await reader.aclose()
    await deliver_and_process(here, peer, bob, create(bob, note(bob, 6)))
    await run_jobs(here)
    picture = "http://remote.test/media_attachments/files/120/lighthouse.png"
    peer.files[picture] = (png_bytes(), "image/png")
    peer.files[DISAPPROVE] = (png_bytes((32, 32)), "image/png")
    edited = pleroma_note(bob, 6)
    edited.update(
        updated="2024-05-01T13:00:00Z",
        attachment=[{"type": "Document", "mediaType": "image/png", "url": picture, "name": "A lighthouse"}],
    )
    await deliver_and_process(here, peer, bob, activity(bob, "Update", edited, "update"))
    await run_jobs(here)
    status = await shown_status(here)
    assert status["edited_at"] is not None
    [media] = status["media_attachments"]
    assert media["url"].startswith("http://a.test/media/cache/") and media["remote_url"] == picture
    assert "joker_disapprove" in {emoji["shortcode"] for emoji in status["emojis"]}


async def test_the_emoji_of_a_remote_name_are_copied_with_the_avatar(lab: Lab) -> None:
    """Pleroma's actor names its emoji in `tag` (lemmy-assets/pleroma/objects/person.json)."""
    here, alice = await home_of_alice(lab)
    peer = Peer(lab).host("remote.test")
    person = rewrite(
        load("lemmy-assets/pleroma/objects/person.json"), {"https://queer.hacktivis.me": "http://remote.test"}
    )
    bzh = "http://remote.test/emoji/custom/mastodon.xyz/bzh.png"
    bob = peer.actor(BOB, name=person["name"], tag=person["tag"])
    for tag in person["tag"]:
        peer.files[tag["icon"]["url"]] = (png_bytes((24, 24)), "image/png")
    account = await known_actor(here, bob)
    await follow_locally(here, alice, bob.uri)
    _, carol = await make_user(here, "carol")
    await follow_locally(here, carol, bob.uri)

    # Before the worker ran: the name's emoji stay text in the API, nothing points at remote.test.
    entity = (await here.client.get(f"/api/v1/accounts/{account.id}")).json()
    assert ":bzh:" in entity["display_name"] and entity["emojis"] == []
    await deliver_and_process(here, peer, bob, create(bob, note(bob, 7)))
    await run_jobs(here)

    entity = (await here.client.get(f"/api/v1/accounts/{account.id}")).json()
    by_code = {emoji["shortcode"]: emoji for emoji in entity["emojis"]}
    assert {"bzh", "anarchy", "gentoo"} <= set(by_code)
    assert by_code["bzh"]["url"].startswith("http://a.test/media/cache/emojis/")
    assert by_code["bzh"]["visible_in_picker"] is False
    assert peer.fetches(bzh) == 1
    reader = Browser(new_client(here))
    await reader.login("carol")
    home = (await reader.get("/home")).text
    await reader.aclose()
    assert f'<img class="custom-emoji" src="{by_code["bzh"]["url"]}" alt=":bzh:"' in home


async def test_a_name_emoji_that_cannot_be_copied_is_not_queued_again_with_every_post(lab: Lab) -> None:
    here, alice = await home_of_alice(lab)
    peer = Peer(lab).host("remote.test")
    bad = "http://remote.test/emoji/custom/bad.png"
    tag = [{"type": "Emoji", "name": ":bad:", "icon": {"type": "Image", "url": bad}}]
    bob = peer.actor(BOB, name="Bob :bad:", tag=tag)
    peer.files[bad] = (b"<html><script>alert(1)</script></html>", "image/png")  # a lie
    await known_actor(here, bob)
    await follow_locally(here, alice, bob.uri)
    await deliver_and_process(here, peer, bob, create(bob, note(bob, 7)))
    await run_jobs(here)
    assert peer.fetches(bad) == 1

    async def copying_jobs() -> set[int]:
        return {job.id for job in await rows(here, BackgroundJob) if job.kind == "media.cache_remote"}

    before = await copying_jobs()
    await deliver_and_process(here, peer, bob, create(bob, note(bob, 8)))
    assert await copying_jobs() - before == set()


def blob_note(bob: PeerActor, number: int, picture: str) -> dict[str, Any]:
    """A Note naming `:blob:` with its picture at `picture` (Mastodon's Emoji tag)."""
    tag = [
        {
            "id": "http://remote.test/emojis/1",
            "type": "Emoji",
            "name": ":blob:",
            "updated": "2024-05-01T12:00:00Z",
            "icon": {"type": "Image", "mediaType": "image/png", "url": picture},
        }
    ]
    return note(bob, number, content="<p>Hello :blob:</p>", tag=tag)


async def post_page(reader: Browser, post: Post) -> str:
    return (await reader.get(f"/posts/{post.id}")).text


async def test_the_copies_go_with_the_cleanup_and_are_made_again_when_a_post_names_them(
    lab: Lab, media_store_settings: dict[str, str]
) -> None:
    here, peer, bob, reader = await reader_of_bob(lab, **media_store_settings)
    peer.files[DISAPPROVE] = (png_bytes((64, 64), (200, 30, 30)), "image/png")
    peer.files[SMILE] = (png_bytes((64, 64), (30, 200, 30)), "image/png")
    await deliver_and_process(here, peer, bob, create(bob, pleroma_note(bob, 1)))
    await run_jobs(here)
    [post] = await rows(here, Post)
    # Read once, so that the API's rendering of the post is kept (the cleanup must drop it).
    copies = {emoji["url"] for emoji in (await shown_status(here))["emojis"]}
    assert len(copies) == 2 and len(await stored_files(here)) == 2
    page = await post_page(reader, post)
    assert all(f'src="{url}"' in page for url in copies)

    # The daily cleanup: copies made more than MEDIA_CACHE_RETENTION_DAYS ago go.
    async with here.context.sessions() as session:
        await session.execute(update(RemoteEmoji).values(cached_at=utcnow() - timedelta(days=8)))
        await session.commit()
    assert await run_cleanup(here.context) == 2

    status = await shown_status(here)
    assert status["emojis"] == []
    page = await post_page(reader, post)
    assert ":joker_disapprove:" in page and "custom-emoji" not in page
    assert "http://remote.test/emoji" not in page  # text, never the other server's picture
    for url in copies:
        assert (await fetch_media(here, url)).status_code == 404
    assert await stored_files(here) == []

    # The next post naming them has them copied again, for every post that names them (a kept
    # rendering of an older one shows them as text until it expires: text is never wrong).
    await deliver_and_process(here, peer, bob, create(bob, pleroma_note(bob, 2)))
    await run_jobs(here)
    assert peer.fetches(DISAPPROVE) == 2 and peer.fetches(SMILE) == 2
    status = (await here.client.get("/api/v1/timelines/public")).json()[0]
    assert {emoji["shortcode"] for emoji in status["emojis"]} == {"joker_disapprove", "joker_smile"}
    assert 'class="custom-emoji"' in await post_page(reader, post)
    await reader.aclose()


async def test_media_remove_takes_the_emoji_of_posts_and_names_along(lab: Lab) -> None:
    here, alice = await home_of_alice(lab)
    peer = Peer(lab).host("remote.test")
    bob = peer.actor(BOB, name="Bob :blob:", tag=blob_note(peer.actor(BOB), 0, SMILE)["tag"])
    peer.files[SMILE] = (png_bytes((24, 24)), "image/png")
    account = await known_actor(here, bob)
    await follow_locally(here, alice, bob.uri)
    await deliver_and_process(here, peer, bob, create(bob, blob_note(bob, 1, SMILE)))
    await run_jobs(here)
    [emoji] = (await here.client.get(f"/api/v1/accounts/{account.id}")).json()["emojis"]
    assert emoji["shortcode"] == "blob"

    # What `herold media remove --days N` runs for emoji (tests/test_cli_everyday.py runs the command).
    assert await RemoteEmojiCache(here.context).remove_older_than(-1) == 1
    assert (await here.client.get(f"/api/v1/accounts/{account.id}")).json()["emojis"] == []
    [post] = await rows(here, Post)
    assert (await here.client.get(f"/api/v1/statuses/{post.id}")).json()["emojis"] == []
    assert await stored_files(here) == []
    [stored] = await rows(here, Account, Account.uri == bob.uri)
    assert has_files_to_copy(stored)  # its next post has the copy made again


async def test_a_domain_block_rejecting_media_drops_every_copy(
    lab: Lab, media_store_settings: dict[str, str]
) -> None:
    here, peer, bob, reader = await reader_of_bob(lab, **media_store_settings)
    avatar = "http://remote.test/system/accounts/avatars/bob.png"
    bob.document["icon"] = {"type": "Image", "mediaType": "image/png", "url": avatar}
    peer.files[avatar] = (png_bytes((400, 400)), "image/png")
    picture = "http://remote.test/media_attachments/files/120/lighthouse.png"
    peer.files[picture] = (png_bytes(), "image/png")
    peer.files[DISAPPROVE] = (png_bytes((32, 32)), "image/png")
    peer.files[SMILE] = (png_bytes((32, 32)), "image/png")
    sent = pleroma_note(bob, 1)
    sent["attachment"] = [
        {"type": "Document", "mediaType": "image/png", "url": picture, "name": "Lighthouse"}
    ]
    await deliver_and_process(here, peer, bob, create(bob, sent))
    await run_jobs(here)
    [post] = await rows(here, Post)
    status = await shown_status(here)
    copies = f"{here.settings.s3_public_url or here.base_url + '/media'}/cache/"
    assert len(status["emojis"]) == 2 and status["media_attachments"][0]["url"].startswith(copies)
    assert len(await stored_files(here)) >= 4  # the picture, its preview, two emoji (and the avatar)

    await DomainBlockService(here.context).block(
        "remote.test", severity=BlockSeverity.SILENCE, reject_media=True
    )
    await run_jobs(here)

    status = (await here.client.get(f"/api/v1/statuses/{post.id}")).json()
    assert status["emojis"] == []
    assert status["media_attachments"][0]["url"] == picture  # not kept here any more
    page = await post_page(reader, post)
    await reader.aclose()
    assert ":joker_disapprove:" in page and "custom-emoji" not in page
    assert copies not in page and "http://remote.test/emoji" not in page
    assert await stored_files(here) == []
    # Nothing is fetched again while the block stands.
    await deliver_and_process(here, peer, bob, create(bob, pleroma_note(bob, 2)))
    await run_jobs(here)
    assert peer.fetches(DISAPPROVE) == 1 and peer.fetches(picture) == 1


async def test_a_suspended_domain_leaves_no_file_behind(lab: Lab) -> None:
    here, peer, bob, reader = await reader_of_bob(lab)
    await reader.aclose()
    picture = "http://remote.test/media_attachments/files/120/lighthouse.png"
    peer.files[picture] = (png_bytes(), "image/png")
    peer.files[DISAPPROVE] = (png_bytes((32, 32)), "image/png")
    peer.files[SMILE] = (png_bytes((32, 32)), "image/png")
    sent = pleroma_note(bob, 1)
    sent["attachment"] = [
        {"type": "Document", "mediaType": "image/png", "url": picture, "name": "Lighthouse"}
    ]
    await deliver_and_process(here, peer, bob, create(bob, sent))
    await run_jobs(here)
    assert len(await stored_files(here)) == 4

    await DomainBlockService(here.context).block("remote.test", severity=BlockSeverity.SUSPEND)
    await run_jobs(here)
    assert await stored_files(here) == []
    assert await rows(here, RemoteEmoji) == []


async def test_the_last_picture_wins_and_a_new_one_never_shows_the_old_copy(lab: Lab) -> None:
    here, peer, bob, reader = await reader_of_bob(lab)
    first, second, third = (f"http://remote.test/emoji/blob-{n}.png" for n in (1, 2, 3))
    peer.files[first] = (png_bytes((32, 32), (200, 30, 30)), "image/png")
    peer.files[second] = (png_bytes((32, 32), (30, 30, 200)), "image/png")
    await deliver_and_process(here, peer, bob, create(bob, blob_note(bob, 1, first)))
    await run_jobs(here)
    [old] = (await shown_status(here))["emojis"]

    # The server changed the picture: the copy follows it, for the older post too.
    await deliver_and_process(here, peer, bob, create(bob, blob_note(bob, 2, second)))
    await run_jobs(here)
    statuses = (await here.client.get("/api/v1/timelines/public")).json()
    [new] = statuses[0]["emojis"]
    assert new["url"] != old["url"] and statuses[1]["emojis"] == [new]
    assert (await fetch_media(here, old["url"])).status_code == 404
    served = await fetch_media(here, new["url"])
    assert Image.open(io.BytesIO(served.content)).convert("RGB").getpixel((8, 8)) == (30, 30, 200)

    # A newer picture that cannot be had (its server answers 404): text, not the stale copy.
    await deliver_and_process(here, peer, bob, create(bob, blob_note(bob, 3, third)))
    await run_jobs(here)
    statuses = (await here.client.get("/api/v1/timelines/public")).json()
    assert all(status["emojis"] == [] for status in statuses)
    assert (await fetch_media(here, new["url"])).status_code == 404
    page = (await reader.get("/home")).text
    await reader.aclose()
    assert ":blob:" in page and "custom-emoji" not in page
