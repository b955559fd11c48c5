"""Ids sort in creation order within a process (feeds page by id)."""

from __future__ import annotations

import re

from server.services.common import IdGenerator

ID = re.compile(r"[0-9a-f]{20}")


def test_ids_made_in_one_millisecond_sort_in_creation_order() -> None:
    make = IdGenerator(lambda: 1_763_800_000.123)
    ids = [make() for _ in range(5000)]
    assert all(ID.fullmatch(i) for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert all(i.startswith(f"{1_763_800_000_123:012x}") for i in ids[:100])


def test_ids_keep_their_order_when_the_clock_goes_back() -> None:
    times = iter([1000.0, 1000.5, 999.0, 999.0, 1000.5, 1001.0])
    make = IdGenerator(lambda: next(times))
    ids = [make() for _ in range(6)]
    assert ids == sorted(ids) and len(set(ids)) == 6
    assert int(ids[-1][:12], 16) == 1_001_000


def test_a_new_millisecond_starts_a_fresh_random_part() -> None:
    times = iter([1.0, 1.0, 2.0])
    make = IdGenerator(lambda: next(times))
    first, second, third = make(), make(), make()
    assert first < second < third
    assert int(third[:12], 16) == 2000
    assert int(third[12:], 16) < 2**31


def test_random_parts_differ_across_many_ids() -> None:
    """The random part comes from a pool of system randomness refilled as it runs out."""
    make = IdGenerator(iter(range(1, 1001)).__next__)
    parts = {make()[12:] for _ in range(1000)}
    assert len(parts) > 990
    assert all(int(p, 16) < 2**31 for p in parts)
