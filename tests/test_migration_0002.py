"""Migration 0002 on a database with reports: each keeps naming its target, and outlives it."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from app.config import Settings
from app.db import create_engine
from app.migrations import upgrade_database
from tests.test_migrations import empty_database  # noqa: F401  (the fixture, on this run's backend)

ACCOUNT = text(
    "INSERT INTO account (id, username, domain, actor_type, display_name, summary_html, uri, inbox_url,"
    " key_id, public_key_pem, manually_approves_followers, discoverable, indexable, fields, also_known_as,"
    " emojis, followers_count, following_count, posts_count, created_at, updated_at) VALUES (:id, :name,"
    " :domain, 'Person', '', '', :uri, :uri, :uri, '', false, false, false, '[]', '[]', '[]', 0, 0, 0,"
    " :now, :now)"
)
REPORT = text(
    "INSERT INTO report (id, reporter_account_id, target_account_id, post_ids, comment, forwarded, created_at)"
    " VALUES (:id, NULL, :target, '[]', :comment, false, :now)"
)


async def test_existing_reports_get_their_targets_name_and_survive_its_purge(
    empty_database: Settings,  # noqa: F811
) -> None:
    await upgrade_database(empty_database, "0001")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    engine = create_engine(empty_database)
    try:
        async with engine.begin() as connection:
            for id_, name, domain in ((1, "bob", "b.test"), (2, "alice", None)):
                uri = f"http://{domain or 'a.test'}/users/{name}"
                await connection.execute(
                    ACCOUNT, {"id": id_, "name": name, "domain": domain, "uri": uri, "now": now}
                )
                await connection.execute(
                    REPORT, {"id": 10 + id_, "target": id_, "comment": f"about {name}", "now": now}
                )
        await upgrade_database(empty_database)
        async with engine.begin() as connection:
            await connection.execute(text("DELETE FROM account WHERE id = 1"))
        async with engine.connect() as connection:
            rows = (
                await connection.execute(
                    text("SELECT id, target_account_id, target_uri, target_handle FROM report ORDER BY id")
                )
            ).all()
    finally:
        await engine.dispose()
    assert [tuple(row) for row in rows] == [
        (11, None, "http://b.test/users/bob", "bob@b.test"),
        (12, 2, "http://a.test/users/alice", "alice"),
    ]
