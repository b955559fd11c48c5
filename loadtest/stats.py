"""Statistics of a load-test run: latency histograms, delivery accounting, time series.

Pure values and arithmetic, no I/O and no clock: the workers feed them numbers, the
parent merges what the workers send (histograms travel HDR-encoded) and the report
renders the result. Nothing here knows about websockets or about the server.

Delivery accounting works on ``(poster, seq)``: every poster numbers its posts 0, 1, 2,
…; each subscriber keeps one :class:`SeqTracker` per poster it listens to. A post the
poster saw acknowledged is *expected* at every subscriber of that poster; a tracker
that never saw it counts it *lost*, one that saw it twice counts a *duplicate*.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from hdrh.histogram import HdrHistogram

#: Latencies are recorded in microseconds, from 1 µs up to 10 minutes, 3 significant
#: digits (0.1% resolution), the HDR default for this kind of measurement.
LOWEST_US = 1
HIGHEST_US = 600_000_000
SIGNIFICANT_FIGURES = 3

SUMMARY_PERCENTILES = (50.0, 90.0, 99.0, 99.9)

#: Bits of a value HDR keeps exactly at SIGNIFICANT_FIGURES (its sub-bucket count is
#: 2**11 = 2048 for 3 figures): a value needing more bits loses the excess to its bucket.
_SUB_BUCKET_BITS = 11


class LatencyHistogram:
    """An HDR histogram of latencies in microseconds.

    Values outside the trackable range are clamped rather than dropped, so a sample is
    never silently lost (and a clamped one still shows up as an enormous latency).
    :meth:`record` is on the load generator's hot path, so it only appends; the
    samples go into the HDR histogram in bulk when it is next read (each value counted
    once per distinct HDR bucket, which is what the HDR library's own ``record_value``
    costs per sample: ~1.4 µs).
    """

    __slots__ = ("_hist", "_new")

    def __init__(self) -> None:
        self._hist = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_FIGURES)
        self._new: list[int] = []  # recorded, not yet in ``_hist``

    def record(self, micros: int) -> None:
        self._new.append(micros)

    def _flush(self) -> None:
        new = self._new
        if not new:
            return
        self._new = []
        # values below 2**SUB_BUCKET_BITS are exact in HDR; above, a bucket spans
        # 2**shift values: round down to the bucket's first value, which HDR maps to
        # the same bucket, so the histogram is the one record_value would have built
        buckets: dict[int, int] = {}
        for v in new:
            if v < LOWEST_US:
                v = LOWEST_US
            elif v > HIGHEST_US:
                v = HIGHEST_US
            shift = v.bit_length() - _SUB_BUCKET_BITS
            if shift > 0:
                v = v >> shift << shift
            buckets[v] = buckets.get(v, 0) + 1
        record = self._hist.record_value
        for v, n in buckets.items():
            record(v, n)

    @property
    def count(self) -> int:
        self._flush()
        return int(self._hist.get_total_count())

    def percentile(self, pct: float) -> int:
        """Value at ``pct`` (0 to 100) in µs; 0 for an empty histogram."""
        if self.count == 0:
            return 0
        return int(self._hist.get_value_at_percentile(pct))

    @property
    def max(self) -> int:
        return int(self._hist.get_max_value()) if self.count else 0

    @property
    def min(self) -> int:
        return int(self._hist.get_min_value()) if self.count else 0

    @property
    def mean(self) -> float:
        return float(self._hist.get_mean_value()) if self.count else 0.0

    def merge(self, other: LatencyHistogram) -> None:
        self._flush()
        if other.count:
            self._hist.add(other._hist)

    def encode(self) -> bytes:
        """Compact, compressed HDR encoding, to send a histogram to another process."""
        if self.count == 0:
            return b""
        data = self._hist.encode()
        return data if isinstance(data, bytes) else bytes(data)

    @classmethod
    def decode(cls, data: bytes) -> LatencyHistogram:
        hist = cls()
        if data:
            hist._hist.decode_and_add(data)
        return hist

    def summary(self) -> dict[str, float]:
        """p50/p90/p99/p99.9/max/mean/count, in µs (count is the number of samples)."""
        out: dict[str, float] = {"count": self.count}
        for pct in SUMMARY_PERCENTILES:
            out[_pct_key(pct)] = self.percentile(pct)
        out["max"] = self.max
        out["min"] = self.min
        out["mean"] = round(self.mean, 1)
        return out

    def distribution(self, points: Sequence[float] | None = None) -> list[tuple[float, int]]:
        """``(percentile, value_us)`` pairs for a latency-distribution chart.

        The default points crowd towards the tail (90, 99, 99.9, …) like an HDR plot.
        """
        if self.count == 0:
            return []
        if points is None:
            points = _tail_points()
        return [(p, self.percentile(p)) for p in points]


def _pct_key(pct: float) -> str:
    text = f"{pct:g}".replace(".", "_")
    return f"p{text}"


def _tail_points() -> list[float]:
    pts: list[float] = [0.0, 10.0, 25.0, 50.0, 75.0]
    for nines in range(1, 6):
        base = 100.0 - 10.0 ** (2 - nines)
        step = 10.0 ** (2 - nines) / 5
        pts.extend(round(base + i * step, 6) for i in range(5))
    pts.append(100.0)
    return sorted(set(pts))


class SeqTracker:
    """What one subscriber received of one poster's sequence numbers.

    Everything below ``contiguous`` arrived exactly once; ``ahead`` holds numbers that
    arrived before a gap below them was filled; ``duplicates`` counts repeats. The
    in-order case (the only one a correct server produces) is one comparison and one
    increment.
    """

    __slots__ = ("ahead", "contiguous", "duplicates")

    def __init__(self) -> None:
        self.contiguous = 0
        self.ahead: set[int] = set()
        self.duplicates = 0

    def add(self, seq: int) -> None:
        if seq == self.contiguous:
            self.contiguous = seq + 1
            ahead = self.ahead
            if ahead:
                nxt = seq + 1
                while nxt in ahead:
                    ahead.discard(nxt)
                    nxt += 1
                self.contiguous = nxt
        elif seq < self.contiguous or seq in self.ahead:
            self.duplicates += 1
        elif seq >= 0:
            self.ahead.add(seq)

    @property
    def distinct(self) -> int:
        return self.contiguous + len(self.ahead)

    def has(self, seq: int) -> bool:
        return seq < self.contiguous or seq in self.ahead

    def state(self) -> tuple[int, list[int], int]:
        """A picklable snapshot: ``(contiguous, sorted(ahead), duplicates)``."""
        return (self.contiguous, sorted(self.ahead), self.duplicates)

    @classmethod
    def from_state(cls, state: tuple[int, Sequence[int], int]) -> SeqTracker:
        tracker = cls()
        tracker.contiguous, ahead, tracker.duplicates = state
        tracker.ahead = set(ahead)
        return tracker


@dataclass(slots=True)
class DeliveryCount:
    """The outcome of delivery accounting over a set of subscribers."""

    expected: int = 0
    delivered: int = 0
    lost: int = 0
    duplicated: int = 0
    unexpected: int = 0  # arrived although the poster never saw its post acknowledged

    def add(self, other: DeliveryCount) -> None:
        self.expected += other.expected
        self.delivered += other.delivered
        self.lost += other.lost
        self.duplicated += other.duplicated
        self.unexpected += other.unexpected

    @property
    def loss_ratio(self) -> float:
        return self.lost / self.expected if self.expected else 0.0


def account(acked: Sequence[int], tracker: SeqTracker) -> DeliveryCount:
    """Compare what one subscriber got from one poster with what the poster had acked.

    ``acked`` is the poster's sorted list of acknowledged sequence numbers.
    """
    expected = len(acked)
    below = bisect.bisect_left(acked, tracker.contiguous)  # acked seqs < contiguous
    got_ahead = sum(1 for s in tracker.ahead if _contains(acked, s))
    got = below + got_ahead
    unexpected = (tracker.contiguous - below) + (len(tracker.ahead) - got_ahead)
    return DeliveryCount(
        expected=expected,
        delivered=got,
        lost=expected - got,
        duplicated=tracker.duplicates,
        unexpected=unexpected,
    )


def _contains(sorted_seq: Sequence[int], value: int) -> bool:
    i = bisect.bisect_left(sorted_seq, value)
    return i < len(sorted_seq) and sorted_seq[i] == value


def account_all(
    acked_by_poster: dict[int, Sequence[int]],
    trackers: Iterable[tuple[int, SeqTracker]],
) -> DeliveryCount:
    """Sum :func:`account` over ``(poster, tracker)`` pairs (one per subscriber and poster)."""
    total = DeliveryCount()
    for poster, tracker in trackers:
        total.add(account(acked_by_poster.get(poster, ()), tracker))
    return total


@dataclass(slots=True)
class Interval:
    """One progress interval as merged from every worker."""

    t: float  # seconds since the measured phase started (end of the interval)
    delivered: int = 0
    posted: int = 0
    errors: int = 0
    latency: LatencyHistogram = field(default_factory=LatencyHistogram)

    def row(self, seconds: float) -> dict[str, float]:
        lat = self.latency
        per_s = self.delivered / seconds if seconds > 0 else 0.0
        return {
            "t": round(self.t, 3),
            "delivered": self.delivered,
            "delivered_per_s": round(per_s, 1),
            "posted": self.posted,
            "errors": self.errors,
            "p50_us": lat.percentile(50),
            "p99_us": lat.percentile(99),
            "max_us": lat.max,
        }


@dataclass(slots=True)
class CpuSample:
    """CPU time (user+system, seconds) over a wall-clock span, for saturation checks."""

    cpu_s: float
    wall_s: float

    @property
    def utilisation(self) -> float:
        """Fraction of one core used (1.0 = one core fully busy)."""
        return self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0


def saturated(sample: CpuSample, threshold: float = 0.9) -> bool:
    """Whether a single-threaded process was CPU-bound (>= ``threshold`` of a core)."""
    return sample.utilisation >= threshold
