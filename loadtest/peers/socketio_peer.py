"""The peer Echo Hub is measured against: python-socketio as a Python user would set it up.

``AsyncServer`` on aiohttp with ``AsyncRedisManager`` (the stock way to run Socket.IO
on several processes), uvloop like Echo Hub, one room per author (``user:<handle>``).
The same workload as Echo Hub's ``/ws``: a ``sub`` event joins a room and acks, a
``post`` event broadcasts an Echo-Hub-shaped event to the author's room and acks with
the post. No store, no validation — the peer gets the benefit of every doubt.

For the ``social`` scenario, as a Socket.IO user would build it: a friends-only post
goes to the room ``friends:<author>`` (which the author's friends join), a public one
to ``user:<author>`` (which followers join); ``subs`` joins a client to all its rooms
in one request (the load tester computes them from the graph: the peer has none), and
``like``/``visit`` send a ``like``/``footprint`` event to the room ``me:<member>``.

Run: ``python socketio_peer.py --port 0 --redis-url unix:///path/valkey.sock``; prints
``READY <port>`` on stdout once listening. Standalone on purpose (started as a script
by ``loadtest.peer``), so it imports nothing from the project.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import signal
import time
from datetime import UTC, datetime
from typing import Any, cast

import socketio
from aiohttp import web

ROOMS = ("user:", "friends:", "me:")


def build(redis_url: str) -> tuple[web.Application, socketio.AsyncServer]:
    manager = socketio.AsyncRedisManager(redis_url)
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        client_manager=manager,
        cors_allowed_origins=[],
        max_http_buffer_size=16 * 1024,
        logger=False,
        engineio_logger=False,
    )
    app = web.Application()
    sio.attach(app)
    ids = itertools.count(1)
    last_cursor = 0

    def next_cursor() -> str:
        nonlocal last_cursor  # a monotonic integer in µs, like Echo Hub's cursors
        last_cursor = max(last_cursor + 1, time.time_ns() // 1000)
        return str(last_cursor)

    @sio.event  # type: ignore[untyped-decorator]
    async def connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        handle = auth.get("handle") if isinstance(auth, dict) else None
        await sio.save_session(sid, {"handle": handle or f"anon{sid[:6]}"})

    @sio.on("sub")  # type: ignore[untyped-decorator]
    async def sub(sid: str, data: Any) -> dict[str, Any]:
        topic = data.get("topic") if isinstance(data, dict) else None
        if not isinstance(topic, str) or not topic.startswith(ROOMS):
            return {"error": "bad_topic"}
        await sio.enter_room(sid, topic)
        return {"op": "ack", "topic": topic, "cursor": next_cursor()}

    @sio.on("subs")  # type: ignore[untyped-decorator]
    async def subs(sid: str, data: Any) -> dict[str, Any]:
        topics = data.get("topics") if isinstance(data, dict) else None
        if not isinstance(topics, list) or not all(
            isinstance(t, str) and t.startswith(ROOMS) for t in topics
        ):
            return {"error": "bad_topic"}
        for topic in topics:
            await sio.enter_room(sid, topic)
        return {"op": "ack", "topics": len(topics), "cursor": next_cursor()}

    async def notify(member: str, kind: str, data: dict[str, Any]) -> None:
        topic = f"me:{member}"
        event = {"op": "event", "topic": topic, "cursor": next_cursor(), "type": kind,
                 "data": data}  # fmt: skip
        await sio.emit("event", event, room=topic)

    @sio.on("like")  # type: ignore[untyped-decorator]
    async def like(sid: str, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict) or not isinstance(data.get("author"), str):
            return {"error": "bad_like"}
        by = (await sio.get_session(sid))["handle"]
        await notify(
            data["author"],
            "like",
            {"echo": str(data.get("echo")), "by": {"handle": by, "display_name": by}},
        )
        return {"op": "ack", "liked": True}

    @sio.on("visit")  # type: ignore[untyped-decorator]
    async def visit(sid: str, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict) or not isinstance(data.get("owner"), str):
            return {"error": "bad_visit"}
        by = (await sio.get_session(sid))["handle"]
        await notify(data["owner"], "footprint", {"visitor": {"handle": by, "display_name": by}})
        return {"op": "ack"}

    @sio.on("post")  # type: ignore[untyped-decorator]
    async def post(sid: str, data: Any) -> dict[str, Any]:
        text = data.get("text") if isinstance(data, dict) else None
        if not isinstance(text, str) or not 1 <= len(text) <= 150:
            return {"error": "bad_text"}
        visibility = data.get("visibility", "public")
        if visibility not in ("public", "friends"):
            return {"error": "bad_visibility"}
        session = await sio.get_session(sid)
        handle = session["handle"]
        now = datetime.now(UTC)
        obj = {
            "id": str(next(ids)),
            "author": {"handle": handle, "display_name": handle},
            "text": text,
            "segments": [{"text": text}],
            "visibility": visibility,
            "community": None,
            "reply_to": None,
            "created_at": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        }
        topic = f"{'friends' if visibility == 'friends' else 'user'}:{handle}"
        event = {
            "op": "event",
            "topic": topic,
            "cursor": next_cursor(),
            "type": "post.created",
            "data": obj,
        }
        await sio.emit("event", event, room=topic)
        return {"op": "ack", "post": obj}

    @sio.on("ping")  # type: ignore[untyped-decorator]
    async def ping(sid: str, data: Any = None) -> dict[str, Any]:
        return {"op": "pong"}

    return app, sio


async def serve(host: str, port: int, redis_url: str) -> None:
    app, _ = build(redis_url)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=4096)
    await site.start()
    server = cast(asyncio.Server, site._server)
    actual = server.sockets[0].getsockname()[1]
    print(f"READY {actual}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(runner.cleanup(), 5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--redis-url", required=True)
    args = parser.parse_args()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency of the project
        asyncio.run(serve(args.host, args.port, args.redis_url))
    else:
        uvloop.run(serve(args.host, args.port, args.redis_url))


if __name__ == "__main__":
    main()
