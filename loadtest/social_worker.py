"""A load-generator process of the ``social`` scenario (see :mod:`loadtest.social`).

The same process model and pipe protocol as :mod:`loadtest.worker`, with two roles:

- **members** (one worker per core): each online member's socket on ``home`` and
  ``me`` (for the peer: the rooms of whom it follows, its friends' rooms and its own
  ``me`` room). The lean reader counts every post frame against the streams the
  member must receive (:meth:`loadtest.graph.SocialGraph.keys_of`): a marker of any
  other stream is a WRONG delivery, counted without parsing the frame. The rare
  notifications (``like``, ``footprint``) are decoded and remembered.
- **the actor** (a process of its own): every member that acts has a socket here;
  it posts on the schedule (author and visibility planned from the seed, one sequence
  per author and visibility), and likes posts and visits profiles over HTTP (for the
  peer: socket events), remembering which notification each must cause.
"""

from __future__ import annotations

import asyncio
import collections
import random
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import aiohttp

from loadtest.client import RequestFailed, SocketIOSocket
from loadtest.codec import marker_text
from loadtest.graph import (
    GraphShape,
    Notification,
    SocialCount,
    account_member,
    footprint_expected,
    generate_graph,
    mention_expected,
    pick_liker,
    pick_visit,
    stream_key,
)
from loadtest.stats import SeqTracker
from loadtest.worker import MAX_INFLIGHT_POSTS, Sock, Subscriber, Worker, WorkerPlan, error_kind

#: Likes and visits in flight at once (HTTP requests of the actor).
MAX_INFLIGHT_ACTIONS = 64
#: Acked posts remembered as candidates for likes.
RECENT_POSTS = 500


@dataclass
class SocialPlan(WorkerPlan):
    sub_keys: list[list[int]] = field(default_factory=list)  # per subscriber: its streams
    sub_topics: list[list[str]] = field(default_factory=list)  # per subscriber
    # the actor only
    members: int = 0
    shape: GraphShape = field(default_factory=GraphShape)
    graph_seed: int = 0
    member_auth: list[str] = field(default_factory=list)  # per member
    handles: list[str] = field(default_factory=list)  # per member
    # (at, author, friends-only, mentioned member or -1)
    posts: list[tuple[float, int, bool, int]] = field(default_factory=list)
    likes: list[float] = field(default_factory=list)  # when
    visits: list[float] = field(default_factory=list)  # when
    visit_blocked_share: float = 0.0
    used_pairs: list[tuple[int, int]] = field(default_factory=list)  # visited before
    base_url: str = ""


class SocialWorker(Worker):
    plan: SocialPlan

    def __init__(self, conn: Any, plan: SocialPlan) -> None:
        super().__init__(conn, plan)
        self.keys: dict[int, list[int]] = {}
        for sub, keys in zip(self.subs, plan.sub_keys, strict=True):
            sub.trackers = {k: SeqTracker() for k in keys}
            self.keys[sub.id] = keys
        self.topics = dict(zip(plan.sub_ids, plan.sub_topics, strict=True))
        self.arrived: list[tuple[int, str, str]] = []  # notifications read
        self.expected_notes: list[Notification] = []  # notifications the actor caused
        self.actions: collections.Counter[str] = collections.Counter()
        self.acked: dict[int, list[int]] = {}
        self.visited: list[tuple[int, int]] = []

    # --- members ----------------------------------------------------------------------

    async def connect_subscriber(self, sub: Subscriber, since: bool = False) -> None:
        sock = await self.open(sub.auth, sub.source)
        sub.sock = sock
        sock.trackers = sub.trackers
        sock.on_event = partial(self._on_event, sub.id)
        sock.closed.add_done_callback(partial(self._on_closed, sub, sock))
        topics = self.topics[sub.id]
        if isinstance(sock, SocketIOSocket):  # the peer: all rooms in one request
            await sock.request("subs", {"topics": topics}, self.plan.connect_within)
            return
        for topic in topics:
            await sock.subscribe(topic, within=self.plan.connect_within)

    def _on_event(self, sid: int, msg: dict[str, Any]) -> None:
        kind = str(msg.get("type"))
        data = msg.get("data")
        what = ""
        if isinstance(data, dict):
            if kind in ("like", "mention"):
                what = str(data.get("echo"))
            elif kind == "footprint":
                visitor = data.get("visitor")
                what = str(visitor.get("handle")) if isinstance(visitor, dict) else ""
        self.arrived.append((sid, kind, what))

    def alive_expected_and_got(self, acked_counts: dict[int, int]) -> tuple[int, int]:
        exp = got = 0
        for sub in self.subs:
            if sub.trackers is None or sub.sock is None:
                continue
            for key in self.keys[sub.id]:
                exp += acked_counts.get(key, 0)
                got += sub.trackers[key].distinct
        return exp, got

    # --- the actor --------------------------------------------------------------------

    async def connect_all(self) -> dict[str, Any]:
        stats = await super().connect_all()
        p = self.plan
        if p.member_auth:  # the actor: a socket per member that posts (or acts, peer)
            actors = {author for _, author, _, _ in p.posts}
            if p.target == "socketio":
                actors = set(range(p.members))  # likes and visits are socket events too
            sem = asyncio.Semaphore(max(1, p.concurrency))

            async def one(m: int) -> None:
                async with sem:
                    try:
                        self.posters[m] = await self.open(p.member_auth[m], p.sources[0])
                    except Exception as exc:
                        self.errors[f"poster_connect_{error_kind(exc)}"] += 1

            await asyncio.gather(*(one(m) for m in sorted(actors)))
            stats["posters"] = len(self.posters)
        return stats

    async def act(self, t0_ns: int) -> None:
        """Post, like and visit on the plan's schedule (one task, events in time order)."""
        p = self.plan
        graph = generate_graph(p.members, p.graph_seed, p.shape)
        rng = random.Random(f"social-actions:{p.seed}")
        used = {(int(v), int(o)) for v, o in p.used_pairs}
        loop = asyncio.get_running_loop()
        await asyncio.sleep(max(0.0, (t0_ns - time.time_ns()) / 1e9))
        base = loop.time()
        schedule = [(at, 0, a, fo, m) for at, a, fo, m in p.posts]
        schedule += [(at, 1, 0, False, -1) for at in p.likes]
        schedule += [(at, 2, 0, False, -1) for at in p.visits]
        schedule.sort(key=lambda e: e[0])
        seqs: collections.Counter[int] = collections.Counter()
        sent: dict[int, list[int]] = {}
        refused: set[tuple[int, int]] = set()
        pending: set[asyncio.Future[Any]] = set()
        actions: set[asyncio.Task[None]] = set()
        recent: collections.deque[tuple[int, bool, str]] = collections.deque(maxlen=RECENT_POSTS)
        liked: set[tuple[int, str]] = set()
        session = None
        if p.target == "echohub" and (p.likes or p.visits):
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=MAX_INFLIGHT_ACTIONS),
                timeout=aiohttp.ClientTimeout(total=p.connect_within),
            )

        def posted(
            key: int, seq: int, author: int, fo: bool, mention: int, fut: asyncio.Future[Any]
        ) -> None:
            pending.discard(fut)
            if fut.cancelled():
                return
            exc = fut.exception()
            if exc is None:
                self.post_stats["acked"] += 1
                res = fut.result()
                post = res.get("post") if isinstance(res, dict) else None
                if isinstance(post, dict) and isinstance(post.get("id"), str):
                    recent.append((author, fo, post["id"]))
                    # the peer has no mentions; Echo Hub tells whom the rules allow
                    if mention >= 0 and p.target == "echohub":
                        if mention_expected(graph, author, fo, mention):
                            self.expected_notes.append((mention, "mention", post["id"]))
            elif isinstance(exc, RequestFailed):
                refused.add((key, seq))
                self.post_stats["refused"] += 1
                self.errors[f"post_{error_kind(exc)}"] += 1
            else:
                self.errors[f"post_{error_kind(exc)}"] += 1

        def start(coro: Any) -> None:
            task = loop.create_task(coro)
            actions.add(task)
            task.add_done_callback(actions.discard)

        try:
            for at, kind, author, fo, mention in schedule:
                delay = base + at - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                if kind == 0:
                    if len(pending) >= MAX_INFLIGHT_POSTS:
                        finished, _ = await asyncio.wait(
                            set(pending), timeout=p.connect_within,
                            return_when=asyncio.FIRST_COMPLETED,
                        )  # fmt: skip
                        if not finished:  # no ack for a long while: stop offering
                            self.errors["post_server_stalled"] += 1
                            break
                    sock = self.posters.get(author)
                    if sock is None or not sock.is_open:
                        self.errors["post_socket_closed"] += 1
                        continue
                    key = stream_key(author, fo)
                    seq = seqs[key]
                    now_ns = time.time_ns()
                    self.post_lag.record(int((loop.time() - base - at) * 1e6))
                    self.last_post_ns = now_ns
                    try:
                        text = marker_text(key, seq, now_ns)
                        if mention >= 0:
                            text += f" @{p.handles[mention]}"
                        fut = post_nowait(sock, text, fo)
                    except Exception as exc:
                        self.errors[f"post_{error_kind(exc)}"] += 1
                        continue
                    seqs[key] += 1
                    self.posted += 1
                    sent.setdefault(key, []).append(seq)
                    pending.add(fut)
                    fut.add_done_callback(partial(posted, key, seq, author, fo, mention))
                elif len(actions) >= MAX_INFLIGHT_ACTIONS:
                    self.actions["skipped_busy"] += 1  # the server is slower than the plan
                elif kind == 1:
                    like = self._pick_like(graph, recent, liked, rng)
                    if like is not None:
                        start(self._like(session, *like))
                else:
                    visit = self._pick_visit(graph, used, rng)
                    if visit is not None:
                        start(self._visit(session, *visit, graph))
            if pending:
                await asyncio.wait(set(pending), timeout=p.connect_within)
            if actions:
                await asyncio.wait(set(actions), timeout=p.connect_within)
        finally:
            if session is not None:
                await session.close()
        self.post_stats["unacked"] += len(pending)
        self.acked = {k: [s for s in seqs_ if (k, s) not in refused] for k, seqs_ in sent.items()}

    def _pick_like(
        self, graph: Any, recent: collections.deque[tuple[int, bool, str]],
        liked: set[tuple[int, str]], rng: random.Random,
    ) -> tuple[int, int, str] | None:  # fmt: skip
        for _ in range(5):
            if not recent:
                return None
            author, fo, post_id = recent[rng.randrange(len(recent))]
            liker = pick_liker(graph, author, fo, rng)
            if liker is not None and (liker, post_id) not in liked:
                liked.add((liker, post_id))
                return liker, author, post_id
        self.actions["like_no_candidate"] += 1
        return None

    def _pick_visit(
        self, graph: Any, used: set[tuple[int, int]], rng: random.Random
    ) -> tuple[int, int] | None:
        share = self.plan.visit_blocked_share
        for _ in range(20):
            pair = pick_visit(graph, rng, share)
            if pair not in used and pair[0] != pair[1]:
                used.add(pair)
                return pair
        self.actions["visit_no_candidate"] += 1
        return None

    async def _like(self, session: Any, liker: int, author: int, post_id: str) -> None:
        p = self.plan
        try:
            if session is None:  # the peer: a socket event
                await peer_socket(self.posters[liker]).request(
                    "like", {"author": p.handles[author], "echo": post_id}, p.connect_within
                )
            else:
                await _http(session, p, "POST", f"/api/echoes/{post_id}/like", liker)
        except Exception as exc:
            self.errors[f"like_{error_kind(exc)}"] += 1
            return
        self.actions["likes"] += 1
        self.expected_notes.append((author, "like", post_id))

    async def _visit(self, session: Any, visitor: int, owner: int, graph: Any) -> None:
        p = self.plan
        self.visited.append((visitor, owner))
        try:
            if session is None:
                await peer_socket(self.posters[visitor]).request(
                    "visit", {"owner": p.handles[owner]}, p.connect_within
                )
            else:
                status = await _http(session, p, "GET", f"/api/users/{p.handles[owner]}", visitor,
                                     ok=(200, 403))  # fmt: skip
                if status == 403:  # the owner blocked the visitor: no profile, no footprint
                    self.actions["visits_refused"] += 1
        except Exception as exc:
            self.errors[f"visit_{error_kind(exc)}"] += 1
            return
        self.actions["visits"] += 1
        if footprint_expected(graph, visitor, owner):
            self.expected_notes.append((owner, "footprint", p.handles[visitor]))

    # --- the measured phase -----------------------------------------------------------

    async def run_measured(self) -> None:
        p = self.plan
        cmd = await self.command("go")
        if cmd[0] == "stop":
            return
        t0_ns: int = cmd[1]
        self.running = True
        cpu0, wall0 = time.process_time(), time.monotonic()
        ticker = asyncio.create_task(self.ticker(t0_ns))
        if p.member_auth:
            await self.act(t0_ns)
        self.send("posters_done", p.index, self.acked)
        cmd = await self.command("drain")
        if cmd[0] == "stop":
            return
        acked: dict[int, list[int]] = cmd[1]
        drain_s: float = cmd[2]
        await self.drain(acked, drain_s)
        # notifications are few and come over HTTP round trips: give the last a moment
        await asyncio.sleep(min(0.5, drain_s))
        self.running = False
        cpu = time.process_time() - cpu0
        wall = time.monotonic() - wall0
        ticker.cancel()
        c = self.counters
        total = SocialCount(wrong=c.foreign)
        for sub in self.subs:
            if sub.trackers is not None:
                total.add(account_member(self.keys[sub.id], sub.trackers, acked))
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
                    "wrong": total.wrong,
                },
                "counted_frames": c.delivered,
                "reads": c.reads,
                "foreign": c.foreign,
                "last_read_ns": c.now_ns,
                "final_hist": c.take_hist().encode(),
                "errors": dict(self.errors),
                "cpu_s": cpu,
                "wall_s": wall,
                "resume": {},
                "resume_hist": b"",
                "posts": dict(self.post_stats),
                "post_lag_hist": self.post_lag.encode(),
                "last_post_ns": self.last_post_ns,
                "notifications": self.arrived,
                "expected_notifications": self.expected_notes,
                "actions": dict(self.actions),
                "visited": self.visited,
            },
        )


def peer_socket(sock: Sock) -> SocketIOSocket:
    assert isinstance(sock, SocketIOSocket)  # likes and visits go over sockets on the peer
    return sock


def post_nowait(sock: Sock, text: str, friends_only: bool) -> asyncio.Future[Any]:
    visibility = "friends" if friends_only else "public"
    if isinstance(sock, SocketIOSocket):
        return sock.request_nowait("post", {"text": text, "visibility": visibility})
    return sock.request_nowait({"op": "post", "text": text, "visibility": visibility})


async def _http(
    session: aiohttp.ClientSession, p: SocialPlan, method: str, path: str, member: int,
    ok: tuple[int, ...] = (200, 201),
) -> int:  # fmt: skip
    headers = {"Authorization": f"Bearer {p.member_auth[member]}"}
    async with session.request(method, p.base_url + path, headers=headers) as resp:
        await resp.read()
        if resp.status not in ok:
            raise RequestFailed(f"http_{resp.status}")
        return resp.status
