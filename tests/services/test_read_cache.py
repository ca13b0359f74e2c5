"""The short-lived read cache (the worker's, per processor): bounded, and no answer kept once stale."""

from __future__ import annotations

from app.services.read_cache import ReadCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_limit_holds_under_many_distinct_keys() -> None:
    cache = ReadCache(ttl=3600, limit=100, clock=Clock())
    for number in range(10_000):
        cache.put(("actor", number), number)
    assert len(cache) == 100
    # The most recent stay, the oldest went.
    assert cache.fresh(("actor", 9_999)) and not cache.fresh(("actor", 0))


async def test_stale_answers_leave_as_new_ones_come_not_only_at_the_limit() -> None:
    clock = Clock()
    cache = ReadCache(ttl=2.0, limit=10_000, clock=clock)
    for second in range(60):
        for number in range(100):
            cache.put(("actor", second, number), number)
        clock.now += 1
    # About two seconds' worth, not 6,000 answers of which all but 200 are stale.
    assert len(cache) <= 200
    assert cache.fresh(("actor", 59, 0))


async def test_a_read_after_expiry_reads_again_and_the_rest_are_kept() -> None:
    clock = Clock()
    cache = ReadCache(ttl=2.0, clock=clock)
    reads: list[str] = []

    async def load(key: str) -> str:
        reads.append(key)
        return key.upper()

    assert await cache.get("a", lambda: load("a")) == "A"
    clock.now += 1
    assert await cache.get("b", lambda: load("b")) == "B"
    assert await cache.get("a", lambda: load("a")) == "A"
    assert reads == ["a", "b"]
    clock.now += 1.5  # "a" (stored at 1000) is stale, "b" (stored at 1001) is not
    assert await cache.get("a", lambda: load("a")) == "A"
    assert await cache.get("b", lambda: load("b")) == "B"
    assert reads == ["a", "b", "a"]
