"""The soak's verdict: flat is flat, growth is named, and the p99 windows."""

from __future__ import annotations

from typing import Any

from loadtest.soak import first_and_last, verdict, window_p99


def samples(rss_mib: list[float], fds: list[int], engine_mib: list[float]) -> list[dict[str, Any]]:
    return [
        {"t": 10.0 * i, "server_rss_kb": r * 1024, "server_fds": f, "engine_rss_kb": e * 1024,
         "engine_fds": 20}
        for i, (r, f, e) in enumerate(zip(rss_mib, fds, engine_mib, strict=True))
    ]  # fmt: skip


CLEAN: dict[str, Any] = {"delivery": {"lost": 0, "duplicated": 0}}
P99_FLAT = [(10.0 * i, 20_000.0) for i in range(1, 31)]


def judged(rows: list[list[str]]) -> dict[str, str]:
    return {row[0]: row[3] for row in rows}


def test_window_p99_keeps_the_worst_second_of_each_window() -> None:
    timeline: list[dict[str, Any]] = [
        {"t": 0.0, "p99_us": 5.0}, {"t": 3.0, "p99_us": 9.0}, {"t": 12.0, "p99_us": 4.0},
        {"t": 15.0, "p99_us": None}, {"t": 25.0, "p99_us": 7.0},
    ]  # fmt: skip
    assert window_p99(timeline, 10.0) == [(10.0, 9.0), (20.0, 4.0), (30.0, 7.0)]


def test_first_and_last_are_medians_of_each_end() -> None:
    points = [(float(t), float(t)) for t in range(0, 301, 10)]
    assert first_and_last(points, 60.0) == (30.0, 270.0)
    assert first_and_last([], 60.0) == (0.0, 0.0)


def test_a_flat_run_is_flat() -> None:
    n = 30
    rows, flat = verdict(samples([60.0] * n, [320] * n, [30 + i * 0.1 for i in range(n)]),
                         P99_FLAT, CLEAN, 60.0, 100.0)  # fmt: skip
    assert flat, rows
    assert judged(rows)["server RSS (MiB)"] == "flat"
    assert judged(rows)["lost / duplicated"] == "ok"


def test_growth_of_memory_fds_or_latency_is_named() -> None:
    n = 30
    leak = samples([60.0 + i for i in range(n)], [320] * n, [30.0] * n)
    rows, flat = verdict(leak, P99_FLAT, CLEAN, 60.0, 100.0)
    assert not flat and judged(rows)["server RSS (MiB)"] == "GREW"
    fds = samples([60.0] * n, [320 + i for i in range(n)], [30.0] * n)
    rows, flat = verdict(fds, P99_FLAT, CLEAN, 60.0, 100.0)
    assert not flat and judged(rows)["server fds"] == "GREW"
    slower = [(t, 20_000.0 if t < 150 else 90_000.0) for t, _ in P99_FLAT]
    rows, flat = verdict(samples([60.0] * n, [320] * n, [30.0] * n), slower, CLEAN, 60.0, 100.0)
    assert not flat and judged(rows)["p99 latency (ms)"] == "GREW"


def test_the_engine_may_grow_by_what_it_stores_and_no_more() -> None:
    n = 30  # 290 s at 100 posts/s: ~23,000 posts between the two ends
    stored = samples([60.0] * n, [320] * n, [30 + i * 0.1 for i in range(n)])
    rows, flat = verdict(stored, P99_FLAT, CLEAN, 60.0, 100.0)
    assert flat and "B/post stored" in judged(rows)["engine RSS (MiB; holds every post)"]
    leaking = samples([60.0] * n, [320] * n, [30 + i * 5.0 for i in range(n)])  # 5 KB/post
    rows, flat = verdict(leaking, P99_FLAT, CLEAN, 60.0, 100.0)
    assert not flat and judged(rows)["engine RSS (MiB; holds every post)"].endswith("GREW")


def test_lost_posts_are_reported() -> None:
    n = 30
    lost = {"delivery": {"lost": 3, "duplicated": 1}}
    rows, _ = verdict(samples([60.0] * n, [320] * n, [30.0] * n), P99_FLAT, lost, 60.0, 100.0)
    assert judged(rows)["lost / duplicated"] == "LOST"


def test_a_short_run_is_not_judged_by_allocator_steps() -> None:
    n = 10  # 90 s at 1 post/s: a 2 MiB step of the allocator is not 23 KB per post
    p99 = [(10.0 * i, 20_000.0) for i in range(1, n + 1)]
    rows, flat = verdict(samples([60.0] * n, [320] * n, [30.0] * 5 + [32.0] * 5), p99, CLEAN,
                         20.0, 1.0)  # fmt: skip
    assert flat, rows
