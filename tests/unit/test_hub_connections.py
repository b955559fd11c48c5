"""The hub's index of connections by principal (one connection, or a set of several)."""

from __future__ import annotations

from typing import Any

from server.hub import Hub
from server.protocol import JSON


class _Transport:
    def __init__(self) -> None:
        self.closing = False

    def write(self, data: bytes) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return self.closing

    def abort(self) -> None:
        self.closing = True


class _Peer:
    def __init__(self, principal: str, closed: list[tuple[str, int]]) -> None:
        self.principal, self.closed = principal, closed

    def __call__(self, code: int, reason: str) -> None:
        self.closed.append((self.principal, code))

    async def drained(self) -> None:
        pass


def test_connections_by_principal() -> None:
    hub = Hub(bus=None)  # type: ignore[arg-type]  # connections need no bus
    closed: list[tuple[str, int]] = []

    def connect(principal: str, session: str) -> Any:
        return hub.connect(principal, session, JSON, _Transport(), _Peer(principal, closed))

    a1 = connect("a", "s1")
    assert hub.connections_of("a") == {a1}
    a2, a3 = connect("a", "s2"), connect("a", "s2")
    b1 = connect("b", "s3")
    assert hub.connections_of("a") == {a1, a2, a3}
    hub.disconnect(a1)
    hub.disconnect(a1)  # idempotent
    assert hub.connections_of("a") == {a2, a3}
    hub.disconnect(a2)
    assert hub.connections_of("a") == {a3}
    assert hub.close_principal("a", 4003) == 1
    assert hub.connections_of("a") == frozenset()
    assert closed == [("a", 4003)]
    assert hub.close_session("s3", 4001) == 1
    assert hub.connections_of("b") == frozenset() and hub.connection_count == 0
    assert b1.closed
