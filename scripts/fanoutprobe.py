"""CPU per delivery of the hub's fan-out alone, on real sockets, against a bare write loop.

    .venv/bin/python scripts/fanoutprobe.py hub      # Hub.dispatch + Hub.flush
    .venv/bin/python scripts/fanoutprobe.py bare     # os.write of one frame to each fd

One process (on core 0) holds N loopback connections on uvloop; a reader process (on
core 1) drains them. Each round is one event to all N, at --rate rounds per second, as
the load test's 1,000 x 50/s does: one frame per write, so this is the floor the
server's figure sits on (kernel send + the receiving side's softirq work, which
loopback runs in the sender's context). Prints the process's CPU time per delivery.
No engine: the hub gets a bus that has no history. Loopback only; bounded in rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import uvloop

from server.eventbus import Sink
from server.hub import Event, Hub
from server.protocol import JSON, event_message, ws_frame
from server.store.resp import plain_fd


class _Peer:
    """The hub's peer: the reader keeps up, so nothing is ever held back to drain."""

    def __call__(self, code: int, reason: str) -> None:
        pass

    async def drained(self) -> None:
        pass


READER = """
import os, selectors, socket, sys
if len(os.sched_getaffinity(0)) > 1:
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[1]})
sel = selectors.EpollSelector()
for _ in range(int(sys.argv[2])):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
while True:
    for key, _ in sel.select():
        try:
            if not key.fileobj.recv(65536):
                raise SystemExit
        except BlockingIOError:
            pass
"""

POST = {"id": "01a2021e6c6e4b5ec6f6", "author": {"handle": "aki", "display_name": "Aki"},
        "text": "hello world " * 5, "segments": [{"text": "hello world " * 5}],
        "visibility": "public", "community": None, "reply_to": None,
        "created_at": "2026-11-22T10:00:00.123Z"}  # fmt: skip


class _NoHistory:
    watermark = 0
    sink: Sink | None = None  # the hub sets itself here

    async def subscribe(self, channels: Sequence[str]) -> None:
        pass

    def unsubscribe(self, channels: Sequence[str]) -> None:
        pass

    async def head(self) -> int:
        return 0

    async def history(self, *args: Any) -> tuple[list[Any], bool]:
        return [], True


class _Accept(asyncio.Protocol):
    def __init__(self, into: list[asyncio.Transport]) -> None:
        self.into = into

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.into.append(transport)  # type: ignore[arg-type]


async def main(mode: str, clients: int, rounds: int, rate: float, send_buffer: int) -> None:
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cores[0]})
    loop = asyncio.get_running_loop()
    transports: list[asyncio.Transport] = []
    server = await loop.create_server(lambda: _Accept(transports), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader = await asyncio.create_subprocess_exec(sys.executable, "-c", READER, str(port),
                                                  str(clients))  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while len(transports) < clients:
            if time.monotonic() > deadline:
                raise SystemExit("the reader never connected")
            await asyncio.sleep(0.05)
        if send_buffer:  # as the websocket endpoint sets it (0: the kernel autotunes)
            for transport in transports:
                sock = transport.get_extra_info("socket")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
        hub = Hub(_NoHistory())
        for i, transport in enumerate(transports):
            conn = hub.connect(f"p{i}", "s", JSON, transport, _Peer(), plain_fd(transport))
            await hub.subscribe(conn, "user:x", ["user:x"])
        hub.flush()
        fds = [plain_fd(t) for t in transports]
        write = os.write
        seq = 10**15
        await asyncio.sleep(0.3)
        started = time.process_time()
        for _ in range(rounds):
            seq += 1
            if mode == "hub":
                hub.dispatch("user:x", Event(seq, "post.created", POST))
                hub.flush()
            else:
                message = event_message("user:x", seq, "post.created", POST)
                frame = ws_frame(JSON.encode(message), False)
                for fd in fds:
                    write(fd, frame)
            await asyncio.sleep(1 / rate)
        spent = time.process_time() - started
        print(f"{mode}: {spent / (rounds * clients) * 1e6:.2f} µs of CPU per delivery")
    finally:
        for transport in transports:
            transport.close()
        server.close()
        reader.kill()
        await reader.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("hub", "bare"))
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--send-buffer", type=int, default=0, help="SO_SNDBUF (0: autotuned)")
    args = parser.parse_args()
    uvloop.run(main(args.mode, args.clients, args.rounds, args.rate, args.send_buffer))
