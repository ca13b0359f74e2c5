"""Row ids: never repeated within a process, increasing, and within a signed BIGINT."""

from __future__ import annotations

import threading
from itertools import pairwise

from app.models.base import IdGenerator, new_id, new_ids

THREADS = 4
IDS_PER_THREAD = 25_000


def test_ids_drawn_from_several_threads_at_once_are_distinct_and_increase_per_thread() -> None:
    # Thousands of ids per millisecond: 16 random bits alone would repeat, and would not increase.
    drawn: list[list[int]] = [[] for _ in range(THREADS)]
    start = threading.Barrier(THREADS)

    def draw(into: list[int]) -> None:
        start.wait()
        for _ in range(IDS_PER_THREAD):
            into.append(new_id())

    threads = [threading.Thread(target=draw, args=(into,)) for into in drawn]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    for ids in drawn:
        assert all(earlier < later for earlier, later in pairwise(ids))
    every_id = [id_ for ids in drawn for id_ in ids]
    assert len(set(every_id)) == THREADS * IDS_PER_THREAD


def test_a_clock_that_stands_still_or_steps_back_still_gives_increasing_ids() -> None:
    readings = iter([1000.0] * 1000 + [999.0] * 1000)
    ids = IdGenerator(clock=lambda: next(readings))
    drawn = [ids() for _ in range(2000)]
    assert drawn == sorted(set(drawn))


def test_ids_follow_the_clock_in_their_high_bits() -> None:
    ids = IdGenerator(clock=lambda: 1_700_000_000.0)
    assert ids() >> 16 == 1_700_000_000_000


def test_ids_fit_a_signed_bigint_for_millennia() -> None:
    year_6000 = (6000 - 1970) * 365.25 * 24 * 3600
    ids = IdGenerator(clock=lambda: year_6000)
    assert 0 < ids() < 2**63


def test_a_bulk_batch_is_distinct_and_increasing() -> None:
    batch = new_ids(10_000)
    assert batch == sorted(set(batch))
    assert new_id() > batch[-1]
