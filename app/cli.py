"""The `herold` command: runs the server and lets operators script against the same services the web UI uses."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from app import __version__
from app.config import ConfigurationError, Settings, load_settings
from app.context import AppContext, build_context
from app.db import EngineRole
from app.models import Account, ActorType, Role, User
from app.ops.logs import configure_logging
from app.ops.memory_trace import start_memory_trace
from app.ops.metrics_registry import enable_multiprocess_metrics
from app.runtime import run_event_loop, tune_garbage_collection, tune_memory_allocator
from app.services.accounts import AccountError, AccountService
from app.services.errors import ServiceError

Handler = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]


class CommandError(Exception):
    """A command that cannot be carried out; printed as one line, exit status 1."""


async def require_schema(settings: Settings) -> None:
    """Refuse to work on a database `herold migrate` has not set up, with one line instead of a traceback."""
    from app.migrations import current_revision

    try:
        revision = await current_revision(settings)
    except Exception as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CommandError(f"cannot open the database {_redacted(settings.database_url)}: {reason}") from None
    if revision is None:
        raise CommandError(
            f"the database {_redacted(settings.database_url)} has no schema yet: run `herold migrate` first"
        )


async def _with_context(
    settings: Settings, work: Callable[[AppContext], Awaitable[int]], role: EngineRole = "command"
) -> int:
    await require_schema(settings)
    context = build_context(settings, role=role)
    try:
        # What a command changes reaches the running server's processes (their caches, their
        # worker) at once; a worker also hears what they queue.
        await context.open_channel("worker" if role == "worker" else "command")
        return await work(context)
    finally:
        await context.aclose()


async def cmd_migrate(_args: argparse.Namespace, settings: Settings) -> int:
    from app.migrations import upgrade_database

    await upgrade_database(settings)
    print(f"database is up to date ({_redacted(settings.database_url)})")
    return 0


async def cmd_accounts_create(args: argparse.Namespace, settings: Settings) -> int:
    async def work(context: AppContext) -> int:
        created = await AccountService(context).create_local_account(
            args.name,
            organization=args.organization,
            role=Role(args.role),
            password=args.password,
            display_name=args.display_name,
            email=args.email,
        )
        account = created.account
        handle = f"@{account.handle(settings.local_domain)}"
        if args.organization:
            print(f"created organisation account {handle} at {account.uri}")
            print(
                "it has no password: staff post as it from their own logins once an administrator "
                "lets them (Admin → Team), or with `herold post "
                f"{account.username} TEXT --by NAME`"
            )
            return 0
        print(f"created account {handle} ({created.user.role}) at {account.uri}")
        if created.password_generated:
            print(f"password: {created.password}")
        return 0

    return await _with_context(settings, work)


async def cmd_accounts_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(context: AppContext) -> int:
        rows = await AccountService(context).list_local_accounts()
        if args.json:
            print(
                json.dumps(
                    [
                        {
                            "username": row.account.username,
                            "handle": f"@{row.account.handle(settings.local_domain)}",
                            "type": row.account.actor_type,
                            "role": (
                                None
                                if row.user is None or row.account.actor_type == ActorType.ORGANIZATION
                                else row.user.role
                            ),
                            "uri": row.account.uri,
                            "disabled": bool(row.user and row.user.disabled_at),
                        }
                        for row in rows
                    ],
                    indent=2,
                )
            )
            return 0
        if not rows:
            print("no accounts yet: create one with `herold accounts create NAME --role admin`")
        for row in rows:
            role = row.user.role if row.user else "-"
            if row.account.actor_type == ActorType.ORGANIZATION:
                role = "organisation"
            print(f"@{row.account.handle(settings.local_domain):40} {row.account.actor_type:13} {role}")
        return 0

    return await _with_context(settings, work)


async def cmd_accounts_password(args: argparse.Namespace, settings: Settings) -> int:
    async def work(context: AppContext) -> int:
        password = await AccountService(context).set_password(
            local_username(settings, args.name), args.password
        )
        if args.password is None:
            print(f"password: {password}")
        else:
            print("password changed")
        return 0

    return await _with_context(settings, work)


async def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    from app.ops.backup import BackupError, backup

    await require_schema(settings)
    try:
        report = await backup(settings, Path(args.directory))
    except BackupError as error:
        raise CommandError(str(error)) from None
    for note in report.notes:
        print(f"note: {note}")
    print(f"backed up the {report.database} database, {', '.join(report.files)} to {report.directory}")
    return 0


async def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    from app.ops.backup import BackupError, restore

    try:
        report = await restore(settings, Path(args.directory))
    except BackupError as error:
        raise CommandError(str(error)) from None
    print(f"restored {', '.join(report.files)} from {report.directory}; run `herold migrate` before serving")
    return 0


async def _person(context: AppContext, name: str) -> tuple[Account, User]:
    """The login of the person `name` names: not an organisation, not disabled."""
    login = await AccountService(context).local_login(local_username(context.settings, name))
    if login is None:
        raise CommandError(f"there is no local account named {name!r}")
    account, user = login
    if account.actor_type == ActorType.ORGANIZATION:
        raise CommandError(
            f"@{account.username} is an organisation account: name the staff member who acts for it"
        )
    if user.disabled_at is not None or account.suspended_at is not None:
        raise CommandError(f"@{account.username}'s login is disabled")
    return account, user


async def cmd_tokens_create(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.oauth import OAuthService
    from app.services.staff import StaffService

    async def work(context: AppContext) -> int:
        account, user = await _person(context, args.name)
        acting = await _local_account(context, args.acting_as) if args.acting_as else account
        if not await StaffService(context).can_act_as(user, acting.id):
            raise CommandError(f"@{account.username} may not post as @{acting.username}")
        token = await OAuthService(context).issue_personal_token(
            user, scopes=args.scopes, app_name=args.app, acting_as=acting
        )
        # The token alone on stdout, for scripts: TOKEN=$(herold tokens create alice).
        print(token)
        return 0

    return await _with_context(settings, work)


async def cmd_accounts_allow_posting_as(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.staff import StaffService

    async def work(context: AppContext) -> int:
        account, user = await _person(context, args.name)
        organization = await _local_account(context, args.organization)
        staff = StaffService(context)
        if args.revoke:
            await staff.revoke_delegate(organization.id, user.id, by=None)
            print(f"@{account.username} may no longer post as @{organization.username}")
        else:
            await staff.grant_delegate(organization.id, user.id, by=None)
            print(f"@{account.username} may post as @{organization.username}")
        return 0

    return await _with_context(settings, work)


async def cmd_accounts_approve(args: argparse.Namespace, settings: Settings) -> int:
    """What Admin → Team's Approve and Reject buttons do, for a sign-up waiting (REGISTRATIONS=approval)."""
    from app.services.registrations import RegistrationService

    async def work(context: AppContext) -> int:
        name = local_username(context.settings, args.name).lower()
        registrations = RegistrationService(context)
        waiting = [item for item in await registrations.pending() if item.account.username == name]
        if not waiting:
            raise CommandError(f"no sign-up named {args.name!r} is waiting for approval")
        if args.reject:
            await registrations.reject(waiting[0].user.id, by=None)
            print(f"the sign-up of @{name} was rejected and deleted")
        else:
            await registrations.approve(waiting[0].user.id, by=None)
            print(f"@{name} may log in now")
        return 0

    return await _with_context(settings, work)


async def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    if settings.malloc_tuning:
        tune_memory_allocator()
    if args.child == "web":
        return await _serve_web_child(args, settings)
    if args.child == "worker":
        return await _serve_worker_child(args, settings)
    await require_schema(settings)
    if args.host:
        settings.host = args.host
    if args.port:
        settings.port = args.port
    if settings.web_process_count > 1:
        return await _supervise(settings)
    import uvicorn

    from app.main import create_app

    # WEB_PROCESSES=1: one process answers and runs the embedded worker beside the requests.
    start_memory_trace("web")
    enable_multiprocess_metrics(settings.data_dir)
    app = create_app(settings)
    tune_garbage_collection()
    await uvicorn.Server(_uvicorn_config(app, settings)).serve()
    return 0


def _uvicorn_config(app: Any, settings: Settings) -> Any:
    import uvicorn

    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        # Logging is configured once for the process (LOG_FORMAT); each request's line comes from
        # RequestLogMiddleware, with its request id.
        log_config=None,
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1,::1",
        server_header=False,
        ws_per_message_deflate=settings.websocket_compression,
    )


async def _supervise(settings: Settings) -> int:
    """WEB_PROCESSES web processes on one socket, and the worker in a process of its own (app.ops.supervisor)."""
    from app.ops.first_start import prepare_instance
    from app.ops.supervisor import Supervisor, SupervisorFailed

    # Once, before the children start: they would otherwise race to create the instance actor,
    # and each print a setup token of its own.
    context = build_context(settings, role="command")
    try:
        await prepare_instance(context)
    finally:
        await context.aclose()
    config = _uvicorn_config(None, settings)
    # Bound and listening here, so that connections wait in the backlog while the children start.
    listening = config.bind_socket()
    listening.listen(config.backlog)
    supervisor = Supervisor(
        listening,
        web_processes=settings.web_process_count,
        with_worker=settings.embedded_worker,
        setup_token=context.setup_token,
    )
    try:
        await supervisor.run()
    except SupervisorFailed as failure:
        raise CommandError(str(failure)) from None
    finally:
        listening.close()
    return 0


async def _serve_web_child(args: argparse.Namespace, settings: Settings) -> int:
    """One of the supervisor's web processes: answers on the socket the supervisor bound."""
    import socket

    import uvicorn

    from app.main import create_app
    from app.ops.supervisor import SETUP_TOKEN_ENV, watch_lifeline

    start_memory_trace("web")
    enable_multiprocess_metrics(settings.data_dir)
    # The worker runs in a process of its own.
    settings.embedded_worker = False
    app = create_app(settings, setup_token=os.environ.get(SETUP_TOKEN_ENV) or None)
    server = uvicorn.Server(_uvicorn_config(app, settings))

    def stop() -> None:
        server.should_exit = True

    watch_lifeline(args.lifeline_fd, stop)
    tune_garbage_collection()
    await server.serve(sockets=[socket.socket(fileno=args.listen_fd)])
    return 0


async def _serve_worker_child(args: argparse.Namespace, settings: Settings) -> int:
    """The supervisor's worker process: `herold worker`, stopped with the supervisor."""
    return await _run_worker(settings, lifeline=args.lifeline_fd)


async def cmd_worker(_args: argparse.Namespace, settings: Settings) -> int:
    if settings.malloc_tuning:
        tune_memory_allocator()
    return await _run_worker(settings)


async def _run_worker(settings: Settings, lifeline: int | None = None) -> int:
    from app.federation.worker import build_worker
    from app.ops.supervisor import watch_lifeline

    async def work(context: AppContext) -> int:
        tune_garbage_collection()
        # SIGTERM (systemd's stop) ends the worker cleanly: jobs in hand are cancelled (their
        # leases run out for the next worker) and its heartbeat row is removed. The worker
        # process of `herold serve` also stops on SIGINT and when its supervisor is gone.
        main = asyncio.current_task()
        assert main is not None
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, main.cancel)
        if lifeline is not None:
            loop.add_signal_handler(signal.SIGINT, main.cancel)
            watch_lifeline(lifeline, lambda: _cancel(main))
        try:
            await build_worker(context).run()
        except asyncio.CancelledError:
            return 0
        return 0

    start_memory_trace("worker")
    enable_multiprocess_metrics(settings.data_dir)
    return await _with_context(settings, work, role="worker")


def _cancel(task: asyncio.Task[Any]) -> None:
    task.cancel()


async def cmd_post(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.posting import PostingError, PostingService

    async def work(context: AppContext) -> int:
        posting = PostingService(context)
        try:
            author = await posting.local_account(local_username(settings, args.name))
            by = local_username(settings, args.by) if args.by else None
            writer = await _writer(context, author, by)
            post = await posting.create(
                author,
                args.text,
                visibility=args.visibility,
                spoiler_text=args.cw,
                sensitive=args.sensitive,
                language=args.language,
                in_reply_to=args.reply_to,
                written_by_user_id=writer.id,
            )
        except PostingError as error:
            raise CommandError(str(error)) from None
        # The id is the last line, so scripts can take it with `tail -n 1`.
        print(post.uri)
        return 0

    return await _with_context(settings, work)


async def _writer(context: AppContext, author: Account, by: str | None) -> User:
    """The staff member who writes a post as `author`: `--by`, required for an organisation account."""
    from app.services.staff import StaffService

    if by is None:
        if author.actor_type == ActorType.ORGANIZATION:
            raise CommandError(
                f"@{author.username} is an organisation account: say who writes the post with --by NAME"
            )
        by = author.username
    accounts = AccountService(context)
    try:
        login = await accounts.local_login(by)
    except AccountError as error:
        raise CommandError(str(error)) from None
    if login is None:
        raise CommandError(f"there is no local account named {by!r}")
    writer_account, writer = login
    if writer_account.actor_type == ActorType.ORGANIZATION:
        raise CommandError(f"--by names the person who writes; @{writer_account.username} is an organisation")
    if writer.disabled_at is not None or writer_account.suspended_at is not None:
        raise CommandError(f"@{writer_account.username}'s login is disabled")
    if not await StaffService(context).can_act_as(writer, author.id):
        raise CommandError(f"@{writer_account.username} may not post as @{author.username}")
    return writer


async def cmd_delete_post(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.posting import PostingError, PostingService

    async def work(context: AppContext) -> int:
        posting = PostingService(context)
        try:
            post = await posting.delete(
                await posting.local_account(local_username(settings, args.name)), args.post
            )
        except PostingError as error:
            raise CommandError(str(error)) from None
        print(f"deleted {post.uri}")
        return 0

    return await _with_context(settings, work)


async def cmd_follow(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.following import FollowingError, FollowingService
    from app.services.posting import PostingError, PostingService

    async def work(context: AppContext) -> int:
        try:
            follower = await PostingService(context).local_account(local_username(settings, args.name))
            outcome = await FollowingService(context).follow(follower, account_target(settings, args.target))
        except (FollowingError, PostingError) as error:
            raise CommandError(str(error)) from None
        handle = f"@{outcome.target.handle(settings.local_domain)}"
        if outcome.pending:
            print(f"follow request sent to {handle}; pending until accepted")
        else:
            print(f"following {handle}")
        return 0

    return await _with_context(settings, work)


async def cmd_unfollow(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.following import FollowingError, FollowingService
    from app.services.posting import PostingError, PostingService

    async def work(context: AppContext) -> int:
        try:
            follower = await PostingService(context).local_account(local_username(settings, args.name))
            unfollowed = await FollowingService(context).unfollow(
                follower, account_target(settings, args.target)
            )
        except (FollowingError, PostingError) as error:
            raise CommandError(str(error)) from None
        if unfollowed is None:
            raise CommandError(f"@{follower.username} does not follow {args.target}")
        print(f"unfollowed @{unfollowed.handle(settings.local_domain)}")
        return 0

    return await _with_context(settings, work)


def local_username(settings: Settings, name: str) -> str:
    """The user name of the local account `name` gives: `alice`, `@alice` or `@alice@LOCAL_DOMAIN`.

    Every argument of the CLI that names an account of this server goes through here."""
    from app.activitypub.resolver import ResolveError, parse_account_name

    try:
        username, domain = parse_account_name(name, (settings.local_domain, settings.web_domain))
    except ResolveError as error:
        raise CommandError(str(error)) from None
    if domain is not None:
        raise CommandError(f"{name} is an account of {domain}, not of this server ({settings.local_domain})")
    return username


def account_target(settings: Settings, target: str) -> str:
    """The account (here or elsewhere) `target` names, as the services take it: an actor URL
    unchanged, a handle as user@domain, a short one (`alice`, `@alice`) on LOCAL_DOMAIN."""
    from app.activitypub.resolver import ResolveError, parse_account_name

    if target.strip().startswith(("http://", "https://")):
        return target.strip()
    try:
        username, domain = parse_account_name(target, (settings.local_domain, settings.web_domain))
    except ResolveError as error:
        raise CommandError(str(error)) from None
    return f"{username}@{domain or settings.local_domain}"


async def _local_account(context: AppContext, name: str) -> Account:
    accounts = AccountService(context)
    account = await accounts.get_local_account(local_username(context.settings, name).lower())
    if account is None:
        raise CommandError(f"there is no local account named {name!r}")
    return account


async def cmd_notifications(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.html_sanitizer import html_to_plain_text
    from app.services.notifications import NotificationService

    async def work(context: AppContext) -> int:
        account = await _local_account(context, args.name)
        views = await NotificationService(context).for_account(account, limit=args.limit)
        if args.json:
            print(json.dumps([view.to_dict() for view in views], indent=2, ensure_ascii=False))
            return 0
        for view in views:
            about = f": {html_to_plain_text(view.status.post.content_html)[:80]}" if view.status else ""
            when = view.notification.created_at.strftime("%Y-%m-%d %H:%M")
            print(f"{when} {view.notification.type:<15} @{view.account.acct}{about}")
        return 0

    return await _with_context(settings, work)


async def cmd_timeline(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.html_sanitizer import html_to_plain_text
    from app.services.timelines import TimelineService

    async def work(context: AppContext) -> int:
        account = await _local_account(context, args.name)
        posts = await TimelineService(context).home(account, limit=args.limit)
        if args.json:
            print(json.dumps([post.to_dict() for post in posts], indent=2, ensure_ascii=False))
            return 0
        for summary in posts:
            shown = summary.reblog or summary
            boosted = f" (boosted by @{summary.account.acct})" if summary.reblog else ""
            text = html_to_plain_text(shown.post.content_html).replace("\n", " ")[:100]
            print(f"@{shown.account.acct}{boosted}: {text}")
        return 0

    return await _with_context(settings, work)


async def cmd_domains_block(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.domain_blocks import DomainBlockError, DomainBlockService

    async def work(context: AppContext) -> int:
        try:
            block, effects = await DomainBlockService(context).block(
                args.domain,
                severity=args.severity,
                reject_media=args.reject_media,
                reject_reports=args.reject_reports,
                public_comment=args.public_comment,
                private_comment=args.private_comment,
            )
        except DomainBlockError as error:
            raise CommandError(str(error)) from None
        print(f"{block.domain}: {block.severity}")
        if effects.accounts_purged or effects.follows_severed:
            print(
                f"severed {effects.follows_severed} follows, purged {effects.accounts_purged} accounts, "
                f"dropped {effects.deliveries_dropped} waiting deliveries"
            )
        return 0

    return await _with_context(settings, work)


async def cmd_domains_unblock(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.domain_blocks import DomainBlockError, DomainBlockService

    async def work(context: AppContext) -> int:
        try:
            removed = await DomainBlockService(context).unblock(args.domain)
        except DomainBlockError as error:
            raise CommandError(str(error)) from None
        if not removed:
            raise CommandError(f"{args.domain} is not blocked")
        print(f"unblocked {args.domain}")
        return 0

    return await _with_context(settings, work)


async def cmd_media_usage(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.remote_media import RemoteMediaCache

    async def work(context: AppContext) -> int:
        usage = await RemoteMediaCache(context).usage()
        if args.json:
            print(json.dumps(usage, indent=2))
            return 0
        for name, found in usage.items():
            if isinstance(found, dict):
                print(f"{name:<18} {found['files']:>8} files {found['bytes'] / 1_048_576:>10.1f} MB")
        print(f"{'remote, not cached':<18} {usage['remote_not_cached']:>8} attachments")
        return 0

    return await _with_context(settings, work)


async def cmd_media_remove(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.remote_emojis import RemoteEmojiCache
    from app.services.remote_media import RemoteMediaCache

    async def work(context: AppContext) -> int:
        cache = RemoteMediaCache(context)
        attachments = await cache.remove_older_than(args.days)
        print(f"removed {attachments} cached remote attachments older than {args.days} days")
        emojis = await RemoteEmojiCache(context).remove_older_than(args.days)
        print(f"removed {emojis} cached remote custom emoji older than {args.days} days")
        if args.avatars or args.headers:
            pictures = await cache.remove_pictures_older_than(
                args.days, avatars=args.avatars, headers=args.headers
            )
            print(f"removed {pictures} cached remote profile pictures older than {args.days} days")
        return 0

    return await _with_context(settings, work)


async def cmd_domains_list(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.domain_blocks import DomainBlockService, domain_label, unicode_domain

    async def work(context: AppContext) -> int:
        service = DomainBlockService(context)
        blocks = await service.blocks()
        allowed = await service.allowed()
        if args.json:
            print(
                json.dumps(
                    {
                        "blocks": [
                            {
                                "domain": block.domain,
                                "unicode": unicode_domain(block.domain) or block.domain,
                                "severity": block.severity,
                                "reject_media": block.reject_media,
                                "reject_reports": block.reject_reports,
                                "public_comment": block.public_comment,
                                "private_comment": block.private_comment,
                            }
                            for block in blocks
                        ],
                        "allowed": [row.domain for row in allowed],
                        "limited_federation": settings.limited_federation,
                    },
                    indent=2,
                    ensure_ascii=False,
                )
            )
            return 0
        if not blocks:
            print("no domain blocks")
        for block in blocks:
            flags = [
                name
                for name, on in (
                    ("reject-media", block.reject_media),
                    ("reject-reports", block.reject_reports),
                )
                if on
            ]
            comment = f"  {block.public_comment}" if block.public_comment else ""
            print(f"{domain_label(block.domain):40} {block.severity:8} {' '.join(flags)}{comment}".rstrip())
        if settings.limited_federation or allowed:
            mode = "on" if settings.limited_federation else "off"
            print(
                f"allowlist (limited federation {mode}): {', '.join(domain_label(row.domain) for row in allowed) or '-'}"
            )
        return 0

    return await _with_context(settings, work)


async def cmd_domains_import(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.domain_blocks import DomainBlockService

    async def work(context: AppContext) -> int:
        try:
            text = await asyncio.to_thread(Path(args.file).read_text, encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"cannot read {args.file}: {error}") from None
        result = await DomainBlockService(context).import_csv(text)
        print(f"imported {result.imported} domain blocks")
        for reason in result.skipped:
            print(f"skipped {reason}")
        return 0

    return await _with_context(settings, work)


async def cmd_domains_export(_args: argparse.Namespace, settings: Settings) -> int:
    from app.services.domain_blocks import DomainBlockService

    async def work(context: AppContext) -> int:
        sys.stdout.write(await DomainBlockService(context).export_csv())
        return 0

    return await _with_context(settings, work)


async def cmd_domains_allow(args: argparse.Namespace, settings: Settings) -> int:
    from app.services.domain_blocks import DomainBlockError, DomainBlockService

    async def work(context: AppContext) -> int:
        service = DomainBlockService(context)
        try:
            changed = await (service.disallow(args.domain) if args.remove else service.allow(args.domain))
        except DomainBlockError as error:
            raise CommandError(str(error)) from None
        verb = "removed from" if args.remove else "added to"
        print(f"{args.domain} {verb} the allowlist" if changed else "nothing to change")
        if not settings.limited_federation:
            print("note: LIMITED_FEDERATION is off, so the allowlist is not enforced")
        return 0

    return await _with_context(settings, work)


def _failure(error: Exception, settings: Settings | None) -> str:
    from sqlalchemy.exc import DBAPIError

    if isinstance(error, DBAPIError):
        reason = str(error.orig or error).strip().splitlines()[0]
        where = _redacted(settings.database_url) if settings is not None else "the database"
        return f"the database {where} failed: {reason}"
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    if isinstance(error, ConnectionError) and settings is not None:
        return f"cannot reach the database {_redacted(settings.database_url)}: {reason}"
    return reason


def _redacted(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://…@{rest.rsplit('@', 1)[1]}"
    return url


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="herold", description="Herold, an ActivityPub server for organisations."
    )
    parser.add_argument("--version", action="version", version=f"herold {__version__}")
    parser.add_argument(
        "--verbose", "-v", action="store_true", help="also log what the database migrations do"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve", help="run the web server (with the background worker unless disabled)"
    )
    serve.add_argument("--host", help="address to listen on (default: HOST)")
    serve.add_argument("--port", type=int, help="port to listen on (default: PORT)")
    # Internal: how the supervisor (app.ops.supervisor) starts its children.
    serve.add_argument("--child", choices=["web", "worker"], help=argparse.SUPPRESS)
    serve.add_argument("--listen-fd", type=int, help=argparse.SUPPRESS)
    serve.add_argument("--lifeline-fd", type=int, help=argparse.SUPPRESS)
    serve.set_defaults(handler=cmd_serve)

    worker = commands.add_parser(
        "worker", help="run only the background worker (deliveries, inbox processing)"
    )
    worker.set_defaults(handler=cmd_worker)

    post = commands.add_parser("post", help="publish a post as a local account; prints its id last")
    post.add_argument("name", help="the local account that posts")
    post.add_argument("text", help="plain text; @user@domain mentions, #hashtags and links are recognised")
    post.add_argument("--visibility", choices=["public", "unlisted", "followers", "direct"], default="public")
    post.add_argument("--cw", help="content warning shown before the text")
    post.add_argument("--sensitive", action="store_true", help="mark the post sensitive")
    post.add_argument("--language", help="language code of the text, such as en or de")
    post.add_argument("--reply-to", metavar="URL", help="the post (its id or web address) this replies to")
    post.add_argument(
        "--by",
        metavar="NAME",
        help="the staff member who writes it (required for an organisation account; they must be allowed "
        "to post as it); the post records who wrote it",
    )
    post.set_defaults(handler=cmd_post)

    delete_post = commands.add_parser("delete-post", help="delete a post of a local account")
    delete_post.add_argument("name", help="the local account whose post it is")
    delete_post.add_argument("post", help="the post's id URL, web address or number")
    delete_post.set_defaults(handler=cmd_delete_post)

    follow = commands.add_parser("follow", help="follow an account here or elsewhere")
    follow.add_argument("name", help="the local account that follows")
    follow.add_argument("target", metavar="HANDLE_OR_URL", help="@user@domain or the account's URL")
    follow.set_defaults(handler=cmd_follow)

    unfollow = commands.add_parser("unfollow", help="stop following an account")
    unfollow.add_argument("name", help="the local account that follows")
    unfollow.add_argument("target", metavar="HANDLE_OR_URL", help="@user@domain or the account's URL")
    unfollow.set_defaults(handler=cmd_unfollow)

    notifications = commands.add_parser("notifications", help="a local account's notifications, newest first")
    notifications.add_argument("name", help="the local account")
    notifications.add_argument("--json", action="store_true", help="print a JSON array")
    notifications.add_argument("--limit", type=int, default=40, help="how many (default 40, at most 200)")
    notifications.set_defaults(handler=cmd_notifications)

    timeline = commands.add_parser("timeline", help="a local account's home timeline, newest first")
    timeline.add_argument("name", help="the local account")
    timeline.add_argument("--json", action="store_true", help="print a JSON array")
    timeline.add_argument("--limit", type=int, default=40, help="how many (default 40, at most 200)")
    timeline.set_defaults(handler=cmd_timeline)

    migrate = commands.add_parser("migrate", help="create or upgrade the database schema")
    migrate.set_defaults(handler=cmd_migrate)

    backup = commands.add_parser(
        "backup", help="copy the database, secret key and media into DIR (safe while the server runs)"
    )
    backup.add_argument("directory", metavar="DIR", help="a new or empty directory")
    backup.set_defaults(handler=cmd_backup)
    restore = commands.add_parser("restore", help="put a backup back onto an empty DATA_DIR and database")
    restore.add_argument("directory", metavar="DIR", help="a directory made by `herold backup`")
    restore.set_defaults(handler=cmd_restore)

    domains = commands.add_parser("domains", help="block, silence or allow whole servers").add_subparsers(
        dest="domains_command", required=True, metavar="ACTION"
    )
    block = domains.add_parser("block", help="block a domain and all its subdomains, on any port")
    block.add_argument("domain")
    block.add_argument("--severity", choices=["silence", "suspend"], default="suspend")
    block.add_argument(
        "--reject-media",
        action="store_true",
        help="pages embed no avatar or attachment from it (remote files are linked, never copied)",
    )
    block.add_argument("--reject-reports", action="store_true", help="ignore reports (Flag) from it")
    block.add_argument("--public-comment", help="the reason shown on /about")
    block.add_argument("--private-comment", help="a note for the team only")
    block.set_defaults(handler=cmd_domains_block)
    unblock = domains.add_parser("unblock", help="lift a domain block")
    unblock.add_argument("domain")
    unblock.set_defaults(handler=cmd_domains_unblock)
    domains_list = domains.add_parser("list", help="list domain blocks and the allowlist")
    domains_list.add_argument("--json", action="store_true", help="print JSON")
    domains_list.set_defaults(handler=cmd_domains_list)
    domains_import = domains.add_parser("import", help="import blocks from Mastodon's CSV export")
    domains_import.add_argument("file")
    domains_import.set_defaults(handler=cmd_domains_import)
    domains_export = domains.add_parser("export", help="print the blocks as Mastodon's CSV")
    domains_export.set_defaults(handler=cmd_domains_export)
    allow = domains.add_parser("allow", help="put a domain on the allowlist (LIMITED_FEDERATION)")
    allow.add_argument("domain")
    allow.add_argument("--remove", action="store_true", help="take it off the allowlist")
    allow.set_defaults(handler=cmd_domains_allow)

    media = commands.add_parser("media", help="disk used by media; drop cached remote copies").add_subparsers(
        dest="media_command", required=True, metavar="ACTION"
    )
    media_usage = media.add_parser("usage", help="files and bytes of uploads, cached remote media, pictures")
    media_usage.add_argument("--json", action="store_true", help="print JSON")
    media_usage.set_defaults(handler=cmd_media_usage)
    media_remove = media.add_parser(
        "remove",
        help="drop cached copies of remote attachments and custom emoji older than --days (like tootctl media remove)",
    )
    media_remove.add_argument(
        "--days",
        type=int,
        default=Settings.model_fields["media_cache_retention_days"].default,
        help="age in days (default: %(default)s, MEDIA_CACHE_RETENTION_DAYS's default)",
    )
    media_remove.add_argument("--avatars", action="store_true", help="also remote accounts' avatars")
    media_remove.add_argument("--headers", action="store_true", help="also remote accounts' headers")
    media_remove.set_defaults(handler=cmd_media_remove)

    accounts = commands.add_parser("accounts", help="manage local accounts").add_subparsers(
        dest="accounts_command", required=True, metavar="ACTION"
    )
    create = accounts.add_parser("create", help="create a staff or organisation account")
    create.add_argument("name", help="user name: the part before @ in @name@LOCAL_DOMAIN")
    create.add_argument("--organization", "--organisation", action="store_true", help="an Organization actor")
    create.add_argument("--role", choices=[role.value for role in Role], default=Role.STAFF.value)
    create.add_argument("--password", help="login password (a generated one is printed when omitted)")
    create.add_argument("--display-name", help="name shown on the profile (default: the user name)")
    create.add_argument("--email", help="e-mail address of the login")
    create.set_defaults(handler=cmd_accounts_create)

    listing = accounts.add_parser("list", help="list local accounts")
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    listing.set_defaults(handler=cmd_accounts_list)

    password = accounts.add_parser("password", help="set a new login password (generated when omitted)")
    password.add_argument("name")
    password.add_argument("--password", help="the new password")
    password.set_defaults(handler=cmd_accounts_password)

    posting_as = accounts.add_parser(
        "allow-posting-as", help="let a staff member post as an organisation account"
    )
    posting_as.add_argument("name", help="the staff member")
    posting_as.add_argument("organization", metavar="ORG", help="the organisation account")
    posting_as.add_argument("--revoke", action="store_true", help="take the permission away")
    posting_as.set_defaults(handler=cmd_accounts_allow_posting_as)

    approve = accounts.add_parser("approve", help="approve a sign-up waiting for approval (or --reject it)")
    approve.add_argument("name", help="the user name it signed up with")
    approve.add_argument("--reject", action="store_true", help="reject and delete the sign-up instead")
    approve.set_defaults(handler=cmd_accounts_approve)

    tokens = commands.add_parser("tokens", help="client API access tokens").add_subparsers(
        dest="tokens_command", required=True, metavar="ACTION"
    )
    token_create = tokens.add_parser("create", help="make an access token; prints it alone on stdout")
    token_create.add_argument("name", help="the staff member the token belongs to")
    token_create.add_argument(
        "--scopes", default="read write follow push", help='default: "read write follow push"'
    )
    token_create.add_argument(
        "--app", default="herold tokens", help="the application name it is listed under"
    )
    token_create.add_argument(
        "--as", dest="acting_as", metavar="ORG", help="act as this organisation account"
    )
    token_create.set_defaults(handler=cmd_tokens_create)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from sqlalchemy.exc import DBAPIError

    args = build_parser().parse_args(argv)
    # Until the settings say otherwise (LOG_FORMAT, LOG_LEVEL).
    configure_logging("text", "info")
    # Alembic tells every step of every check at INFO: noise on each command, unless asked for.
    logging.getLogger("alembic").setLevel(logging.INFO if args.verbose else logging.WARNING)
    settings: Settings | None = None
    try:
        settings = load_settings()
        configure_logging(settings.log_format, settings.log_level)
        handler: Handler = args.handler
        return run_event_loop(handler(args, settings), settings.event_loop)
    except (ConfigurationError, AccountError, CommandError, ServiceError) as error:
        print(f"herold: {error}", file=sys.stderr)
        return 1 if not isinstance(error, ConfigurationError) else 2
    except (DBAPIError, OSError) as error:
        # The database or the disk failed (full, gone, locked): one line, not a traceback.
        print(f"herold: {_failure(error, settings)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
