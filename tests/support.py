"""Test helpers that talk to real servers: accounts through invites, server processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from server.services.accounts import AccountService
from server.services.common import system_clock
from server.store.accounts import AccountStore
from server.store.resp import EngineClient

PASSWORD = "correct horse battery"
# For a raw body sent as JSON (aiohttp's `json=` sets it itself).
JSON_TYPE = {"Content-Type": "application/json"}


async def make_invite(rdb: aioredis.Redis, *, uses: int = 100, admin: bool = False) -> str:
    """What `echohub invite` does: an invite straight in the engine."""
    engine = EngineClient(engine_url_of(rdb))
    try:
        service = AccountService(
            AccountStore(rdb, engine), system_clock, password_cost=1024, session_ttl=3600
        )
        invite = await service.create_invite(None, uses, 1, "http://x", admin=admin)
    finally:
        await engine.aclose()
    return str(invite["code"])


def engine_url_of(rdb: aioredis.Redis) -> str:
    """The URL of the engine a redis-py client talks to (a unix socket in the tests)."""
    kwargs = rdb.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}?db={kwargs.get('db', 0)}"
    host, port = kwargs.get("host", "127.0.0.1"), kwargs.get("port", 6379)
    return f"redis://{host}:{port}/{kwargs.get('db', 0)}"


@dataclass
class Member:
    handle: str
    token: str
    user: dict[str, Any]

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def signup(
    http: Any, rdb: aioredis.Redis, handle: str, *, admin: bool = False, invite: str | None = None
) -> Member:
    """Sign up through the HTTP API; `http` is an aiohttp test client or a Server."""
    code = invite or await make_invite(rdb, uses=1, admin=admin)
    body = {"invite": code, "handle": handle, "password": PASSWORD,
            "display_name": handle.title(), "birthdate": "1990-05-01"}  # fmt: skip
    resp = await http.post("/api/signup", json=body)
    assert resp.status == 201, await resp.text()
    data = await resp.json()
    return Member(handle, data["token"], data["user"])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A real `python -m server serve` process on loopback."""

    port: int
    proc: subprocess.Popen[bytes]
    session: aiohttp.ClientSession | None = None
    log: list[str] = field(default_factory=list)
    output: Any = None  # the file the process writes to

    def read_output(self) -> str:
        if self.output is None:
            return ""
        self.output.seek(0)
        text: str = self.output.read().decode(errors="replace")
        return text

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _session(self) -> aiohttp.ClientSession:
        if self.session is None or self.session.closed:
            self.session = aiohttp.ClientSession(self.base)
        return self.session

    async def post(self, path: str, **kw: Any) -> aiohttp.ClientResponse:
        return await self._session().post(path, **kw)

    async def get(self, path: str, **kw: Any) -> aiohttp.ClientResponse:
        return await self._session().get(path, **kw)

    async def delete(self, path: str, **kw: Any) -> aiohttp.ClientResponse:
        return await self._session().delete(path, **kw)

    async def put(self, path: str, **kw: Any) -> aiohttp.ClientResponse:
        return await self._session().put(path, **kw)

    async def ws(self, member: Member, **kw: Any) -> aiohttp.ClientWebSocketResponse:
        ws: aiohttp.ClientWebSocketResponse = await self._session().ws_connect(
            "/ws", headers=member.auth, **kw
        )
        return ws

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()


def start_server(
    *args: str, env: dict[str, str] | None = None, port: int | None = None, timeout: float = 20
) -> Server:
    port = port or free_port()
    full_env = {**os.environ, "ECHOHUB_RATE_LIMITS": "off", "ECHOHUB_PASSWORD_COST": "1024",
                "PYTHONUNBUFFERED": "1", "ECHOHUB_WORKER_HEADER": "1",
                **(env or {})}  # fmt: skip
    # Output goes to a file, never a pipe: nobody drains a pipe while the server runs,
    # and a full pipe (64 KiB of access log) would block the server mid-request.
    output = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--host", "127.0.0.1", "--port", str(port),
         *args],
        env=full_env, stdout=output, stderr=subprocess.STDOUT,
    )  # fmt: skip
    server = Server(port, proc, output=output)
    wait_ready(server, timeout)
    return server


def wait_ready(server: Server, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            out = server.read_output()
            raise RuntimeError(f"server exited with {server.proc.returncode}: {out}")
        with contextlib.suppress(OSError):
            with socket.create_connection(("127.0.0.1", server.port), timeout=0.2) as sock:
                sock.sendall(b"GET /healthz HTTP/1.0\r\n\r\n")
                if b"200" in sock.recv(64):
                    return
        time.sleep(0.05)
    server.proc.kill()
    raise RuntimeError("server did not become ready")


def stop_server(server: Server, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
    if server.proc.poll() is None:
        server.proc.send_signal(sig)
        try:
            server.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            server.proc.kill()
            server.proc.wait()
    if server.output is not None:
        server.log.append(server.read_output())
        server.output.close()
        server.output = None
    return server.proc.returncode


async def receive_until(
    ws: aiohttp.ClientWebSocketResponse, predicate: Any, timeout: float = 5.0
) -> list[dict[str, Any]]:
    """Collect frames until one satisfies `predicate`; that one is last in the list."""
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while True:
            msg = await ws.receive()
            if msg.type == aiohttp.WSMsgType.TEXT:
                frame = msg.json()
            elif msg.type == aiohttp.WSMsgType.BINARY:
                import msgpack

                frame = msgpack.unpackb(msg.data)
            else:
                raise AssertionError(f"socket ended: {msg.type} {msg.data} {msg.extra}")
            seen.append(frame)
            if predicate(frame):
                return seen


async def call(http: Any, method: str, path: str, who: Member, status: int,
               body: Any = None) -> dict[str, Any]:  # fmt: skip
    resp = await getattr(http, method)(path, json=body, headers=who.auth)
    assert resp.status == status, (path, await resp.text())
    answer: dict[str, Any] = await resp.json()
    return answer


async def error_of(http: Any, method: str, path: str, who: Member, status: int,
                   body: Any = None) -> tuple[str, str | None]:  # fmt: skip
    error = (await call(http, method, path, who, status, body))["error"]
    return error["code"], error.get("field")


async def ws_sub(http: Any, who: Member, topic: str, **extra: Any) -> tuple[Any, dict[str, Any]]:
    ws = await (http.ws(who) if isinstance(http, Server)
                else http.ws_connect("/ws", headers=who.auth))  # fmt: skip
    await ws.send_json({"op": "sub", "id": 1, "topic": topic, **extra})
    frames = await receive_until(ws, lambda f: f["op"] in ("ack", "error"))
    return ws, frames[-1]


async def subscribe(http: Any, who: Member, topic: str, **extra: Any) -> Any:
    ws, reply = await ws_sub(http, who, topic, **extra)
    assert reply["op"] == "ack", reply
    return ws


async def until(check: Any, timeout: float, what: str) -> Any:
    """Poll `check()` (sync or async) until it is truthy; its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
