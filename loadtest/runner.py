"""The parent of a run: accounts, worker processes, progress, and the merged result.

The parent does no socket work during the measured phase: it provisions accounts
(HTTP), starts ``procs`` worker processes (:mod:`loadtest.worker`), tells them when
to start, merges their per-interval numbers into a timeline and their accounting into
one result dict (the input of :mod:`loadtest.report`), and reads the server's CPU and
memory from /proc when it knows the server's pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing as mp
import os
import random
import signal
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import aiohttp

from loadtest import procstat, report
from loadtest.accounts import (
    Account,
    Api,
    create_accounts,
    inviter_token,
    load_accounts_file,
    run_prefix,
    save_accounts_file,
)
from loadtest.stats import CpuSample, Interval, LatencyHistogram, saturated
from loadtest.worker import WorkerPlan, worker_entry

#: Latency samples per second per worker process we aim for (HDR records cost ~1 µs).
SAMPLES_PER_S_PER_PROC = 20_000
#: A post leaving later than this behind its schedule (p99) is reported in the notes.
POST_LAG_LIMIT_US = 50_000
#: Other processes using this share of a core during a run get a note (shared machine).
OTHERS_LIMIT = 0.1


@dataclass
class RunConfig:
    scenario: str = "fanout"  # fanout | connect | resume | footprints | social
    target: str = "echohub"  # echohub | socketio
    url: str = "http://127.0.0.1:8080"
    clients: int = 100
    posters: int = 1
    rate: float = 10.0  # posts/s over all posters
    duration: float = 10.0
    procs: int = 0  # 0 = one per available core
    codec: str = "json"
    accounts: int = 0  # 0 = min(clients, 200)
    sources: int = 1  # loopback source addresses 127.0.0.1 … 127.0.0.N
    sample_every: int = 0  # 0 = automatic
    concurrency: int = 200  # connects in flight per process
    connect_rate: float = 0.0  # connections/s overall, 0 = as fast as possible
    hold: float = 2.0  # connect: seconds to hold the sockets open
    drain: float = 10.0  # seconds to wait for the tail after the last post
    drop: int = 0  # fanout: subscribers killed mid-run (their loss must show)
    resume_fraction: float = 0.25  # resume: share of subscribers that drop and resume
    downtime: float = 1.0  # resume: seconds a dropped client stays away
    topic: str = "user"  # echohub: "user" (user:<poster>) or "home" (follow the posters)
    subscribe: bool = True  # connect: subscribe after connecting
    invite: str | None = None
    token: str | None = None
    data_dir: str | None = None
    redis_url: str | None = None
    accounts_file: str | None = None
    server_pid: int | None = None
    engine_pid: int | None = None  # a separate engine process (the peer's Valkey)
    client_cpus: list[int] | None = None
    poster_proc: bool = True  # posters in a process of their own (else spread over procs)
    label: str | None = None
    visitors: int = 20  # footprints
    owners: int = 10  # footprints
    # social (see loadtest.social)
    members: int = 200
    online: float = 1.0  # share of the members with a socket open
    avg_follows: float = 40.0
    friends_share: float = 0.1  # friends-only posts
    like_ratio: float = 0.0  # likes per post
    mention_share: float = 0.0  # posts that mention a member
    visit_rate: float = 0.0  # profile visits per second
    curve: bool = False  # rates follow a daily-activity curve (else fixed)
    start_hour: float = 18.0  # curve: the hour of day the run starts at
    social_cache: str | None = None  # where the built graph's accounts are kept
    seed: int = field(default_factory=lambda: random.randrange(1 << 30))

    @property
    def host_port(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        return parts.hostname or "127.0.0.1", parts.port or 80


class Progress:
    """Live progress: one rewritten status line on a terminal, plain lines otherwise."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.quiet = quiet
        self._open_line = False

    def status(self, text: str) -> None:
        if self.quiet:
            return
        if self.tty:
            self.stream.write("\r\x1b[K" + text)
            self._open_line = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def log(self, text: str) -> None:
        if self.quiet:
            return
        if self._open_line:
            self.stream.write("\n")
            self._open_line = False
        self.stream.write(text + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self._open_line and not self.quiet:
            self.stream.write("\n")
            self.stream.flush()
        self._open_line = False


# --- accounts --------------------------------------------------------------------------


@dataclass
class Cast:
    """Who takes part: the auth strings of subscriber accounts and of posters."""

    subscriber_auth: list[str]
    poster_auth: list[str]
    poster_handles: list[str]
    prefix: str


async def provision_echohub(cfg: RunConfig, progress: Progress) -> Cast:
    n_accounts = cfg.accounts or min(cfg.clients, 200)
    n_accounts = max(1, min(n_accounts, cfg.clients))
    saved: dict[str, list[Account]] = {}
    path = Path(cfg.accounts_file) if cfg.accounts_file else None
    if path is not None:
        saved = load_accounts_file(path, cfg.url)
    subs = saved.get("subscribers", [])
    posters = saved.get("posters", [])
    prefix = run_prefix()
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        api = Api(cfg.url, session)
        need_subs = max(0, n_accounts - len(subs))
        need_posters = max(0, cfg.posters - len(posters))
        if need_subs or need_posters or (cfg.topic == "home" and not saved):
            inviters = saved.get("inviter") or []
            inviter = inviters[0] if inviters else None
            token = await inviter_token(
                api,
                token=cfg.token or (inviter.token if inviter else None),
                invite=cfg.invite,
                prefix=prefix,
                data_dir=cfg.data_dir,
                redis_url=cfg.redis_url,
                log=progress.log,
            )
            progress.log(f"accounts: creating {need_subs + need_posters} ({prefix}*)")
            handles = [f"{prefix}s{i}" for i in range(need_subs)]
            handles += [f"{prefix}p{i}" for i in range(need_posters)]
            # The scenario's own graph: the inviter befriends nobody.
            made = await create_accounts(
                api, token, handles, progress=progress.status, befriend=False
            )
            progress.done()
            subs = subs + made[:need_subs]
            new_posters = made[need_subs:]
            posters = posters + new_posters
            if cfg.topic == "home":
                await follow_posters(api, subs[:n_accounts], posters[: cfg.posters])
            if path is not None:
                inv = saved.get("inviter") or ([Account("inviter", token)] if token else [])
                save_accounts_file(
                    path, cfg.url, {"subscribers": subs, "posters": posters, "inviter": inv}
                )
    subs = subs[:n_accounts]
    posters = posters[: cfg.posters]
    return Cast(
        [a.token for a in subs], [a.token for a in posters], [a.handle for a in posters], prefix
    )


async def follow_posters(api: Api, subs: list[Account], posters: list[Account]) -> None:
    sem = asyncio.Semaphore(32)

    async def one(s: Account, p: Account) -> None:
        async with sem:
            try:
                await api.follow(s.token, p.handle)
            except Exception as exc:
                if "409" not in str(exc):  # already following is fine
                    raise

    await asyncio.gather(*(one(s, p) for s in subs for p in posters))


def provision_socketio(cfg: RunConfig) -> Cast:
    prefix = run_prefix()
    n_accounts = max(1, min(cfg.accounts or min(cfg.clients, 200), cfg.clients))
    subs = [f"{prefix}s{i}" for i in range(n_accounts)]
    posters = [f"{prefix}p{i}" for i in range(cfg.posters)]
    return Cast(subs, posters, posters, prefix)


# --- plans -----------------------------------------------------------------------------


def default_procs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def source_addresses(n: int) -> list[str]:
    """127.0.0.1 … 127.0.0.n: more source addresses, more ephemeral ports (all loopback)."""
    n = max(1, min(n, 250))
    return [f"127.0.0.{i}" for i in range(1, n + 1)]


def make_plans(cfg: RunConfig, cast: Cast, procs: int) -> list[WorkerPlan]:
    host, port = cfg.host_port
    if cfg.target == "echohub" and cfg.topic == "home":
        topics = ["home"]
        topic_posters = [list(range(cfg.posters))]
    else:
        topics = [f"user:{h}" for h in cast.poster_handles]
        topic_posters = [[p] for p in range(cfg.posters)]
    if cfg.scenario == "connect":
        topics = topics[:1] if topics else []
        topic_posters = []
    rng = random.Random(cfg.seed)
    drop_ids = set(rng.sample(range(cfg.clients), min(cfg.drop, cfg.clients)))
    n_resume = round(cfg.clients * cfg.resume_fraction) if cfg.scenario == "resume" else 0
    resume_ids = set(rng.sample(range(cfg.clients), min(n_resume, cfg.clients)))
    per_proc_rate = cfg.rate * cfg.clients / procs  # every subscriber gets every post
    sample_every = cfg.sample_every or max(1, round(per_proc_rate / SAMPLES_PER_S_PER_PROC))
    # posters in a process of their own: a loop busy reading would delay them
    poster_proc = cfg.poster_proc and cfg.scenario in ("fanout", "resume") and cfg.posters > 0
    plans = []
    for w in range(procs + 1 if poster_proc else procs):
        if w == procs:  # the poster process
            sub_ids, poster_ids = [], list(range(cfg.posters))
        else:
            sub_ids = list(range(w, cfg.clients, procs))
            posting = cfg.scenario != "connect" and not poster_proc
            poster_ids = list(range(w, cfg.posters, procs)) if posting else []
        plans.append(
            WorkerPlan(
                index=w,
                scenario=cfg.scenario,
                target=cfg.target,
                host=host,
                port=port,
                codec=cfg.codec,
                sub_ids=sub_ids,
                sub_auth=[cast.subscriber_auth[i % len(cast.subscriber_auth)] for i in sub_ids],
                topics=topics,
                topic_posters=topic_posters,
                poster_ids=poster_ids,
                poster_auth=[cast.poster_auth[p] for p in poster_ids],
                n_posters=cfg.posters,
                rate_per_poster=cfg.rate / max(1, cfg.posters),
                duration=cfg.duration,
                sample_every=sample_every,
                sources=source_addresses(cfg.sources),
                concurrency=cfg.concurrency,
                connect_rate=cfg.connect_rate / procs if cfg.connect_rate else 0.0,
                drop_ids=sorted(drop_ids.intersection(sub_ids)),
                resume_ids=sorted(resume_ids.intersection(sub_ids)),
                downtime=cfg.downtime,
                subscribe=cfg.subscribe,
                seed=cfg.seed,
            )
        )
    return plans


# --- the run ---------------------------------------------------------------------------


class WorkerDied(RuntimeError):
    pass


class Orchestra:
    """The parent's side of the worker pipes."""

    def __init__(self, cfg: RunConfig, plans: Sequence[WorkerPlan], progress: Progress) -> None:
        self.cfg = cfg
        self.progress = progress
        ctx = mp.get_context("spawn")
        self.conns: list[Connection] = []
        self.procs: list[mp.process.BaseProcess] = []
        for plan in plans:
            parent_end, child_end = ctx.Pipe()
            cpus = None
            if cfg.client_cpus:
                cpus = [cfg.client_cpus[plan.index % len(cfg.client_cpus)]]
            proc = ctx.Process(
                target=worker_entry, args=(child_end, plan, cpus), name=f"lt-worker-{plan.index}"
            )
            proc.start()
            child_end.close()
            self.conns.append(parent_end)
            self.procs.append(proc)
        self.intervals: dict[int, Interval] = {}
        self.tick_reports: Counter[int] = Counter()
        self.cpu_by_tick: dict[int, list[float]] = {}
        self.connecting: dict[int, tuple[int, int]] = {}
        self.printed_tick = 0
        self.t0_ns = 0
        self.ended: set[Connection] = set()  # pipes at EOF (their worker is gone)

    def broadcast(self, *msg: Any) -> None:
        for c in self.conns:
            try:
                c.send(msg)
            except (BrokenPipeError, OSError):
                pass

    def collect(self, kind: str, within: float) -> dict[int, Any]:
        """Wait for one ``kind`` message from every worker, handling the others meanwhile."""
        got: dict[int, Any] = {}
        deadline = time.monotonic() + within
        sentinels = {p.sentinel: i for i, p in enumerate(self.procs)}
        while len(got) < len(self.conns):
            left = deadline - time.monotonic()
            if left <= 0:
                silent = [i for i in range(len(self.conns)) if i not in got]
                for i in silent:  # their Python stacks go to stderr: where they hang
                    pid = self.procs[i].pid
                    if pid is not None and self.procs[i].is_alive():
                        os.kill(pid, signal.SIGUSR1)
                time.sleep(0.5)
                raise TimeoutError(
                    f"workers {silent} did not report {kind!r} within {within:.0f} s "
                    "(their stacks, if alive, are on stderr)"
                )
            open_conns = [c for c in self.conns if c not in self.ended]
            ready = wait([*open_conns, *sentinels], timeout=min(left, 0.5))
            for r in ready:
                if r in sentinels:
                    i = sentinels.pop(r)
                    if i not in got:
                        self.drain_dead(i, kind, got)
                    continue
                assert isinstance(r, Connection)
                try:
                    msg = r.recv()
                except (EOFError, OSError):
                    self.ended.add(r)  # its process is exiting: the sentinel will say how
                    continue
                self.handle(msg, kind, got)
        return got

    def drain_dead(self, i: int, kind: str, got: dict[int, Any]) -> None:
        """Worker ``i`` exited: take what it said before, and fail if ``kind`` is not in it."""
        conn = self.conns[i]
        try:
            while conn not in self.ended and conn.poll():
                self.handle(conn.recv(), kind, got)
        except (EOFError, OSError):
            self.ended.add(conn)
        if i not in got:
            self.procs[i].join(2.0)  # a process closes its files before it can be reaped
            if self.procs[i].is_alive():
                # its end of the sentinel pipe is closed, yet it runs: wait for it as
                # for any worker (a timeout then asks for its stack)
                self.progress.log(f"!! worker {i} closed its sentinel but is still running")
                return
            code = self.procs[i].exitcode
            how = f"exit code {code}"
            if code is not None and code < 0:
                with contextlib.suppress(ValueError):
                    how = f"killed by {signal.Signals(-code).name}"
            raise WorkerDied(f"worker {i} (pid {self.procs[i].pid}) exited before {kind!r}: {how}")

    def handle(self, msg: tuple[Any, ...], kind: str, got: dict[int, Any]) -> None:
        what, index = msg[0], msg[1]
        if what == "tick":
            k, data = msg[2], msg[3]
            iv = self.intervals.setdefault(k, Interval(t=k * 1.0))
            iv.delivered += data["delivered"]
            iv.posted += data["posted"]
            iv.errors += data["errors"]
            iv.latency.merge(LatencyHistogram.decode(data["hist"]))
            self.cpu_by_tick.setdefault(k, []).append(data["cpu"])
            self.tick_reports[k] += 1
            if self.tick_reports[k] == len(self.conns) and k > self.printed_tick:
                self.printed_tick = k
                row = iv.row(1.0)
                cpu = max(self.cpu_by_tick[k])
                sat = "  CLIENT CPU SATURATED" if cpu >= 0.9 else ""
                self.progress.status(report.progress_line(row) + f"  client-cpu={cpu:.0%}{sat}")
        elif what == "connecting":
            self.connecting[index] = (msg[2], msg[3])
            ok = sum(c for c, _ in self.connecting.values())
            bad = sum(f for _, f in self.connecting.values())
            self.progress.status(f"connecting: {ok:,} up, {bad:,} failed of {self.cfg.clients:,}")
        elif what == kind:
            got[index] = msg[2] if len(msg) > 2 else None

    def finish(self) -> None:
        self.broadcast("stop")
        for p in self.procs:
            p.join(15)
        for p in self.procs:
            if p.is_alive():
                p.terminate()
                p.join(5)
        for c in self.conns:
            c.close()


def run(cfg: RunConfig, progress: Progress | None = None) -> dict[str, Any]:
    """Run one scenario end to end and return its result dict."""
    progress = progress or Progress()
    if cfg.scenario == "footprints":
        from loadtest.footprints import run_footprints

        return run_footprints(cfg, progress)
    if cfg.scenario == "social":
        from loadtest.social import run_social

        return run_social(cfg, progress)
    procs = cfg.procs or default_procs()
    procs = max(1, min(procs, cfg.clients))
    if cfg.target == "socketio":
        cast = provision_socketio(cfg)
    else:
        cast = asyncio.run(provision_echohub(cfg, progress))
    plans = make_plans(cfg, cast, procs)
    started = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    progress.log(
        f"{cfg.scenario} on {cfg.target} at {cfg.url}: {cfg.clients} clients, {procs} procs"
        + (
            f", {cfg.posters} posters at {cfg.rate:g}/s for {cfg.duration:g}s"
            if cfg.scenario != "connect"
            else ""
        )
    )
    orch = Orchestra(cfg, plans, progress)
    result: dict[str, Any] = {
        "scenario": cfg.scenario,
        "target": cfg.target,
        "url": cfg.url,
        "started_at": started,
        "label": cfg.label,
        "params": {
            "clients": cfg.clients,
            "posters": cfg.posters if cfg.scenario != "connect" else 0,
            "rate": cfg.rate,
            "duration": cfg.duration,
            "procs": procs,
            "poster_proc": len(plans) > procs,
            "codec": cfg.codec if cfg.target == "echohub" else "socket.io json",
            "accounts": len(cast.subscriber_auth),
            "sources": cfg.sources,
            "sample_every": plans[0].sample_every,
            "topic": cfg.topic if cfg.target == "echohub" else "room",
            "seed": cfg.seed,
        },
        "errors": {},
        "notes": [],
    }
    server_rss0 = procstat.rss_kb(cfg.server_pid) if cfg.server_pid else None
    try:
        connect_within = 120 + cfg.clients / 50
        t_connect = time.monotonic()
        ready = orch.collect("ready", connect_within)
        connect_wall = time.monotonic() - t_connect
        progress.done()
        result["connect"] = merge_connect(ready, connect_wall)
        if cfg.scenario == "connect":
            result["client_cpu"] = [
                cpu_row(i, CpuSample(r["cpu_s"], r["wall_s"])) for i, r in sorted(ready.items())
            ]
        if cfg.scenario == "connect":
            run_connect_hold(cfg, orch, result, server_rss0, progress)
        else:
            run_measured(cfg, orch, result, progress)
    finally:
        progress.done()
        orch.finish()
    return result


def cpu_row(proc: int, sample: CpuSample, peak: float | None = None) -> dict[str, Any]:
    peak = sample.utilisation if peak is None else peak
    return {
        "proc": proc,
        "cpu_s": round(sample.cpu_s, 3),
        "wall_s": round(sample.wall_s, 3),
        "utilisation": round(sample.utilisation, 3),
        "peak_utilisation": round(peak, 3),
        "saturated": saturated(sample) or peak >= 0.95,
    }


def merge_connect(ready: dict[int, Any], wall: float) -> dict[str, Any]:
    hist = LatencyHistogram()
    attempted = connected = failed = 0
    first = min(r["first_ns"] for r in ready.values())
    last = max(r["last_ns"] for r in ready.values())
    for r in ready.values():
        hist.merge(LatencyHistogram.decode(r["hist"]))
        attempted += r["attempted"]
        connected += r["connected"]
        failed += r["failed"]
    span = max(1e-6, (last - first) / 1e9)
    return {
        "attempted": attempted,
        "connected": connected,
        "failed": failed,
        "seconds": round(span, 3),
        "phase_seconds": round(wall, 3),
        "per_s": round(connected / span, 1) if connected else 0.0,
        "latency_us": hist.summary(),
    }


def run_connect_hold(
    cfg: RunConfig,
    orch: Orchestra,
    result: dict[str, Any],
    rss0: int | None,
    progress: Progress,
) -> None:
    connected = result["connect"]["connected"]
    if cfg.server_pid:
        time.sleep(min(cfg.hold, 1.0))  # let the server settle its buffers
        rss1 = procstat.rss_kb(cfg.server_pid)
        snap0 = procstat.ProcSnapshot.take(cfg.server_pid)
        time.sleep(max(0.0, cfg.hold - 1.0))
        snap1 = procstat.ProcSnapshot.take(cfg.server_pid)
        server: dict[str, Any] = {"pid": cfg.server_pid, "rss_before_kb": rss0, "rss_kb": rss1}
        if rss0 is not None and rss1 is not None and connected:
            server["rss_per_socket_kb"] = round((rss1 - rss0) / connected, 2)
        if snap0 and snap1:
            own, _ = procstat.cpu_delta(snap0, snap1)
            server["idle_cpu_s"] = round(own, 3)
        result["server"] = server
    else:
        time.sleep(cfg.hold)
    orch.broadcast("release")
    released = orch.collect("released", 30)
    errors: Counter[str] = Counter()
    for r in released.values():
        errors.update(r["errors"])
    result["errors"] = dict(errors)
    progress.log(f"held {connected:,} sockets for {cfg.hold:g} s")


def run_measured(
    cfg: RunConfig, orch: Orchestra, result: dict[str, Any], progress: Progress
) -> dict[int, Any]:
    """Go, wait for the posters, drain, and merge the workers' results into `result`;
    returns the workers' results as they sent them."""
    snap0 = procstat.ProcSnapshot.take(cfg.server_pid) if cfg.server_pid else None
    engine0 = procstat.cpu_seconds(cfg.engine_pid) if cfg.engine_pid else None
    machine0 = procstat.MachineSnapshot.take()
    t_machine = time.monotonic()
    t0_ns = time.time_ns() + 500_000_000
    orch.t0_ns = t0_ns
    orch.broadcast("go", t0_ns)
    # an overloaded server acks late: the posters wait for the last acks (bounded)
    done = orch.collect("posters_done", 2 * cfg.duration + 120)
    acked: dict[int, list[int]] = {}
    for lists in done.values():
        acked.update(lists)
    orch.broadcast("drain", acked, cfg.drain)
    results = orch.collect("result", cfg.drain + 60)
    snap1 = procstat.ProcSnapshot.take(cfg.server_pid) if cfg.server_pid else None
    engine1 = procstat.cpu_seconds(cfg.engine_pid) if cfg.engine_pid else None
    machine = procstat.machine_delta(
        machine0, procstat.MachineSnapshot.take(), our_pids(cfg), time.monotonic() - t_machine
    )
    end_ns = time.time_ns()
    progress.done()

    errors: Counter[str] = Counter()
    delivery = Counter[str]()
    latency = LatencyHistogram()
    resume_hist = LatencyHistogram()
    resume: Counter[str] = Counter()
    client_cpu = []
    counted = reads = 0
    last_read = t0_ns
    for i, r in sorted(results.items()):
        errors.update(r["errors"])
        delivery.update(r["delivery"])
        latency.merge(LatencyHistogram.decode(r["final_hist"]))
        resume_hist.merge(LatencyHistogram.decode(r["resume_hist"]))
        resume.update(r["resume"])
        counted += r["counted_frames"]
        reads += r.get("reads", 0)
        last_read = max(last_read, r["last_read_ns"])
        sample = CpuSample(r["cpu_s"], r["wall_s"])
        per_tick = [cpus[i] for k, cpus in orch.cpu_by_tick.items() if len(cpus) > i]
        peak = max(per_tick, default=sample.utilisation)
        client_cpu.append(cpu_row(i, sample, peak))
        if r["foreign"]:
            errors["foreign_marker_events"] += r["foreign"]
    for iv in orch.intervals.values():
        latency.merge(iv.latency)
    expected_posts = sum(len(v) for v in acked.values())  # sent and not refused
    posts: Counter[str] = Counter()
    post_lag = LatencyHistogram()
    last_post_ns = 0
    for r in results.values():
        posts.update(r.get("posts", {}))
        post_lag.merge(LatencyHistogram.decode(r.get("post_lag_hist", b"")))
        last_post_ns = max(last_post_ns, r.get("last_post_ns", 0))
    posted = expected_posts + posts["refused"]
    delivery_out = {
        "posted": posted,
        "post_acked": posts["acked"],
        "post_errors": posts["refused"],
        "post_unacked": posts["unacked"],
        "expected": delivery["expected"],
        "delivered": delivery["delivered"],
        "lost": delivery["lost"],
        "duplicated": delivery["duplicated"],
        "unexpected": delivery["unexpected"],
        "counted_frames": counted,
    }
    span = max(1e-6, (last_read - t0_ns) / 1e9)
    result["delivery"] = delivery_out
    result["throughput"] = {
        "delivered_per_s": round(counted / span, 1),
        "offered_per_s": round(posted * result["connect"]["connected"] / cfg.duration, 1)
        if cfg.topic == "user" or cfg.target != "echohub"
        else None,
        "span_s": round(span, 3),
        # socket reads of the subscribers: how much the server's writes were batched,
        # which is what a delivery costs the client (per read ~1 µs, per frame ~0.4)
        "frames_per_read": round(counted / reads, 2) if reads else None,
        "posts_per_s": round(posted / cfg.duration, 1),
    }
    if post_lag.count:
        # posts leave on a schedule; a generator too busy to keep it offers less
        # N posts on schedule span (N - 1) intervals: add one so the rate comes out right
        post_span = max(1e-6, (last_post_ns - t0_ns) / 1e9 + cfg.posters / max(cfg.rate, 1e-9))
        result["posting"] = {
            "lag_p50_us": post_lag.percentile(50),
            "lag_p99_us": post_lag.percentile(99),
            "lag_max_us": post_lag.max,
            "span_s": round(post_span, 3),
            "per_s": round(post_lag.count / post_span, 1),
        }
        if post_lag.percentile(99) > POST_LAG_LIMIT_US:
            result["notes"].append(
                f"posts left up to {report.fmt_us(post_lag.percentile(99))} late (p99): "
                "the load generator did not offer the rate on schedule"
            )
    result["latency_us"] = latency.summary()
    result["latency_distribution"] = latency.distribution()
    result["timeline"] = [orch.intervals[k].row(1.0) for k in sorted(orch.intervals)]
    result["client_cpu"] = client_cpu
    result["errors"] = dict(errors)
    if cfg.scenario == "resume":
        result["resume"] = {
            "clients_dropped": resume["drops"],
            "reconnects": resume["reconnects"],
            "reconnect_failures": resume["reconnect_failures"],
            "unplanned_closes": resume["unplanned_closes"],
            "recovered_true": resume["recovered_true"],
            "recovered_false": resume["recovered_false"],
            "recovered_missing": resume["recovered_missing"],
            "gaps": delivery["lost"],
            "duplicates": delivery["duplicated"],
            "resume_time_p50_us": resume_hist.percentile(50),
            "resume_time_max_us": resume_hist.max,
        }
    if snap0 and snap1:
        own, kids = procstat.cpu_delta(snap0, snap1)
        if engine0 is not None and engine1 is not None:
            kids += engine1 - engine0
        wall = (end_ns - t0_ns) / 1e9 + 0.5
        result["server"] = {
            "pid": cfg.server_pid,
            "cpu_s": round(own, 3),
            "children_cpu_s": round(kids, 3),
            "utilisation": round(own / wall, 3),
            "cpu_us_per_delivery": round(own * 1e6 / counted, 3) if counted else None,
            "cpu_us_per_delivery_incl_engine": round((own + kids) * 1e6 / counted, 3)
            if counted
            else None,
            "rss_kb": snap1.rss_kb,
        }
    result["machine"] = machine
    if machine["others_share"] >= OTHERS_LIMIT:
        result["notes"].append(
            f"other processes on this machine used {machine['others_share']:.2f} of a core "
            f"during the run ({', '.join(machine['others_top'])}): the figures may be low"
        )
    sat = [c["proc"] for c in client_cpu if c["saturated"]]
    if sat:
        result["notes"].append(
            f"load-generator process(es) {sat} were CPU-saturated: the numbers may measure "
            "the client, not the server (add --procs or cores)"
        )
    if latency.count and result["params"]["sample_every"] > 1:
        result["notes"].append(
            f"latency from 1 in {result['params']['sample_every']} deliveries (sampled)"
        )
    return results


def our_pids(cfg: RunConfig) -> set[int]:
    """This process, its workers, and the server and engine (and their children)."""
    me = os.getpid()
    ours = {me, *procstat.descendants(me)}
    for pid in (cfg.server_pid, cfg.engine_pid):
        if pid:
            ours |= {pid, *procstat.descendants(pid)}
    return ours


def config_dict(cfg: RunConfig) -> dict[str, Any]:
    d = asdict(cfg)
    d.pop("token", None)  # never write credentials into a report
    d.pop("invite", None)
    return d
