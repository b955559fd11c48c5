"""Rendering of load-test results: table, JSON, markdown, self-contained HTML."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from loadtest import report


def sample_result(target: str = "echohub", lost: int = 0) -> dict[str, Any]:
    timeline = [
        {
            "t": float(t),
            "delivered": 50_000,
            "delivered_per_s": 50_000.0,
            "posted": 50,
            "errors": 0,
            "p50_us": 900 + t,
            "p99_us": 4000 + t,
            "max_us": 9000 + t,
        }
        for t in range(1, 6)
    ]
    return {
        "scenario": "fanout",
        "target": target,
        "params": {"clients": 1000, "procs": 1, "codec": "json", "rate": 50},
        "connect": {
            "attempted": 1000,
            "connected": 1000,
            "failed": 0,
            "per_s": 2500.0,
            "latency_us": {"count": 1000, "p50": 800, "p99": 3000, "max": 5000},
        },
        "delivery": {
            "posted": 250,
            "post_errors": 0,
            "expected": 250_000,
            "delivered": 250_000 - lost,
            "lost": lost,
            "duplicated": 0,
            "unexpected": 0,
        },
        "throughput": {"delivered_per_s": 49_876.5, "frames_per_read": 3.25},
        "posting": {"per_s": 49.9, "lag_p50_us": 80, "lag_p99_us": 1500, "lag_max_us": 3000},
        "latency_us": {"count": 25_000, "p50": 900, "p90": 2000, "p99": 4000, "max": 9005},
        "latency_distribution": [
            [0.0, 100],
            [50.0, 900],
            [99.0, 4000],
            [99.9, 8000],
            [100.0, 9005],
        ],
        "timeline": timeline,
        "client_cpu": [{"proc": 0, "utilisation": 0.97, "saturated": True}],
        "server": {"cpu_s": 2.5, "utilisation": 0.5, "cpu_us_per_delivery": 10.0},
        "machine": {
            "cores": [{"busy": 1.0, "softirq": 0.22}, {"busy": 0.97, "softirq": 0.14}],
            "others_share": 0.05,
        },
        "errors": {"connect_refused": 2},
        "notes": ["a note"],
    }


@pytest.mark.parametrize(
    ("us", "text"),
    [(None, "-"), (0, "0 µs"), (999, "999 µs"), (1500, "1.5 ms"), (2_500_000, "2.50 s")],
)
def test_fmt_us(us: float | None, text: str) -> None:
    assert report.fmt_us(us) == text


def test_table_lists_the_numbers_that_matter() -> None:
    table = report.render_table(sample_result(lost=3))
    for needle in (
        "fanout on echohub",
        "250,000",
        "249,997",
        "lost",
        "900 µs / 2.0 ms / 4.0 ms / 9.0 ms",
        "SATURATED",
        "10.00 µs",
        "posts/s offered (lag p99/max)  49.9 (1.5 ms / 3.0 ms)",
        "49,876.5 (3.2 events per socket read)",
        "connect_refused: 2",
        "100% / 97% (22% / 14%); other processes 0.05 core",
        "a note",
    ):
        assert needle in table, needle


def test_table_of_a_minimal_result() -> None:
    table = report.render_table({"scenario": "connect", "target": "socketio"})
    assert "connect on socketio" in table and "errors" in table


def test_json_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    report.write_json(sample_result(), path)
    assert json.loads(path.read_text())["delivery"]["expected"] == 250_000


def test_html_is_self_contained_with_three_charts(tmp_path: Path) -> None:
    path = tmp_path / "r.html"
    md = report.markdown_table(["metric", "a|b"], [["x", 1]])
    report.write_html(
        [sample_result("echohub"), sample_result("socketio", lost=7)], path, comparison_md=md
    )
    text = path.read_text()
    assert text.startswith("<!doctype html>")
    assert text.count("<svg") == 3
    assert "<script" not in text
    # no external assets: the only URL is the SVG namespace
    urls = set(re.findall(r"https?://[^\"' )]+", text))
    assert urls <= {"http://www.w3.org/2000/svg"}
    assert not re.search(r"\b(src|href)=", text)
    assert "echohub fanout" in text and "socketio fanout" in text
    assert "<polyline" in text
    assert "a|b" in text  # markdown escaping undone in the HTML table


def test_empty_chart_says_no_data() -> None:
    svg = report.svg_line_chart([], title="t", x_label="x", y_label="y")
    assert "no data" in svg and svg.endswith("</svg>")


def test_log_chart_ignores_zero_values() -> None:
    svg = report.svg_line_chart(
        [("s", [(0, 0), (1, 10), (2, 1000)])], title="t", x_label="x", y_label="y", log_y=True
    )
    assert svg.count("<polyline") == 1


def test_markdown_table_escapes_pipes() -> None:
    md = report.markdown_table(["a", "b"], [["x|y", 2]])
    assert md.splitlines() == ["| a | b |", "|---|---|", "| x\\|y | 2 |"]


def test_progress_line() -> None:
    line = report.progress_line(sample_result()["timeline"][0])
    assert "delivered/s=" in line and "p99=" in line
