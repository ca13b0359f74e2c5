"""Uploading media through the client API: the shapes Mastodon's apps read, the rules a post's
attachments follow, every class of bad file answered 422 with a message, and what is served."""

from __future__ import annotations

import asyncio
import io
import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import update

from app.models import MediaAttachment
from app.models.base import utcnow
from app.services.media_store import media_root
from app.services.remote_media import remove_unattached_uploads
from tests.api.media_helpers import (
    GPS_IFD,
    animated_gif,
    bomb_png,
    fetch_media,
    jpeg_with_gps,
    noisy_png,
    png_bytes,
    stored_files,
    tiny_audio,
    tiny_mp4,
)
from tests.api.test_client_api import bearer, post_status, token_for
from tests.lab import Instance, Lab


async def upload(
    instance: Instance,
    token: str,
    data: bytes,
    *,
    name: str = "picture.jpg",
    declared: str = "image/jpeg",
    version: str = "v2",
    **fields: str,
) -> Any:
    return await instance.client.post(
        f"/api/{version}/media",
        files={"file": (name, data, declared)},
        data=fields,
        headers=bearer(token),
    )


def media_url_base(instance: Instance) -> str:
    """Where the instance's media URLs start: its own /media, or the object store's public address."""
    return instance.settings.s3_public_url or f"{instance.base_url}/media"


async def wait_until_processed(instance: Instance, token: str, media_id: str) -> Any:
    async with asyncio.timeout(30):
        while True:
            answer = await instance.client.get(f"/api/v1/media/{media_id}", headers=bearer(token))
            if answer.status_code != 206:
                return answer
            await asyncio.sleep(0.1)


async def test_a_jpeg_with_gps_is_served_oriented_and_without_any_metadata(media_instance: Instance) -> None:
    instance = media_instance
    token = await token_for(instance, "alice")
    answer = await upload(
        instance, token, jpeg_with_gps((64, 32)), description="A red square", focus="0.5,-0.25"
    )
    assert answer.status_code == 200, answer.text
    media = answer.json()
    assert media["type"] == "image" and media["description"] == "A red square"
    assert media["id"].isdigit() and media["blurhash"]
    # Orientation 6 turns the 64x32 sensor picture upright: 32 wide, 64 high.
    assert media["meta"]["original"] == {"width": 32, "height": 64, "size": "32x64", "aspect": 0.5}
    assert media["meta"]["small"]["width"] == 32
    assert media["meta"]["focus"] == {"x": 0.5, "y": -0.25}
    assert media["url"].startswith(f"{media_url_base(instance)}/attachments/")
    assert media["preview_url"] != media["url"] and media["remote_url"] is None

    served = await fetch_media(instance, media["url"])
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/jpeg"
    assert "immutable" in served.headers["cache-control"]
    if not instance.settings.media_in_object_store:
        # From Herold's own origin a file must never be able to act as a page; the bucket is another origin.
        assert served.headers["x-content-type-options"] == "nosniff"
        assert served.headers["content-security-policy"] == "default-src 'none'; sandbox"
    else:
        # A /media/ URL handed out before the switch to the bucket leads to the same name there.
        key = media["url"].removeprefix(f"{media_url_base(instance)}/")
        earlier = await instance.client.get(f"/media/{key}")
        assert earlier.status_code == 301 and earlier.headers["location"] == media["url"]
    picture = Image.open(io.BytesIO(served.content))
    assert picture.size == (32, 64)
    exif = picture.getexif()
    assert not exif and not exif.get_ifd(GPS_IFD)
    assert b"Exif" not in served.content and b"SERIAL-123456" not in served.content
    preview = await fetch_media(instance, media["preview_url"])
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/jpeg"


async def test_a_post_carries_its_attachments_to_the_api_and_the_note(media_instance: Instance) -> None:
    instance = media_instance
    token = await token_for(instance, "alice")
    first = (await upload(instance, token, png_bytes(), name="one.png", description="One")).json()
    second = (await upload(instance, token, jpeg_with_gps(), focus="-1,1")).json()
    status = await post_status(
        instance.client, token, "Two pictures", media_ids=[second["id"], first["id"]], sensitive=True
    )
    assert [media["id"] for media in status["media_attachments"]] == [second["id"], first["id"]]
    assert status["sensitive"] is True
    shown = (await instance.client.get(f"/api/v1/statuses/{status['id']}")).json()
    assert shown["media_attachments"][1]["description"] == "One"

    note = (
        await instance.client.get(
            status["uri"].removeprefix("http://a.test"), headers={"Accept": "application/activity+json"}
        )
    ).json()
    assert note["sensitive"] is True
    [document, png] = note["attachment"]
    assert document["type"] == "Document" and document["mediaType"] == "image/jpeg"
    assert document["url"] == second["url"] and document["name"] is None
    assert document["focalPoint"] == [-1.0, 1.0] and document["blurhash"] == second["blurhash"]
    assert (document["width"], document["height"]) == (32, 64)
    assert png["name"] == "One" and png["mediaType"] == "image/png"

    # Only pictures: a post with no text at all is fine when it carries one.
    third = (await upload(instance, token, png_bytes())).json()
    alone = await post_status(instance.client, token, "", media_ids=[third["id"]])
    assert alone["content"] == "" or alone["media_attachments"]


async def test_the_attachment_rules_of_a_post(instance: Instance) -> None:
    token = await token_for(instance, "alice")
    bob_token = await token_for(instance, "bob")
    mine = [(await upload(instance, token, png_bytes())).json()["id"] for _ in range(5)]
    bobs = (await upload(instance, bob_token, png_bytes())).json()["id"]

    async def refused(media_ids: list[str], message: str) -> None:
        answer = await instance.client.post(
            "/api/v1/statuses", json={"status": "x", "media_ids": media_ids}, headers=bearer(token)
        )
        assert answer.status_code == 422, answer.text
        assert message in answer.json()["error"]

    await refused(mine, "at most 4 attachments")
    await refused([bobs], "does not exist or is not yours")
    await refused(["12345"], "does not exist or is not yours")
    await refused(["abc"], "is not an attachment id")
    await post_status(instance.client, token, "first", media_ids=mine[:1])
    await refused(mine[:2], "already attached to another post")
    # Another account's attachment cannot be read or changed either.
    assert (await instance.client.get(f"/api/v1/media/{bobs}", headers=bearer(token))).status_code == 404
    changed = await instance.client.put(
        f"/api/v1/media/{bobs}", json={"description": "mine now"}, headers=bearer(token)
    )
    assert changed.status_code == 404


@pytest.mark.parametrize(
    ("name", "data", "declared", "message"),
    [
        ("empty.jpg", b"", "image/jpeg", "empty"),
        ("truncated.jpg", jpeg_with_gps((300, 200))[:400], "image/jpeg", "damaged"),
        ("corrupt.png", png_bytes()[:30] + b"\x00" * 200, "image/png", "damaged"),
        ("bomb.png", bomb_png(), "image/png", "too large"),
        ("notes.jpg", b"just some text pretending to be a picture", "image/jpeg", "not a picture"),
        (
            "drawing.svg",
            b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
            "image/svg+xml",
            "SVG",
        ),
        (
            "drawing.png",
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>',
            "image/png",
            "SVG",
        ),
        ("page.gif", animated_gif(1) + b"<html><script>alert(1)</script></html>", "image/gif", "markup"),
        (
            "archive.png",
            png_bytes() + b"PK\x03\x04" + b"\x00" * 30 + b"PK\x05\x06" + b"\x00" * 18,
            "image/png",
            "archive",
        ),
    ],
)
async def test_bad_files_are_refused_with_a_message_and_leave_nothing(
    media_instance: Instance, name: str, data: bytes, declared: str, message: str
) -> None:
    instance = media_instance
    token = await token_for(instance, "alice")
    answer = await upload(instance, token, data, name=name, declared=declared)
    assert answer.status_code == 422, answer.text
    assert message in answer.json()["error"], answer.text
    assert await stored_files(instance) == []


async def test_an_upload_over_the_limit_is_cut_off_while_streaming(
    media_instance: Instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance = media_instance
    monkeypatch.setattr("app.api.v1.media.UPLOAD_LIMIT", 256 * 1024)
    token = await token_for(instance, "alice")
    boundary = "herold-boundary"
    sent = 0

    async def body() -> AsyncIterator[bytes]:
        nonlocal sent
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        for _ in range(64):  # 4 MB offered, 64 kB at a time, without a Content-Length
            sent += 1
            yield b"\x00" * 65_536
        yield f"\r\n--{boundary}--\r\n".encode()

    answer = await instance.client.post(
        "/api/v2/media",
        content=body(),
        headers={**bearer(token), "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert answer.status_code == 422 and "larger than the limit" in answer.json()["error"]
    assert await stored_files(instance) == []


async def test_a_large_picture_is_processed_by_the_worker(media_instance: Instance) -> None:
    instance = media_instance
    token = await token_for(instance, "alice")
    answer = await upload(instance, token, noisy_png((1400, 1100)), name="big.png", declared="image/png")
    assert answer.status_code == 202, answer.text
    media = answer.json()
    assert media["url"] is None and media["type"] == "image"
    pending = await instance.client.get(f"/api/v1/media/{media['id']}", headers=bearer(token))
    assert pending.status_code == 206
    refused = await instance.client.post(
        "/api/v1/statuses", json={"status": "x", "media_ids": [media["id"]]}, headers=bearer(token)
    )
    assert refused.status_code == 422 and "still being processed" in refused.json()["error"]

    # The instance's worker (running in the lab) takes the media.process job.
    ready = await wait_until_processed(instance, token, media["id"])
    assert ready.status_code == 200
    assert ready.json()["meta"]["original"]["width"] == 1400 and ready.json()["url"]
    assert [path.name for path in (media_root(instance.settings) / "tmp").iterdir()] == []
    processed = await fetch_media(instance, ready.json()["url"])
    assert processed.status_code == 200 and processed.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(processed.content)).size == (1400, 1100)

    # The older endpoint waits for the same file.
    waited = await upload(instance, token, noisy_png((1400, 1100)), version="v1", declared="image/png")
    assert waited.status_code == 200 and waited.json()["url"]


async def test_describing_and_focusing_an_attachment(instance: Instance) -> None:
    token = await token_for(instance, "alice")
    media = (await upload(instance, token, png_bytes())).json()
    changed = await instance.client.put(
        f"/api/v1/media/{media['id']}",
        json={"description": "A blue field", "focus": "0.1,0.9"},
        headers=bearer(token),
    )
    assert changed.status_code == 200
    assert changed.json()["description"] == "A blue field"
    assert changed.json()["meta"]["focus"] == {"x": 0.1, "y": 0.9}
    for focus in ("2,0", "a,b", "1"):
        bad = await instance.client.put(
            f"/api/v1/media/{media['id']}", json={"focus": focus}, headers=bearer(token)
        )
        assert bad.status_code == 422 and "focus" in bad.json()["error"]
    too_long = await instance.client.put(
        f"/api/v1/media/{media['id']}", json={"description": "x" * 1501}, headers=bearer(token)
    )
    assert too_long.status_code == 422


async def test_instance_advertises_the_limits_the_pipeline_enforces(instance: Instance) -> None:
    limits = (await instance.client.get("/api/v2/instance")).json()["configuration"]["media_attachments"]
    assert "image/heic" in limits["supported_mime_types"] and "image/jpeg" in limits["supported_mime_types"]
    assert limits["image_matrix_limit"] == 33_177_600 and limits["description_limit"] == 1500
    assert limits["video_size_limit"] == 99 * 1024 * 1024


async def test_media_files_are_served_only_as_the_types_written(instance: Instance) -> None:
    root = media_root(instance.settings)
    (root / "attachments" / "ab").mkdir(parents=True)
    (root / "attachments" / "ab" / "page.html").write_text("<script>alert(1)</script>")
    (root / "attachments" / "ab" / "drawing.svg").write_text("<svg/>")
    for path in (
        "/media/attachments/ab/page.html",
        "/media/attachments/ab/drawing.svg",
        "/media/../herold.db",
    ):
        assert (await instance.client.get(path)).status_code == 404


needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")


@needs_ffmpeg
async def test_video_gif_and_audio_become_mp4_and_mp3(instance: Instance, tmp_path: Path) -> None:
    token = await token_for(instance, "alice")
    video = await upload(
        instance,
        token,
        tiny_mp4(tmp_path, audio=True),
        name="clip.mov",
        declared="video/quicktime",
        version="v1",
    )
    assert video.status_code == 200, video.text
    clip = video.json()
    assert clip["type"] == "video" and clip["url"].endswith(".mp4") and clip["preview_url"].endswith(".jpg")
    assert clip["meta"]["original"]["width"] == 64 and clip["meta"]["duration"] == pytest.approx(1, abs=0.2)
    served = await instance.client.get(clip["url"].removeprefix("http://a.test"))
    assert served.headers["content-type"] == "video/mp4"
    # A video is a post's only attachment.
    picture = (await upload(instance, token, png_bytes())).json()
    alone = await instance.client.post(
        "/api/v1/statuses",
        json={"status": "x", "media_ids": [clip["id"], picture["id"]]},
        headers=bearer(token),
    )
    assert alone.status_code == 422 and "only attachment" in alone.json()["error"]

    gif = (
        await upload(instance, token, animated_gif(), name="dance.gif", declared="image/gif", version="v1")
    ).json()
    assert gif["type"] == "gifv" and gif["url"].endswith(".mp4")

    sound = await upload(
        instance, token, tiny_audio(tmp_path), name="a.ogg", declared="audio/ogg", version="v2"
    )
    assert sound.status_code == 202
    assert sound.json()["type"] == "audio" and sound.json()["url"] is None  # known while processing
    ready = await wait_until_processed(instance, token, sound.json()["id"])
    assert ready.status_code == 200, ready.text
    assert ready.json()["type"] == "audio" and ready.json()["url"].endswith(".mp3")
    assert ready.json()["meta"]["duration"] == pytest.approx(1, abs=0.2)


async def test_a_playlist_pretending_to_be_a_video_is_refused(instance: Instance) -> None:
    token = await token_for(instance, "alice")
    playlist = b"#EXTM3U\n#EXTINF:1,\nfile:///etc/passwd\n"
    answer = await upload(instance, token, playlist, name="clip.mp4", declared="video/mp4")
    assert answer.status_code == 422


async def test_deleting_a_post_deletes_its_files_and_unattached_uploads_expire(
    media_instance: Instance,
) -> None:
    instance = media_instance
    token = await token_for(instance, "alice")
    media = (await upload(instance, token, png_bytes(), description="Blue")).json()
    status = await post_status(instance.client, token, "Soon gone", media_ids=[media["id"]])
    assert (await fetch_media(instance, media["url"])).status_code == 200
    deleted = await instance.client.delete(f"/api/v1/statuses/{status['id']}", headers=bearer(token))
    assert deleted.status_code == 200
    assert (await fetch_media(instance, media["url"])).status_code == 404
    assert (await fetch_media(instance, media["preview_url"])).status_code == 404

    stray = (await upload(instance, token, png_bytes())).json()
    async with instance.context.sessions() as session:
        await session.execute(update(MediaAttachment).values(created_at=utcnow() - timedelta(days=2)))
        await session.commit()
    assert await remove_unattached_uploads(instance.context) == 1
    assert (await fetch_media(instance, stray["url"])).status_code == 404
    assert await stored_files(instance) == []


async def test_an_edit_replaces_the_attachments(instance: Instance) -> None:
    token = await token_for(instance, "alice")
    first = (await upload(instance, token, png_bytes(), description="First")).json()
    second = (await upload(instance, token, jpeg_with_gps(), description="Second")).json()
    status = await post_status(instance.client, token, "Pictures", media_ids=[first["id"]])
    edited = await instance.client.put(
        f"/api/v1/statuses/{status['id']}",
        json={"status": "Pictures, changed", "media_ids": [second["id"]]},
        headers=bearer(token),
    )
    assert edited.status_code == 200, edited.text
    assert [media["id"] for media in edited.json()["media_attachments"]] == [second["id"]]
    note = (
        await instance.client.get(
            status["uri"].removeprefix("http://a.test"), headers={"Accept": "application/activity+json"}
        )
    ).json()
    assert [document["name"] for document in note["attachment"]] == ["Second"]
    # Text only: the attachments stay.
    kept = await instance.client.put(
        f"/api/v1/statuses/{status['id']}", json={"status": "Pictures, again"}, headers=bearer(token)
    )
    assert [media["id"] for media in kept.json()["media_attachments"]] == [second["id"]]
    # The detached one may go on another post.
    await post_status(instance.client, token, "Elsewhere", media_ids=[first["id"]])


@pytest.mark.parametrize(("kind", "declared"), [("HEIF", "image/heic"), ("AVIF", "image/avif")])
async def test_iphone_heic_and_avif_pictures_become_jpegs(
    instance: Instance, kind: str, declared: str
) -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 200, 30)).save(buffer, kind)
    token = await token_for(instance, "alice")
    answer = await upload(instance, token, buffer.getvalue(), name="IMG_0001.HEIC", declared=declared)
    assert answer.status_code == 200, answer.text
    media = answer.json()
    assert media["url"].endswith(".jpg") and media["meta"]["original"]["width"] == 64


async def test_a_failing_object_store_answers_503_and_keeps_nothing(
    lab: Lab, s3_media_settings: dict[str, str]
) -> None:
    missing = "bucket-nobody-made"
    instance = await lab.instance(
        "a.test",
        **{
            **s3_media_settings,
            "s3_bucket": missing,
            "s3_public_url": f"{s3_media_settings['s3_endpoint']}/{missing}",
        },
    )
    token = await token_for(instance, "alice")
    answer = await upload(instance, token, png_bytes(), description="Blue")
    assert answer.status_code == 503, answer.text
    assert "try again" in answer.json()["error"] and int(answer.headers["retry-after"]) > 0
    root = media_root(instance.settings)
    assert [path for path in root.rglob("*") if path.is_file()] == []


async def test_a_new_avatar_is_served_from_the_store_and_replaces_the_old_file(
    media_instance: Instance,
) -> None:
    instance = media_instance
    token = await token_for(instance, "alice")

    async def new_avatar(color: tuple[int, int, int]) -> str:
        answer = await instance.client.patch(
            "/api/v1/accounts/update_credentials",
            files={"avatar": ("me.png", png_bytes((800, 600), color), "image/png")},
            headers=bearer(token),
        )
        assert answer.status_code == 200, answer.text
        url: str = answer.json()["avatar"]
        assert url.startswith(f"{media_url_base(instance)}/profiles/")
        return url

    first = await new_avatar((200, 0, 0))
    served = await fetch_media(instance, first)
    assert served.status_code == 200 and served.headers["content-type"] in ("image/jpeg", "image/png")
    assert Image.open(io.BytesIO(served.content)).size == (400, 400)
    second = await new_avatar((0, 200, 0))
    assert (await fetch_media(instance, second)).status_code == 200
    assert (await fetch_media(instance, first)).status_code == 404
    assert [name for name in await stored_files(instance) if name.startswith("profiles/")] == [
        second.removeprefix(f"{media_url_base(instance)}/")
    ]
