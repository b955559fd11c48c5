"""``echohub-loadtest bench``: its workloads and its comparison table."""

from __future__ import annotations

import argparse
from typing import Any

from loadtest import bench


def bench_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bench.add_bench_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["bench", *argv])


def test_fanout_80_follows_fanout_max_and_each_target_has_its_max_rate() -> None:
    args = bench_args("--scenarios", "fanout-80,connect,fanout-max")
    names = [name for name, _ in bench.workloads(args, "echohub")]
    assert names == ["connect", "fanout-max", "fanout-80"]
    echohub = dict(bench.workloads(args, "echohub"))
    peer = dict(bench.workloads(args, "socketio"))
    assert echohub["fanout-max"]["rate"] == args.max_rate >= 600
    assert peer["fanout-max"]["rate"] == args.peer_max_rate
    assert echohub["fanout-80"]["rate"] is None  # set once fanout-max has run
    quick = dict(bench.workloads(bench_args("--quick"), "echohub"))
    assert quick["fanout-max"]["clients"] == 20 and "fanout-80" in quick


def test_rate_at_80_is_80_percent_of_the_delivered_events() -> None:
    assert bench.rate_at_80({"throughput": {"delivered_per_s": 500_000.0}}, 1000) == 400.0
    assert bench.rate_at_80({"throughput": {"delivered_per_s": 0}}, 1000) is None
    assert bench.rate_at_80(None, 1000) is None


def fanout(target: str, rate: float, delivered: float, cpu_us: float) -> dict[str, Any]:
    return {
        "scenario": "fanout",
        "target": target,
        "params": {"clients": 1000, "rate": rate},
        "connect": {"connected": 1000},
        "posting": {"per_s": rate, "lag_p99_us": 1500},
        "throughput": {"delivered_per_s": delivered},
        "latency_us": {"count": 10, "p50": 2000, "p99": 30_000, "max": 45_000},
        "delivery": {"lost": 0, "duplicated": 0},
        "server": {"cpu_us_per_delivery": cpu_us},
        "client_cpu": [{"saturated": False}],
    }


def test_comparison_has_the_80_percent_rows_and_the_ratios() -> None:
    results = {
        ("echohub", "fanout-cpu"): fanout("echohub", 50, 50_000, 8.0),
        ("socketio", "fanout-cpu"): fanout("socketio", 50, 11_000, 80.0),
        ("echohub", "fanout-max"): fanout("echohub", 800, 600_000, 1.2),
        ("socketio", "fanout-max"): fanout("socketio", 100, 12_000, 75.0),
        ("echohub", "fanout-80"): fanout("echohub", 480, 480_000, 1.3),
        ("socketio", "fanout-80"): fanout("socketio", 9.6, 9_600, 78.0),
    }
    md = bench.comparison_markdown(results, ["echohub", "socketio"], bench_args())
    lines = md.splitlines()

    def row(start: str) -> list[str]:
        found = [line for line in lines if line.startswith(f"| {start}")]
        assert len(found) == 1, (start, md)
        return [c.strip() for c in found[0].strip("|").split("|")]

    assert row("fan-out, 80% of max (1,000 subs): delivered/s")[1:] == ["480,000", "9,600"]
    assert (
        row("fan-out, 80% of max (1,000 subs): p50 / p99 / max")[1] == "2.0 ms / 30.0 ms / 45.0 ms"
    )
    assert row("fan-out, max (1,000 subs): offered")[1].startswith("800 posts/s × 1,000")
    assert row("fan-out, 50 posts/s (1,000 subs × 50/s): delivered/s")[1:] == ["50,000", "11,000"]
    assert row("echohub ÷ socketio: delivered/s at max")[1] == "50.0×"
    assert row("socketio ÷ echohub: server CPU per delivery at 50 posts/s")[1] == "10.0×"
    assert "echohub 800, socketio 100" in md


def test_no_ratio_rows_for_one_target() -> None:
    results = {("echohub", "fanout-max"): fanout("echohub", 800, 600_000, 1.2)}
    md = bench.comparison_markdown(results, ["echohub"], bench_args())
    assert "÷" not in md and "600,000" in md


def test_social_80_follows_social_max_at_80_percent_of_the_posts_sustained() -> None:
    args = bench_args("--scenarios", "social-80,social-cpu,social-max")
    names = [name for name, _ in bench.workloads(args, "echohub")]
    assert names == ["social-cpu", "social-max", "social-80"]
    echohub = dict(bench.workloads(args, "echohub"))
    peer = dict(bench.workloads(args, "socketio"))
    assert echohub["social-max"]["rate"] == args.social_max_rate
    assert peer["social-max"]["rate"] == args.peer_social_max_rate
    assert echohub["social-cpu"]["members"] == args.social_members
    done = {"throughput": {"delivered_per_s": 40_000.0}, "social": {"deliveries_per_post": 40.0}}
    assert bench.social_rate_at_80(done) == 800.0
    assert bench.social_rate_at_80({"throughput": {"delivered_per_s": 0}}) is None
    assert bench.social_rate_at_80(None) is None


def social(target: str, delivered: float, cpu_post: float) -> dict[str, Any]:
    return {
        "scenario": "social",
        "target": target,
        "params": {"rate": 200},
        "graph": {"members": 2000},
        "posting": {"per_s": 200, "lag_p99_us": 1000},
        "throughput": {"delivered_per_s": delivered},
        "social": {"deliveries_per_post": 40.0},
        "latency_us": {"count": 10, "p50": 1000, "p99": 9000, "max": 12_000},
        "delivery": {"wrong": 0, "lost": 0, "duplicated": 0},
        "server": {"cpu_us_per_post": cpu_post, "cpu_us_per_delivery": cpu_post / 40,
                   "engine_cpu_us_per_post": 60.0},
        "generator": {"cpu_us_per_delivery": 2.0, "saturated": False},
    }  # fmt: skip


def test_comparison_leads_with_the_social_rows_and_their_ratios() -> None:
    results = {
        ("echohub", "social-cpu"): social("echohub", 8000, 300.0),
        ("socketio", "social-cpu"): social("socketio", 8000, 1500.0),
        ("echohub", "social-max"): social("echohub", 80_000, 250.0),
        ("socketio", "social-max"): social("socketio", 10_000, 1400.0),
    }
    md = bench.comparison_markdown(results, ["echohub", "socketio"], bench_args())
    lines = md.splitlines()
    assert lines[2].startswith("| social (2,000 members × 200 posts/s): posts/s offered")
    assert "| echohub ÷ socketio: posts/s sustained (social, max) | 8.0× |" in md
    assert "| socketio ÷ echohub: server CPU per post (social) | 5.0× |" in md
    assert "| social, max (2,000 members × 200 posts/s): posts/s sustained | 2,000 | 250 |" in md
    assert "wrong / lost / duplicated | 0 / 0 / 0 | 0 / 0 / 0 |" in md
