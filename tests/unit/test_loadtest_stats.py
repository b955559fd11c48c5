"""The load tester's statistics: HDR wrapper, (poster, seq) accounting, intervals."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest
from hdrh.histogram import HdrHistogram

from loadtest.stats import (
    HIGHEST_US,
    LOWEST_US,
    SIGNIFICANT_FIGURES,
    CpuSample,
    DeliveryCount,
    Interval,
    LatencyHistogram,
    SeqTracker,
    account,
    account_all,
    saturated,
)


def test_empty_histogram_summarises_to_zeros() -> None:
    h = LatencyHistogram()
    assert h.count == 0
    assert h.summary() == {
        "count": 0,
        "p50": 0,
        "p90": 0,
        "p99": 0,
        "p99_9": 0,
        "max": 0,
        "min": 0,
        "mean": 0.0,
    }
    assert h.distribution() == []
    assert h.encode() == b""
    assert LatencyHistogram.decode(b"").count == 0


def test_percentiles_of_a_uniform_range_within_hdr_precision() -> None:
    h = LatencyHistogram()
    for v in range(1, 10_001):
        h.record(v)
    s = h.summary()
    assert s["count"] == 10_000
    assert s["p50"] == pytest.approx(5000, rel=0.002)
    assert s["p90"] == pytest.approx(9000, rel=0.002)
    assert s["p99"] == pytest.approx(9900, rel=0.002)
    assert s["max"] == pytest.approx(10_000, rel=0.002)
    assert s["min"] == 1


@pytest.mark.parametrize(("value", "stored"), [(0, 1), (-5, 1), (HIGHEST_US * 10, HIGHEST_US)])
def test_out_of_range_values_are_clamped_not_dropped(value: int, stored: int) -> None:
    h = LatencyHistogram()
    h.record(value)
    assert h.count == 1
    assert h.max == pytest.approx(stored, rel=0.002)


def test_bulk_recording_builds_the_histogram_record_value_would() -> None:
    rng = random.Random(5)
    values = [int(rng.lognormvariate(8, 3)) for _ in range(20_000)]
    values += [0, 1, 2047, 2048, 2049, 4095, 4096, HIGHEST_US, HIGHEST_US + 1, 10**12]
    ref = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES)
    h = LatencyHistogram()
    for v in values:
        ref.record_value(min(max(v, LOWEST_US), HIGHEST_US))
        h.record(v)
    assert h.count == len(values)
    assert list(h._hist.counts) == list(ref.counts)
    assert (h.min, h.max) == (ref.get_min_value(), ref.get_max_value())
    h.record(7)  # read, then recorded again: still counted
    assert h.count == len(values) + 1


def test_merge_and_encode_roundtrip_keep_every_sample() -> None:
    a, b = LatencyHistogram(), LatencyHistogram()
    for v in range(100):
        a.record(1000 + v)
    for v in range(50):
        b.record(50_000 + v)
    merged = LatencyHistogram.decode(a.encode())
    merged.merge(LatencyHistogram.decode(b.encode()))
    assert merged.count == 150
    assert merged.min == pytest.approx(1000, rel=0.002)
    assert merged.max == pytest.approx(50_049, rel=0.002)
    merged.merge(LatencyHistogram())  # merging an empty one is a no-op
    assert merged.count == 150


def test_distribution_is_monotonic_and_reaches_the_tail() -> None:
    h = LatencyHistogram()
    for v in range(1, 100_001):
        h.record(v)
    dist = h.distribution()
    pcts = [p for p, _ in dist]
    values = [v for _, v in dist]
    assert pcts == sorted(pcts)
    assert values == sorted(values)
    assert 99.99 in pcts and pcts[-1] == 100.0


@pytest.mark.parametrize(
    ("arrivals", "contiguous", "ahead", "dups", "distinct"),
    [
        ([], 0, [], 0, 0),
        ([0, 1, 2, 3], 4, [], 0, 4),
        ([0, 1, 1, 2], 3, [], 1, 3),
        ([0, 2, 3], 1, [2, 3], 0, 3),  # 1 is missing
        ([0, 2, 1, 3], 4, [], 0, 4),  # reordered, gap filled
        ([0, 2, 2, 1], 3, [], 1, 3),  # duplicate while ahead
        ([5], 0, [5], 0, 1),
        ([0, 0, 0], 1, [], 2, 1),
    ],
)
def test_seq_tracker_table(
    arrivals: list[int], contiguous: int, ahead: list[int], dups: int, distinct: int
) -> None:
    t = SeqTracker()
    for s in arrivals:
        t.add(s)
    assert t.state() == (contiguous, ahead, dups)
    assert t.distinct == distinct
    assert SeqTracker.from_state(t.state()).state() == t.state()


@pytest.mark.parametrize(
    ("acked", "arrivals", "expected"),
    [
        # everything acked arrived once
        ([0, 1, 2], [0, 1, 2], DeliveryCount(3, 3, 0, 0, 0)),
        # the subscriber dropped after 1: 2 lost
        ([0, 1, 2, 3], [0, 1], DeliveryCount(4, 2, 2, 0, 0)),
        # a gap in the middle and a duplicate
        ([0, 1, 2, 3], [0, 2, 2, 3], DeliveryCount(4, 3, 1, 1, 0)),
        # post 1 failed at the poster (never acked) but arrived anyway: unexpected
        ([0, 2], [0, 1, 2], DeliveryCount(2, 2, 0, 0, 1)),
        # post 1 failed and did not arrive: nothing lost
        ([0, 2], [0, 2], DeliveryCount(2, 2, 0, 0, 0)),
        # nothing arrived
        ([0, 1], [], DeliveryCount(2, 0, 2, 0, 0)),
    ],
)
def test_account_table(acked: list[int], arrivals: list[int], expected: DeliveryCount) -> None:
    t = SeqTracker()
    for s in arrivals:
        t.add(s)
    assert account(acked, t) == expected


def test_account_all_sums_subscribers_and_posters() -> None:
    acked: dict[int, Sequence[int]] = {0: [0, 1, 2], 1: [0, 1]}
    full0, full1, partial = SeqTracker(), SeqTracker(), SeqTracker()
    for s in (0, 1, 2):
        full0.add(s)
    for s in (0, 1):
        full1.add(s)
    partial.add(0)
    total = account_all(acked, [(0, full0), (1, full1), (0, partial)])
    assert total == DeliveryCount(expected=8, delivered=6, lost=2, duplicated=0, unexpected=0)
    assert total.loss_ratio == pytest.approx(0.25)
    assert DeliveryCount().loss_ratio == 0.0


def test_interval_row_rates() -> None:
    iv = Interval(t=2.0, delivered=500, posted=10, errors=1)
    iv.latency.record(1500)
    row = iv.row(0.5)
    assert row["delivered_per_s"] == 1000.0
    assert row["posted"] == 10 and row["errors"] == 1
    assert row["p50_us"] == pytest.approx(1500, rel=0.002)
    assert Interval(t=1.0).row(0)["delivered_per_s"] == 0.0


@pytest.mark.parametrize(
    ("cpu", "wall", "busy"), [(0.95, 1.0, True), (0.5, 1.0, False), (0.0, 0.0, False)]
)
def test_saturation(cpu: float, wall: float, busy: bool) -> None:
    assert saturated(CpuSample(cpu, wall)) is busy
