"""Create, Update and Delete: of posts (and poll votes), and of actors themselves."""

from __future__ import annotations

import logging
from typing import Any

from app.activitypub.parsers import (
    ACTOR_TYPES,
    CONVERTED_TYPES,
    POST_TYPES,
    InvalidObject,
    NoteData,
    compute_visibility,
    first_type,
    parse_actor,
    parse_note,
    same_origin,
)
from app.activitypub.resolver import ActorResolver, ResolveError
from app.federation.handlers.base import Ignored, Inbound
from app.models import Account, Post
from app.services.jobs import ACCOUNT_REFRESH, queue_job
from app.services.remote_accounts import RemoteAccountService
from app.services.remote_posts import RemotePostService

log = logging.getLogger(__name__)

# How many missing ancestors of a reply are fetched (once, when the reply is kept).
MAX_THREAD_DEPTH = 5


def parse_post(document: dict[str, Any]) -> NoteData:
    kind = first_type(document.get("type"))
    if kind not in POST_TYPES and kind not in CONVERTED_TYPES:
        raise Ignored(f"a {kind!r} is not kept as a post")
    try:
        return parse_note(document)
    except InvalidObject as error:
        raise Ignored(f"unusable post: {error}") from None


async def handle_create(inbound: Inbound) -> None:
    activity = inbound.activity
    note = parse_post(await inbound.object_document(on_actor_origin=True))
    if note.attributed_to != activity.actor:
        raise Ignored(f"{activity.actor} created a post attributed to {note.attributed_to}")
    author = await inbound.actor()
    posts = RemotePostService(inbound.context, inbound.cache)
    if note.is_vote:
        refusal = await posts.record_vote(note, author)
        if refusal:
            raise Ignored(refusal)
        return
    relevance = await posts.relevance(note, author)
    if not relevance.relevant:
        raise Ignored("nobody here follows the author, is addressed, or is replied to")
    if note.in_reply_to and relevance.parent is None:
        await fetch_thread(inbound, note.in_reply_to)
        relevance = await posts.relevance(note, author)
    visibility = compute_visibility(note.to, note.cc, author.followers_url)
    inbound.writes.posts.append(await posts.plan(note, author, visibility, relevance=relevance))


async def fetch_thread(inbound: Inbound, uri: str | None, depth: int = MAX_THREAD_DEPTH) -> None:
    """Fetch and keep the missing ancestors of a reply, nearest first, `depth` at most.

    Best effort: the first one that cannot be had ends the walk, and the reply is kept anyway.
    """
    posts = RemotePostService(inbound.context)
    resolver = ActorResolver(inbound.context)
    chain: list[tuple[NoteData, Account]] = []
    seen: set[str] = set()
    while uri and len(chain) < depth and uri not in seen and not inbound.is_local_uri(uri):
        seen.add(uri)
        if await posts.find(uri) is not None:
            break
        try:
            note = parse_post(await inbound.fetch(uri))
            if not same_origin(note.attributed_to, note.uri):
                raise Ignored(f"{note.uri} is attributed to an actor on another server")
            author = await resolver.fetch_actor(note.attributed_to)
        except (Ignored, ResolveError) as error:
            log.info("thread of %s: stopped at %s: %s", inbound.activity.id, uri, error)
            break
        chain.append((note, author))
        uri = note.in_reply_to
    for note, author in reversed(chain):
        visibility = compute_visibility(note.to, note.cc, author.followers_url)
        await posts.store(note, author, visibility, delivered=False)


async def handle_update(inbound: Inbound) -> None:
    activity = inbound.activity
    if activity.object_id == activity.actor or activity.object_type in ACTOR_TYPES:
        await _update_actor(inbound)
        return
    note = parse_post(await inbound.object_document(on_actor_origin=True))
    if note.attributed_to != activity.actor:
        raise Ignored(f"{activity.actor} updated a post attributed to {note.attributed_to}")
    author = await inbound.actor()
    if await RemotePostService(inbound.context).edit(note, author) is None:
        raise Ignored(f"{note.uri} is not kept here")


async def _update_actor(inbound: Inbound) -> None:
    activity = inbound.activity
    if activity.object_id != activity.actor:
        raise Ignored("an actor may only update itself")
    if activity.object is None:
        # Named, not embedded: the actor's document is fetched again by a background job, retried
        # while its server is down, instead of while this batch of the inbox waits.
        async with inbound.context.sessions() as session:
            queue_job(inbound.context, session, ACCOUNT_REFRESH, {"uri": activity.actor})
            await session.commit()
        return
    try:
        data = parse_actor(activity.object)
    except InvalidObject as error:
        raise Ignored(f"unusable actor: {error}") from None
    if data.uri != activity.actor:
        raise Ignored(f"the updated actor is {data.uri}, not {activity.actor}")
    try:
        await ActorResolver(inbound.context).store_actor(data)
    except ResolveError as error:
        raise Ignored(str(error)) from None


async def handle_delete(inbound: Inbound) -> None:
    activity = inbound.activity
    target = activity.object_id
    if target is None:
        raise Ignored("Delete of nothing")
    account = await inbound.known_actor()
    if target == activity.actor:
        if account is None:
            raise Ignored("an actor we never knew deleted itself")
        await RemoteAccountService(inbound.context).delete_account(account)
        return
    if not same_origin(target, activity.actor):
        raise Ignored(f"{activity.actor} cannot delete {target}, which is on another server")
    if account is None:
        account = await inbound.actor()
    if not await RemotePostService(inbound.context).delete(target, account):
        raise Ignored(f"{target} is not kept here")


async def store_fetched_post(inbound: Inbound, document: dict[str, Any]) -> Post:
    """A post fetched (or vouched for) outside a Create: kept for context, in nobody's timeline."""
    note = parse_post(document)
    if not same_origin(note.attributed_to, note.uri):
        raise Ignored(f"{note.uri} is attributed to an actor on another server")
    try:
        author = await ActorResolver(inbound.context).fetch_actor(note.attributed_to)
    except ResolveError as error:
        raise Ignored(f"the author of {note.uri} is not available: {error}") from None
    if author.is_local:
        raise Ignored(f"{note.uri} claims a local author")
    visibility = compute_visibility(note.to, note.cc, author.followers_url)
    return await RemotePostService(inbound.context).store(note, author, visibility, delivered=False)
