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
