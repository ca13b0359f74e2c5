"""A domain block with reject_media: no page makes a browser load a file from that domain.

Herold hotlinks remote media, so rejecting it means not embedding it: the avatars of the domain's
accounts become placeholders and attachments (of its accounts, or served from it) plain links.
The decision is made when the page is shown, so blocking and unblocking apply at once.
"""

from __future__ import annotations

import html
import re

import pytest
from sqlmodel import select

from app.cli import main
from app.models import (
    Account,
    BlockSeverity,
    MediaAttachment,
    Post,
    PostTag,
    Role,
    Tag,
    TimelineEntry,
    Visibility,
)
from app.services.domain_blocks import DomainBlockService
from tests.lab import Instance
from tests.web.helpers import BROWSER, Browser, logged_in


def embedded_from(html: str, host: str) -> list[str]:
    """The <img> tags of a page whose source is on `host` or a subdomain of it."""
    pattern = rf'<img[^>]*\bsrc="https?://(?:[^/"]*\.)?{re.escape(host)}[/:"][^>]*>'
    return re.findall(pattern, html)


async def remote_post(
    instance: Instance, account: Account, number: int, attachment_url: str, *, tag: Tag, reader_id: int
) -> None:
    async with instance.context.sessions() as session:
        post = Post(
            uri=f"{account.uri}/statuses/{number}",
            url=f"{account.uri}/statuses/{number}",
            account_id=account.id,
            content_html=f"<p>Picture {number} #cats</p>",
            visibility=Visibility.PUBLIC,
        )
        session.add(post)
        await session.flush()
        session.add(
            MediaAttachment(
                post_id=post.id,
                account_id=account.id,
                media_type="image/png",
                remote_url=attachment_url,
                description=f"a cat, number {number}",
            )
        )
        session.add(PostTag(post_id=post.id, tag_id=tag.id))
        session.add(TimelineEntry(account_id=reader_id, post_id=post.id))
        await session.commit()


async def remote_account(instance: Instance, username: str, domain: str) -> Account:
    account = Account(
        username=username,
        domain=domain,
        uri=f"https://{domain}/users/{username}",
        avatar_url=f"https://{domain}/avatars/{username}.png",
        inbox_url=f"https://{domain}/users/{username}/inbox",
    )
    async with instance.context.sessions() as session:
        session.add(account)
        await session.commit()
        await session.refresh(account)
    return account


async def reader_and_tag(instance: Instance) -> tuple[Browser, Account, Tag]:
    """alice logged in (her client and her account) and the #cats tag the posts carry."""
    staff = await logged_in(instance, "alice")
    async with instance.context.sessions() as session:
        reader = (await session.scalars(select(Account).where(Account.username == "alice"))).one()
        tag = Tag(name="cats")
        session.add(tag)
        await session.commit()
        await session.refresh(tag)
    return staff, reader, tag


async def test_reject_media_hides_avatars_and_attachments_until_unblocked(instance: Instance) -> None:
    staff, reader, tag = await reader_and_tag(instance)
    mallory = await remote_account(instance, "mallory", "pics.test")
    carol = await remote_account(instance, "carol", "ok.test")
    await remote_post(instance, mallory, 1, "https://files.pics.test/cat1.png", tag=tag, reader_id=reader.id)
    # An account elsewhere whose file is served from the blocked domain's host.
    await remote_post(instance, carol, 2, "https://cdn.pics.test/cat2.png", tag=tag, reader_id=reader.id)
    await remote_post(instance, carol, 3, "https://ok.test/cat3.png", tag=tag, reader_id=reader.id)

    home = (await staff.get("/home")).text
    assert len(embedded_from(home, "pics.test")) == 3  # mallory's avatar, two attachments
    blocks = DomainBlockService(instance.context)
    await blocks.block("pics.test", severity=BlockSeverity.SILENCE, reject_media=True)

    home = (await staff.get("/home")).text
    assert embedded_from(home, "pics.test") == []
    # The attachments are still reachable, as links the reader chooses to follow.
    assert 'class="media-link" href="https://files.pics.test/cat1.png">a cat, number 1</a>' in home
    assert 'class="media-link" href="https://cdn.pics.test/cat2.png">a cat, number 2</a>' in home
    assert "avatar-placeholder" in home and "Picture 1" in home
    # Other servers' files are untouched.
    assert len(embedded_from(home, "ok.test")) == 3  # carol's avatar twice, her own attachment

    # Visitors: the silenced domain's posts are not listed, and a file it serves is not embedded.
    tag_page = (await instance.client.get("/tags/cats", headers=BROWSER)).text
    assert "Picture 2" in tag_page and "Picture 1" not in tag_page
    assert embedded_from(tag_page, "pics.test") == []
    assert embedded_from(tag_page, "ok.test")

    await blocks.unblock("pics.test")
    home = (await staff.get("/home")).text
    assert len(embedded_from(home, "pics.test")) == 3


async def test_a_block_without_reject_media_keeps_the_files(instance: Instance) -> None:
    staff, reader, tag = await reader_and_tag(instance)
    mallory = await remote_account(instance, "mallory", "pics.test")
    await remote_post(instance, mallory, 1, "https://pics.test/cat1.png", tag=tag, reader_id=reader.id)
    await DomainBlockService(instance.context).block("pics.test", severity=BlockSeverity.SILENCE)
    home = (await staff.get("/home")).text
    assert len(embedded_from(home, "pics.test")) == 2


async def test_reject_media_is_described_as_what_it_does(
    instance: Instance, capsys: pytest.CaptureFixture[str]
) -> None:
    """Remote files are linked, never stored: the option means pages do not embed them."""
    with pytest.raises(SystemExit):
        main(["domains", "block", "--help"])
    cli_help = " ".join(capsys.readouterr().out.split())
    assert "--reject-media pages embed no avatar or attachment from it" in cli_help
    assert "store" not in cli_help
    admin = await logged_in(instance, "boss", role=Role.ADMIN)
    page = html.unescape((await admin.get("/admin/domains")).text)
    assert "Reject media: pages embed no avatar or attachment from this domain" in page
