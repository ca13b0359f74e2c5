"""Remote media cached here: a followed account's post with four pictures and a video (Mastodon's
payload shapes) is fetched by the worker, re-encoded, and shown from Herold in the API and the
web UI; a lying or broken file is not kept; a domain with reject_media is never fetched from."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from app.models import Account, BackgroundJob, BlockSeverity, MediaAttachment, MediaState, Post
from app.services.domain_blocks import DomainBlockService
from app.services.remote_media import RemoteMediaCache, has_files_to_copy
from tests.api.media_helpers import fetch_media, jpeg_with_gps, png_bytes, stored_files, tiny_mp4
from tests.federation.inbox_peer import (
    BOB,
    Peer,
    create,
    deliver_and_process,
    follow_locally,
    home_of_alice,
    known_actor,
    note,
    rows,
)
from tests.federation.test_background_jobs import run_jobs
from tests.lab import Instance, Lab
from tests.web.helpers import Browser, make_user, new_client


def document(url: str, media_type: str, name: str | None, **extra: Any) -> dict[str, Any]:
    """An attachment as Mastodon 4 writes it."""
    return {
        "type": "Document",
        "mediaType": media_type,
        "url": url,
        "name": name,
        "blurhash": "UBL_:rOpGG-oBUNG,qRj2so|=eE1w^n4S5NH",
        "focalPoint": [0.0, 0.0],
        "width": 64,
        "height": 32,
    }


def cache_url_base(instance: Instance) -> str:
    return f"{instance.settings.s3_public_url or instance.base_url + '/media'}/cache"


async def test_a_followed_accounts_pictures_are_cached_and_shown_from_here(
    lab: Lab, media_store_settings: dict[str, str]
) -> None:
    here, alice = await home_of_alice(lab, **media_store_settings)
    peer = Peer(lab).host("remote.test").host("files.remote.test")
    bob = peer.actor(BOB)
    await known_actor(here, bob)
    await follow_locally(here, alice, bob.uri)
    _, carol = await make_user(here, "carol")
    await follow_locally(here, carol, bob.uri)
    base = "http://files.remote.test/media_attachments/files/110"
    peer.files[f"{base}/1.jpg"] = (jpeg_with_gps(), "image/jpeg")
    peer.files[f"{base}/2.png"] = (png_bytes(), "image/png")
    peer.files[f"{base}/3.png"] = (b"<html><script>alert(1)</script></html>", "image/png")  # a lie
    peer.files[f"{base}/4.jpg"] = (jpeg_with_gps()[:300], "image/jpeg")  # truncated
    attachments = [
        document(f"{base}/1.jpg", "image/jpeg", "The harbour at dawn"),
        document(f"{base}/2.png", "image/png", None),
        document(f"{base}/3.png", "image/png", "not a picture"),
        document(f"{base}/4.jpg", "image/jpeg", "broken"),
    ]
    await deliver_and_process(here, peer, bob, create(bob, note(bob, 1, attachment=attachments)))
    [job] = await rows(here, BackgroundJob)
    assert job.kind == "media.cache_remote"
    await run_jobs(here)

    media = {m.remote_url: m for m in await rows(here, MediaAttachment)}
    harbour = media[f"{base}/1.jpg"]
    assert harbour.state == MediaState.READY and harbour.url.startswith(
        f"{cache_url_base(here)}/attachments/"
    )
    assert harbour.preview_url and harbour.cached_at is not None
    assert harbour.description == "The harbour at dawn"
    assert media[f"{base}/2.png"].state == MediaState.READY
    for refused in (f"{base}/3.png", f"{base}/4.jpg"):
        assert media[refused].state == MediaState.REMOTE and media[refused].processing_error
    served = await fetch_media(here, harbour.url)
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
    assert b"Exif" not in served.content

    [post] = await rows(here, Post, Post.account_id == harbour.account_id)
    status = (await here.client.get(f"/api/v1/statuses/{post.id}")).json()
    [first, second, third, _] = status["media_attachments"]
    assert first["url"] == harbour.url and first["remote_url"] == f"{base}/1.jpg"
    assert first["preview_url"] == harbour.preview_url and first["type"] == "image"
    assert third["url"] == f"{base}/3.png"  # not cached: the original, as Mastodon shows it
    assert second["meta"]["original"]["width"] == 40

    reader = Browser(new_client(here))
    await reader.login("carol")
    home = (await reader.get("/home")).text
    await reader.aclose()
    assert f'src="{harbour.preview_url}" alt="The harbour at dawn"' in home
    # Files refused by the checks are links to the original, never embedded.
    assert 'src="http://files.remote.test' not in home
    assert f'href="{base}/3.png">not a picture</a>' in home

    # The cleanup drops copies older than the retention; the entity points at the original again.
    assert await RemoteMediaCache(here.context).remove_older_than(-1) == 2
    status = (await here.client.get(f"/api/v1/statuses/{post.id}")).json()
    assert status["media_attachments"][0]["url"] == f"{base}/1.jpg"
    assert (await fetch_media(here, harbour.url)).status_code == 404
    assert await stored_files(here) == []


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
async def test_a_remote_video_is_cached_as_mp4_with_a_poster(lab: Lab, tmp_path: Path) -> None:
    here, alice = await home_of_alice(lab)
    peer = Peer(lab).host("remote.test")
    bob = peer.actor(BOB)
    await known_actor(here, bob)
    await follow_locally(here, alice, bob.uri)
    url = "http://remote.test/media_attachments/files/111/clip.mp4"
    peer.files[url] = (tiny_mp4(tmp_path), "video/mp4")
    await deliver_and_process(
        here, peer, bob, create(bob, note(bob, 2, attachment=[document(url, "video/mp4", "A clip")]))
    )
    await run_jobs(here)
    [video] = await rows(here, MediaAttachment)
    assert video.state == MediaState.READY and video.kind == "video" and video.media_type == "video/mp4"
    assert video.preview_url and video.meta["duration"] == pytest.approx(1.0, abs=0.2)
    assert video.url.endswith(".mp4")


async def test_nothing_is_fetched_from_a_domain_whose_media_is_rejected(lab: Lab) -> None:
    here, alice = await home_of_alice(lab)
    peer = Peer(lab).host("remote.test")
    bob = peer.actor(BOB)
    await known_actor(here, bob)
    await follow_locally(here, alice, bob.uri)
    await DomainBlockService(here.context).block(
        "remote.test", severity=BlockSeverity.SILENCE, reject_media=True
    )
    url = "http://remote.test/media_attachments/files/112/cat.png"
    peer.files[url] = (png_bytes(), "image/png")
    await deliver_and_process(
        here, peer, bob, create(bob, note(bob, 3, attachment=[document(url, "image/png", "A cat")]))
    )
    await run_jobs(here)
    [media] = await rows(here, MediaAttachment)
    # Even asked directly, the cache fetches nothing from it.
    assert media.post_id is not None
    await RemoteMediaCache(here.context).cache_post(media.post_id)
    assert peer.fetches(url) == 0
    [media] = await rows(here, MediaAttachment)
    assert media.state == MediaState.REMOTE and media.url == url


async def test_a_remote_accounts_pictures_are_cached_with_its_post(
    lab: Lab, media_store_settings: dict[str, str]
) -> None:
    here, alice = await home_of_alice(lab, **media_store_settings)
    peer = Peer(lab).host("remote.test")
    bob = peer.actor(BOB)
    avatar_url = "http://remote.test/system/accounts/avatars/bob.png"
    header_url = "http://remote.test/system/accounts/headers/bob.jpg"
    bob.document["icon"] = {"type": "Image", "mediaType": "image/png", "url": avatar_url}
    bob.document["image"] = {"type": "Image", "mediaType": "image/jpeg", "url": header_url}
    peer.files[avatar_url] = (png_bytes((800, 800)), "image/png")
    peer.files[header_url] = (jpeg_with_gps((3000, 1000), orientation=1), "image/jpeg")
    await known_actor(here, bob)
    await follow_locally(here, alice, bob.uri)
    url = "http://remote.test/media_attachments/files/113/a.png"
    peer.files[url] = (png_bytes(), "image/png")
    await deliver_and_process(
        here, peer, bob, create(bob, note(bob, 4, attachment=[document(url, "image/png", "A")]))
    )
    await run_jobs(here)
    [account] = await rows(here, Account, Account.uri == bob.uri)
    assert account.avatar_shown and account.avatar_shown.startswith(f"{cache_url_base(here)}/avatars/")
    assert account.header_shown and account.header_shown.startswith(f"{cache_url_base(here)}/headers/")
    entity = (await here.client.get(f"/api/v1/accounts/{account.id}")).json()
    assert entity["avatar"] == account.avatar_shown and entity["header"] == account.header_shown
    served = await fetch_media(here, account.avatar_shown)
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"  # opaque: a JPEG

    # A new picture on the other side: the stale copy is no longer shown.
    async with here.context.sessions() as session:
        stored = await session.get(Account, account.id)
        assert stored is not None
        stored.avatar_url = "http://remote.test/system/accounts/avatars/bob-new.png"
        session.add(stored)
        await session.commit()
        assert stored.avatar_shown == "http://remote.test/system/accounts/avatars/bob-new.png"

    removed = await RemoteMediaCache(here.context).remove_pictures_older_than(-1, avatars=False, headers=True)
    assert removed == 1
    [account] = await rows(here, Account, Account.uri == bob.uri)
    assert account.header_shown == header_url and account.avatar_cached_url


async def test_the_cached_copies_go_when_the_post_and_then_the_account_are_deleted(
    lab: Lab, media_store_settings: dict[str, str]
) -> None:
    here, alice = await home_of_alice(lab, **media_store_settings)
    peer = Peer(lab).host("remote.test")
    bob = peer.actor(BOB)
    avatar_url = "http://remote.test/system/accounts/avatars/bob.png"
    bob.document["icon"] = {"type": "Image", "mediaType": "image/png", "url": avatar_url}
    peer.files[avatar_url] = (png_bytes((400, 400)), "image/png")
    await known_actor(here, bob)
    await follow_locally(here, alice, bob.uri)
    url = "http://remote.test/media_attachments/files/114/boat.png"
    peer.files[url] = (png_bytes(), "image/png")
    created = create(bob, note(bob, 5, attachment=[document(url, "image/png", "A boat")]))
    await deliver_and_process(here, peer, bob, created)
    await run_jobs(here)
    [media] = await rows(here, MediaAttachment)
    [account] = await rows(here, Account, Account.uri == bob.uri)
    assert media.state == MediaState.READY and account.avatar_cached_url
    assert (await fetch_media(here, media.url)).status_code == 200

    # Mastodon's Delete of a post: a Tombstone in place of the Note.
    deletion = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{created['object']['id']}#delete",
        "type": "Delete",
        "actor": bob.uri,
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "object": {"id": created["object"]["id"], "type": "Tombstone", "atomUri": created["object"]["id"]},
    }
    await deliver_and_process(here, peer, bob, deletion)
    assert (await fetch_media(here, media.url)).status_code == 404
    assert (await fetch_media(here, media.preview_url or "")).status_code == 404
    assert (await fetch_media(here, account.avatar_cached_url)).status_code == 200

    # The actor deleting itself takes its cached avatar along.
    gone = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{bob.uri}#delete",
        "type": "Delete",
        "actor": bob.uri,
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "object": bob.uri,
    }
    await deliver_and_process(here, peer, bob, gone)
    assert (await fetch_media(here, account.avatar_cached_url)).status_code == 404
    assert await stored_files(here) == []


async def test_an_author_s_pictures_are_copied_with_a_text_post_and_a_bad_one_is_not_fetched_again(
    lab: Lab,
) -> None:
    here, alice = await home_of_alice(lab)
    peer = Peer(lab).host("remote.test")
    bob = peer.actor(BOB)
    avatar_url = "http://remote.test/system/accounts/avatars/bob.png"
    header_url = "http://remote.test/system/accounts/headers/bob.png"
    bob.document["icon"] = {"type": "Image", "mediaType": "image/png", "url": avatar_url}
    bob.document["image"] = {"type": "Image", "mediaType": "image/png", "url": header_url}
    peer.files[avatar_url] = (png_bytes((400, 400)), "image/png")
    peer.files[header_url] = (b"<html><script>alert(1)</script></html>", "image/png")  # a lie
    await known_actor(here, bob)
    await follow_locally(here, alice, bob.uri)

    # A post with text only: the author's pictures are copied all the same.
    await deliver_and_process(here, peer, bob, create(bob, note(bob, 8)))
    await run_jobs(here)
    [account] = await rows(here, Account, Account.uri == bob.uri)
    assert account.avatar_shown and account.avatar_shown.startswith("http://a.test/media/cache/avatars/")
    assert account.header_shown == header_url  # refused by the checks: the original, never a copy
    assert peer.fetches(header_url) == 1

    # The next post neither queues the copying again nor fetches the bad header once more.
    async def copying_jobs() -> set[int]:
        return {job.id for job in await rows(here, BackgroundJob) if job.kind == "media.cache_remote"}

    before = await copying_jobs()
    await deliver_and_process(here, peer, bob, create(bob, note(bob, 9)))
    assert await copying_jobs() - before == set()
    await run_jobs(here)
    assert peer.fetches(header_url) == 1 and peer.fetches(avatar_url) == 1


def test_an_emoji_the_copier_never_takes_does_not_ask_for_a_copy_with_every_post() -> None:
    emoji = {"shortcode": "blob-cat", "url": "https://remote.test/emoji/blob-cat.png"}
    account = Account(
        username="bob", domain="remote.test", uri="https://remote.test/users/bob", emojis=[emoji]
    )
    assert not has_files_to_copy(account)
    account.emojis = [emoji, {"shortcode": "blob_cat", "url": "https://remote.test/emoji/blob_cat.png"}]
    assert has_files_to_copy(account)
    account.emojis = [
        emoji,
        {**account.emojis[1], "cached_url": "https://local.test/media/cache/emojis/x.png"},
    ]
    assert not has_files_to_copy(account)
