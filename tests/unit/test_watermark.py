"""The watermark merge: one order for events arriving from several shards."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.watermark import Stamp, WatermarkMerge


def merge_of(*shards: str) -> WatermarkMerge[str]:
    merge: WatermarkMerge[str] = WatermarkMerge()
    for shard in shards:
        merge.add_shard(shard)
    return merge


def test_an_event_waits_until_every_shard_has_passed_it() -> None:
    merge = merge_of("a", "b")
    merge.offer("a", 100, Stamp(100, "user:1"), "a100")
    assert merge.release() == []  # b said nothing yet
    merge.tick("b", 150)
    assert merge.release() == []  # a may still run another event in µs 100
    merge.tick("a", 101)
    assert merge.release() == ["a100"]
    assert merge.held == 0


def test_a_later_event_that_arrives_first_is_delivered_after_the_earlier_one() -> None:
    merge = merge_of("a", "b")
    merge.offer("b", 205, Stamp(205, "user:2"), "b205")
    merge.offer("a", 200, Stamp(200, "user:1"), "a200")
    merge.tick("a", 300)
    merge.tick("b", 300)
    assert merge.release() == ["a200", "b205"]


def test_ties_in_one_microsecond_follow_channel_then_index() -> None:
    merge = merge_of("a")
    merge.offer("a", 100, Stamp(100, "user:z", 0), "z0")
    merge.offer("a", 100, Stamp(100, "user:b", 1), "b1")
    merge.offer("a", 100, Stamp(100, "user:b", 0), "b0")
    assert merge.release() == []
    merge.tick("a", 101)
    assert merge.release() == ["b0", "b1", "z0"]


def test_a_stamp_ahead_of_its_clock_waits_for_the_clock() -> None:
    merge = merge_of("a")
    merge.offer("a", 100, Stamp(105, "user:1"), "ahead")
    merge.tick("a", 104)
    assert merge.release() == []
    merge.tick("a", 106)
    assert merge.release() == ["ahead"]


def test_removing_a_shard_stops_waiting_for_it_and_a_new_one_holds_everything() -> None:
    merge = merge_of("a", "b")
    merge.offer("a", 10, Stamp(10, "c"), "x")
    merge.tick("a", 20)
    assert merge.release() == []
    merge.remove_shard("b")
    assert merge.release() == ["x"]
    merge.add_shard("c")
    merge.offer("a", 30, Stamp(30, "c"), "y")
    merge.tick("a", 40)
    assert merge.release() == [] and merge.watermark == -1


def test_clocks_never_move_a_watermark_back() -> None:
    merge = merge_of("a")
    merge.tick("a", 50)
    merge.tick("a", 40)
    assert merge.watermark == 49


@pytest.mark.parametrize("raw", ["", "12", "12-", "-3", "a-1", "1-b", "1-2-3"])
def test_stamps_parse_only_stream_ids(raw: str) -> None:
    with pytest.raises(ValueError):
        Stamp.parse("ch", raw)


def test_stamp_parse() -> None:
    assert Stamp.parse("user:1", "1733362800123456-7") == Stamp(1733362800123456, "user:1", 7)


# Per shard: a run of (clock step, channel, stamp ahead of clock) events.
_shard_runs = st.lists(
    st.lists(st.tuples(st.integers(0, 3), st.sampled_from("pqr"), st.integers(0, 2)),
             max_size=12),  # fmt: skip
    min_size=1, max_size=4,
)  # fmt: skip


@given(_shard_runs, st.randoms(use_true_random=False))
def test_any_interleaving_releases_the_one_sorted_order(
    runs: list[list[tuple[int, str, int]]], rnd: random.Random
) -> None:
    # Build each shard's events as the shard would run them: a clock that never goes
    # back, stamps at or ahead of it, per channel strictly increasing (µs, n).
    streams: list[list[tuple[int, Stamp]]] = []
    for s, run in enumerate(runs):
        clock = 0
        last: dict[str, tuple[int, int]] = {}
        events = []
        for step, channel, ahead in run:
            clock += step
            previous = last.get(channel, (0, -1))
            micros = max(clock + ahead, previous[0])
            index = previous[1] + 1 if previous[0] == micros else 0
            last[channel] = (micros, index)
            events.append((clock, Stamp(micros, f"{channel}{s}", index)))
        streams.append(events)
    merge: WatermarkMerge[Stamp] = WatermarkMerge()
    for s in range(len(streams)):
        merge.add_shard(str(s))
    released: list[Stamp] = []
    cursors = [0] * len(streams)
    # Deliver the shards' messages in a random interleaving, releasing as we go.
    while any(c < len(st_) for c, st_ in zip(cursors, streams, strict=True)):
        live = [i for i, st_ in enumerate(streams) if cursors[i] < len(st_)]
        s = rnd.choice(live)
        clock, stamp = streams[s][cursors[s]]
        cursors[s] += 1
        merge.offer(str(s), clock, stamp, stamp)
        released.extend(merge.release())
        assert released == sorted(released), "released out of order"
    final = max((stamp.micros for st_ in streams for _, stamp in st_), default=0) + 1
    for s in range(len(streams)):
        merge.tick(str(s), final + 1)
    released.extend(merge.release())
    everything = sorted(stamp for st_ in streams for _, stamp in st_)
    assert released == everything
