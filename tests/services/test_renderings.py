"""The kept renderings: a version, a time limit, the events, and no rendering kept that was begun
before its subject changed."""

from __future__ import annotations

from app.services import events
from app.services.renderings import Renderings


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_rendering_serves_only_its_own_version_and_only_until_it_expires() -> None:
    clock = Clock()
    kept = Renderings(ttl=60.0, clock=clock)
    kept.posts.put("status", 1, {"content": "v1"}, kept.posts.ticket(), "v1")
    assert kept.posts.get("status", 1, "v1") == {"content": "v1"}
    assert kept.posts.get("status", 1, "v2") is None
    # The other version dropped it.
    assert kept.posts.get("status", 1, "v1") is None
    kept.posts.put("status", 1, {"content": "v2"}, kept.posts.ticket(), "v2")
    clock.now += 61
    assert kept.posts.get("status", 1, "v2") is None


def test_events_drop_what_they_change_and_missed_events_drop_everything() -> None:
    kept = Renderings()
    for post_id in (1, 2):
        kept.posts.put("status", post_id, post_id, kept.posts.ticket())
    for account_id in (10, 11, 12, 13):
        kept.accounts.put("account", account_id, account_id, kept.accounts.ticket())
    kept.on_event(events.PostEdited(post_id=1, account_id=10))
    assert kept.posts.get("status", 1) is None and kept.posts.get("status", 2) == 2
    # The author's count of posts changed with it.
    assert kept.accounts.get("account", 10) is None
    kept.on_event(events.AccountChanged(account_id=11))
    kept.on_event(events.FollowsChanged(account_ids=(12,)))
    assert [kept.accounts.get("account", account_id) for account_id in (11, 12, 13)] == [None, None, 13]
    kept.on_event(events.EventsMissed())
    assert len(kept.posts) == len(kept.accounts) == 0


def test_a_rendering_begun_before_its_subject_changed_is_not_kept() -> None:
    kept = Renderings()
    ticket = kept.accounts.ticket()
    # The rows were read; then the account changed, and its event came before the rendering.
    kept.on_event(events.AccountChanged(account_id=5))
    kept.accounts.put("account", 5, "old profile", ticket)
    assert kept.accounts.get("account", 5) is None
    # Begun after: kept (and another subject's drop does not refuse it).
    ticket = kept.accounts.ticket()
    kept.on_event(events.AccountChanged(account_id=6))
    kept.accounts.put("account", 5, "new profile", ticket)
    assert kept.accounts.get("account", 5) == "new profile"


def test_least_recently_used_renderings_go_first_beyond_the_limit() -> None:
    kept = Renderings(limit=2)
    for post_id in (1, 2):
        kept.posts.put("status", post_id, post_id, kept.posts.ticket())
    assert kept.posts.get("status", 1) == 1
    kept.posts.put("status", 3, 3, kept.posts.ticket())
    assert kept.posts.get("status", 2) is None
    assert kept.posts.get("status", 1) == 1 and kept.posts.get("status", 3) == 3


def test_expired_renderings_leave_as_new_ones_come_not_only_at_the_limit() -> None:
    # A server reading a new page a second keeps about a minute of them, not the limit's worth.
    clock = Clock()
    kept = Renderings(ttl=60.0, clock=clock)
    for post_id in range(1000):
        kept.posts.put("status", post_id, post_id, kept.posts.ticket())
        clock.now += 1.0
    assert len(kept.posts) <= 61
    assert kept.posts.get("status", 999) == 999 and kept.posts.get("status", 900) is None
