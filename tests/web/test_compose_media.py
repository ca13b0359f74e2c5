"""Pictures from the web composer, without JavaScript: plain file inputs in a multipart form, a
description and focal point each, the missing-description question, the admin's policy, and the
post card showing them (sensitive ones behind a click)."""

from __future__ import annotations

import re

from sqlmodel import select

from app.models import MediaAttachment, Role
from tests.api.media_helpers import jpeg_with_gps, png_bytes
from tests.lab import Instance
from tests.web.helpers import logged_in


async def test_a_post_with_two_pictures_from_the_composer(instance: Instance) -> None:
    alice = await logged_in(instance, "alice")
    page = await alice.get("/compose")
    assert 'enctype="multipart/form-data"' in page.text and 'name="file_3"' in page.text
    posted = await alice.post(
        "/compose",
        {
            "text": "Our stand at the fair",
            "author": "alice",
            "visibility": "public",
            "description_0": "The stand, with banners",
            "focus_0": "0.25,-0.50",
            "description_1": "A blue square",
            "sensitive": "1",
        },
        files={
            "file_0": ("stand.jpg", jpeg_with_gps(), "image/jpeg"),
            "file_1": ("b.png", png_bytes(), "image/png"),
        },
    )
    assert posted.status_code == 303, posted.text[-2000:]
    post_page = await alice.get(posted.headers["location"])
    assert 'alt="The stand, with banners"' in post_page.text and 'alt="A blue square"' in post_page.text
    assert 'class="sensitive-media"' in post_page.text
    async with instance.context.sessions() as session:
        stored = (await session.scalars(select(MediaAttachment).order_by(MediaAttachment.position))).all()
    assert [(m.focus_x, m.focus_y, m.position) for m in stored] == [(0.25, -0.5, 0), (0.0, 0.0, 1)]
    assert all(m.post_id is not None for m in stored)
    await alice.aclose()


async def test_a_picture_without_description_is_flagged_then_kept_for_the_second_round(
    instance: Instance,
) -> None:
    alice = await logged_in(instance, "alice")
    await alice.get("/compose")
    typed = {"text": "A picture", "author": "alice", "visibility": "public"}
    flagged = await alice.post("/compose", typed, files={"file_0": ("a.png", png_bytes(), "image/png")})
    assert flagged.status_code == 400
    assert "no description" in flagged.text and 'name="without_descriptions"' in flagged.text
    kept = re.search(r'name="media_id_0" value="(\d+)"', flagged.text)
    assert kept, "the uploaded picture comes back with the form"
    posted = await alice.post("/compose", {**typed, "media_id_0": kept.group(1), "without_descriptions": "1"})
    assert posted.status_code == 303

    refused = await alice.post(
        "/compose",
        typed,
        files={"file_0": ("page.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml")},
    )
    assert refused.status_code == 422 and "Picture 1: SVG" in refused.text
    await alice.aclose()


async def test_the_admin_can_require_descriptions(instance: Instance) -> None:
    admin = await logged_in(instance, "boss", role=Role.ADMIN)
    about = await admin.get("/admin/instance")
    assert 'name="require_media_descriptions"' in about.text
    saved = await admin.post("/admin/instance", {"name": "Town hall", "require_media_descriptions": "1"})
    assert saved.status_code == 303
    refused = await admin.post(
        "/compose",
        {"text": "A picture", "author": "boss", "visibility": "public", "without_descriptions": "1"},
        files={"file_0": ("a.png", png_bytes(), "image/png")},
    )
    assert refused.status_code == 422 and "needs a description" in refused.text
    described = await admin.post(
        "/compose",
        {"text": "A picture", "author": "boss", "visibility": "public", "description_0": "Blue"},
        files={"file_0": ("a.png", png_bytes(), "image/png")},
    )
    assert described.status_code == 303
    await admin.aclose()


async def test_editing_a_post_keeps_redescribes_removes_and_adds_attachments(instance: Instance) -> None:
    alice = await logged_in(instance, "alice")
    await alice.get("/compose")
    posted = await alice.post(
        "/compose",
        {
            "text": "Two pictures",
            "author": "alice",
            "visibility": "public",
            "description_0": "The stand",
            "description_1": "A blue square",
        },
        files={
            "file_0": ("stand.jpg", jpeg_with_gps(), "image/jpeg"),
            "file_1": ("b.png", png_bytes(), "image/png"),
        },
    )
    post_path = posted.headers["location"].split("?")[0]
    form = await alice.get(f"{post_path}/edit")
    assert 'enctype="multipart/form-data"' in form.text
    kept = dict(re.findall(r'name="media_id_(\d)" value="(\d+)"', form.text))
    assert set(kept) == {"0", "1"}
    assert (
        "The stand</textarea>" in form.text
        and 'name="remove_1"' in form.text
        and 'name="file_2"' in form.text
    )

    # Without a description for the new picture, the edit is flagged first, as a new post would be.
    fields = {
        "text": "Two pictures, one changed",
        "media_id_0": kept["0"],
        "description_0": "The stand, from the left",
        "focus_0": "0.50,0.50",
        "media_id_1": kept["1"],
        "description_1": "A blue square",
        "remove_1": "1",
    }
    flagged = await alice.post(
        f"{post_path}/edit", fields, files={"file_2": ("c.png", png_bytes(color=(200, 200, 0)), "image/png")}
    )
    assert flagged.status_code == 400 and 'name="without_descriptions"' in flagged.text
    new_id = re.search(r'name="media_id_2" value="(\d+)"', flagged.text)
    assert new_id, "the new picture comes back with the form"
    saved = await alice.post(
        f"{post_path}/edit", {**fields, "media_id_2": new_id.group(1), "description_2": "A yellow square"}
    )
    assert saved.status_code == 303, saved.text[-2000:]

    page = (await alice.get(post_path)).text
    assert 'alt="The stand, from the left"' in page and 'alt="A yellow square"' in page
    assert 'alt="A blue square"' not in page
    status = (await instance.client.get(f"/api/v1/statuses/{post_path.rsplit('/', 1)[-1]}")).json()
    assert [media["description"] for media in status["media_attachments"]] == [
        "The stand, from the left",
        "A yellow square",
    ]
    assert status["media_attachments"][0]["meta"]["focus"] == {"x": 0.5, "y": 0.5}
    assert status["edited_at"] is not None

    # An edit from a form without the attachment fields changes the text only.
    text_only = await alice.post(f"{post_path}/edit", {"text": "Only the text changed"})
    assert text_only.status_code == 303
    status = (await instance.client.get(f"/api/v1/statuses/{post_path.rsplit('/', 1)[-1]}")).json()
    assert len(status["media_attachments"]) == 2 and "Only the text changed" in status["content"]
    await alice.aclose()


async def test_an_attachment_id_that_is_not_a_plain_number_is_ignored(instance: Instance) -> None:
    # '²' passes str.isdigit() but not int(); a 20-digit id does not fit PostgreSQL's BIGINT.
    alice = await logged_in(instance, "alice")
    await alice.get("/compose")
    posted = await alice.post("/compose", {"text": "Words only", "author": "alice", "visibility": "public"})
    post_path = posted.headers["location"].split("?")[0]
    await alice.get(f"{post_path}/edit")
    for odd in ("²", "9" * 20):
        answer = await alice.post(
            f"{post_path}/edit", {"text": "Still words", "media_id_0": odd, "description_0": "x"}
        )
        assert answer.status_code == 303, answer.text[-2000:]
    await alice.aclose()
