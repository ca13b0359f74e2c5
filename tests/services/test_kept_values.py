"""The store behind the kept token resolutions and filters: bounded, expiring, and never keeping
a value read before a drop it may predate."""

from __future__ import annotations

from app.services.kept_values import KeptValues


def test_a_value_read_before_a_drop_is_not_kept_and_the_bound_and_ttl_hold() -> None:
    now = [0.0]
    kept: KeptValues[str, frozenset[int]] = KeptValues(ttl=30.0, limit=2, clock=lambda: now[0])
    ticket = kept.ticket()
    kept.forget(lambda _key, accounts: 7 in accounts)  # a change lands while "a" was being read
    kept.put("a", "stale", frozenset({7}), ticket)
    assert kept.get("a") is None

    for key in ("b", "c", "d"):
        kept.put(key, key, frozenset({1}), kept.ticket())
    assert len(kept) == 2 and kept.get("b") is None and kept.get("d") == "d"

    kept.forget(lambda _key, accounts: 1 in accounts)
    assert len(kept) == 0
    kept.put("e", "e", frozenset(), kept.ticket())
    now[0] = 30.0
    assert kept.get("e") is None
