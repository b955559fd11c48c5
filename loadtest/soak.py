"""Soak: a long fan-out at half the measured capacity, with RSS, fds and p99 over time.

    .venv/bin/python scripts/soak.py --minutes 10 --html reports/soak.html

(`scripts/soak.py` runs this module.)

Not part of the tests (it takes minutes). Starts Echo Hub on loopback with its embedded
engine (or drives `--url` with `--server-pid`), measures capacity with a short
over-offered fan-out (posts/s the server delivered to every subscriber; skip with
`--rate`), then runs one fan-out of `--minutes` at `--fraction` of it, every socket kept
open throughout. Meanwhile it samples the server's and the engine's RSS and open fds
from /proc. The HTML report has the run's usual tables and charts plus RSS, fds and p99
(per `--window` seconds) over time, and a verdict: first minute against last minute,
everything must stay flat (RSS and fds within a margin, p99 within 2x, nothing lost).
Exit status 0 when flat, 1 when something grew, 2 when posts were lost or duplicated.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from loadtest import procstat, report
from loadtest.local import local_server
from loadtest.runner import Progress, RunConfig, run

# "Flat": the last minute against the first, with margins for a warm-up (allocator
# arenas, caches filling) that is not a leak.
RSS_GROWTH = 1.10
RSS_SLACK_KB = 8 * 1024
FD_SLACK = 8
P99_GROWTH = 2.0
# A stored post is ~0.5 KB in the engine; well past that per post is not the data.
ENGINE_BYTES_PER_POST = 2048


def fd_count(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


class Sampler(threading.Thread):
    """Every `every` seconds: RSS (KiB) and open fds of the server and its engine."""

    def __init__(self, server_pid: int, every: float) -> None:
        super().__init__(daemon=True)
        self.server_pid = server_pid
        self.every = every
        self.samples: list[dict[str, Any]] = []
        self.stopping = threading.Event()
        self.t0 = time.monotonic()

    def take(self) -> None:
        kids = procstat.descendants(self.server_pid)
        self.samples.append({
            "t": round(time.monotonic() - self.t0, 1),
            "server_rss_kb": procstat.rss_kb(self.server_pid),
            "server_fds": fd_count(self.server_pid),
            "engine_rss_kb": sum(procstat.rss_kb(k) or 0 for k in kids),
            "engine_fds": sum(fd_count(k) or 0 for k in kids),
        })  # fmt: skip

    def run(self) -> None:
        while not self.stopping.wait(self.every):
            self.take()


def measure_capacity(base: RunConfig, probe_rate: float, seconds: float,
                     progress: Progress) -> float:  # fmt: skip
    """Posts/s the server delivered to every subscriber when offered `probe_rate`."""
    cfg = RunConfig(**{**base.__dict__, "rate": probe_rate, "duration": seconds,
                       "label": "capacity probe"})  # fmt: skip
    result = run(cfg, progress)
    per_s = float(result.get("throughput", {}).get("delivered_per_s") or 0.0)
    return per_s / max(1, cfg.clients)


def window_p99(timeline: list[dict[str, Any]], window: float) -> list[tuple[float, float]]:
    """The worst per-second p99 within each `window` seconds (µs)."""
    out: dict[int, float] = {}
    for row in timeline:
        if row.get("p99_us"):
            k = int(row["t"] // window)
            out[k] = max(out.get(k, 0.0), float(row["p99_us"]))
    return [((k + 1) * window, v) for k, v in sorted(out.items())]


def first_and_last(points: list[tuple[float, float]], span: float) -> tuple[float, float]:
    """Medians of the values in the first and the last `span` seconds."""
    if not points:
        return 0.0, 0.0
    end = points[-1][0]
    first = [v for t, v in points if t <= points[0][0] + span] or [points[0][1]]
    last = [v for t, v in points if t >= end - span] or [points[-1][1]]
    return statistics.median(first), statistics.median(last)


def verdict(samples: list[dict[str, Any]], p99: list[tuple[float, float]],
            result: dict[str, Any], span: float, rate: float,
            ) -> tuple[list[list[str]], bool]:  # fmt: skip
    rows = []
    flat = True

    def series(key: str) -> list[tuple[float, float]]:
        return [(s["t"], float(s[key])) for s in samples if s.get(key) is not None]

    def rss_flat(first: float, last: float) -> bool:
        return last <= first * RSS_GROWTH + RSS_SLACK_KB

    def fds_flat(first: float, last: float) -> bool:
        return last <= first + FD_SLACK

    def p99_flat(first: float, last: float) -> bool:
        return last <= max(first, 1000.0) * P99_GROWTH

    checks: list[tuple[str, list[tuple[float, float]], Callable[[float, float], bool], float]] = [
        ("server RSS (MiB)", series("server_rss_kb"), rss_flat, 1 / 1024),
        ("server fds", series("server_fds"), fds_flat, 1),
        ("engine fds", series("engine_fds"), fds_flat, 1),
        ("p99 latency (ms)", p99, p99_flat, 1 / 1000),
    ]
    for name, points, ok, scale in checks:
        first, last = first_and_last(points, span)
        good = ok(first, last)
        flat = flat and good
        rows.append([name, f"{first * scale:.1f}", f"{last * scale:.1f}",
                     "flat" if good else "GREW"])  # fmt: skip
    # The engine keeps every post (its hash and its place in the author's archive), so
    # its memory grows with the posts: judged per post stored, not flat.
    engine = series("engine_rss_kb")
    if len(engine) >= 2:
        first, last = first_and_last(engine, span)
        posts = rate * max(1e-9, engine[-1][0] - engine[0][0] - span)
        per_post = max(0.0, last - first) * 1024 / max(1.0, posts)
        good = (last - first) * 1024 <= posts * ENGINE_BYTES_PER_POST + RSS_SLACK_KB * 1024
        flat = flat and good
        rows.append(["engine RSS (MiB; holds every post)", f"{first / 1024:.1f}",
                     f"{last / 1024:.1f}", f"{per_post:.0f} B/post stored"
                     + ("" if good else " GREW")])  # fmt: skip
    delivery = result.get("delivery", {})
    lost, dup = delivery.get("lost", 0), delivery.get("duplicated", 0)
    rows.append(["lost / duplicated", "", f"{lost} / {dup}", "ok" if not lost + dup else "LOST"])
    return rows, flat


def soak_section(samples: list[dict[str, Any]], p99: list[tuple[float, float]],
                 rows: list[list[str]], meta: dict[str, Any]) -> str:  # fmt: skip
    def mib(key: str) -> list[tuple[float, float]]:
        return [(s["t"], s[key] / 1024) for s in samples if s.get(key) is not None]

    def count(key: str) -> list[tuple[float, float]]:
        return [(s["t"], float(s[key])) for s in samples if s.get(key) is not None]

    table = report.markdown_table(["", "first minute", "last minute", ""], rows)
    parts = [
        "<h2>Soak</h2>",
        f"<pre>{html.escape(json.dumps(meta, indent=1))}</pre>",
        report._markdown_table_to_html(table),
        report.svg_line_chart(
            [("server", mib("server_rss_kb")), ("engine", mib("engine_rss_kb"))],
            title="Resident memory over time", x_label="seconds since the soak began",
            y_label="MiB", y_format=lambda v: f"{v:.0f}",
        ),
        report.svg_line_chart(
            [("server", count("server_fds")), ("engine", count("engine_fds"))],
            title="Open file descriptors over time", x_label="seconds since the soak began",
            y_label="fds", y_format=lambda v: f"{v:.0f}",
        ),
        report.svg_line_chart(
            [(f"p99 (worst second of each {meta['window_s']:g} s)", p99)],
            title="p99 post-to-delivery latency over time", x_label="seconds of posting",
            y_label="latency", log_y=True, y_format=report.fmt_us,
        ),
    ]  # fmt: skip
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--fraction", type=float, default=0.5, help="of the measured capacity")
    p.add_argument("--rate", type=float, help="posts/s to soak at (skips the capacity probe)")
    p.add_argument("--clients", type=int, default=500, help="subscribed sockets")
    p.add_argument("--probe-rate", type=float, default=600.0, help="posts/s offered to probe")
    p.add_argument("--probe-seconds", type=float, default=10.0)
    p.add_argument("--sample-every", type=float, default=5.0, help="seconds between samples")
    p.add_argument("--window", type=float, default=10.0, help="seconds per p99 point")
    p.add_argument("--url", help="a running server (with --server-pid); default: start one")
    p.add_argument("--server-pid", type=int)
    p.add_argument("--invite", help="with --url: an invite code for the accounts")
    p.add_argument("--html", default="reports/soak.html")
    p.add_argument("--json", dest="json_out", help="the samples and the run, as JSON")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    progress = Progress(quiet=args.quiet)
    with tempfile.TemporaryDirectory(prefix="echohub-soak-") as tmp:
        accounts = str(Path(tmp) / "accounts.json")
        if args.url:
            if not args.server_pid:
                p.error("--url needs --server-pid (RSS and fds are read from /proc)")
            return soak(args, args.url, args.server_pid, args.invite, accounts, progress)
        with local_server("echohub") as srv:
            return soak(args, srv.url, srv.pid, srv.invite, accounts, progress)


def soak(args: argparse.Namespace, url: str, pid: int, invite: str | None, accounts: str,
         progress: Progress) -> int:  # fmt: skip
    base = RunConfig(scenario="fanout", url=url, clients=args.clients, server_pid=pid,
                     invite=invite, accounts_file=accounts, drain=15.0)  # fmt: skip
    capacity = None
    rate = args.rate
    if rate is None:
        progress.log(f"measuring capacity: {args.probe_rate:g} posts/s offered "
                     f"to {args.clients} sockets for {args.probe_seconds:g} s")  # fmt: skip
        capacity = measure_capacity(base, args.probe_rate, args.probe_seconds, progress)
        rate = round(capacity * args.fraction, 1)
        progress.log(f"capacity {capacity:.1f} posts/s; soaking at {rate:g} posts/s")
        if capacity >= 0.95 * args.probe_rate:
            progress.log("the probe was delivered in full: capacity is at least that; "
                         "offer more with --probe-rate for the real figure")  # fmt: skip
    seconds = args.minutes * 60
    sampler = Sampler(pid, args.sample_every)
    sampler.take()
    sampler.start()
    cfg = RunConfig(**{**base.__dict__, "rate": rate, "duration": seconds,
                       "label": f"soak {args.minutes:g} min at {rate:g} posts/s"})  # fmt: skip
    try:
        result = run(cfg, progress)
    finally:
        sampler.stopping.set()
        sampler.join()
        sampler.take()
    p99 = window_p99(result.get("timeline") or [], args.window)
    span = min(60.0, seconds / 4)
    # Judged from the steady state: once every socket is connected (the probe's and the
    # soak's connection phases are not what a leak looks like).
    before = sampler.samples[0].get("server_fds") or 0
    steady = [x for x in sampler.samples if (x.get("server_fds") or 0) >= before + args.clients]
    rows, flat = verdict(steady[1:] or sampler.samples, p99, result, span, rate)
    meta = {
        "clients": args.clients, "rate_posts_per_s": rate,
        "capacity_posts_per_s": None if capacity is None else round(capacity, 1),
        "fraction": args.fraction if capacity is not None else None,
        "minutes": args.minutes, "sample_every_s": args.sample_every, "window_s": args.window,
        "steady_from_s": steady[1]["t"] if len(steady) > 1 else None,
        "cpus": os.cpu_count(), "load_average_at_end": os.getloadavg(),
    }  # fmt: skip
    page = report.render_html([result], title="Echo Hub soak")
    page = page.replace("<h2>Charts</h2>", soak_section(sampler.samples, p99, rows, meta)
                        + "\n<h2>Charts</h2>", 1)  # fmt: skip
    Path(args.html).parent.mkdir(parents=True, exist_ok=True)
    Path(args.html).write_text(page, encoding="utf-8")
    if args.json_out:
        report.write_json({"meta": meta, "samples": sampler.samples, "p99": p99,
                           "verdict": rows, "run": result}, args.json_out)  # fmt: skip
    print(report.render_table(result))
    print(report.markdown_table(["", "first minute", "last minute", ""], rows))
    print(f"report: {args.html}")
    delivery = result.get("delivery", {})
    if delivery.get("lost") or delivery.get("duplicated"):
        return 2
    return 0 if flat else 1


if __name__ == "__main__":
    sys.exit(main())
