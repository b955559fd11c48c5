"""``echohub-loadtest bench``: Echo Hub and the python-socketio peer, side by side.

Both servers run on this machine in one invocation, each pinned to the same core when
there are two or more (the load generator gets the others), each measured with the
same workloads and the same accounting. Writes ``bench.md`` (the comparison table),
``bench.html`` (with charts) and ``bench.json`` into ``--out``.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from loadtest import procstat, report
from loadtest.local import local_server
from loadtest.runner import Progress, RunConfig, run


def add_bench_parser(sub: Any) -> None:
    p = sub.add_parser("bench", help="Echo Hub vs python-socketio, one run, markdown + HTML")
    p.add_argument("--out", default="reports/bench", help="output directory")
    p.add_argument("--targets", default="echohub,socketio")
    p.add_argument(
        "--scenarios",
        default="social-cpu,social-max,social-80,fanout-cpu,fanout-max,fanout-80,connect,resume",
        help="social-cpu (--social-members at --social-rate posts/s), social-max, social-80 "
        "(80%% of the posts/s social-max sustained, right after it), fanout-cpu (1,000 x "
        "50/s), fanout-max, fanout-80 (80%% of what fanout-max delivered, right after it), "
        "connect, resume",
    )
    p.add_argument("--social-members", type=int, default=2000)
    p.add_argument("--social-rate", type=float, default=200.0, help="posts/s of social-cpu")
    p.add_argument(
        "--social-max-rate", type=float, default=3000.0, help="posts/s offered to Echo Hub"
    )
    p.add_argument(
        "--peer-social-max-rate", type=float, default=400.0, help="posts/s offered to the peer"
    )
    p.add_argument(
        "--data-dir",
        help="keep Echo Hub's data here: the social graph built once is reused by later runs",
    )
    p.add_argument("--subscribers", type=int, default=1000)
    p.add_argument("--duration", type=float, default=15.0)
    p.add_argument(
        "--max-rate",
        type=float,
        default=800.0,
        help="posts/s Echo Hub is offered in fanout-max (x subscribers = events/s)",
    )
    p.add_argument(
        "--peer-max-rate",
        type=float,
        default=100.0,
        help="posts/s the socketio peer is offered in fanout-max: already ~8x what it "
        "sustains; more only grows a backlog it takes minutes to drain",
    )
    p.add_argument("--max-posters", type=int, default=1, help="posters in fanout-max/-80")
    p.add_argument("--connect-clients", type=int, default=10_000)
    p.add_argument("--sources", type=int, default=4)
    p.add_argument("--procs", type=int, default=0)
    p.add_argument("--codec", choices=("json", "msgpack"), default="json")
    p.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    p.add_argument("--quiet", action="store_true")


def _pinning() -> tuple[set[int] | None, list[int] | None]:
    try:
        cores = sorted(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        return None, None
    if len(cores) < 2:
        return None, None
    return {cores[0]}, cores[1:]


def workloads(
    args: argparse.Namespace, target: str = "echohub"
) -> list[tuple[str, dict[str, Any]]]:
    """The workloads of one target, in order; ``fanout-80``'s rate is set after
    ``fanout-max`` has run (see :func:`rate_at_80`)."""
    q = args.quick
    subs = 20 if q else args.subscribers
    dur = 2.0 if q else args.duration
    max_rate = args.peer_max_rate if target == "socketio" else args.max_rate
    members = 60 if q else args.social_members
    social_max = args.peer_social_max_rate if target == "socketio" else args.social_max_rate
    social = {"scenario": "social", "members": members, "duration": dur, "like_ratio": 0.0,
              "visit_rate": 0.0}  # fmt: skip
    all_ = {
        "social-cpu": {**social, "rate": 20.0 if q else args.social_rate},
        "social-max": {**social, "rate": 100.0 if q else social_max},
        "social-80": {**social, "rate": None},  # 80% of what social-max sustained
        "fanout-cpu": {"scenario": "fanout", "clients": subs, "rate": 50.0, "duration": dur},
        "fanout-max": {
            "scenario": "fanout",
            "clients": subs,
            "posters": args.max_posters,
            "rate": 100.0 if q else max_rate,
            "duration": dur,
        },
        "fanout-80": {
            "scenario": "fanout",
            "clients": subs,
            "posters": args.max_posters,
            "rate": None,  # 80% of what fanout-max delivered
            "duration": dur,
        },
        "connect": {
            "scenario": "connect",
            "clients": 50 if q else args.connect_clients,
            "hold": 1.5 if q else 4.0,
            "sources": args.sources,
        },
        "resume": {
            "scenario": "resume",
            "clients": 10 if q else 200,
            "rate": 20.0,
            "duration": 3.0 if q else 10.0,
            "downtime": 0.5,
        },
    }
    wanted = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    for kind in ("fanout", "social"):
        if f"{kind}-80" in wanted and f"{kind}-max" in wanted:  # it needs -max's figure
            wanted.remove(f"{kind}-80")
            wanted.insert(wanted.index(f"{kind}-max") + 1, f"{kind}-80")
    return [(name, dict(all_[name])) for name in wanted if name in all_]


def rate_at_80(max_result: dict[str, Any] | None, subscribers: int) -> float | None:
    """Posts/s that offer 80% of the events/s ``fanout-max`` delivered (None if it
    delivered nothing)."""
    per_s = _v(max_result, "throughput", "delivered_per_s")
    if not per_s or subscribers <= 0:
        return None
    return round(0.8 * float(per_s) / subscribers, 2)


def social_rate_at_80(max_result: dict[str, Any] | None) -> float | None:
    """Posts/s at 80% of what ``social-max`` sustained (delivered/s over deliveries per
    post), None if it delivered nothing."""
    per_s = _v(max_result, "throughput", "delivered_per_s")
    per_post = _v(max_result, "social", "deliveries_per_post")
    if not per_s or not per_post:
        return None
    return round(0.8 * float(per_s) / float(per_post), 1)


def run_bench(args: argparse.Namespace) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    progress = Progress(quiet=args.quiet)
    server_cpus, client_cpus = _pinning()
    results: dict[tuple[str, str], dict[str, Any]] = {}
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    for target in targets:
        progress.log(f"== {target}: starting the server")
        kept = Path(args.data_dir) if args.data_dir and target == "echohub" else None
        with local_server(target, cpus=server_cpus, workdir=None, data_dir=kept) as srv:
            accounts_file = out / f".accounts-{target}.json"
            if accounts_file.exists():
                accounts_file.unlink()  # a fresh server: old tokens mean nothing
            for name, w in workloads(args, target):
                if name in ("fanout-80", "social-80"):
                    if name == "fanout-80":
                        w["rate"] = rate_at_80(results.get((target, "fanout-max")), w["clients"])
                    else:
                        w["rate"] = social_rate_at_80(results.get((target, "social-max")))
                    if w["rate"] is None:
                        progress.log(
                            f"== {target} {name}: skipped, {name[:-3]}-max delivered nothing"
                        )
                        continue
                cfg = RunConfig(
                    target=target,
                    url=srv.url,
                    server_pid=srv.pid,
                    engine_pid=srv.engine_pid,
                    invite=srv.invite,
                    data_dir=str(srv.data_dir) if srv.data_dir else None,
                    accounts_file=str(accounts_file) if target == "echohub" else None,
                    # one process per core left to the load generator
                    procs=args.procs or (len(client_cpus) if client_cpus else 0),
                    codec=args.codec,
                    client_cpus=client_cpus,
                    label=f"{target} {name}",
                    drain=10.0,
                    social_cache=str(srv.data_dir) if srv.data_dir else None,
                    seed=1,
                    **w,
                )
                progress.log(f"== {target} {name}")
                settled = procstat.wait_idle(srv.pid, within=120)
                try:
                    results[(target, name)] = run(cfg, progress)
                    if not settled:
                        results[(target, name)]["notes"].append(
                            "the server was still busy from the previous workload"
                        )
                except Exception as exc:  # one failed workload must not lose the others
                    progress.log(f"!! {target} {name} failed: {exc}")
                    results[(target, name)] = {
                        "scenario": w["scenario"],
                        "target": target,
                        "label": f"{target} {name}",
                        "errors": {type(exc).__name__: 1},
                        "notes": [str(exc)],
                    }
                time.sleep(1.0)
            if accounts_file.exists():
                accounts_file.unlink()
    md = comparison_markdown(results, targets, args)
    (out / "bench.md").write_text(md + "\n", encoding="utf-8")
    ordered = list(results.values())
    report.write_json(ordered, out / "bench.json")
    report.write_html(
        ordered,
        out / "bench.html",
        title="Echo Hub vs python-socketio",
        comparison_md=md,
        chart_results=[r for r in ordered if r.get("scenario") in ("social", "fanout")] or ordered,
    )
    extra = "\n\n".join(report.render_table(r) for r in ordered)
    (out / "bench-tables.txt").write_text(extra + "\n", encoding="utf-8")
    print(md)
    print(f"\nwrote {out / 'bench.md'}, {out / 'bench.html'}, {out / 'bench.json'}")
    return 0


def _v(r: dict[str, Any] | None, *path: str) -> Any:
    cur: Any = r
    for k in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(k)
    return cur


def ratio_rows(
    results: dict[tuple[str, str], dict[str, Any]], targets: list[str]
) -> list[list[str] | None]:
    """Echo Hub against the peer: max delivered/s and CPU per delivery at 50 posts/s."""
    if "echohub" not in targets or "socketio" not in targets:
        return []

    def ratio(name: str, *path: str, invert: bool = False) -> str | None:
        a = _v(results.get(("echohub", name)), *path)
        b = _v(results.get(("socketio", name)), *path)
        if not a or not b:
            return None
        return f"{(b / a if invert else a / b):.1f}×"

    out: list[list[str] | None] = []
    cells = [
        ("echohub ÷ socketio: delivered/s at max", "fanout-max",
         ("throughput", "delivered_per_s"), False),
        ("socketio ÷ echohub: server CPU per delivery at 50 posts/s", "fanout-cpu",
         ("server", "cpu_us_per_delivery"), True),
    ]  # fmt: skip
    for label, name, path, invert in cells:
        v = ratio(name, *path, invert=invert)
        if v is not None:
            out.append([label, v, ""] + [""] * (len(targets) - 2))
    return out


def sustained_posts(r: dict[str, Any] | None) -> float | None:
    """Posts/s a run sustained: delivered/s (drain included) over deliveries per post."""
    per_s = _v(r, "throughput", "delivered_per_s")
    per_post = _v(r, "social", "deliveries_per_post")
    return float(per_s) / float(per_post) if per_s and per_post else None


def social_rows(
    results: dict[tuple[str, str], dict[str, Any]], targets: list[str], row: Any
) -> list[list[str] | None]:
    """The social workloads' rows, and Echo Hub ÷ the peer on them."""
    fu, fc = report.fmt_us, report.fmt_count
    out: list[list[str] | None] = []

    def us(*path: str) -> Any:
        return lambda r: f"{v:.1f} µs" if (v := _v(r, *path)) is not None else "-"

    for name, title in (
        ("social-cpu", "social"),
        ("social-max", "social, max"),
        ("social-80", "social, 80% of max"),
    ):
        if not any((t, name) in results for t in targets):
            continue
        r0 = next((results[(t, name)] for t in targets if (t, name) in results), {})
        g = r0.get("graph") or {}
        rates = {t: _v(results.get((t, name)), "params", "rate") for t in targets}
        same = len({r for r in rates.values() if r is not None}) <= 1
        head = f"{title} ({fc(g.get('members'))} members" + (
            f" × {r0.get('params', {}).get('rate', 0):g} posts/s)" if same else ")"
        )
        out += [
            row(f"{head}: posts/s offered", name, lambda r: (
                f"{fc(_v(r, 'posting', 'per_s'))} (lag p99 {fu(_v(r, 'posting', 'lag_p99_us'))})"
                if _v(r, "posting", "per_s") is not None else "-")),
            row(f"{head}: posts/s sustained", name, lambda r: (
                f"{v:,.0f}" if (v := sustained_posts(r)) is not None else "-")),
            row(f"{head}: delivered/s", name, lambda r: fc(_v(r, "throughput", "delivered_per_s"))),
            row(f"{head}: deliveries per post", name,
                lambda r: fc(_v(r, "social", "deliveries_per_post"))),
            row(f"{head}: p50 / p99 / max", name, lambda r: " / ".join(
                fu(_v(r, "latency_us", k)) for k in ("p50", "p99", "max")
            ) if _v(r, "latency_us", "count") else "-"),
            row(f"{head}: wrong / lost / duplicated", name, lambda r: " / ".join(
                fc(_v(r, "delivery", k)) for k in ("wrong", "lost", "duplicated"))),
            row(f"{head}: server CPU per post", name, us("server", "cpu_us_per_post")),
            row(f"{head}: server CPU per delivery", name, us("server", "cpu_us_per_delivery")),
            row(f"{head}: engine CPU per post", name, us("server", "engine_cpu_us_per_post")),
            row(f"{head}: load generator CPU per delivery (saturated)", name, lambda r: (
                f"{v:.2f} µs ({'yes' if _v(r, 'generator', 'saturated') else 'no'})"
                if (v := _v(r, "generator", "cpu_us_per_delivery")) is not None else "-")),
        ]  # fmt: skip
    if "echohub" in targets and "socketio" in targets:
        a = sustained_posts(results.get(("echohub", "social-max")))
        b = sustained_posts(results.get(("socketio", "social-max")))
        if a and b:
            out.append(["echohub ÷ socketio: posts/s sustained (social, max)", f"{a / b:.1f}×", ""]
                       + [""] * (len(targets) - 2))  # fmt: skip
        a = _v(results.get(("echohub", "social-cpu")), "server", "cpu_us_per_post")
        b = _v(results.get(("socketio", "social-cpu")), "server", "cpu_us_per_post")
        if a and b:
            out.append(["socketio ÷ echohub: server CPU per post (social)", f"{b / a:.1f}×", ""]
                       + [""] * (len(targets) - 2))  # fmt: skip
    return out


def comparison_markdown(
    results: dict[tuple[str, str], dict[str, Any]], targets: list[str], args: argparse.Namespace
) -> str:
    fu = report.fmt_us
    fc = report.fmt_count

    def row(label: str, name: str, fn: Any) -> list[str] | None:
        cells = [fn(results.get((t, name))) for t in targets]
        if all(c in (None, "-") for c in cells):
            return None
        return [label, *[c if c is not None else "-" for c in cells]]

    def cpu_us(r: dict[str, Any] | None) -> str:
        v = _v(r, "server", "cpu_us_per_delivery")
        k = _v(r, "server", "cpu_us_per_delivery_incl_engine")
        if v is None:
            return "-"
        return f"{v:.2f} µs" + (f" ({k:.2f} with engine)" if k is not None else "")

    def sat(r: dict[str, Any] | None) -> str:
        cpus = _v(r, "client_cpu") or []
        if not cpus:
            return "-"
        return "yes" if any(c.get("saturated") for c in cpus) else "no"

    def offered(r: dict[str, Any] | None) -> str:
        per_s = _v(r, "posting", "per_s")
        if per_s is None:
            return "-"
        lag = fu(_v(r, "posting", "lag_p99_us"))
        return f"{fc(per_s)} posts/s × {fc(_v(r, 'connect', 'connected'))} (post lag p99 {lag})"

    rows: list[list[str] | None] = social_rows(results, targets, row)
    for name, title in (
        ("fanout-cpu", "fan-out, 50 posts/s"),
        ("fanout-max", "fan-out, max"),
        ("fanout-80", "fan-out, 80% of max"),
    ):
        if not any((t, name) in results for t in targets):
            continue
        r0 = next((results[(t, name)] for t in targets if (t, name) in results), {})
        p = r0.get("params", {})
        rates = {t: _v(results.get((t, name)), "params", "rate") for t in targets}
        if len({r for r in rates.values() if r is not None}) <= 1:
            head = f"{title} ({fc(p.get('clients'))} subs × {p.get('rate', 0):g}/s)"
        else:  # each target offered its own rate
            head = f"{title} ({fc(p.get('clients'))} subs)"
        rows += [
            row(f"{head}: offered", name, offered),
            row(f"{head}: delivered/s", name, lambda r: fc(_v(r, "throughput", "delivered_per_s"))),
            row(f"{head}: p50 / p99 / max", name, lambda r: " / ".join(
                fu(_v(r, "latency_us", k)) for k in ("p50", "p99", "max")
            ) if _v(r, "latency_us", "count") else "-"),
            row(f"{head}: lost / duplicated", name, lambda r: f"{fc(_v(r, 'delivery', 'lost'))} / "
                f"{fc(_v(r, 'delivery', 'duplicated'))}"),
            row(f"{head}: server CPU per delivery", name, cpu_us),
            row(f"{head}: load generator saturated", name, sat),
        ]  # fmt: skip
    rows += ratio_rows(results, targets)
    if any((t, "connect") in results for t in targets):
        rows += [
            row("connect storm: connected / attempted", "connect", lambda r: (
                f"{fc(_v(r, 'connect', 'connected'))} / {fc(_v(r, 'connect', 'attempted'))}")),
            row("connect storm: connections/s", "connect",
                lambda r: fc(_v(r, "connect", "per_s"))),
            row("connect storm: connect p99", "connect",
                lambda r: fu(_v(r, "connect", "latency_us", "p99"))),
            row("idle server RSS per socket", "connect", lambda r: (
                f"{v:.1f} KB" if (v := _v(r, "server", "rss_per_socket_kb")) is not None else "-")),
        ]  # fmt: skip
    if any((t, "resume") in results for t in targets):
        rows += [
            row("resume: gaps / duplicates", "resume", lambda r: (
                f"{fc(_v(r, 'resume', 'gaps'))} / {fc(_v(r, 'resume', 'duplicates'))}")),
            row("resume: reconnects (recovered)", "resume", lambda r: (
                f"{fc(_v(r, 'resume', 'reconnects'))} "
                f"({fc(_v(r, 'resume', 'recovered_true'))} recovered)")),
        ]  # fmt: skip
    table = report.markdown_table(["metric", *targets], [r for r in rows if r])
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    notes = [
        "",
        f"One machine, {cores} cores; each server pinned to one core, the load generator "
        "on the others; every delivery counted by (poster, seq).",
        "The socketio peer only broadcasts (no store, no validation); Echo Hub also stores "
        "each post and keeps history for resume.",
    ]
    offered_max = ", ".join(
        f"{t} {rate:g}"
        for t in targets
        if (rate := _v(results.get((t, "fanout-max")), "params", "rate")) is not None
    )
    if offered_max:
        notes.append(
            f"Fan-out, max: each target offered more posts/s than it sustains ({offered_max}); "
            "delivered/s is what arrived over the whole run, drain included. Fan-out, 80% "
            "of max: right after, at 0.8 × that delivered/s, for the latency below saturation."
        )
    return table + "\n" + "\n".join(notes)
