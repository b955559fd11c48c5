"""The ``social`` scenario: the workload of a real network rather than one broadcast.

M members on a seeded power-law follow graph (:mod:`loadtest.graph`), every online
member's socket on ``home`` and ``me``, posts (10% friends-only), likes and profile
visits at a fixed rate or on a daily-activity curve. Every delivery is checked against
the graph: what arrived where it must not is WRONG (and fails the run), beside lost
and duplicated. The report adds what a post costs: server and engine CPU per post and
per delivery, RSS per socket, and the load generator's own CPU.

Setup goes through the API, concurrently: sign-ups, then every follow, block and mute.
With a kept data directory (``--data-dir`` without ``--url``, or ``--social-cache``)
the accounts are saved there, keyed by members and seed, and the next run with the
same graph skips the setup. The peer (``--target socketio``) needs no setup: each
client joins the rooms the graph gives it.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

import aiohttp

from loadtest import procstat
from loadtest.accounts import Api, ApiError, create_accounts, inviter_token, run_prefix
from loadtest.graph import (
    GraphShape,
    Notification,
    SocialGraph,
    account_notifications,
    event_times,
    generate_graph,
    plan_posts,
)
from loadtest.runner import (
    SAMPLES_PER_S_PER_PROC,
    Orchestra,
    Progress,
    RunConfig,
    default_procs,
    merge_connect,
    run_measured,
    source_addresses,
)
from loadtest.social_worker import SocialPlan

CACHE_VERSION = 1
#: HTTP requests in flight while building the graph.
SETUP_CONCURRENCY = 64
SIGNUP_CONCURRENCY = 16


# --- the cast -------------------------------------------------------------------------


def cache_file(cfg: RunConfig, shape: GraphShape) -> Path | None:
    if not cfg.social_cache:
        return None
    name = f"loadtest-social-{cfg.members}-{cfg.seed}-{shape.avg_follows:g}.json"
    return Path(cfg.social_cache) / name


async def _valid(api: Api, token: str, handle: str) -> bool:
    try:
        me = await api.call("GET", "/api/me", token=token, retries=1)
    except ApiError:
        return False
    user = me.get("user", me) if isinstance(me, dict) else {}
    return isinstance(user, dict) and user.get("handle") == handle


async def provision(
    cfg: RunConfig, graph: SocialGraph, shape: GraphShape, progress: Progress
) -> tuple[list[str], list[str], dict[str, Any]]:
    """``(handles, tokens, setup)`` of the graph's members on Echo Hub: from the cache
    if it still holds (its tokens still work), else built through the API now."""
    path = cache_file(cfg, shape)
    timeout = aiohttp.ClientTimeout(total=120)
    connector = aiohttp.TCPConnector(limit=SETUP_CONCURRENCY)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        api = Api(cfg.url, session)
        saved: dict[str, Any] = {}
        if path is not None and path.exists():
            try:
                saved = json.loads(path.read_text())
            except ValueError:
                saved = {}
            handles, tokens = saved.get("handles", []), saved.get("tokens", [])
            if (
                saved.get("version") == CACHE_VERSION
                and saved.get("shape") == asdict(shape)
                and len(tokens) == graph.members == len(handles)
                and await _valid(api, tokens[0], handles[0])
                and await _valid(api, tokens[-1], handles[-1])
            ):
                if saved.get("graph_done"):
                    progress.log(f"social: {graph.members} members and their graph from {path}")
                    return handles, tokens, {"cached": True, "visited": saved.get("visited", [])}
                # signed up, graph unfinished (an interrupted setup): every edit again,
                # they are idempotent
                progress.log(f"social: {graph.members} members from {path}, finishing the graph")
                setup = await build(api, cfg, graph, progress, accounts=(handles, tokens))
                del setup["handles"], setup["tokens"]  # never into a report
                setup["visited"] = saved.get("visited", [])  # still within their hour
                save_cache(path, shape, handles, tokens, setup["visited"], graph_done=True)
                return handles, tokens, setup
        setup = await build(api, cfg, graph, progress, save=path, shape=shape)
        handles, tokens = setup.pop("handles"), setup.pop("tokens")
        if path is not None:
            save_cache(path, shape, handles, tokens, [], graph_done=True)
        return handles, tokens, setup


def save_cache(
    path: Path, shape: GraphShape, handles: list[str], tokens: list[str], visited: list[Any],
    *, graph_done: bool,
) -> None:  # fmt: skip
    data = {"version": CACHE_VERSION, "shape": asdict(shape), "handles": handles,
            "tokens": tokens, "visited": visited, "graph_done": graph_done}  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data) + "\n")
    path.chmod(0o600)  # tokens are credentials of the test accounts


async def build(
    api: Api, cfg: RunConfig, graph: SocialGraph, progress: Progress, *,
    accounts: tuple[list[str], list[str]] | None = None, save: Path | None = None,
    shape: GraphShape | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Sign the members up (unless `accounts` are given: handles and tokens) and make
    every follow, block and mute, concurrently. With `save`, the accounts are saved
    there as soon as they exist, so an interrupted setup resumes at the graph."""
    t0 = time.monotonic()
    if accounts is None:
        prefix = run_prefix()
        token = await inviter_token(
            api, token=cfg.token, invite=cfg.invite, prefix=prefix, data_dir=cfg.data_dir,
            redis_url=cfg.redis_url, log=progress.log,
        )  # fmt: skip
        handles = [f"{prefix}m{i}" for i in range(graph.members)]
        progress.log(f"social: signing up {graph.members} members ({prefix}*)")
        made = await create_accounts(
            api, token, handles, concurrency=SIGNUP_CONCURRENCY, progress=progress.status,
            befriend=False,
        )  # fmt: skip
        progress.done()
        tokens = [a.token for a in made]
        if save is not None and shape is not None:
            save_cache(save, shape, handles, tokens, [], graph_done=False)
    else:
        handles, tokens = accounts
    t_signup = time.monotonic() - t0
    edits = [("follow", a, b) for a in range(graph.members) for b in sorted(graph.following[a])]
    edits += [("block", a, b) for a in range(graph.members) for b in sorted(graph.blocking[a])]
    mutes = [("mute", a, b) for a in range(graph.members) for b in sorted(graph.muting[a])]
    progress.log(f"social: {len(edits)} follows and blocks, then {len(mutes)} mutes")
    t1 = time.monotonic()
    await graph_edits(api, tokens, handles, edits, progress)
    await graph_edits(api, tokens, handles, mutes, progress)  # mute what is followed by now
    progress.done()
    t_graph = time.monotonic() - t1
    return {
        "cached": False,
        "handles": handles,
        "tokens": tokens,
        "signup_s": round(t_signup, 1),
        "graph_s": round(t_graph, 1),
        "graph_edits_per_s": round((len(edits) + len(mutes)) / max(t_graph, 1e-6), 1),
        "visited": [],
    }


async def graph_edits(
    api: Api, tokens: list[str], handles: list[str], edits: list[tuple[str, int, int]],
    progress: Progress,
) -> None:  # fmt: skip
    done = 0
    queue = iter(edits)

    async def lane() -> None:
        nonlocal done
        for kind, a, b in queue:  # lanes share one iterator: each edit is made once
            await api.call("POST", f"/api/users/{handles[b]}/{kind}", token=tokens[a])
            done += 1
            if done % 1000 == 0:
                progress.status(f"social: graph {done:,}/{len(edits):,}")

    await asyncio.gather(*(lane() for _ in range(min(SETUP_CONCURRENCY, len(edits)) or 1)))


# --- plans ----------------------------------------------------------------------------


def rooms_of(graph: SocialGraph, handles: list[str], member: int) -> list[str]:
    """The peer's rooms for a member: what its Echo Hub ``home`` and ``me`` carry."""
    out = []
    for a in sorted(graph.home(member)):
        out.append(f"user:{handles[a]}")
        if a == member or graph.friends(member, a):
            out.append(f"friends:{handles[a]}")
    out.append(f"me:{handles[member]}")
    return out


def online_members(cfg: RunConfig) -> list[int]:
    rng = random.Random(f"social-online:{cfg.seed}")
    n = max(1, min(cfg.members, round(cfg.online * cfg.members)))
    return sorted(rng.sample(range(cfg.members), n))


def make_social_plans(
    cfg: RunConfig, graph: SocialGraph, shape: GraphShape, handles: list[str],
    auth: list[str], online: list[int], procs: int, visited: list[Any],
) -> list[SocialPlan]:  # fmt: skip
    host, port = cfg.host_port
    times = event_times(cfg.rate, cfg.duration, curve=cfg.curve, start_hour=cfg.start_hour)
    posts = plan_posts(graph, times, cfg.seed, friends_share=cfg.friends_share,
                       mention_share=cfg.mention_share)  # fmt: skip
    likes = event_times(cfg.rate * cfg.like_ratio, cfg.duration, curve=cfg.curve,
                        start_hour=cfg.start_hour)  # fmt: skip
    visits = event_times(cfg.visit_rate, cfg.duration, curve=cfg.curve, start_hour=cfg.start_hour)
    per_post = sum(len(graph.audience(p.author, p.friends_only)) for p in posts[:2000])
    per_post_avg = per_post / max(1, min(len(posts), 2000))
    per_proc_rate = cfg.rate * per_post_avg * len(online) / max(1, cfg.members) / procs
    sample_every = cfg.sample_every or max(1, round(per_proc_rate / SAMPLES_PER_S_PER_PROC))
    common: dict[str, Any] = {
        "scenario": "social", "target": cfg.target, "host": host, "port": port,
        "codec": cfg.codec, "topics": [], "topic_posters": [], "poster_ids": [],
        "poster_auth": [], "n_posters": 0, "rate_per_poster": 0.0, "duration": cfg.duration,
        "sample_every": sample_every, "sources": source_addresses(cfg.sources),
        "concurrency": cfg.concurrency, "seed": cfg.seed,
    }  # fmt: skip
    plans = []
    for w in range(procs):
        mine = online[w::procs]
        plans.append(
            SocialPlan(
                index=w,
                sub_ids=mine,
                sub_auth=[auth[m] for m in mine],
                sub_keys=[graph.keys_of(m) for m in mine],
                sub_topics=[
                    rooms_of(graph, handles, m) if cfg.target == "socketio" else ["home", "me"]
                    for m in mine
                ],
                **common,
            )
        )
    plans.append(
        SocialPlan(
            index=procs,
            sub_ids=[],
            sub_auth=[],
            members=graph.members,
            shape=shape,
            graph_seed=cfg.seed,
            member_auth=auth,
            handles=handles,
            posts=[(p.at, p.author, p.friends_only, p.mention) for p in posts],
            likes=likes,
            visits=visits,
            # the peer has no blocks: only visits that must notify are sent to it
            visit_blocked_share=0.1 if cfg.target == "echohub" else 0.0,
            used_pairs=[tuple(v) for v in visited],
            base_url=cfg.url.rstrip("/"),
            **common,
        )
    )
    return plans


# --- the run --------------------------------------------------------------------------


def run_social(cfg: RunConfig, progress: Progress) -> dict[str, Any]:
    shape = GraphShape(avg_follows=cfg.avg_follows)
    graph = generate_graph(cfg.members, cfg.seed, shape)
    online = online_members(cfg)
    setup: dict[str, Any]
    if cfg.target == "socketio":
        prefix = run_prefix()
        handles = [f"{prefix}m{i}" for i in range(cfg.members)]
        auth = handles
        setup = {"cached": False, "visited": []}
    else:
        handles, auth, setup = asyncio.run(provision(cfg, graph, shape, progress))
    procs = cfg.procs or default_procs()
    procs = max(1, min(procs, len(online)))
    cfg.clients = len(online)
    cfg.posters = 1  # the actor process (for the offered-rate arithmetic)
    plans = make_social_plans(cfg, graph, shape, handles, auth, online, procs,
                              setup.get("visited", []))  # fmt: skip
    summary = graph.summary()
    progress.log(
        f"social on {cfg.target} at {cfg.url}: {cfg.members} members ({len(online)} online, "
        f"{summary['follows_per_member']} follows each, top followed by "
        f"{summary['followers_max_share']:.0%}), {cfg.rate:g} posts/s for {cfg.duration:g} s"
        f"{' on a daily curve' if cfg.curve else ''}, {procs} procs + actor"
    )
    result: dict[str, Any] = {
        "scenario": "social",
        "target": cfg.target,
        "url": cfg.url,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "label": cfg.label,
        "params": {
            "clients": len(online),
            "members": cfg.members,
            "online": len(online),
            "posters": len({a for _, a, _, _ in plans[-1].posts}),
            "rate": cfg.rate,
            "duration": cfg.duration,
            "curve": cfg.curve,
            "friends_share": cfg.friends_share,
            "like_ratio": cfg.like_ratio,
            "mention_share": cfg.mention_share,
            "visit_rate": cfg.visit_rate,
            "procs": procs,
            "poster_proc": True,
            "codec": cfg.codec if cfg.target == "echohub" else "socket.io json",
            "sources": cfg.sources,
            "sample_every": plans[0].sample_every,
            "topic": "home+me" if cfg.target == "echohub" else "rooms",
            "seed": cfg.seed,
        },
        "graph": summary,
        "setup": {k: v for k, v in setup.items() if k != "visited"},
        "errors": {},
        "notes": [],
    }
    rss0 = procstat.rss_kb(cfg.server_pid) if cfg.server_pid else None
    orch = Orchestra(cfg, plans, progress)
    try:
        t_connect = time.monotonic()
        ready = orch.collect("ready", 120 + len(online) / 50)
        result["connect"] = merge_connect(ready, time.monotonic() - t_connect)
        progress.done()
        sockets = sum(r["connected"] + r.get("posters", 0) for r in ready.values())
        if cfg.server_pid:
            time.sleep(0.5)  # let the server settle its buffers
            rss1 = procstat.rss_kb(cfg.server_pid)
            if rss0 is not None and rss1 is not None and sockets:
                result["rss"] = {"before_kb": rss0, "connected_kb": rss1, "sockets": sockets,
                                 "per_socket_kb": round((rss1 - rss0) / sockets, 2)}  # fmt: skip
        results = run_measured(cfg, orch, result, progress)
    finally:
        progress.done()
        orch.finish()
    summarise(cfg, result, results, handles)
    path = cache_file(cfg, shape)
    if path is not None and path.exists() and cfg.target == "echohub":
        visited = setup.get("visited", []) + [v for r in results.values() for v in r["visited"]]
        save_cache(path, shape, handles, list(auth), visited, graph_done=True)
    return result


def summarise(
    cfg: RunConfig, result: dict[str, Any], results: dict[int, Any], handles: list[str]
) -> None:
    """Add the social accounting and the costs per post to a run's result."""
    d = result["delivery"]
    d["wrong"] = sum(r["delivery"].get("wrong", 0) for r in results.values())
    expected: list[Notification] = [
        (int(m), str(k), str(w))
        for r in results.values()
        for m, k, w in r["expected_notifications"]
    ]
    arrived: list[Notification] = [
        (int(m), str(k), str(w)) for r in results.values() for m, k, w in r["notifications"]
    ]
    notes = account_notifications(expected, arrived)
    by_kind: Counter[str] = Counter(kind for _, kind, _ in expected)
    actions: Counter[str] = Counter()
    for r in results.values():
        actions.update(r.get("actions", {}))
    result["notifications"] = {
        "expected": notes.expected, "delivered": notes.delivered, "lost": notes.lost,
        "duplicated": notes.duplicated, "wrong": notes.wrong, "likes": by_kind["like"],
        "footprints": by_kind["footprint"], "mentions": by_kind["mention"], **actions,
    }  # fmt: skip
    # every post sent and not refused: those acked late (an overloaded server) count
    # too, as their deliveries and the server's CPU (measured after the drain) do
    posts = d["posted"] - d["post_errors"]
    social = result.setdefault("social", {})
    social["posts"] = posts
    social["deliveries_per_post"] = round(d["expected"] / posts, 1) if posts else None
    server = result.get("server")
    counted = d["delivered"]
    if server and posts:
        own, kids = server["cpu_s"], server["children_cpu_s"]
        server["cpu_us_per_post"] = round(own * 1e6 / posts, 1)
        server["engine_cpu_us_per_post"] = round(kids * 1e6 / posts, 1)
        server["engine_utilisation"] = round(kids / max(1e-6, result["throughput"]["span_s"]), 3)
        if counted:
            server["cpu_us_per_delivery"] = round(own * 1e6 / counted, 3)
    client = sum(c["cpu_s"] for c in result.get("client_cpu", []))
    result["generator"] = {
        "cpu_s": round(client, 3),
        "cpu_us_per_delivery": round(client * 1e6 / counted, 3) if counted else None,
        "saturated": any(c["saturated"] for c in result.get("client_cpu", [])),
    }
    bad = []
    for what, n in (("WRONG", d["wrong"] + notes.wrong), ("lost", d["lost"] + notes.lost),
                    ("duplicated", d["duplicated"] + notes.duplicated)):  # fmt: skip
        if n:
            bad.append(f"{n} {what}")
    result["failed"] = bool(bad)
    if bad:
        result["notes"].insert(0, "FAILED: " + ", ".join(bad) + " deliveries")
