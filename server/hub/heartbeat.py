"""The heartbeat: one timer for the process, not one per socket.

A per-socket heartbeat (aiohttp's) costs a timer per socket, rescheduled on every frame
received; this sweep walks the connections every `heartbeat / 2` seconds. A socket
silent for at least a heartbeat (`PING_AFTER` sweeps) gets a ping; one that sends nothing
back (a pong or anything else) by the next sweep is dead. `Connection.idle` counts the
sweeps since the peer last sent a frame; the socket adapter resets it on every frame.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from server.hub.connection import Connection

# A websocket ping with no payload (FIN, opcode 0x9); servers send frames unmasked.
PING_FRAME = b"\x89\x00"
PING_AFTER = 3
DEAD_AFTER = 4


def sweep(
    connections: Iterable[Connection], ping: Callable[[Connection], None]
) -> list[Connection]:
    """One sweep: ping the idle, and return the dead for the caller to cut off."""
    dead = []
    for conn in connections:
        idle = conn.idle = conn.idle + 1
        if idle < PING_AFTER:
            continue
        if idle >= DEAD_AFTER:
            dead.append(conn)
        else:
            ping(conn)
    return dead


class Heartbeat:
    """Calls `beat` every `interval` seconds once started, until stopped."""

    def __init__(self, beat: Callable[[], None]) -> None:
        self.beat = beat
        self._timer: asyncio.TimerHandle | None = None

    def start(self, interval: float) -> None:
        self._timer = asyncio.get_running_loop().call_later(interval, self._on_timer, interval)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self, interval: float) -> None:
        self.start(interval)
        self.beat()
