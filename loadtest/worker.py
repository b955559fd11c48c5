"""One load-generator process: its share of the sockets, posters, and the hot loop.

The parent (:mod:`loadtest.runner`) starts one worker per core with a
:class:`WorkerPlan` and drives it with a few commands over a pipe:

    worker → ("ready", connect stats)          after its sockets are up and subscribed
    parent → ("go", t0_ns)                     posting starts at t0 (wall clock, ns)
    worker → ("tick", k, interval)             every ``tick`` seconds while running
    worker → ("posters_done", {poster: seqs})  its posters finished; the seqs expected
    parent → ("drain", {poster: seqs}, s)      wait for the tail, then account
    worker → ("result", dict)                  delivery accounting and counters
    parent → ("stop",)                         close everything and exit

For the ``connect`` scenario the worker only connects, reports ``ready`` and holds the
sockets open until ``stop``. Each worker runs its own uvloop; nothing is shared
between workers but the pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import resource
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from multiprocessing.connection import Connection
from typing import Any

from loadtest import wsproto
from loadtest.client import (
    Counters,
    EchoHubSocket,
    RequestFailed,
    SocketIOSocket,
    close_all,
    connect_echohub,
    connect_socketio,
)
from loadtest.codec import CODECS, marker_text
from loadtest.stats import DeliveryCount, LatencyHistogram, SeqTracker, account

Sock = EchoHubSocket | SocketIOSocket
MAX_INFLIGHT_POSTS = 5000


@dataclass
class WorkerPlan:
    index: int
    scenario: str  # fanout | connect | resume | social
    target: str  # echohub | socketio
    host: str
    port: int
    codec: str
    sub_ids: list[int]  # global subscriber numbers handled here
    sub_auth: list[str]  # per subscriber: a token (echohub) or a handle (socketio)
    topics: list[str]  # what every subscriber subscribes to
    topic_posters: list[list[int]]  # per topic: the posters whose posts it carries
    poster_ids: list[int]
    poster_auth: list[str]
    n_posters: int
    rate_per_poster: float
    duration: float
    sample_every: int = 1
    sources: list[str] = field(default_factory=lambda: ["127.0.0.1"])
    concurrency: int = 200
    connect_rate: float = 0.0  # connections/s for this worker, 0 = as fast as possible
    drop_ids: list[int] = field(default_factory=list)  # subscribers killed mid-run
    resume_ids: list[int] = field(default_factory=list)  # subscribers that drop and resume
    downtime: float = 1.0
    tick: float = 1.0
    connect_within: float = 15.0
    subscribe: bool = True  # connect scenario: also subscribe (proves the socket works)
    seed: int = 0


class Subscriber:
    """A logical subscriber: survives reconnects (trackers and cursors are its own)."""

    __slots__ = ("auth", "cursors", "dropped", "id", "resuming", "sock", "source", "trackers")

    def __init__(self, sid: int, auth: str, source: str, n_posters: int, counting: bool) -> None:
        self.id = sid
        self.auth = auth
        self.source = source
        self.sock: Sock | None = None
        self.trackers: dict[int, SeqTracker] | None = (
            {p: SeqTracker() for p in range(n_posters)} if counting else None
        )
        self.cursors: dict[str, str] = {}
        self.dropped = False  # deliberately killed (not to come back)
        self.resuming = False  # deliberately dropped, a resume is scheduled


class Worker:
    def __init__(self, conn: Connection, plan: WorkerPlan) -> None:
        self.conn = conn
        self.plan = plan
        self.counters = Counters(plan.sample_every)
        self.errors: Counter[str] = Counter()
        self.commands: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
        counting = plan.scenario in ("fanout", "resume")
        self.subs = [
            Subscriber(sid, auth, plan.sources[sid % len(plan.sources)], plan.n_posters, counting)
            for sid, auth in zip(plan.sub_ids, plan.sub_auth, strict=True)
        ]
        self.posters: dict[int, Sock] = {}
        self.acked: dict[int, list[int]] = {p: [] for p in plan.poster_ids}
        self.posted = 0
        self.post_stats: Counter[str] = Counter()
        self.post_lag = LatencyHistogram()  # how late each post left vs its schedule
        self.last_post_ns = 0
        self.connect_hist = LatencyHistogram()
        self.resume_hist = LatencyHistogram()
        self.resume_stats: Counter[str] = Counter()
        self.running = False
        self._rng = random.Random(plan.seed + plan.index)

    # --- plumbing ---------------------------------------------------------------------

    def send(self, *msg: Any) -> None:
        self.conn.send(msg)

    def listen(self) -> None:
        """Take the parent's commands as they arrive, from the event loop."""
        fd = self.conn.fileno()
        asyncio.get_running_loop().add_reader(fd, self._on_command)
        # add_reader made the pipe non-blocking (libuv does): a message longer than the
        # pipe takes at once (the drain command carries every acked seq: ~18 KB at
        # 6,000 posts) then arrived in pieces, recv() raised BlockingIOError and the
        # worker took it for "stop" and quit without a result. Blocking again, recv()
        # waits for the rest, and send() for room.
        os.set_blocking(fd, True)

    def _on_command(self) -> None:
        try:
            while self.conn.poll():
                self.commands.put_nowait(self.conn.recv())
        except (EOFError, OSError):
            self.commands.put_nowait(("stop",))

    async def command(self, *kinds: str) -> tuple[Any, ...]:
        while True:
            cmd = await self.commands.get()
            if cmd[0] in kinds or cmd[0] == "stop":
                return cmd

    # --- connecting -------------------------------------------------------------------

    async def open(self, auth: str, source: str, *, poster: bool = False) -> Sock:
        p = self.plan
        if p.target == "socketio":
            return await connect_socketio(
                p.host,
                p.port,
                self.counters,
                auth={"handle": auth},
                source=source,
                within=p.connect_within,
            )
        return await connect_echohub(
            p.host,
            p.port,
            CODECS[p.codec],
            self.counters,
            token=auth,
            source=source,
            within=p.connect_within,
        )

    async def connect_subscriber(self, sub: Subscriber, since: bool = False) -> None:
        """Connect (again), restore the counting state, subscribe every topic."""
        sock = await self.open(sub.auth, sub.source)
        sub.sock = sock
        sock.trackers = sub.trackers
        sock.cursors = sub.cursors
        sock.track_cursor = self.plan.scenario == "resume"
        sock.closed.add_done_callback(partial(self._on_closed, sub, sock))
        if self.plan.scenario == "connect" and not self.plan.subscribe:
            return
        for topic in self.plan.topics:
            resume_from = sub.cursors.get(topic) if since else None
            ack = await sock.subscribe(topic, since=resume_from, within=self.plan.connect_within)
            if since:
                rec = ack.get("recovered")
                self.resume_stats[
                    "recovered_true" if rec is True else "recovered_false" if rec is False
                    else "recovered_missing"
                ] += 1  # fmt: skip
            cursor = ack.get("cursor")
            if cursor is not None and topic not in sub.cursors:
                sub.cursors[topic] = str(cursor)

    def _on_closed(self, sub: Subscriber, sock: Sock, fut: asyncio.Future[Any]) -> None:
        if sub.sock is not sock or sub.dropped or sub.resuming or not self.running:
            return
        code = sock.close_code if sock.close_code is not None else 1006
        self.errors[f"closed_{code}"] += 1
        if self.plan.scenario == "resume":  # a real client resumes after any close
            self.resume_stats["unplanned_closes"] += 1
            sub.resuming = True
            asyncio.get_running_loop().create_task(self.resume(sub, delay=0.2))

    async def connect_all(self) -> dict[str, Any]:
        p = self.plan
        sem = asyncio.Semaphore(max(1, p.concurrency))
        connected = failed = 0
        first_ns = time.time_ns()
        last_ns = first_ns
        gap = 1.0 / p.connect_rate if p.connect_rate > 0 else 0.0
        t_base = time.monotonic()

        async def one(i: int, sub: Subscriber) -> None:
            nonlocal connected, failed, last_ns
            if gap:
                delay = t_base + i * gap - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            async with sem:
                t = time.perf_counter_ns()
                try:
                    await self.connect_subscriber(sub)
                except Exception as exc:
                    failed += 1
                    self.errors[f"connect_{error_kind(exc)}"] += 1
                    if sub.sock is not None:
                        sub.sock.abort()
                    sub.sock = None
                    return
                self.connect_hist.record((time.perf_counter_ns() - t) // 1000)
                connected += 1
                last_ns = time.time_ns()

        async def report() -> None:
            while True:
                await asyncio.sleep(p.tick)
                self.send("connecting", p.index, connected, failed)

        cpu0, wall0 = time.process_time(), time.monotonic()
        reporter = asyncio.create_task(report())
        try:
            await asyncio.gather(*(one(i, s) for i, s in enumerate(self.subs)))
            for pid, auth in zip(p.poster_ids, p.poster_auth, strict=True):
                try:
                    self.posters[pid] = await self.open(auth, p.sources[0], poster=True)
                except Exception as exc:
                    self.errors[f"poster_connect_{error_kind(exc)}"] += 1
        finally:
            reporter.cancel()
        return {
            "attempted": len(self.subs),
            "connected": connected,
            "failed": failed,
            "first_ns": first_ns,
            "last_ns": last_ns,
            "hist": self.connect_hist.encode(),
            "posters": len(self.posters),
            "cpu_s": time.process_time() - cpu0,
            "wall_s": time.monotonic() - wall0,
        }

    # --- the measured phase -----------------------------------------------------------

    async def post_loop(self, poster: int, sock: Sock, t0_ns: int) -> None:
        p = self.plan
        total = int(p.rate_per_poster * p.duration)
        if total <= 0:
            return
        interval = 1.0 / p.rate_per_poster
        loop = asyncio.get_running_loop()
        await asyncio.sleep(max(0.0, (t0_ns - time.time_ns()) / 1e9))
        base = loop.time()
        sent: list[int] = []
        refused: set[int] = set()
        pending: set[asyncio.Future[Any]] = set()

        def done(seq: int, fut: asyncio.Future[Any]) -> None:
            pending.discard(fut)
            if fut.cancelled():
                return
            exc = fut.exception()
            if exc is None:
                self.post_stats["acked"] += 1
            elif isinstance(exc, RequestFailed):  # refused: the server will not deliver it
                refused.add(seq)
                self.post_stats["refused"] += 1
                self.errors[f"post_{error_kind(exc)}"] += 1
            else:  # no answer (socket gone): it may or may not have been published
                self.errors[f"post_{error_kind(exc)}"] += 1

        for seq in range(total):
            delay = base + seq * interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            if len(pending) >= MAX_INFLIGHT_POSTS:  # the server stopped acking: wait
                await asyncio.wait(
                    set(pending), timeout=p.connect_within, return_when=asyncio.FIRST_COMPLETED
                )
            if not sock.is_open:
                self.errors["post_socket_closed"] += total - seq
                break
            now_ns = time.time_ns()
            # a loop busy reading delays posts: the rate offered is only what left on time
            self.post_lag.record(int((loop.time() - base - seq * interval) * 1e6))
            self.last_post_ns = now_ns
            try:
                fut = sock.post_nowait(marker_text(poster, seq, now_ns))
            except Exception as exc:
                self.errors[f"post_{error_kind(exc)}"] += 1
                continue
            self.posted += 1
            sent.append(seq)
            pending.add(fut)
            fut.add_done_callback(partial(done, seq))
        if pending:  # wait for the last acks, bounded; what stays unanswered is still expected
            await asyncio.wait(set(pending), timeout=p.connect_within)
        self.post_stats["unacked"] += len(pending)
        # every post sent and not refused is expected at every subscriber of its poster
        self.acked[poster] = [s for s in sent if s not in refused]

    async def drop_later(self, sub: Subscriber, at: float) -> None:
        await asyncio.sleep(at)
        sub.dropped = True
        if sub.sock is not None:
            sub.sock.abort()

    async def resume(self, sub: Subscriber, delay: float) -> None:
        """Reconnect ``sub`` after ``delay`` and subscribe with ``since`` its last cursors."""
        await asyncio.sleep(delay)
        t = time.perf_counter_ns()
        for attempt in range(5):
            try:
                await self.connect_subscriber(sub, since=True)
            except Exception as exc:
                self.resume_stats["reconnect_failures"] += 1
                self.errors[f"resume_{error_kind(exc)}"] += 1
                if sub.sock is not None:
                    sub.sock.abort()
                await asyncio.sleep(0.2 * (attempt + 1))
                continue
            self.resume_stats["reconnects"] += 1
            self.resume_hist.record((time.perf_counter_ns() - t) // 1000)
            break
        sub.resuming = False

    async def churn(self, sub: Subscriber, at: float) -> None:
        await asyncio.sleep(at)
        if sub.sock is None or sub.resuming:
            return
        sub.resuming = True
        self.resume_stats["drops"] += 1
        sub.sock.abort()  # like a client whose network went away
        await self.resume(sub, self.plan.downtime)

    async def ticker(self, t0_ns: int) -> None:
        p = self.plan
        k = 0
        last_delivered = last_posted = 0
        last_errors = 0
        cpu0 = time.process_time()
        wall0 = time.monotonic()
        await asyncio.sleep(max(0.0, (t0_ns - time.time_ns()) / 1e9))
        while True:
            k += 1
            target = t0_ns + int(k * p.tick * 1e9)
            await asyncio.sleep(max(0.0, (target - time.time_ns()) / 1e9))
            c = self.counters
            errs = sum(self.errors.values())
            cpu1, wall1 = time.process_time(), time.monotonic()
            self.send(
                "tick",
                p.index,
                k,
                {
                    "delivered": c.delivered - last_delivered,
                    "posted": self.posted - last_posted,
                    "errors": errs - last_errors,
                    "hist": c.take_hist().encode(),
                    "cpu": (cpu1 - cpu0) / max(1e-9, wall1 - wall0),
                },
            )
            last_delivered, last_posted, last_errors = c.delivered, self.posted, errs
            cpu0, wall0 = cpu1, wall1

    async def drain(self, acked_lists: dict[int, list[int]], drain_s: float) -> None:
        """Wait (at most `drain_s`) until every acknowledged post reached every live
        subscriber, or nothing has arrived for 3 s: the rest is then lost."""
        counts = {pid: len(a) for pid, a in acked_lists.items()}
        deadline = time.monotonic() + drain_s
        last_got, last_change = -1, time.monotonic()
        while time.monotonic() < deadline:
            exp, got = self.alive_expected_and_got(counts)
            if got >= exp:
                return
            if got != last_got:
                last_got, last_change = got, time.monotonic()
            elif time.monotonic() - last_change > min(3.0, drain_s):
                return  # nothing moves any more: the rest is lost
            await asyncio.sleep(0.05)

    def alive_expected_and_got(self, acked_counts: dict[int, int]) -> tuple[int, int]:
        exp = got = 0
        for sub in self.subs:
            if sub.dropped or sub.trackers is None or (sub.sock is None and not sub.resuming):
                continue
            for poster in self.subscribed_posters():
                exp += acked_counts.get(poster, 0)
                got += sub.trackers[poster].distinct
        return exp, got

    def subscribed_posters(self) -> list[int]:
        return sorted({p for ps in self.plan.topic_posters for p in ps})

    async def run_measured(self) -> None:
        p = self.plan
        cmd = await self.command("go")
        if cmd[0] == "stop":
            return
        t0_ns: int = cmd[1]
        self.running = True
        cpu0, wall0 = time.process_time(), time.monotonic()
        tasks = [asyncio.create_task(self.ticker(t0_ns))]
        start_delay = max(0.0, (t0_ns - time.time_ns()) / 1e9)
        by_id = {s.id: s for s in self.subs}
        for sid in p.drop_ids:
            if sid in by_id:
                tasks.append(
                    asyncio.create_task(self.drop_later(by_id[sid], start_delay + p.duration / 2))
                )
        for sid in p.resume_ids:
            if sid in by_id:
                at = start_delay + p.duration * self._rng.uniform(0.2, 0.6)
                tasks.append(asyncio.create_task(self.churn(by_id[sid], at)))
        post_tasks = [
            asyncio.create_task(self.post_loop(pid, sock, t0_ns))
            for pid, sock in self.posters.items()
        ]
        await asyncio.gather(*post_tasks)
        # let scheduled churn finish (bounded) before reporting
        churn = [t for t in tasks[1:] if not t.done()]
        if churn:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*churn, return_exceptions=True), 30)
        self.send("posters_done", p.index, self.acked)
        cmd = await self.command("drain")
        if cmd[0] == "stop":
            return
        acked_lists: dict[int, list[int]] = cmd[1]
        await self.drain(acked_lists, cmd[2])
        self.running = False
        cpu = time.process_time() - cpu0
        wall = time.monotonic() - wall0
        await asyncio.sleep(0)
        for t in tasks:
            t.cancel()
        total = DeliveryCount()
        per_poster: dict[int, list[int]] = {}
        for sub in self.subs:
            if sub.trackers is None:
                continue
            for poster in self.subscribed_posters():
                dc = account(acked_lists.get(poster, []), sub.trackers[poster])
                total.add(dc)
                stats = per_poster.setdefault(poster, [0, 0, 0])
                stats[0] += dc.expected
                stats[1] += dc.lost
                stats[2] += dc.duplicated
        c = self.counters
        self.send(
            "result",
            p.index,
            {
                "delivery": {
                    "expected": total.expected,
                    "delivered": total.delivered,
                    "lost": total.lost,
                    "duplicated": total.duplicated,
                    "unexpected": total.unexpected,
                },
                "counted_frames": c.delivered,
                "reads": c.reads,
                "foreign": c.foreign,
                "last_read_ns": c.now_ns,
                "final_hist": c.take_hist().encode(),
                "errors": dict(self.errors),
                "cpu_s": cpu,
                "wall_s": wall,
                "resume": dict(self.resume_stats),
                "resume_hist": self.resume_hist.encode(),
                "posts": dict(self.post_stats),
                "post_lag_hist": self.post_lag.encode(),
                "last_post_ns": self.last_post_ns,
                "sub_errors": sum(len(s.sock.errors) for s in self.subs if s.sock is not None),
            },
        )

    async def main(self) -> None:
        loop = asyncio.get_running_loop()
        self.listen()
        try:
            stats = await self.connect_all()
            self.send("ready", self.plan.index, stats)
            if self.plan.scenario == "connect":
                await self.command("release")
                self.send("released", self.plan.index, {"errors": dict(self.errors)})
            else:
                await self.run_measured()
            await self.command("stop")
        finally:
            socks = [s.sock for s in self.subs if s.sock is not None]
            socks += list(self.posters.values())
            await close_all(socks, within=3.0)
            loop.remove_reader(self.conn.fileno())


def error_kind(exc: BaseException) -> str:
    """A short, aggregatable name for an error (``http_401``, ``timeout``, ``refused``…)."""
    if isinstance(exc, wsproto.HandshakeRefused):
        return f"http_{exc.status}"
    if isinstance(exc, RequestFailed):
        return exc.code
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, ConnectionResetError):
        return "reset"
    if isinstance(exc, OSError) and exc.errno is not None:
        import errno

        return errno.errorcode.get(exc.errno, str(exc.errno)).lower()
    if isinstance(exc, ConnectionError):
        return "closed"
    return type(exc).__name__


def raise_nofile_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            return hard
    return soft


def worker_entry(conn: Connection, plan: WorkerPlan, cpus: list[int] | None = None) -> None:
    """The body of a worker process (spawned)."""
    import faulthandler
    import signal

    # a worker that stops answering is asked for its stack (see Orchestra.collect);
    # one that crashes in C code prints it too
    faulthandler.register(signal.SIGUSR1, all_threads=False)
    faulthandler.enable()

    if cpus:
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, set(cpus))
    raise_nofile_limit()
    if plan.scenario == "social":
        from loadtest.social_worker import SocialPlan, SocialWorker

        assert isinstance(plan, SocialPlan)
        worker_main = SocialWorker(conn, plan).main
    else:
        worker_main = Worker(conn, plan).main
    try:
        import uvloop

        uvloop.run(_with_loop(worker_main))
    except ImportError:  # pragma: no cover
        asyncio.run(_with_loop(worker_main))
    except KeyboardInterrupt:
        pass
    finally:
        conn.close()


async def _with_loop(main: Any) -> None:
    await main()
