"""Several real server processes on one engine; engine loss; clean stops."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import aiohttp

from server.engine import EmbeddedEngine
from tests.support import (
    Member,
    Server,
    receive_until,
    signup,
    start_server,
    stop_server,
    wait_ready,
)


def engine_pids(data_dir: Path) -> list[int]:
    """valkey/redis server processes serving `data_dir` (they rewrite their title)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if (b"valkey-server" in raw or b"redis-server" in raw) and str(data_dir).encode() in raw:
            pids.append(int(entry))
    return pids


async def post(server: Server, who: Member, text: str) -> dict[str, Any]:
    resp = await server.post("/api/echoes", json={"text": text}, headers=who.auth)
    assert resp.status == 201, await resp.text()
    created: dict[str, Any] = await resp.json()
    return created


async def sub(ws: Any, topic: str, **extra: Any) -> dict[str, Any]:
    await ws.send_json({"op": "sub", "id": topic, "topic": topic, **extra})
    frames = await receive_until(ws, lambda f: f["op"] in ("ack", "error"))
    assert frames[-1]["op"] == "ack", frames[-1]
    return frames[-1]


async def test_post_on_a_reaches_follower_on_b(two_servers: tuple[Server, Server],
                                               rdb: Any) -> None:  # fmt: skip
    a, b = two_servers
    aki = await signup(a, rdb, "aki")
    ben = await signup(b, rdb, "ben")
    resp = await b.post("/api/users/aki/follow", headers=ben.auth)
    assert resp.status == 200
    home_b = await b.ws(ben)
    await sub(home_b, "home")
    public_a = await a.ws(ben)
    await sub(public_a, "public")
    created = await post(a, aki, "across $[shake processes]")
    for ws in (home_b, public_a):
        event = (await receive_until(ws, lambda f: f["op"] == "event"))[-1]
        assert event["type"] == "post.created" and event["data"]["id"] == created["id"]
    resp = await a.delete(f"/api/echoes/{created['id']}", headers=aki.auth)
    assert resp.status == 200
    for ws in (home_b, public_a):
        event = (await receive_until(ws, lambda f: f["op"] == "event"))[-1]
        assert event["type"] == "post.deleted" and event["data"]["id"] == created["id"]
        await ws.close()


async def test_a_suspension_on_a_closes_the_members_sockets_on_b_with_4003(
    two_servers: tuple[Server, Server], rdb: Any
) -> None:
    a, b = two_servers
    admin = await signup(a, rdb, "root", admin=True)
    ben = await signup(b, rdb, "ben")
    sockets = [await b.ws(ben), await a.ws(ben)]
    for ws in sockets:
        await sub(ws, "public")
    resp = await a.post("/api/mod/users/ben/suspend", json={"reason": "spam"},
                        headers=admin.auth)  # fmt: skip
    assert resp.status == 200, await resp.text()
    for ws in sockets:
        msg = await ws.receive(timeout=5)
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4003
        await ws.close()
    assert (await b.get("/api/me", headers=ben.auth)).status == 401


async def test_resume_on_the_other_process(two_servers: tuple[Server, Server], rdb: Any) -> None:
    a, b = two_servers
    reader = await signup(a, rdb, "reader")
    authors = [await signup(a, rdb, name) for name in ("one", "two", "three")]
    for author in authors:
        assert (await a.post(f"/api/users/{author.handle}/follow",
                             headers=reader.auth)).status == 200  # fmt: skip
    ws = await a.ws(reader)
    ack = await sub(ws, "home")
    await ws.close()
    sent = []
    for i in range(30):
        author = authors[i % 3]
        sent.append((await post(a if i % 2 else b, author, f"{author.handle} {i}"))["id"])
    ws = await b.ws(reader)
    resumed = await sub(ws, "home", since=ack["cursor"])
    assert resumed["recovered"] is True
    frames = await receive_until(ws, lambda f: f.get("data", {}).get("id") == sent[-1])
    events = [f for f in frames if f["op"] == "event"]
    assert [e["data"]["id"] for e in events] == sent
    cursors = [int(e["cursor"]) for e in events]
    assert cursors == sorted(set(cursors))
    # Live after replay, with no gap and no duplicate.
    extra = await post(a, authors[0], "live")
    frame = (await receive_until(ws, lambda f: f["op"] == "event"))[-1]
    assert frame["data"]["id"] == extra["id"]
    await ws.close()


async def test_engine_restart_under_a_running_server(tmp_path: Path) -> None:
    import redis.asyncio as aioredis

    engine = EmbeddedEngine(tmp_path / "engine")
    url = engine.start()
    server = start_server("--redis-url", url)
    rdb = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        aki = await signup(server, rdb, "aki")
        ws = await server.ws(aki)
        await sub(ws, "user:aki")
        first = await post(server, aki, "before")
        await receive_until(ws, lambda f: f["op"] == "event")
        engine.stop()
        resp = await server.get("/readyz")
        assert resp.status == 503
        resp = await server.get("/api/me", headers=aki.auth)
        assert resp.status == 503
        assert (await resp.json())["error"]["code"] == "engine_unavailable"
        await ws.send_json({"op": "ping", "id": 1})  # the socket stays open meanwhile
        assert (await receive_until(ws, lambda f: f["op"] == "pong"))[-1]["id"] == 1
        engine.start()
        async with asyncio.timeout(10):
            while (await server.get("/readyz")).status != 200:
                await asyncio.sleep(0.05)
        # Data survived (append-only file) and the same socket gets new events.
        created = None
        async with asyncio.timeout(10):
            while created is None:
                resp = await server.post("/api/echoes", json={"text": "after"}, headers=aki.auth)
                if resp.status == 201:
                    created = await resp.json()
                else:
                    await asyncio.sleep(0.05)
        event = (await receive_until(ws, lambda f: f["op"] == "event", timeout=10))[-1]
        assert event["data"]["id"] == created["id"]
        got = await server.get(f"/api/echoes/{first['id']}", headers=aki.auth)
        assert got.status == 200
        metrics = await (await server.get("/metrics")).text()
        assert "echohub_bus_reconnects_total 1.0" in metrics
        await ws.close()
    finally:
        await rdb.aclose()
        await server.close()
        stop_server(server)
        engine.stop()


async def test_serve_keeps_data_and_leaves_no_engine(tmp_path: Path) -> None:
    import redis.asyncio as aioredis

    data = tmp_path / "data"
    server = start_server("--data-dir", str(data))
    assert engine_pids(data), "the embedded engine should be running"
    engine_url = f"unix://{data / 'engine.sock'}"
    rdb = aioredis.Redis.from_url(engine_url, decode_responses=True)
    aki = await signup(server, rdb, "aki")
    created = await post(server, aki, "persist me")
    ws = await server.ws(aki)
    await rdb.aclose()
    stopping = asyncio.get_running_loop().run_in_executor(None, stop_server, server)
    msg = await ws.receive(timeout=10)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1001
    assert await stopping == 0
    await server.close()
    assert "No accounts yet" in server.log[0] and "/join/" in server.log[0]
    assert engine_pids(data) == []

    again = start_server("--data-dir", str(data), port=server.port)
    resp = await again.get(f"/api/echoes/{created['id']}", headers=aki.auth)
    assert resp.status == 200 and (await resp.json())["text"] == "persist me"
    await again.close()
    stop_server(again, signal.SIGKILL)
    async with asyncio.timeout(10):
        while engine_pids(data):
            await asyncio.sleep(0.05)
    assert "No accounts yet" not in again.log[0]


async def test_workers_share_one_port(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_server("--data-dir", str(data), "--workers", "2")
    pids: set[str | None] = set()
    async with asyncio.timeout(15):
        while len(pids) < 2:
            async with aiohttp.ClientSession() as fresh:  # new connection each time
                resp = await fresh.get(f"{server.base}/healthz")
                assert resp.status == 200
                pids.add(resp.headers.get("X-Echohub-Worker"))
    assert stop_server(server) == 0
    assert engine_pids(data) == []


async def test_invite_cli_prints_a_link(tmp_path: Path) -> None:
    import subprocess
    import sys

    data = tmp_path / "data"
    out = subprocess.run([sys.executable, "-m", "server", "invite", "--admin", "--data-dir",
                          str(data)], capture_output=True, text=True, timeout=30)  # fmt: skip
    assert out.returncode == 0, out.stderr
    link = out.stdout.strip().splitlines()[-1]
    assert "/join/" in link
    assert engine_pids(data) == []
    server = start_server("--data-dir", str(data))
    resp = await server.post("/api/signup", json={
        "invite": link.rsplit("/", 1)[1], "handle": "root", "password": "long enough pw",
        "display_name": "Root", "birthdate": "1980-01-01"})  # fmt: skip
    assert resp.status == 201
    assert (await resp.json())["user"]["role"] == "admin"
    # With the server running, the CLI uses its engine rather than starting another.
    out = subprocess.run([sys.executable, "-m", "server", "invite", "--admin", "--data-dir",
                          str(data)], capture_output=True, text=True, timeout=30)  # fmt: skip
    assert out.returncode == 0 and "/join/" in out.stdout
    await server.close()
    stop_server(server)
    wait_ready  # noqa: B018


async def test_unusable_data_dir_is_a_clear_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    out = subprocess.run([sys.executable, "-m", "server", "serve", "--data-dir",
                          str(blocker / "sub"), "--port", "0"],
                         capture_output=True, text=True, timeout=30)  # fmt: skip
    assert out.returncode == 2
    assert "data directory" in out.stderr and "Traceback" not in out.stderr


async def test_starts_without_its_engine_and_recovers(tmp_path: Path) -> None:
    """An external engine that is down at start: 503s, then service once it is up."""
    import redis.asyncio as aioredis

    engine = EmbeddedEngine(tmp_path / "engine")
    url = f"unix://{tmp_path / 'engine' / 'engine.sock'}"
    server = start_server("--redis-url", url)
    try:
        assert (await server.get("/healthz")).status == 200
        assert (await server.get("/readyz")).status == 503
        engine.start()
        async with asyncio.timeout(15):
            while (await server.get("/readyz")).status != 200:
                await asyncio.sleep(0.05)
        rdb = aioredis.Redis.from_url(engine.url, decode_responses=True)
        aki = await signup(server, rdb, "aki")
        ws = await server.ws(aki)
        await sub(ws, "user:aki")
        created = await post(server, aki, "late engine")
        event = (await receive_until(ws, lambda f: f["op"] == "event", timeout=10))[-1]
        assert event["data"]["id"] == created["id"]
        await ws.close()
        await rdb.aclose()
    finally:
        await server.close()
        stop_server(server)
        engine.stop()
