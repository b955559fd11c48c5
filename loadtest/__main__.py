"""``echohub-loadtest``: drive Echo Hub (or the python-socketio peer) and report.

    echohub-loadtest fanout --url http://127.0.0.1:8080 --invite CODE \\
        --clients 1000 --posters 1 --rate 50 --duration 20 --json r.json --html r.html
    echohub-loadtest fanout --target socketio --clients 1000 --rate 50   # starts the peer
    echohub-loadtest connect --clients 10000 --sources 4
    echohub-loadtest resume --clients 200 --rate 20
    echohub-loadtest footprints --visitors 20 --owners 10
    echohub-loadtest social --members 2000 --rate 200 --duration 20 --data-dir var/lt
    echohub-loadtest bench --out reports/bench                         # both, side by side

Without ``--url`` the tool starts the target itself on loopback (Echo Hub with a
temporary data directory, or Valkey + the peer) and then knows the server's pid, so it
also reports server CPU per delivery and memory per socket. Accounts come from
``--token`` (any member), ``--invite`` (e.g. from ``echohub invite --admin``), or
``--data-dir``/``--redis-url`` (it runs ``echohub invite --admin`` itself).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any

from loadtest import report
from loadtest.runner import Progress, RunConfig, run

SCENARIOS = ("fanout", "connect", "resume", "footprints", "social")


def add_run_options(p: argparse.ArgumentParser, *, bench: bool = False) -> None:
    g = p.add_argument_group("target")
    if not bench:
        g.add_argument("--url", help="server base URL; omit to start the target locally")
        g.add_argument("--target", choices=("echohub", "socketio"), default="echohub")
        g.add_argument("--invite", help="an invite code (e.g. from `echohub invite --admin`)")
        g.add_argument(
            "--token",
            default=os.environ.get("ECHOHUB_LOADTEST_TOKEN"),
            help="a member's token to create invites with (env ECHOHUB_LOADTEST_TOKEN)",
        )
        g.add_argument("--data-dir", help="the server's data dir, to run `echohub invite --admin`")
        g.add_argument("--redis-url", help="the server's engine, to run `echohub invite --admin`")
        g.add_argument("--accounts-file", help="keep/reuse the run's accounts in this file")
        g.add_argument("--server-pid", type=int, help="read this server's CPU/RSS from /proc")
    g.add_argument("--server-cpus", help="pin a locally started server, e.g. 0")
    g.add_argument("--client-cpus", help="pin the load generator processes, e.g. 1 or 1,2,3")
    w = p.add_argument_group("workload")
    w.add_argument("--clients", type=int, default=None, help="sockets (subscribers)")
    w.add_argument("--posters", type=int, default=1)
    w.add_argument("--rate", type=float, default=None, help="posts/s over all posters")
    w.add_argument("--duration", type=float, default=None, help="seconds of posting")
    w.add_argument("--procs", type=int, default=0, help="load-generator processes (0: per core)")
    w.add_argument(
        "--poster-proc",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="posters in an extra process of their own, so that reading never delays a post",
    )
    w.add_argument("--codec", choices=("json", "msgpack"), default="json")
    w.add_argument("--accounts", type=int, default=0, help="accounts (default min(clients,200))")
    w.add_argument("--sources", type=int, default=1, help="source addresses 127.0.0.1..N")
    w.add_argument("--sample-every", type=int, default=0, help="latency sample 1 in N (0: auto)")
    w.add_argument("--concurrency", type=int, default=200, help="connects in flight per proc")
    w.add_argument("--connect-rate", type=float, default=0.0, help="connects/s (0: max)")
    w.add_argument("--hold", type=float, default=3.0, help="connect: seconds to hold")
    w.add_argument("--no-subscribe", action="store_true", help="connect: do not subscribe")
    w.add_argument("--drain", type=float, default=10.0, help="seconds to wait for the tail")
    w.add_argument("--drop", type=int, default=0, help="fanout: subscribers killed mid-run")
    w.add_argument("--resume-fraction", type=float, default=0.25)
    w.add_argument("--downtime", type=float, default=1.0, help="resume: seconds away")
    w.add_argument("--topic", choices=("user", "home"), default="user")
    w.add_argument("--visitors", type=int, default=20, help="footprints")
    w.add_argument("--owners", type=int, default=10, help="footprints")
    w.add_argument("--seed", type=int, default=None)
    s = p.add_argument_group("social")
    s.add_argument("--members", type=int, default=200, help="social: members of the graph")
    s.add_argument("--online", type=float, default=1.0, help="social: share with a socket")
    s.add_argument("--avg-follows", type=float, default=40.0, help="social: follows each")
    s.add_argument("--friends-share", type=float, default=0.1, help="social: friends-only posts")
    s.add_argument("--like-ratio", type=float, default=None, help="social: likes per post")
    s.add_argument(
        "--mention-share", type=float, default=0.1, help="social: posts mentioning a member"
    )
    s.add_argument("--visit-rate", type=float, default=None, help="social: profile visits/s")
    s.add_argument(
        "--curve",
        action="store_true",
        help="social: rates follow a daily-activity curve (the run is a compressed day)",
    )
    s.add_argument("--start-hour", type=float, default=18.0, help="social: hour the day starts")
    s.add_argument(
        "--social-cache",
        help="social: keep the built graph's accounts here (default: the kept --data-dir)",
    )
    o = p.add_argument_group("output")
    o.add_argument("--json", dest="json_out", help="write the result as JSON")
    o.add_argument("--html", dest="html_out", help="write a self-contained HTML report")
    o.add_argument("--quiet", action="store_true", help="no live progress")


DEFAULTS: dict[str, dict[str, Any]] = {
    "fanout": {"clients": 100, "rate": 10.0, "duration": 10.0},
    "connect": {"clients": 1000, "rate": 0.0, "duration": 0.0},
    "resume": {"clients": 100, "rate": 20.0, "duration": 10.0},
    "footprints": {"clients": 10, "rate": 50.0, "duration": 4.0},
    "social": {"clients": 0, "rate": 50.0, "duration": 10.0},
}


def cpus_arg(text: str | None) -> list[int] | None:
    if not text:
        return None
    out: list[int] = []
    for part in text.split(","):
        if "-" in part:
            a, b = part.split("-")
            out.extend(range(int(a), int(b) + 1))
        elif part.strip():
            out.append(int(part))
    return out


def config_from(args: argparse.Namespace, scenario: str) -> RunConfig:
    d = DEFAULTS[scenario]
    cfg = RunConfig(
        scenario=scenario,
        target=getattr(args, "target", "echohub"),
        url=getattr(args, "url", None) or "",
        clients=args.clients if args.clients is not None else d["clients"],
        posters=args.posters,
        rate=args.rate if args.rate is not None else d["rate"],
        duration=args.duration if args.duration is not None else d["duration"],
        procs=args.procs,
        codec=args.codec,
        accounts=args.accounts,
        sources=args.sources,
        sample_every=args.sample_every,
        concurrency=args.concurrency,
        connect_rate=args.connect_rate,
        hold=args.hold,
        drain=args.drain,
        drop=args.drop,
        resume_fraction=args.resume_fraction,
        downtime=args.downtime,
        topic=args.topic,
        subscribe=not args.no_subscribe,
        invite=getattr(args, "invite", None),
        token=getattr(args, "token", None),
        data_dir=getattr(args, "data_dir", None),
        redis_url=getattr(args, "redis_url", None),
        accounts_file=getattr(args, "accounts_file", None),
        server_pid=getattr(args, "server_pid", None),
        client_cpus=cpus_arg(args.client_cpus),
        poster_proc=args.poster_proc,
        visitors=args.visitors,
        owners=args.owners,
        members=args.members,
        online=args.online,
        avg_follows=args.avg_follows,
        friends_share=args.friends_share,
        like_ratio=args.like_ratio if args.like_ratio is not None else 0.2,
        mention_share=args.mention_share,
        visit_rate=args.visit_rate if args.visit_rate is not None else 2.0,
        curve=args.curve,
        start_hour=args.start_hour,
        social_cache=getattr(args, "social_cache", None),
    )

    if args.seed is not None:
        cfg.seed = args.seed
    elif scenario == "social":
        cfg.seed = 1  # the graph is cached by seed: the same one unless asked otherwise
    return cfg


def emit(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    for r in results:
        print(report.render_table(r))
    if args.json_out:
        report.write_json(results[0] if len(results) == 1 else results, args.json_out)
    if args.html_out:
        report.write_html(results, args.html_out)


def run_scenario(args: argparse.Namespace, scenario: str) -> int:
    cfg = config_from(args, scenario)
    progress = Progress(quiet=args.quiet)
    if cfg.url:
        result = run(cfg, progress)
    else:
        from loadtest.local import local_server

        cpus = cpus_arg(args.server_cpus)
        progress.log(f"starting a local {cfg.target} server")
        kept = None
        if cfg.scenario == "social" and cfg.data_dir and cfg.target == "echohub":
            kept = Path(cfg.data_dir)  # the server's data (and the graph's cache) are kept
            cfg.social_cache = cfg.social_cache or str(kept)
        with local_server(cfg.target, cpus=set(cpus) if cpus else None, data_dir=kept) as srv:
            cfg.url = srv.url
            cfg.server_pid = cfg.server_pid or srv.pid
            cfg.engine_pid = srv.engine_pid
            if cfg.target == "echohub" and not (cfg.token or cfg.invite):
                cfg.invite = srv.invite
                cfg.data_dir = cfg.data_dir or (str(srv.data_dir) if srv.data_dir else None)
            result = run(cfg, progress)
    emit([result], args)
    if result.get("failed"):
        return 2  # something was WRONG, lost or duplicated
    return 0 if result.get("connect", {}).get("connected", 1) else 1


def main(argv: list[str] | None = None) -> int:
    # SIGTERM (a timeout, a CI job cancelled) unwinds like Ctrl-C, so the servers and
    # engines this run started are stopped, not left running in their own sessions.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    parser = argparse.ArgumentParser(
        prog="echohub-loadtest",
        description="Load tester for Echo Hub and the python-socketio peer.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("fanout", "N subscribers, P posters at R posts/s: throughput, latency, loss"),
        ("connect", "connection storm: connections/s, failures, server memory per socket"),
        ("resume", "clients drop and resume with `since`: gaps and duplicates"),
        ("footprints", "profile visits become live footprint notifications"),
        ("social", "a power-law social graph: posts, likes, visits; wrong/lost/duplicated"),
    ):
        add_run_options(sub.add_parser(name, help=help_text))
    from loadtest.bench import add_bench_parser

    add_bench_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "bench":
        from loadtest.bench import run_bench

        return run_bench(args)
    return run_scenario(args, args.command)


if __name__ == "__main__":
    sys.exit(main())
