"""Engine CPU per post: one engine (today's bus) against a local cluster (the cluster bus).

A post is published the way Echo Hub publishes one: stored (HSET + ZADD along) and put
on its author's channel, `public` and `mod`. On one engine that is one script call
(today's `RedisBus.publish`); on a cluster it is one script per channel slot
(`ClusterBus.publish`: the author's with the writes, then `public` and `mod`), with
`WAIT 1` behind the author's when the cluster has replicas. The script reports the
CPU time (user + system, from /proc) of every engine process per post, and this
process's own, so an operator can see what moving to a cluster costs and where one
engine saturates (1 s of engine CPU / engine µs per post = posts/s at 100% of a core).

    .venv/bin/python scripts/clusterbench.py --posts 3000 --primaries 3 --replicas 1

Loopback only; bounded by --posts. Measured figures are in the README (Cluster).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

import orjson
import redis.asyncio as aioredis

from server.bus import RedisBus
from server.cluster import LocalCluster
from server.cluster_bus import ClusterBus
from server.engine import EmbeddedEngine
from server.store.cluster_resp import ClusterEngineClient
from server.store.resp import EngineClient

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def body(i: int) -> bytes:
    return orjson.dumps({"t": "post.created", "d": {
        "id": f"{i:020x}", "author": {"handle": "aki", "display_name": "Aki"},
        "text": "hello from the bench", "segments": [{"text": "hello from the bench"}],
        "visibility": "public", "created_at": "2026-12-05T00:00:00.000Z"}})  # fmt: skip


async def single(posts: int, concurrency: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        engine = EmbeddedEngine(Path(tmp))
        url = engine.start()
        client = aioredis.Redis.from_url(url)
        lean = EngineClient(url)
        bus = RedisBus(url, client, lean)
        assert engine.process is not None
        pids = [engine.process.pid]
        try:
            return await _run(pids, posts, concurrency, lambda i: bus.publish(
                [("user:aki", body(i)), ("public", body(i)), ("mod", body(i))],
                along=[("HSET", f"eh:post:{i}", "text", "x"), ("ZADD", "eh:posts:aki", i, i)],
            ))  # fmt: skip
        finally:
            await lean.aclose()
            await client.aclose()
            engine.stop()


async def cluster(posts: int, concurrency: int, primaries: int, replicas: int
                  ) -> tuple[float, float]:  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        local = LocalCluster(Path(tmp) / "c", primaries=primaries, replicas=replicas)
        url = local.start()
        engine = ClusterEngineClient(url)
        bus = ClusterBus(engine, lambda event: None)
        pids = [n.process.pid for n in local.nodes if n.process is not None]

        async def post(i: int) -> None:
            await bus.publish("user:aki", body(i), replicas=min(replicas, 1), along=[
                ("HSET", f"eh:{{user:aki}}:post:{i}", "text", "x"),
                ("ZADD", "eh:{user:aki}:posts", i, i)])  # fmt: skip
            await asyncio.gather(bus.publish("public", body(i)), bus.publish("mod", body(i)))

        try:
            return await _run(pids, posts, concurrency, post)
        finally:
            await bus.aclose()
            await engine.aclose()
            local.stop()


async def _run(pids: list[int], posts: int, concurrency: int, post: object
               ) -> tuple[float, float]:  # fmt: skip
    for i in range(50):  # warm up: scripts loaded, connections open
        await post(-1 - i)  # type: ignore[operator]
    engine_before = sum(cpu_seconds(p) for p in pids)
    own_before = time.process_time()
    queue = iter(range(posts))

    async def worker() -> None:
        for i in queue:
            await post(i)  # type: ignore[operator]

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    engine_cpu = sum(cpu_seconds(p) for p in pids) - engine_before
    own_cpu = time.process_time() - own_before
    return engine_cpu / posts * 1e6, own_cpu / posts * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--primaries", type=int, default=3)
    parser.add_argument("--replicas", type=int, default=1)
    args = parser.parse_args()
    rows = [("one engine", *await single(args.posts, args.concurrency))]
    label = f"cluster {args.primaries}+{args.primaries * args.replicas}"
    rows.append((label, *await cluster(args.posts, args.concurrency, args.primaries,
                                       args.replicas)))  # fmt: skip
    print("| engine | engine CPU per post (all nodes) | client CPU per post |")
    print("|---|---|---|")
    for name, engine_us, client_us in rows:
        print(f"| {name} | {engine_us:.1f} µs | {client_us:.1f} µs |")


if __name__ == "__main__":
    asyncio.run(main())
