"""Replaying real payloads from Mastodon, Misskey, Pleroma, Lemmy, PeerTube, Friendica, GNU social,
Mobilizon and others (tests/fixtures/corpus, copied from the shared corpus) into the inbox.

`CorpusNetwork` plays every server the payloads name: it serves each actor they mention (the
corpus's own actor document when there is one, with a key we hold, or a plain Person), and every
document by its id, over the lab network. Each payload is then delivered signed by its own actor,
the way its server would send it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.activitypub.parsers import (
    ACTOR_TYPES,
    CONVERTED_TYPES,
    POST_TYPES,
    InvalidObject,
    first_id,
    first_type,
    parse_activity,
    parse_actor,
    parse_note,
)
from app.models import (
    Account,
    AccountBlock,
    Favourite,
    Follow,
    FollowState,
    InboxItem,
    JobState,
    MediaAttachment,
    Mention,
    Notification,
    Poll,
    Post,
    PostEdit,
    Reaction,
    Report,
    Role,
    Tag,
    TimelineEntry,
)
from tests.federation.inbox_peer import (
    ALICE,
    MASTODON_CONTEXT,
    PeerActor,
    follow_locally,
    local_account,
    local_post,
    process_inbox,
    public_pem,
    rows,
    sign_cavage,
    throwaway_key,
)
from tests.lab import Instance, Lab

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "corpus"
FILES = sorted(path for path in CORPUS.rglob("*.json"))


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((CORPUS / name).read_text(encoding="utf-8"))
    return document


def rewrite(document: dict[str, Any], replacements: dict[str, str]) -> dict[str, Any]:
    """The payload with URIs swapped (the local account it was sent to becomes ours, and so on)."""
    text = json.dumps(document)
    for old, new in replacements.items():
        text = text.replace(json.dumps(old)[1:-1], json.dumps(new)[1:-1])
    result: dict[str, Any] = json.loads(text)
    return result


def _embedded(document: Any, depth: int = 0) -> Iterator[dict[str, Any]]:
    if isinstance(document, dict):
        yield document
        if depth < 3:
            for key in ("object", "actor"):
                yield from _embedded(document.get(key), depth + 1)
    elif isinstance(document, list) and depth < 3:
        for item in document:
            yield from _embedded(item, depth + 1)


@dataclass
class CorpusNetwork:
    """Every server the corpus names, played by one app registered under each of their hosts."""

    lab: Lab
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)
    actors: dict[str, dict[str, Any]] = field(default_factory=dict)
    hosts: set[str] = field(default_factory=set)
    # URLs that must answer 404 whatever the corpus holds (to replay "the origin does not have it").
    missing: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.app = Starlette(routes=[Route("/{path:path}", self._serve, methods=["GET", "POST"])])
        self.key = throwaway_key(90)
        self.pem = public_pem(self.key)
        for path in FILES:
            document = json.loads(path.read_text(encoding="utf-8"))
            for found in _embedded(document):
                uri = found.get("id")
                if isinstance(uri, str) and uri.startswith(("http://", "https://")):
                    self.documents.setdefault(uri.split("#", 1)[0], found)
                    if first_type(found.get("type")) in ACTOR_TYPES:
                        self.add_actor(uri, found)
                for name in ("actor", "attributedTo"):
                    actor = first_id(found.get(name))
                    if actor and actor.startswith(("http://", "https://")):
                        self.add_actor(actor)

    def add_actor(self, uri: str, document: dict[str, Any] | None = None) -> PeerActor:
        """Serve an actor at `uri` with our key: the corpus's document for it when given, else a Person."""
        existing = self.actors.get(uri)
        if existing is not None and document is None:
            return self.signer(uri)
        parts = urlsplit(uri)
        base = f"{parts.scheme}://{parts.netloc}"
        served = (
            dict(document)
            if document
            else {"type": "Person", "preferredUsername": uri.rstrip("/").rsplit("/", 1)[-1] or "actor"}
        )
        served.update({"@context": MASTODON_CONTEXT, "id": uri})
        inbox = served.get("inbox")
        if not isinstance(inbox, str) or urlsplit(inbox).netloc != parts.netloc:
            served["inbox"] = f"{uri.rstrip('/')}/inbox"
        served.setdefault("followers", f"{uri.rstrip('/')}/followers")
        old_key = served.get("publicKey") if isinstance(served.get("publicKey"), dict) else {}
        key_id = (
            old_key.get("id")
            if isinstance(old_key.get("id"), str) and old_key["id"].startswith(uri)
            else f"{uri}#main-key"
        )
        served["publicKey"] = {"id": key_id, "owner": uri, "publicKeyPem": self.pem}
        served.setdefault("endpoints", {"sharedInbox": f"{base}/inbox"})
        self.actors[uri] = served
        if parts.netloc not in self.hosts:
            self.hosts.add(parts.netloc)
            self.lab.network.register(parts.netloc, self.app)  # type: ignore[arg-type]
        for other in self.documents:
            host = urlsplit(other).netloc
            if host not in self.hosts:
                self.hosts.add(host)
                self.lab.network.register(host, self.app)  # type: ignore[arg-type]
        return self.signer(uri)

    def signer(self, uri: str) -> PeerActor:
        served = self.actors[uri]
        return PeerActor(uri=uri, key=self.key, key_id=served["publicKey"]["id"], document=served)

    async def _serve(self, request: Request) -> Response:
        if request.method == "POST":
            return Response(status_code=202)
        url = str(request.url).split("?", 1)[0]
        candidates = [url, url.replace("http://", "https://", 1), url.replace("https://", "http://", 1)]
        for candidate in candidates:
            if candidate in self.missing:
                return JSONResponse({"error": "not found"}, status_code=404)
            if candidate in self.actors:
                return JSONResponse(self.actors[candidate], media_type="application/activity+json")
        for candidate in candidates:
            if candidate in self.documents:
                return JSONResponse(self.documents[candidate], media_type="application/activity+json")
        return JSONResponse({"error": "not found"}, status_code=404)

    async def deliver(
        self, instance: Instance, document: dict[str, Any], *, signer: str | None = None
    ) -> int:
        """POST `document` to the shared inbox signed by `signer` (default: its actor, else a stand-in)."""
        actor = signer or first_id(document.get("actor")) or first_id(document.get("attributedTo"))
        if actor is None or not actor.startswith(("http://", "https://")):
            actor = "http://corpus.test/users/replay"
        if actor not in self.actors:
            self.add_actor(actor)
        peer_actor = self.signer(actor)
        body = json.dumps(document).encode()
        headers = sign_cavage(
            key=peer_actor.key,
            key_id=peer_actor.key_id,
            method="POST",
            url=f"{instance.base_url}/inbox",
            body=body,
        )
        response = await instance.client.post("/inbox", content=body, headers=headers)
        return response.status_code


@pytest.fixture
def network(lab: Lab) -> CorpusNetwork:
    return CorpusNetwork(lab)


# ------------------------------------------------------------------------------------------------
# Everything, as it comes


async def test_every_payload_is_answered_without_a_server_error_and_processed_cleanly(
    here: Instance, network: CorpusNetwork, alice: Account
) -> None:
    # alice follows every actor of the corpus, so that their posts are relevant and get stored.
    statuses: dict[str, int] = {}
    for path in FILES:
        document = json.loads(path.read_text(encoding="utf-8"))
        statuses[str(path.relative_to(CORPUS))] = await network.deliver(here, document)
    assert set(statuses.values()) <= {202, 400, 401}, {
        name: s for name, s in statuses.items() if s not in (202, 400, 401)
    }
    assert len(statuses) == 281

    for account in await rows(here, Account, Account.domain.is_not(None)):  # type: ignore[union-attr]
        await follow_locally(here, alice, account.uri)
    for path in FILES:  # again, now that alice follows everyone: more handlers run to the end
        document = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(document.get("id"), str):
            document = (
                {**document, "id": document["id"] + "-again"} if "#" not in document["id"] else document
            )
        await network.deliver(here, document)
    await process_inbox(here)

    items = await rows(here, InboxItem)
    assert items, "some activities must have been accepted"
    failed = [
        (item.activity_uri, item.last_error) for item in items if item.attempts or item.state != JobState.DONE
    ]
    assert failed == []
    # A good share of the corpus did something (posts kept, follows recorded...).
    assert len(await rows(here, Post)) >= 20
    assert len([item for item in items if item.last_error is None]) >= 40


def _objects(kinds: frozenset[str]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in FILES:
        for document in _embedded(json.loads(path.read_text(encoding="utf-8"))):
            if first_type(document.get("type")) in kinds:
                found.append((str(path.relative_to(CORPUS)), document))
    return found


@pytest.mark.parametrize(
    ("name", "document"), _objects(ACTOR_TYPES), ids=lambda value: value if isinstance(value, str) else ""
)
def test_every_actor_document_parses_or_is_refused_with_a_reason(name: str, document: dict[str, Any]) -> None:
    try:
        data = parse_actor(document)
    except InvalidObject as error:
        assert str(error)
        return
    assert data.uri == document["id"] and data.inbox_url


@pytest.mark.parametrize(
    ("name", "document"),
    _objects(POST_TYPES | CONVERTED_TYPES),
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_every_post_document_parses_or_is_refused_with_a_reason(name: str, document: dict[str, Any]) -> None:
    try:
        note = parse_note(document)
    except InvalidObject as error:
        assert str(error)
        return
    assert "<script" not in note.content_html


def test_every_activity_envelope_parses_or_is_refused_with_a_reason() -> None:
    for path in FILES:
        document = json.loads(path.read_text(encoding="utf-8"))
        try:
            parse_activity(document)
        except InvalidObject as error:
            assert str(error) in ("the activity has no type", "the activity has no actor")


# ------------------------------------------------------------------------------------------------
# The hostile ones


async def test_spoofed_object_is_refused(here: Instance, network: CorpusNetwork, alice: Account) -> None:
    spoof = load("pleroma-fixtures/spoofed-object.json")
    # patch.cx never published it.
    network.missing.add(spoof["id"])
    # Sent by someone else in rin's name: not the signer, and patch.cx does not serve it.
    assert await network.deliver(here, spoof, signer="http://mastodon.example.org/users/admin") == 401
    # Served as a media upload and boosted by someone alice follows: the upload's declared id is
    # fetched from patch.cx, which does not have it.
    media = "https://patch.cx/media/03ca3c8b4ac3ddd08bf0f84be7885f2f88de0f709112131a22d83650819e36c2.json"
    network.documents[media] = spoof
    booster = network.add_actor("https://patch.cx/users/someone")
    await network.deliver(
        here,
        {
            "@context": MASTODON_CONTEXT,
            "id": f"{booster.uri}#announces/1",
            "type": "Announce",
            "actor": booster.uri,
            "object": media,
            "to": ["https://www.w3.org/ns/activitystreams#Public"],
        },
    )
    from app.activitypub.resolver import ActorResolver

    await ActorResolver(here.context).fetch_actor(booster.uri)
    await follow_locally(here, alice, booster.uri)
    await network.deliver(
        here,
        {
            "@context": MASTODON_CONTEXT,
            "id": f"{booster.uri}#announces/2",
            "type": "Announce",
            "actor": booster.uri,
            "object": media,
            "to": ["https://www.w3.org/ns/activitystreams#Public"],
        },
    )
    await process_inbox(here)
    assert await rows(here, Post) == []
    [item] = await rows(here, InboxItem, InboxItem.activity_uri == f"{booster.uri}#announces/2")
    assert item.last_error == f"could not fetch {spoof['id']}: {spoof['id']} answered 404"


async def test_bogus_announce_is_not_trusted(here: Instance, network: CorpusNetwork, alice: Account) -> None:
    bogus = load("pleroma-fixtures/bogus-mastodon-announce.json")
    # mastodon.social never published what the Announce embeds.
    network.missing.add(bogus["object"]["id"])
    admin = network.add_actor(bogus["actor"])
    from app.activitypub.resolver import ActorResolver

    await ActorResolver(here.context).fetch_actor(admin.uri)
    await follow_locally(here, alice, admin.uri)
    assert await network.deliver(here, bogus) == 202
    await process_inbox(here)
    assert await rows(here, Post) == []


async def test_spoofed_webfinger_does_not_lend_its_domain_to_another_actor(
    here: Instance, network: CorpusNetwork
) -> None:
    from app.activitypub.resolver import ActorResolver, ResolveError

    spoof = load("pleroma-fixtures/tesla_mock/webfinger_spoof.json")
    alex = "https://gleasonator.com/users/alex"
    network.add_actor(alex, {"type": "Person", "preferredUsername": "alex"})
    network.documents["http://whitehouse.gov/.well-known/webfinger"] = spoof
    network.documents["http://gleasonator.com/.well-known/webfinger"] = {
        "subject": "acct:alex@gleasonator.com",
        "links": [{"rel": "self", "type": "application/activity+json", "href": alex}],
    }
    for host in ("whitehouse.gov", "gleasonator.com"):
        network.lab.network.register(host, network.app)  # type: ignore[arg-type]
    try:
        account = await ActorResolver(here.context).resolve_handle("trump@whitehouse.gov")
    except ResolveError:
        return
    assert account.domain != "whitehouse.gov"


# ------------------------------------------------------------------------------------------------
# What the common payloads must leave behind


async def known(here: Instance, network: CorpusNetwork, uri: str) -> Account:
    from app.activitypub.resolver import ActorResolver

    network.add_actor(uri)
    return await ActorResolver(here.context).fetch_actor(uri)


async def deliver(here: Instance, network: CorpusNetwork, document: dict[str, Any]) -> InboxItem:
    assert await network.deliver(here, document) == 202
    await process_inbox(here)
    [item] = await rows(here, InboxItem, InboxItem.activity_uri == document["id"])
    assert item.state == JobState.DONE and item.attempts == 0
    return item


async def test_mastodon(here: Instance, network: CorpusNetwork, alice: Account) -> None:
    admin_uri = "http://mastodon.example.org/users/admin"
    to_alice = {"http://localtesting.pleroma.lol/users/lain": ALICE}
    mine = await local_post(here, alice)

    follow = rewrite(load("pleroma-fixtures/mastodon-follow-activity.json"), to_alice)
    assert (await deliver(here, network, follow)).last_error is None
    [row] = await rows(here, Follow)
    admin = (await rows(here, Account, Account.uri == admin_uri))[0]
    assert (row.follower_id, row.followee_id, row.state, row.uri) == (
        admin.id,
        alice.id,
        FollowState.ACCEPTED,
        follow["id"],
    )

    await follow_locally(here, alice, admin_uri)
    create = rewrite(load("pleroma-fixtures/mastodon-post-activity.json"), to_alice)
    assert (await deliver(here, network, create)).last_error is None
    [post] = await rows(here, Post, Post.uri == create["object"]["id"])
    assert (post.summary, post.sensitive, post.visibility) == ("cw", True, "public")
    assert [m.account_id for m in await rows(here, Mention)] == [alice.id]
    variants = [
        "mastodon-post-activity-hashtag.json",
        "mastodon-post-activity-contentmap.json",
        "mastodon-post-activity-nsfw.json",
        "mastodon-create-with-attachment.json",
    ]
    for number, name in enumerate(variants):
        # The variants of one captured post share its id; each becomes a post of its own.
        document = rewrite(
            load(f"pleroma-fixtures/{name}"), {"statuses/99512778738411822": f"statuses/{number}"}
        )
        author = first_id(document["actor"]) or ""
        await known(here, network, author)
        await follow_locally(here, alice, author)
        item = await deliver(here, network, document)
        assert item.last_error is None, (name, item.last_error)
    assert {tag.name for tag in await rows(here, Tag)} >= {"moo", "nsfw"}
    [with_language] = await rows(here, Post, Post.uri == "http://mastodon.example.org/users/admin/statuses/1")
    assert with_language.language == "en" and with_language.content_html.startswith("<p>")
    assert len(await rows(here, MediaAttachment)) >= 1

    like = rewrite(
        load("pleroma-fixtures/mastodon-like.json"),
        {"http://localtesting.pleroma.lol/objects/eb92579d-3417-42a8-8652-2492c2d4f454": mine.uri},
    )
    assert (await deliver(here, network, like)).last_error is None
    assert len(await rows(here, Favourite)) == 1
    undo_like = rewrite(
        load("pleroma-fixtures/mastodon-undo-like.json"),
        {"http://localtesting.pleroma.lol/objects/eb92579d-3417-42a8-8652-2492c2d4f454": mine.uri},
    )
    assert (await deliver(here, network, undo_like)).last_error is None
    assert await rows(here, Favourite) == []

    announce = rewrite(
        load("pleroma-fixtures/mastodon-announce.json"),
        {"http://mastodon.example.org/@admin/99541947525187367": mine.uri},
    )
    assert (await deliver(here, network, announce)).last_error is None
    assert [n.type for n in await rows(here, Notification, Notification.type == "reblog")] == ["reblog"]
    undo_announce = load("pleroma-fixtures/mastodon-undo-announce.json")
    undo_announce["object"]["id"] = announce["id"]
    undo_announce = rewrite(undo_announce, {"http://mastodon.example.org/@admin/99541947525187367": mine.uri})
    assert (await deliver(here, network, undo_announce)).last_error is None
    assert await rows(here, Post, Post.reblog_of_id == mine.id) == []

    question = load("pleroma-fixtures/mastodon-question-activity.json")
    await known(here, network, question["actor"])
    await follow_locally(here, alice, question["actor"])
    assert (await deliver(here, network, question)).last_error is None
    [poll] = await rows(here, Poll)
    assert [option["title"] for option in poll.options] == [
        "Dunno",
        "Everyone knows that!",
        "25 char limit is dumb",
        "I can't even fit a funny",
    ]
    assert [option["votes"] for option in poll.options] == [0, 1, 0, 1]

    gargron = "http://mastodon.example.org/users/gargron"
    await known(here, network, gargron)
    update = load("pleroma-fixtures/mastodon-update.json")
    assert (await deliver(here, network, update)).last_error is None
    [account] = await rows(here, Account, Account.uri == gargron)
    assert (account.display_name, account.summary_html) == ("gargle", "<p>Some bio</p>")
    assert [field["value"] for field in account.fields] == ["updated", "updated"]

    # Delete of one of gargron's posts that alice was mentioned in.
    deleted = load("pleroma-fixtures/mastodon-delete.json")
    # gargron's Update published the key of the captured payload; he signs with ours again.
    async with here.context.sessions() as session:
        stored = (await rows(here, Account, Account.uri == gargron))[0]
        stored.public_key_pem = network.pem
        session.add(stored)
        await session.commit()
    here.app.state.inbox_receiver = here.app.state.request_verifier = None
    target = deleted["object"]["id"]
    gargron_note = {
        "@context": MASTODON_CONTEXT,
        "id": f"{target}/activity",
        "type": "Create",
        "actor": gargron,
        "object": {
            "id": target,
            "type": "Note",
            "attributedTo": gargron,
            "content": "<p>hi</p>",
            "to": [ALICE],
            "tag": [{"type": "Mention", "href": ALICE}],
        },
    }
    assert (await deliver(here, network, gargron_note)).last_error is None
    assert len(await rows(here, Post, Post.uri == target)) == 1
    assert (await deliver(here, network, deleted)).last_error is None
    assert await rows(here, Post, Post.uri == target) == []

    block = rewrite(load("pleroma-fixtures/mastodon-block-activity.json"), to_alice)
    block["id"] += "/block"
    assert (await deliver(here, network, block)).last_error is None
    assert len(await rows(here, AccountBlock)) == 1

    flag = rewrite(
        load("lemmy-assets/mastodon/activities/flag.json"),
        {"https://example.com/users/1": ALICE, "https://example.com/posts/380590": mine.uri},
    )
    await local_account(here, "admin", role=Role.ADMIN)
    assert (await deliver(here, network, flag)).last_error is None
    [report] = await rows(here, Report)
    assert (report.target_account_id, report.post_ids, report.comment) == (
        alice.id,
        [mine.id],
        "Please take a look at this user and their posts",
    )

    unfollow = rewrite(load("pleroma-fixtures/mastodon-unfollow-activity.json"), to_alice)
    await deliver(here, network, unfollow)
    assert await rows(here, Follow, Follow.followee_id == alice.id) == []


async def test_mastodon_accept_and_account_deletion(
    here: Instance, network: CorpusNetwork, alice: Account
) -> None:
    admin_uri = "http://mastodon.example.org/users/admin"
    admin = await known(here, network, admin_uri)
    ours = "http://a.test/users/alice#follows/4"
    async with here.context.sessions() as session:
        session.add(Follow(follower_id=alice.id, followee_id=admin.id, uri=ours))
        await session.commit()
    accept = rewrite(
        load("pleroma-fixtures/mastodon-accept-activity.json"),
        {
            "http://localtesting.pleroma.lol/users/lain#follows/4": ours,
            "http://localtesting.pleroma.lol/users/lain": ALICE,
        },
    )
    assert (await deliver(here, network, accept)).last_error is None
    [row] = await rows(here, Follow)
    assert row.state == FollowState.ACCEPTED

    assert (
        await deliver(here, network, load("pleroma-fixtures/mastodon-delete-user.json"))
    ).last_error is None
    [gone] = await rows(here, Account, Account.uri == admin_uri)
    assert gone.gone_at is not None
    assert await rows(here, Follow) == []


async def test_misskey(here: Instance, network: CorpusNetwork, alice: Account) -> None:
    mine = await local_post(here, alice)
    create = load("pleroma-fixtures/tesla_mock/mk.absturztau.be-93e7nm8wqg-activity.json")
    await known(here, network, create["actor"])
    await follow_locally(here, alice, create["actor"])
    assert (await deliver(here, network, create)).last_error is None
    assert len(await rows(here, Post, Post.uri == create["object"]["id"])) == 1

    misskey_user = "https://misskey.xyz/users/7rkrarq81i"
    like = rewrite(
        load("pleroma-fixtures/misskey-like.json"),
        {
            "http://mastodon.example.org/users/admin": misskey_user,
            "https://testing.pleroma.lol/objects/c331bbf7-2eb9-4801-a709-2a6103492a5a": mine.uri,
        },
    )
    network.add_actor(misskey_user)
    assert (await deliver(here, network, like)).last_error is None
    assert len(await rows(here, Favourite)) == 1

    react = rewrite(
        load("pleroma-fixtures/custom-emoji-reaction.json"),
        {"https://pleroma.local.live/objects/89937a53-2692-4631-bb62-770091267391": mine.uri},
    )
    react["type"] = "EmojiReact"  # Misskey's Like-with-content, as EmojiReact (what Misskey sends to Pleroma)
    assert (await deliver(here, network, react)).last_error is None
    [reaction] = await rows(here, Reaction)
    assert reaction.content == ":hanapog:" and reaction.emoji_url

    poll = load("pleroma-fixtures/tesla_mock/misskey_poll_no_end_date.json")
    author = first_id(poll["attributedTo"]) or ""
    await known(here, network, author)
    await follow_locally(here, alice, author)
    wrapped = {
        "@context": MASTODON_CONTEXT,
        "id": f"{poll['id']}/activity",
        "type": "Create",
        "actor": author,
        "to": poll["to"],
        "cc": poll["cc"],
        "object": poll,
    }
    assert (await deliver(here, network, wrapped)).last_error is None
    [stored] = await rows(here, Poll)
    assert stored.expires_at is None and len(stored.options) >= 2


async def test_pleroma(here: Instance, network: CorpusNetwork, alice: Account) -> None:
    mine = await local_post(here, alice)
    follow = rewrite(
        load("lemmy-assets/pleroma/activities/follow.json"), {"https://lemmy.ca/u/kinetix": ALICE}
    )
    assert (await deliver(here, network, follow)).last_error is None
    assert len(await rows(here, Follow)) == 1

    create = rewrite(
        load("lemmy-assets/pleroma/activities/create_note.json"),
        {"https://enterprise.lemmy.ml/u/picard": ALICE},
    )
    assert (await deliver(here, network, create)).last_error is None
    [post] = await rows(here, Post, Post.uri == create["object"]["id"])
    assert [m.account_id for m in await rows(here, Mention, Mention.post_id == post.id)] == [alice.id]
    assert [n.type for n in await rows(here, Notification, Notification.post_id == post.id)] == ["mention"]

    react = rewrite(
        load("pleroma-fixtures/emoji-reaction.json"),
        {"http://localtesting.pleroma.lol/objects/eb92579d-3417-42a8-8652-2492c2d4f454": mine.uri},
    )
    assert (await deliver(here, network, react)).last_error is None
    assert [r.content for r in await rows(here, Reaction)] == ["👌"]

    delete = load("lemmy-assets/pleroma/activities/delete.json")
    target = delete["object"]
    vpzom = delete["actor"]
    await known(here, network, vpzom)
    note = {
        "@context": MASTODON_CONTEXT,
        "id": f"{target}/activity",
        "type": "Create",
        "actor": vpzom,
        "object": {"id": target, "type": "Note", "attributedTo": vpzom, "content": "x", "to": [ALICE]},
    }
    note["id"] = "https://greenish.red/activities/create-for-delete"
    assert (await deliver(here, network, note)).last_error is None
    assert (await deliver(here, network, delete)).last_error is None
    assert await rows(here, Post, Post.uri == target) == []


async def test_lemmy(here: Instance, network: CorpusNetwork, alice: Account) -> None:
    mine = await local_post(here, alice)
    follow = rewrite(
        load("lemmy-assets/lemmy/activities/following/follow.json"),
        {"http://enterprise.lemmy.ml/c/main": ALICE},
    )
    assert (await deliver(here, network, follow)).last_error is None
    assert len(await rows(here, Follow)) == 1

    alpha = "http://ds9.lemmy.ml/u/lemmy_alpha"
    await known(here, network, alpha)
    await follow_locally(here, alice, alpha)
    page = load("lemmy-assets/lemmy/activities/create_or_update/create_page.json")
    assert (await deliver(here, network, page)).last_error is None
    [stored] = await rows(here, Post, Post.uri == page["object"]["id"])
    assert stored.object_type == "Page" and stored.content_html.startswith("<p><strong>")

    update = load("lemmy-assets/lemmy/activities/create_or_update/update_page.json")
    update["object"]["updated"] = "2099-01-01T00:00:00Z"
    update["object"]["content"] = "<p>edited body</p>"
    assert (await deliver(here, network, update)).last_error is None
    assert len(await rows(here, PostEdit)) == 1

    comment = load("lemmy-assets/lemmy/activities/create_or_update/create_comment.json")
    assert (await deliver(here, network, comment)).last_error is None
    assert len(await rows(here, Post, Post.uri == comment["object"]["id"])) == 1

    like = rewrite(
        load("lemmy-assets/lemmy/activities/voting/like_note.json"),
        {"http://ds9.lemmy.ml/comment/1": mine.uri},
    )
    assert (await deliver(here, network, like)).last_error is None
    assert len(await rows(here, Favourite)) == 1
    undo = rewrite(
        load("lemmy-assets/lemmy/activities/voting/undo_like_note.json"),
        {"http://ds9.lemmy.ml/comment/1": mine.uri},
    )
    assert (await deliver(here, network, undo)).last_error is None
    assert await rows(here, Favourite) == []

    report = rewrite(
        load("lemmy-assets/lemmy/activities/community/report_page.json"),
        {"http://enterprise.lemmy.ml/post/7": mine.uri},
    )
    assert (await deliver(here, network, report)).last_error is None
    [row] = await rows(here, Report)
    assert row.post_ids == [mine.id]

    delete = load("lemmy-assets/lemmy/activities/deletion/delete_page.json")
    assert (await deliver(here, network, delete)).last_error is None
    assert await rows(here, Post, Post.uri == delete["object"]) == []

    community = "http://enterprise.lemmy.ml/c/main"
    await known(here, network, community)
    await follow_locally(here, alice, community)
    announce = load("lemmy-assets/lemmy/activities/community/announce_create_page.json")
    network.documents.pop(announce["object"]["object"]["id"], None)
    assert (await deliver(here, network, announce)).last_error is None
    [shared] = await rows(here, Post, Post.uri == announce["object"]["object"]["id"])
    [boost] = await rows(here, Post, Post.reblog_of_id == shared.id)
    assert boost.uri == announce["id"]
    assert boost.id in [
        entry.post_id for entry in await rows(here, TimelineEntry, TimelineEntry.account_id == alice.id)
    ]
