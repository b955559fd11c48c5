"""The hub's counters and its publish-to-write latency histogram (read by /metrics)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class HubStats:
    events_in: int = 0
    frames_out: int = 0
    bytes_out: int = 0
    writes: int = 0
    slow_closes: int = 0
    dead_peers: int = 0
    connections_total: int = 0
    # Publish-to-write latency (engine clock at publish to local clock at dispatch).
    latency_buckets: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                          0.5, 1.0, 2.5, 5.0)  # fmt: skip
    latency_counts: list[int] = field(default_factory=lambda: [0] * 13)
    latency_sum: float = 0.0

    def observe_latency(self, seq: int) -> None:
        # seq is the engine's clock in microseconds at publish time.
        latency = max(0.0, time.time() - seq / 1_000_000)
        self.latency_sum += latency
        buckets = self.latency_buckets
        for i, bound in enumerate(buckets):
            if latency <= bound:
                self.latency_counts[i] += 1
                return
        self.latency_counts[len(buckets)] += 1
