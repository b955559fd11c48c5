"""Rendering a run's result: the terminal table, JSON, markdown and a self-contained HTML.

A *result* is the plain dict a scenario returns (see :mod:`loadtest.runner`); this
module only reads it. The HTML embeds its charts as inline SVG and its styles inline:
no script, no font, no external asset, so the file can be mailed or archived as is.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

PALETTE = ("#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2")


# --- numbers -------------------------------------------------------------------------


def fmt_us(us: float | None) -> str:
    """A latency in µs as a short human string (``850 µs``, ``12.3 ms``, ``4.01 s``)."""
    if us is None:
        return "-"
    if us < 1000:
        return f"{us:.0f} µs"
    if us < 1_000_000:
        return f"{us / 1000:.1f} ms"
    return f"{us / 1_000_000:.2f} s"


def fmt_count(n: float | None) -> str:
    if n is None:
        return "-"
    if isinstance(n, float) and not n.is_integer():
        return f"{n:,.1f}"
    return f"{int(n):,}"


def _get(d: dict[str, Any], *path: str) -> Any:
    cur: Any = d
    for key in path:
        if not isinstance(cur, dict) or key not in cur:
            return None
        cur = cur[key]
    return cur


# --- the terminal table --------------------------------------------------------------


def summary_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    """The ``(label, value)`` rows of the end-of-run table for one result."""
    rows: list[tuple[str, str]] = []
    p = result.get("params", {})
    rows.append(("scenario", f"{result.get('scenario')} on {result.get('target')}"))
    rows.append(("codec", str(p.get("codec", "-"))))
    rows.append(("clients / procs", f"{fmt_count(p.get('clients'))} / {p.get('procs', '-')}"))
    conn = result.get("connect") or {}
    if conn:
        rows.append(
            (
                "connected",
                f"{fmt_count(conn.get('connected'))} of {fmt_count(conn.get('attempted'))}"
                f" ({fmt_count(conn.get('failed'))} failed)",
            )
        )
        rows.append(("connect rate", f"{fmt_count(conn.get('per_s'))} conn/s"))
        lat = conn.get("latency_us") or {}
        if lat.get("count"):
            rows.append(
                (
                    "connect time p50/p99/max",
                    " / ".join(fmt_us(lat.get(k)) for k in ("p50", "p99", "max")),
                )
            )
    d = result.get("delivery") or {}
    if d:
        rows.append(
            (
                "posts sent / refused",
                f"{fmt_count(d.get('posted'))} / {fmt_count(d.get('post_errors'))}"
                + (
                    f" ({fmt_count(d['post_unacked'])} never acked)"
                    if d.get("post_unacked")
                    else ""
                ),
            )
        )
        posting = result.get("posting") or {}
        if posting:
            rows.append(
                (
                    "posts/s offered (lag p99/max)",
                    f"{fmt_count(posting.get('per_s'))} ("
                    + " / ".join(fmt_us(posting.get(k)) for k in ("lag_p99_us", "lag_max_us"))
                    + ")",
                )
            )
        rows.append(("expected deliveries", fmt_count(d.get("expected"))))
        rows.append(("delivered", fmt_count(d.get("delivered"))))
        rows.append(("lost", fmt_count(d.get("lost"))))
        rows.append(("duplicated", fmt_count(d.get("duplicated"))))
        if d.get("unexpected"):
            rows.append(("unexpected", fmt_count(d.get("unexpected"))))
        if "wrong" in d:
            rows.append(("WRONG (arrived where it must not)", fmt_count(d.get("wrong"))))
    rows.extend(social_rows(result))
    t = result.get("throughput") or {}
    if t:
        fpr = t.get("frames_per_read")
        rows.append(
            (
                "delivered/s",
                fmt_count(t.get("delivered_per_s"))
                + (f" ({fpr:.1f} events per socket read)" if fpr else ""),
            )
        )
    lat = result.get("latency_us") or {}
    if lat.get("count"):
        rows.append(
            (
                "latency p50/p90/p99/max",
                " / ".join(fmt_us(lat.get(k)) for k in ("p50", "p90", "p99", "max")),
            )
        )
        rows.append(("latency samples", fmt_count(lat.get("count"))))
    for key, label in (("resume", "resume"), ("footprints", "footprints")):
        extra = result.get(key)
        if isinstance(extra, dict):
            for k, v in extra.items():
                name = k.removesuffix("_us").removeprefix(f"{key}_").replace("_", " ")
                if isinstance(v, str):
                    rows.append((f"{label}: {name}", v))
                elif isinstance(v, int | float):
                    text = fmt_us(v) if k.endswith("_us") else fmt_count(v)
                    rows.append((f"{label}: {name}", text))
    server = result.get("server") or {}
    if server.get("cpu_s") is not None:
        rows.append(
            (
                "server CPU",
                f"{server['cpu_s']:.2f} s ({server.get('utilisation', 0):.0%} of a core)",
            )
        )
    if server.get("cpu_us_per_delivery") is not None:
        rows.append(("server CPU per delivery", f"{server['cpu_us_per_delivery']:.2f} µs"))
    if server.get("rss_per_socket_kb") is not None:
        rows.append(("server RSS per socket", f"{server['rss_per_socket_kb']:.1f} KB"))
    cpus = result.get("client_cpu") or []
    if cpus:
        worst = max(c.get("utilisation", 0.0) for c in cpus)
        sat = sum(1 for c in cpus if c.get("saturated"))
        rows.append(
            (
                "load-generator CPU",
                f"busiest proc {worst:.0%} of a core" + (f" — {sat} SATURATED" if sat else ""),
            )
        )
    machine = result.get("machine") or {}
    if machine.get("cores"):
        busy = " / ".join(f"{c['busy']:.0%}" for c in machine["cores"])
        si = " / ".join(f"{c['softirq']:.0%}" for c in machine["cores"])
        rows.append(
            (
                "cores busy (softirq)",
                f"{busy} ({si}); other processes {machine.get('others_share', 0):.2f} core",
            )
        )
    errors = result.get("errors") or {}
    rows.append(("errors", ", ".join(f"{k}: {v}" for k, v in sorted(errors.items())) or "none"))
    for note in result.get("notes") or []:
        rows.append(("note", str(note)))
    return rows


def social_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    """The ``social`` scenario's own rows: the graph, the setup, notifications, costs."""
    rows: list[tuple[str, str]] = []
    g = result.get("graph") or {}
    if g:
        rows.append((
            "graph",
            f"{fmt_count(g.get('members'))} members, {g.get('follows_per_member')} follows each, "
            f"{fmt_count(g.get('friend_pairs'))} friend pairs, most followed by "
            f"{g.get('followers_max_share', 0):.0%}, median {g.get('followers_median')} "
            f"followers, {g.get('blocks')} blocks, {g.get('mutes')} mutes",
        ))  # fmt: skip
    setup = result.get("setup") or {}
    if setup:
        rows.append((
            "setup",
            "from the cache" if setup.get("cached") else
            f"built: sign-ups {setup.get('signup_s', '-')} s, graph {setup.get('graph_s', '-')} s "
            f"({fmt_count(setup.get('graph_edits_per_s'))} edits/s)"
            if "signup_s" in setup else "none (the peer has no accounts)",
        ))  # fmt: skip
    social = result.get("social") or {}
    if social.get("deliveries_per_post") is not None:
        rows.append(("deliveries per post", f"{social['deliveries_per_post']:.1f}"))
    n = result.get("notifications") or {}
    if n.get("expected") or n.get("wrong"):
        rows.append((
            "notifications (likes, mentions, footprints)",
            f"{fmt_count(n.get('delivered'))} of {fmt_count(n.get('expected'))} "
            f"({fmt_count(n.get('likes'))} likes, {fmt_count(n.get('mentions'))} mentions, "
            f"{fmt_count(n.get('footprints'))} footprints); "
            f"lost {fmt_count(n.get('lost'))}, duplicated {fmt_count(n.get('duplicated'))}, "
            f"WRONG {fmt_count(n.get('wrong'))}",
        ))  # fmt: skip
    server = result.get("server") or {}
    if server.get("cpu_us_per_post") is not None:
        rows.append((
            "server CPU per post",
            f"{server['cpu_us_per_post']:.0f} µs (engine {server['engine_cpu_us_per_post']:.0f} µs,"
            f" {server.get('engine_utilisation', 0):.0%} of its core)",
        ))  # fmt: skip
    rss = result.get("rss") or {}
    if rss.get("per_socket_kb") is not None:
        rows.append(
            (
                "server RSS per socket (connected)",
                f"{rss['per_socket_kb']:.1f} KB over {fmt_count(rss.get('sockets'))}",
            )
        )
    gen = result.get("generator") or {}
    if gen.get("cpu_us_per_delivery") is not None:
        rows.append(
            (
                "load-generator CPU per delivery",
                f"{gen['cpu_us_per_delivery']:.2f} µs ({gen.get('cpu_s')} s in all)",
            )
        )
    return rows


def render_table(result: dict[str, Any]) -> str:
    rows = summary_rows(result)
    width = max(len(label) for label, _ in rows)
    line = "-" * (width + 2 + max(len(v) for _, v in rows))
    out = [line]
    out.extend(f"{label:<{width}}  {value}" for label, value in rows)
    out.append(line)
    return "\n".join(out)


def progress_line(result_so_far: dict[str, Any]) -> str:
    """One line of live progress from an interval row (see ``Interval.row``)."""
    r = result_so_far
    return (
        f"t={r.get('t', 0):6.1f}s  delivered/s={fmt_count(r.get('delivered_per_s')):>10}"
        f"  posted={fmt_count(r.get('posted')):>7}  p50={fmt_us(r.get('p50_us')):>9}"
        f"  p99={fmt_us(r.get('p99_us')):>9}  max={fmt_us(r.get('max_us')):>9}"
        f"  errors={r.get('errors', 0)}"
    )


def write_json(result: dict[str, Any] | Sequence[dict[str, Any]], path: str | Path) -> None:
    Path(path).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")


# --- markdown comparison (bench) -----------------------------------------------------


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    def cell(v: Any) -> str:
        return str(v).replace("|", "\\|")

    out = ["| " + " | ".join(cell(h) for h in headers) + " |"]
    out.append("|" + "|".join("---" for _ in headers) + "|")
    out.extend("| " + " | ".join(cell(v) for v in row) + " |" for row in rows)
    return "\n".join(out)


# --- SVG charts ----------------------------------------------------------------------

Series = tuple[str, Sequence[tuple[float, float]]]


def _nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + 1
    raw = (hi - lo) / count
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=raw)
    start = math.floor(lo / step) * step
    ticks: list[float] = []
    v = start
    while v <= hi + step * 0.001 and len(ticks) < 50:
        if v >= lo - step * 0.001:
            ticks.append(round(v, 10))
        v += step
    return ticks


def svg_line_chart(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    log_y: bool = False,
    y_format: Any = None,
    x_ticks: Sequence[tuple[float, str]] | None = None,
    width: int = 720,
    height: int = 300,
) -> str:
    """A line chart as an inline ``<svg>`` string (one polyline per series, a legend)."""
    fmt = y_format or (lambda v: fmt_count(v))
    left, right, top, bottom = 72, 16, 34, 46
    pw, ph = width - left - right, height - top - bottom
    pts = [(x, y) for _, data in series for x, y in data if not log_y or y > 0]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{html.escape(title)}">',
        f'<text x="{left}" y="20" font-size="14" font-weight="bold">{html.escape(title)}</text>',
    ]
    if not pts:
        parts.append(
            f'<text x="{left + pw / 2}" y="{top + ph / 2}" text-anchor="middle" '
            'fill="#888">no data</text></svg>'
        )
        return "".join(parts)
    xmin = min(x for x, _ in pts)
    xmax = max(x for x, _ in pts)
    if xmax == xmin:
        xmax = xmin + 1
    ys = [y for _, y in pts]
    if log_y:
        ylo = 10 ** math.floor(math.log10(min(ys)))
        yhi = 10 ** math.ceil(math.log10(max(ys)))
        if yhi <= ylo:
            yhi = ylo * 10

        def ty(y: float) -> float:
            y = max(y, ylo)
            return (
                top
                + ph
                - (math.log10(y) - math.log10(ylo)) / (math.log10(yhi) - math.log10(ylo)) * ph
            )

        yticks = [ylo * 10**i for i in range(round(math.log10(yhi / ylo)) + 1)]
    else:
        ylo, yhi = 0.0, max(ys) * 1.05 or 1.0

        def ty(y: float) -> float:
            return top + ph - (y - ylo) / (yhi - ylo) * ph

        yticks = _nice_ticks(ylo, yhi)

    def tx(x: float) -> float:
        return left + (x - xmin) / (xmax - xmin) * pw

    parts.append(
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#ccc"/>'
    )
    for yt in yticks:
        y = ty(yt)
        parts.append(
            f'<line x1="{left}" x2="{left + pw}" y1="{y:.1f}" y2="{y:.1f}" stroke="#eee"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end">'
            f"{html.escape(fmt(yt))}</text>"
        )
    xt = x_ticks if x_ticks is not None else [(v, f"{v:g}") for v in _nice_ticks(xmin, xmax)]
    for xv, label in xt:
        x = tx(xv)
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + ph}" stroke="#f3f3f3"/>'
            f'<text x="{x:.1f}" y="{top + ph + 16}" font-size="11" text-anchor="middle">'
            f"{html.escape(label)}</text>"
        )
    parts.append(
        f'<text x="{left + pw / 2}" y="{height - 6}" font-size="12" text-anchor="middle">'
        f"{html.escape(x_label)}</text>"
        f'<text x="14" y="{top + ph / 2}" font-size="12" text-anchor="middle" '
        f'transform="rotate(-90 14 {top + ph / 2})">{html.escape(y_label)}</text>'
    )
    for i, (name, data) in enumerate(series):
        color = PALETTE[i % len(PALETTE)]
        coords = " ".join(f"{tx(x):.1f},{ty(y):.1f}" for x, y in data if not log_y or y > 0)
        if coords:
            parts.append(
                f'<polyline fill="none" stroke="{color}" stroke-width="1.8" points="{coords}">'
                f"<title>{html.escape(name)}</title></polyline>"
            )
        lx = left + 8 + (i % 3) * 200
        ly = top + 14 + (i // 3) * 14
        parts.append(
            f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{color}"/>'
            f'<text x="{lx + 14}" y="{ly}" font-size="11">{html.escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _nines(pct: float) -> float:
    """Percentile → distance in "nines" (90 → 1, 99 → 2, 99.9 → 3), for HDR plots."""
    if pct >= 100:
        return 6.0
    return min(6.0, -math.log10(1 - pct / 100))


_NINES_TICKS = [
    (0.0, "0%"),
    (1.0, "90%"),
    (2.0, "99%"),
    (3.0, "99.9%"),
    (4.0, "99.99%"),
    (5.0, "99.999%"),
]


def charts_for(results: Sequence[dict[str, Any]]) -> list[str]:
    """The three charts (latency over time, latency distribution, delivered/s)."""
    over_time: list[Series] = []
    per_s: list[Series] = []
    dist: list[Series] = []
    for r in results:
        name = label_of(r)
        tl = r.get("timeline") or []
        if tl:
            over_time.append(
                (f"{name} p50", [(row["t"], row["p50_us"]) for row in tl if row.get("p50_us")])
            )
            over_time.append(
                (f"{name} p99", [(row["t"], row["p99_us"]) for row in tl if row.get("p99_us")])
            )
            over_time.append(
                (f"{name} max", [(row["t"], row["max_us"]) for row in tl if row.get("max_us")])
            )
            per_s.append((name, [(row["t"], row["delivered_per_s"]) for row in tl]))
        d = r.get("latency_distribution") or []
        if d:
            dist.append((name, [(_nines(p), v) for p, v in d if v > 0]))
    return [
        svg_line_chart(
            over_time,
            title="Post-to-delivery latency over time",
            x_label="seconds",
            y_label="latency",
            log_y=True,
            y_format=fmt_us,
        ),
        svg_line_chart(
            dist,
            title="Latency distribution (HDR)",
            x_label="percentile",
            y_label="latency",
            log_y=True,
            y_format=fmt_us,
            x_ticks=[
                t
                for t in _NINES_TICKS
                if t[0] <= max((x for _, s in dist for x, _ in s), default=3)
            ],
        ),
        svg_line_chart(
            per_s,
            title="Delivered events per second",
            x_label="seconds",
            y_label="events/s",
        ),
    ]


def label_of(result: dict[str, Any]) -> str:
    return str(result.get("label") or f"{result.get('target')} {result.get('scenario')}")


_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#111;max-width:1100px}
h1{font-size:1.4rem} h2{font-size:1.15rem;margin-top:2rem}
table{border-collapse:collapse;margin:.5rem 0 1rem}
td,th{border:1px solid #ddd;padding:.25rem .6rem;text-align:left;font-size:.9rem}
th{background:#f5f5f5} .warn{color:#b45309;font-weight:bold}
svg{display:block;margin:1rem 0;max-width:100%;height:auto}
pre{background:#f7f7f7;padding:.6rem;overflow-x:auto;font-size:.8rem}
"""


def render_html(
    results: Sequence[dict[str, Any]],
    *,
    title: str = "Echo Hub load test",
    comparison_md: str | None = None,
    chart_results: Sequence[dict[str, Any]] | None = None,
) -> str:
    """A self-contained HTML report for one or more results (several: side by side).

    Charts are drawn from ``chart_results`` (default: all results); every result gets
    its table.
    """
    esc = html.escape
    body = [f"<h1>{esc(title)}</h1>"]
    if comparison_md:
        body.append("<h2>Comparison</h2>")
        body.append(_markdown_table_to_html(comparison_md))
    body.append("<h2>Charts</h2>")
    body.extend(charts_for(results if chart_results is None else chart_results))
    for r in results:
        body.append(f"<h2>{esc(label_of(r))}</h2>")
        body.append("<table>")
        for label, value in summary_rows(r):
            cls = (
                ' class="warn"'
                if "SATURATED" in value
                or (label in ("lost", "duplicated") and value not in ("0", "-"))
                else ""
            )
            body.append(f"<tr><th>{esc(label)}</th><td{cls}>{esc(value)}</td></tr>")
        body.append("</table>")
        params = r.get("params") or {}
        if params:
            body.append("<pre>" + esc(json.dumps(params, sort_keys=True)) + "</pre>")
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )


def _markdown_table_to_html(md: str) -> str:
    lines = [ln for ln in md.strip().splitlines() if ln.startswith("|")]
    if len(lines) < 2:
        return f"<pre>{html.escape(md)}</pre>"

    def cells(line: str) -> list[str]:
        return [c.strip().replace("\\|", "|") for c in line.strip().strip("|").split(" | ")]

    out = ["<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in cells(lines[0])) + "</tr>"]
    for line in lines[2:]:
        out.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells(line)) + "</tr>")
    out.append("</table>")
    return "".join(out)


def write_html(results: Sequence[dict[str, Any]], path: str | Path, **kwargs: Any) -> None:
    Path(path).write_text(render_html(results, **kwargs), encoding="utf-8")
