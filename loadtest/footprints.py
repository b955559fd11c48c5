"""The ``footprints`` scenario: profile visits become live notifications to the owner.

Owners subscribe to ``me``; visitors ``GET /api/users/{owner}`` over HTTP. Every first
visit of a (visitor, owner) pair must produce exactly one ``footprint`` event for the
owner (latency: visit sent → event read), and a repeat visit within the hour none.
Low rates by nature (each visit is an HTTP request), so it runs in the parent process
with full decoding of every frame.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from typing import Any

import aiohttp

from loadtest.accounts import Api, create_accounts, inviter_token, run_prefix
from loadtest.client import Counters, EchoHubSocket, close_all, connect_echohub
from loadtest.codec import CODECS
from loadtest.stats import LatencyHistogram


def _strings(obj: Any) -> list[str]:
    if isinstance(obj, str):
        return [obj]
    if isinstance(obj, dict):
        return [s for v in obj.values() for s in _strings(v)]
    if isinstance(obj, list):
        return [s for v in obj for s in _strings(v)]
    return []


async def footprints(cfg: Any, progress: Any) -> dict[str, Any]:
    result: dict[str, Any] = {
        "scenario": "footprints",
        "target": cfg.target,
        "url": cfg.url,
        "label": cfg.label,
        "params": {
            "clients": cfg.owners,
            "visitors": cfg.visitors,
            "owners": cfg.owners,
            "rate": cfg.rate,
            "duration": cfg.duration,
            "procs": 1,
            "codec": cfg.codec,
        },
        "errors": {},
        "notes": [],
    }
    if cfg.target != "echohub":
        result["notes"].append("footprints: the socketio peer has no footprints; skipped")
        return result
    host, port = cfg.host_port
    codec = CODECS[cfg.codec]
    errors: Counter[str] = Counter()
    prefix = run_prefix()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        api = Api(cfg.url, session)
        token = await inviter_token(
            api,
            token=cfg.token,
            invite=cfg.invite,
            prefix=prefix,
            data_dir=cfg.data_dir,
            redis_url=cfg.redis_url,
            log=progress.log,
        )
        handles = [f"{prefix}o{i}" for i in range(cfg.owners)]
        handles += [f"{prefix}v{i}" for i in range(cfg.visitors)]
        # The scenario's own graph: the inviter befriends nobody.
        accounts = await create_accounts(
            api, token, handles, progress=progress.status, befriend=False
        )
        progress.done()
        owners, visitors = accounts[: cfg.owners], accounts[cfg.owners :]
        visitor_handles = {v.handle for v in visitors}
        counters = Counters()
        sent: dict[tuple[str, str], int] = {}
        got: Counter[tuple[str, str]] = Counter()
        hist = LatencyHistogram()
        socks: list[EchoHubSocket] = []

        def on_event_for(owner: str) -> Any:
            def on_event(msg: dict[str, Any]) -> None:
                if msg.get("type") != "footprint":
                    return
                now = time.time_ns()
                for s in _strings(msg.get("data")):
                    if s in visitor_handles:
                        key = (s, owner)
                        got[key] += 1
                        if key in sent and got[key] == 1:
                            hist.record((now - sent[key]) // 1000)
                        break

            return on_event

        connect_hist = LatencyHistogram()
        try:
            for o in owners:
                t = time.perf_counter_ns()
                sock = await connect_echohub(host, port, codec, counters, token=o.token)
                sock.on_event = on_event_for(o.handle)
                await sock.subscribe("me")
                connect_hist.record((time.perf_counter_ns() - t) // 1000)
                socks.append(sock)
            pairs = [(v, o) for v in visitors for o in owners]
            random.Random(cfg.seed).shuffle(pairs)
            total = min(len(pairs), max(1, int(cfg.rate * cfg.duration)))
            pairs = pairs[:total]
            repeats = pairs[: max(1, total // 10)]  # must not notify again within the hour
            sem = asyncio.Semaphore(32)
            loop = asyncio.get_running_loop()
            base = loop.time()
            ok_visits: set[tuple[str, str]] = set()

            async def visit(i: int, v: Any, o: Any, first: bool) -> None:
                delay = base + i / max(cfg.rate, 0.001) - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                async with sem:
                    key = (v.handle, o.handle)
                    t = time.time_ns()
                    if first:
                        sent[key] = t
                    try:
                        await api.visit(v.token, o.handle)
                    except Exception as exc:
                        errors[f"visit_{getattr(exc, 'status', type(exc).__name__)}"] += 1
                        if first:
                            sent.pop(key, None)
                        return
                    if first:
                        ok_visits.add(key)

            progress.log(f"footprints: {total} visits over {cfg.duration:g} s")
            await asyncio.gather(*(visit(i, v, o, True) for i, (v, o) in enumerate(pairs)))
            await asyncio.sleep(1.0)  # first-visit notifications are out before the repeats
            before_repeats = Counter(got)
            await asyncio.gather(*(visit(0, v, o, False) for v, o in repeats))
            deadline = time.monotonic() + cfg.drain
            while time.monotonic() < deadline:
                if all(got[k] for k in ok_visits):
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)  # a late repeat notification would land here
        finally:
            await close_all(socks)
    expected = len(ok_visits)
    delivered = sum(1 for k in ok_visits if got[k])
    repeat_keys = {(v.handle, o.handle) for v, o in repeats}
    repeat_notifications = sum(got[k] - before_repeats[k] for k in repeat_keys)
    duplicated = sum(max(0, n - 1) for k, n in before_repeats.items())
    result["connect"] = {
        "attempted": len(owners),
        "connected": len(socks),
        "failed": len(owners) - len(socks),
        "latency_us": connect_hist.summary(),
    }
    result["delivery"] = {
        "posted": expected,
        "post_errors": sum(errors.values()),
        "expected": expected,
        "delivered": delivered,
        "lost": expected - delivered,
        "duplicated": duplicated,
        "unexpected": sum(n for k, n in got.items() if k not in sent and k not in repeat_keys),
    }
    result["footprints"] = {
        "visits": expected,
        "notifications": delivered,
        "repeat_visits": len(repeats),
        "repeat_notifications": repeat_notifications,
    }
    result["latency_us"] = hist.summary()
    result["latency_distribution"] = hist.distribution()
    result["errors"] = dict(errors)
    if expected and delivered == 0:
        result["notes"].append("no footprint notification arrived: does the server have them?")
    return result


def run_footprints(cfg: Any, progress: Any) -> dict[str, Any]:
    return asyncio.run(footprints(cfg, progress))
