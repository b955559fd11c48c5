"""Faults with real processes: a worker SIGKILLed mid-stream, the engine SIGKILLed,
crash loops, and rolling SIGTERMs under load.

Every wait polls a condition with a bound; every stream counts what was acknowledged
(201) and checks that each reader got all of it, in order, without duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from tests.support import (
    Member,
    Server,
    free_port,
    receive_until,
    signup,
    start_server,
    stop_server,
    until,
    wait_ready,
)


def children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            raw = Path(f"/proc/{pid}/task/{tid}/children").read_text()
            found += [int(p) for p in raw.split()]
    return found


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def workers_of(master: int) -> list[int]:
    return [p for p in children(master) if b"spawn_main" in cmdline(p)]


def engine_of(server: int) -> int | None:
    found = [p for p in children(server) if b"valkey" in cmdline(p) or b"redis" in cmdline(p)]
    return found[0] if found else None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
    return inodes


def owner_of(ws: aiohttp.ClientWebSocketResponse, pids: list[int]) -> int | None:
    """Which of `pids` holds the server end of the client socket `ws`."""
    client_port = ws.get_extra_info("sockname")[1]
    inode = None
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                cols = line.split()
                if int(cols[2].rsplit(":", 1)[1], 16) == client_port:  # its remote port
                    inode = cols[9]
    if inode is None:
        return None
    for pid in pids:
        if inode in _socket_inodes(pid):
            return pid
    return None



@dataclass
class Reader:
    """A subscriber of `public` that records every post id it receives."""

    member: Member
    ws: aiohttp.ClientWebSocketResponse
    cursor: str
    ids: list[str] = field(default_factory=list)
    cursors: list[int] = field(default_factory=list)
    closed: Any = None

    async def read(self) -> None:
        while True:
            msg = await self.ws.receive()
            if msg.type != aiohttp.WSMsgType.TEXT:
                self.closed = (msg.type, msg.data)
                return
            frame = msg.json()
            if frame["op"] == "event" and frame["type"] == "post.created":
                self.ids.append(frame["data"]["id"])
                self.cursors.append(int(frame["cursor"]))
                self.cursor = frame["cursor"]


async def open_reader(session: aiohttp.ClientSession, base: str, who: Member,
                      since: str | None = None) -> Reader:  # fmt: skip
    ws = await session.ws_connect(f"{base}/ws", headers=who.auth)
    extra = {} if since is None else {"since": since}
    await ws.send_json({"op": "sub", "id": 1, "topic": "public", **extra})
    frames = await receive_until(ws, lambda f: f["op"] in ("ack", "error"))
    ack = frames[-1]
    assert ack["op"] == "ack" and ack.get("recovered", True) is True, ack
    reader = Reader(who, ws, ack["cursor"])
    for frame in frames[:-1]:  # nothing comes before the ack; kept for honesty
        assert frame["op"] != "event", frame
    return reader


async def post_stream(bases: list[str], who: Member, count: int, rate: float,
                      acked: list[str], stop: asyncio.Event | None = None) -> None:  # fmt: skip
    """Post `count` echoes (or until `stop`) at `rate`/s (each may meet a process that is
    going away: then it is retried elsewhere); `acked` gets each 201's id."""
    async with aiohttp.ClientSession() as session:
        for i in range(count):
            if stop is not None and stop.is_set():
                break
            for attempt in range(100):
                base = bases[(i + attempt) % len(bases)]
                with contextlib.suppress(aiohttp.ClientError, asyncio.TimeoutError):
                    async with session.post(
                        f"{base}/api/echoes", json={"text": f"stream {i}"}, headers=who.auth,
                        timeout=aiohttp.ClientTimeout(total=5),
                    ) as resp:  # fmt: skip
                        if resp.status == 201:
                            acked.append((await resp.json())["id"])
                            break
                await asyncio.sleep(0.02)
            else:
                raise AssertionError(f"post {i} was never accepted")
            await asyncio.sleep(1 / rate)


def assert_no_loss(ids: list[str], cursors: list[int], acked: list[str]) -> None:
    assert len(ids) == len(set(ids)), "duplicated events"
    assert cursors == sorted(cursors), "events out of order"
    missing = [i for i in acked if i not in set(ids)]
    assert not missing, f"{len(missing)} acknowledged posts never arrived"


async def test_a_killed_worker_is_restarted_and_its_clients_resume_with_no_loss(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    server = start_server("--data-dir", str(data), "--workers", "2")
    master = server.proc.pid
    rdb = aioredis.Redis.from_url(f"unix://{data / 'engine.sock'}", decode_responses=True)
    session = aiohttp.ClientSession()
    try:
        workers = await until(lambda: len(workers_of(master)) == 2 and workers_of(master),
                              15, "two workers")  # fmt: skip
        poster = await signup(server, rdb, "poster")
        members = [await signup(server, rdb, f"reader{i}") for i in range(4)]
        readers: dict[int, list[Reader]] = {pid: [] for pid in workers}
        # Readers until both workers hold some (SO_REUSEPORT spreads them by hash).
        for i in range(60):
            reader = await open_reader(session, server.base, members[i % 4])
            owner = owner_of(reader.ws, workers)
            assert owner is not None
            readers[owner].append(reader)
            if i >= 7 and all(len(r) >= 2 for r in readers.values()):
                break
        victim, survivor = workers
        tasks = [asyncio.create_task(r.read()) for rs in readers.values() for r in rs]
        acked: list[str] = []
        stream = asyncio.create_task(post_stream([server.base], poster, 60, 60, acked))
        await until(lambda: len(acked) >= 15, 20, "the stream to start")
        os.kill(victim, signal.SIGKILL)
        await stream

        # The master started a new worker in its place; the survivor was never touched.
        fresh = await until(lambda: [p for p in workers_of(master) if p not in workers],
                            15, "a new worker")  # fmt: skip
        assert alive(survivor) and alive(master)
        for reader in readers[survivor]:
            await until(lambda r=reader: acked[-1] in r.ids, 10, "the survivor's readers")
            assert reader.closed is None
            assert_no_loss(reader.ids, reader.cursors, acked)
        # The killed worker's readers lost their socket, and resume without loss.
        for reader in readers[victim]:
            await until(lambda r=reader: r.closed is not None, 10, "the victim's sockets")
            again = await open_reader(session, server.base, reader.member, since=reader.cursor)
            done = asyncio.create_task(again.read())
            await until(lambda a=again: acked[-1] in a.ids, 10, "the resumed stream")
            assert_no_loss(reader.ids + again.ids, reader.cursors + again.cursors, acked)
            await again.ws.close()
            await done
        # And the new worker serves.
        for _ in range(60):
            probe = await open_reader(session, server.base, members[0])
            owner = owner_of(probe.ws, [*fresh, survivor])
            await probe.ws.close()
            if owner in fresh:
                break
        else:
            raise AssertionError("the restarted worker took no connection")
        assert "worker" in server.read_output() and "restarting" in server.read_output()
        for rs in readers.values():
            for r in rs:
                await r.ws.close()
        await asyncio.gather(*tasks)
        family = children(master)  # workers, engine, resource tracker
        assert len(family) >= 4, family
    finally:
        await session.close()
        await rdb.aclose()
        await server.close()
        code = stop_server(server)
    assert code == 0
    # (multiprocessing's resource tracker ends once the last worker has.)
    await until(lambda: not [p for p in family if alive(p)], 5, "every process to end")


async def test_a_killed_engine_is_restarted_and_everything_continues(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_server("--data-dir", str(data))
    rdb = aioredis.Redis.from_url(f"unix://{data / 'engine.sock'}", decode_responses=True)
    try:
        aki = await signup(server, rdb, "aki")
        ws = await server.ws(aki)
        await ws.send_json({"op": "sub", "id": 1, "topic": "user:aki"})
        await receive_until(ws, lambda f: f["op"] == "ack")
        first = await (await server.post("/api/echoes", json={"text": "before"},
                                         headers=aki.auth)).json()  # fmt: skip
        await receive_until(ws, lambda f: f["op"] == "event")
        engine = engine_of(server.proc.pid)
        assert engine is not None
        os.kill(engine, signal.SIGKILL)
        restarted = await until(lambda: (p := engine_of(server.proc.pid)) != engine and p,
                                10, "a new engine")  # fmt: skip
        assert (await server.get("/healthz")).status == 200  # it can recover: alive
        created: dict[str, Any] = {}

        async def posted() -> bool:
            resp = await server.post("/api/echoes", json={"text": "after"}, headers=aki.auth)
            if resp.status == 201:
                created.update(await resp.json())
            return resp.status == 201

        await until(posted, 10, "a post after the restart")
        # The socket opened before stayed open and gets the new post; data survived.
        event = (await receive_until(ws, lambda f: f["op"] == "event", timeout=10))[-1]
        assert event["data"]["id"] == created["id"]
        got = await server.get(f"/api/echoes/{first['id']}", headers=aki.auth)
        assert got.status == 200
        assert (await server.get("/readyz")).status == 200
        assert "embedded engine died" in server.read_output()
        await ws.close()
    finally:
        await rdb.aclose()
        await server.close()
        code = stop_server(server)
    assert code == 0
    assert not alive(restarted)


@pytest.mark.parametrize("workers", ["1", "2"])
async def test_an_engine_that_keeps_dying_stops_the_server_with_a_clear_error(
    tmp_path: Path, workers: str
) -> None:
    """One process supervises its engine on its event loop; a master, in its own loop."""
    data = tmp_path / "data"
    server = start_server("--data-dir", str(data), "--workers", workers,
                          env={"ECHOHUB_RESTART_LIMIT": "1/60"})  # fmt: skip
    master = server.proc.pid
    try:
        first = engine_of(master)
        assert first is not None
        os.kill(first, signal.SIGKILL)
        second = await until(lambda: (p := engine_of(master)) != first and p, 10, "a restart")
        family = children(master)
        assert second in family and len(workers_of(master)) == (2 if workers == "2" else 0)
        os.kill(second, signal.SIGKILL)
        await until(lambda: server.proc.poll() is not None, 25, "the server to stop")
        assert server.proc.returncode == 1
        out = server.read_output()
        assert "echohub: stopped: the embedded engine keeps dying" in out
        assert "Traceback" not in out
    finally:
        stop_server(server)  # nothing left running when an assertion fails
    # (multiprocessing's resource tracker ends once the last worker has.)
    await until(lambda: not [p for p in family if alive(p)], 5, "every process to end")


async def test_a_worker_that_cannot_start_is_given_up_on(tmp_path: Path) -> None:
    # A plain listener on the port: every worker's SO_REUSEPORT bind fails at start.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "server", "serve", "--port", str(port), "--workers", "2",
             "--data-dir", str(tmp_path / "data")],
            env={**os.environ, "ECHOHUB_RESTART_LIMIT": "1/60", "ECHOHUB_PASSWORD_COST": "1024"},
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert out.returncode == 1
    assert "echohub: stopped: worker" in out.stderr and "keeps dying" in out.stderr
    assert "restarting in" in out.stderr


async def test_rolling_sigterm_of_independent_processes_loses_nothing(
    engine_url: str, rdb: Any
) -> None:
    """Two servers on one engine; each in turn is stopped with SIGTERM and started
    again while posts stream in: readers follow their 1001 to another process, resume,
    and have every acknowledged post."""
    servers = [start_server("--redis-url", engine_url) for _ in range(2)]
    session = aiohttp.ClientSession()
    try:
        poster = await signup(servers[0], rdb, "roller")
        members = [await signup(servers[0], rdb, f"rolling{i}") for i in range(2)]
        readers = [await open_reader(session, s.base, m)
                   for s, m in zip(servers, members, strict=True)]  # fmt: skip
        history: dict[int, tuple[list[str], list[int]]] = {i: ([], []) for i in range(2)}

        async def follow(i: int) -> None:
            """Keep reader i subscribed across restarts, on whichever process is up."""
            reader = readers[i]
            for _ in range(20):
                await reader.read()
                code = reader.ws.close_code
                assert code == 1001, (code, reader.closed)
                ids, cursors = history[i]
                ids += reader.ids
                cursors += reader.cursors
                for attempt in range(100):
                    base = servers[(i + 1 + attempt) % 2].base
                    with contextlib.suppress(aiohttp.ClientError, AssertionError):
                        reader = readers[i] = await open_reader(
                            session, base, members[i], since=reader.cursor)  # fmt: skip
                        break
                    await asyncio.sleep(0.05)

        followers = [asyncio.create_task(follow(i)) for i in range(2)]
        acked: list[str] = []
        stop = asyncio.Event()
        stream = asyncio.create_task(
            post_stream([s.base for s in servers], poster, 1000, 40, acked, stop)
        )
        loop = asyncio.get_running_loop()
        for i in range(2):
            await until(lambda n=len(acked): len(acked) >= n + 5, 20, "posts between restarts")
            port = servers[i].port
            await servers[i].close()
            # Off the loop: the stream and the readers go on while it stops and starts.
            assert await loop.run_in_executor(None, stop_server, servers[i]) == 0
            restart = functools.partial(start_server, "--redis-url", engine_url, port=port)
            servers[i] = await loop.run_in_executor(None, restart)
        await until(lambda n=len(acked): len(acked) >= n + 5, 20, "posts after the last restart")
        stop.set()
        await stream
        assert len(acked) >= 20
        for i in range(2):
            await until(lambda r=readers[i]: acked[-1] in r.ids, 10, "every reader to catch up")
            ids, cursors = history[i]
            assert_no_loss(ids + readers[i].ids, cursors + readers[i].cursors, acked)
        for task in followers:
            task.cancel()
        for r in readers:
            await r.ws.close()
    finally:
        await session.close()
        for s in servers:
            await s.close()
            stop_server(s)


def start_in_own_group(*args: str) -> Server:
    """`serve` in a process group of its own, as a shell runs a foreground command."""
    output = tempfile.TemporaryFile()
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--port", str(port), *args],
        env={**os.environ, "ECHOHUB_PASSWORD_COST": "1024"}, stdout=output,
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    return Server(port, proc, output=output)


async def test_ctrl_c_stops_every_worker_and_the_engine(tmp_path: Path) -> None:
    """Ctrl-C reaches the whole foreground process group, workers included."""
    server = start_in_own_group("--workers", "2", "--data-dir", str(tmp_path / "data"))
    proc = server.proc
    try:
        wait_ready(server)
        await until(lambda: server.read_output().count("Echo Hub listening") == 2, 20,
                    "both workers to listen")  # fmt: skip
        family = children(proc.pid)
        assert engine_of(proc.pid) in family
        os.killpg(proc.pid, signal.SIGINT)
        await until(lambda: proc.poll() is not None, 25, "the server to stop")
        assert proc.returncode == 0, server.read_output()
        await until(lambda: not [p for p in family if alive(p)], 5, "every process to end")
        assert "Traceback" not in server.read_output(), server.read_output()
    finally:
        stop_server(server, signal.SIGKILL)


async def test_a_hung_engine_fails_fast_and_readyz_keeps_answering(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = start_server("--data-dir", str(data))
    rdb = aioredis.Redis.from_url(f"unix://{data / 'engine.sock'}", decode_responses=True)
    engine = engine_of(server.proc.pid)
    assert engine is not None
    stopped = False
    try:
        aki = await signup(server, rdb, "aki")
        ws = await server.ws(aki)
        await ws.send_json({"op": "sub", "id": 1, "topic": "user:aki"})
        await receive_until(ws, lambda f: f["op"] == "ack")
        os.kill(engine, signal.SIGSTOP)
        stopped = True

        async def timed(path: str) -> tuple[int, float]:
            began = time.monotonic()
            resp = await server.get(path, headers=aki.auth)
            return resp.status, time.monotonic() - began

        # Until the first command times out, nothing is known; /readyz still answers
        # within its own short bound, and says so.
        status, took = await timed("/readyz")
        assert status == 503 and took < 3, (status, took)
        # Once known, every request fails at once rather than waiting for the engine.
        await until(lambda: timed("/api/me"), 15, "the first answer")
        for path in ("/api/me", "/readyz", "/api/me", "/api/feed/home", "/readyz"):
            status, took = await timed(path)
            assert status == 503 and took < 0.5, (path, status, took)
        assert (await server.get("/healthz")).status == 200  # it recovers when it can
        await ws.send_json({"op": "post", "id": 2, "text": "while hung"})
        began = time.monotonic()
        reply = (await receive_until(ws, lambda f: f.get("id") == 2))[-1]
        assert reply["op"] == "error" and reply["code"] == "engine_unavailable"
        assert time.monotonic() - began < 0.5
        os.kill(engine, signal.SIGCONT)
        stopped = False
        await until(lambda: _status(server, "/readyz", 200), 10, "ready again")
        resp = await server.post("/api/echoes", json={"text": "after"}, headers=aki.auth)
        assert resp.status == 201
        created = await resp.json()
        event = (await receive_until(ws, lambda f: f["op"] == "event", timeout=10))[-1]
        assert event["data"]["id"] == created["id"]
        await ws.close()
    finally:
        if stopped:
            os.kill(engine, signal.SIGCONT)
        await rdb.aclose()
        await server.close()
        stop_server(server)


async def _status(server: Server, path: str, expected: int) -> bool:
    return (await server.get(path)).status == expected


async def test_healthz_says_when_the_process_cannot_recover(
    aiohttp_client: Any, engine_url: str, settings: Any
) -> None:
    """What the runner wires when a supervisor watches the engine: liveness follows it."""
    from server.app import create_app
    from server.handlers.ops import LIVENESS

    verdict: list[str] = []
    app = create_app(settings, engine_url)
    app[LIVENESS] = lambda: verdict[0] if verdict else None
    client = await aiohttp_client(app)
    resp = await client.get("/healthz")
    assert resp.status == 200 and (await resp.json()) == {"status": "ok"}
    verdict.append("the embedded engine keeps dying")
    resp = await client.get("/healthz")
    assert resp.status == 503
    assert (await resp.json())["error"] == {
        "code": "unrecoverable", "message": "the embedded engine keeps dying"
    }  # fmt: skip
    assert (await client.get("/readyz")).status == 200  # readiness is the engine's own
