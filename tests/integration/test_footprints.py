"""Footprints on a real engine: live notification at most once per visitor per hour
(with an injected clock), across processes, never for self-visits or across blocks."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from server.app import create_app
from tests.support import Member, Server, receive_until, signup


class ManualClock:
    """The service clock, moved by the test (never by sleeping)."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def client(aiohttp_client: Any, engine_url: str, rdb: Any, settings: Any,
                 clock: ManualClock) -> Any:  # fmt: skip
    return await aiohttp_client(create_app(settings, engine_url, clock=clock))


async def subscribe_me(http: Any, who: Member) -> Any:
    ws = await (http.ws(who) if isinstance(http, Server)
                else http.ws_connect("/ws", headers=who.auth))  # fmt: skip
    await ws.send_json({"op": "sub", "id": 1, "topic": "me"})
    frames = await receive_until(ws, lambda f: f["op"] in ("ack", "error"))
    assert frames[-1]["op"] == "ack", frames[-1]
    return ws


async def visit(http: Any, who: Member, handle: str, status: int = 200) -> None:
    resp = await http.get(f"/api/users/{handle}", headers=who.auth)
    assert resp.status == status, await resp.text()


async def footprints_until_marker(http: Any, ws: Any, marker: Member, owner: str) -> list[Any]:
    """`footprint` events on `me` up to a `follow` notification the marker member causes
    now: it is published after every visit before it, so it bounds what arrived."""
    resp = await http.post(f"/api/users/{owner}/follow", headers=marker.auth)
    assert resp.status == 200
    frames = await receive_until(
        ws, lambda f: f.get("type") == "follow" and f["data"]["by"]["handle"] == marker.handle
    )
    await http.delete(f"/api/users/{owner}/follow", headers=marker.auth)
    return [f["data"] for f in frames if f.get("type") == "footprint"]


async def my_footprints(http: Any, who: Member) -> list[dict[str, Any]]:
    resp = await http.get("/api/footprints", headers=who.auth)
    assert resp.status == 200
    data = await resp.json()
    assert data["next"] is None
    return list(data["items"])


async def test_live_footprint_once_per_hour(client: Any, rdb: Any, clock: ManualClock) -> None:
    ben = await signup(client, rdb, "ben")
    aki = await signup(client, rdb, "aki")
    marker = await signup(client, rdb, "marker")
    me = await subscribe_me(client, ben)
    await visit(client, aki, "ben")
    note = (await receive_until(me, lambda f: f.get("type") == "footprint"))[-1]
    assert note["topic"] == "me"
    assert note["data"]["visitor"] == {"handle": "aki", "display_name": "Aki"}
    assert note["data"]["at"].endswith("Z")
    # More visits within the hour: recorded, not announced.
    clock.now += 60
    await visit(client, aki, "ben")
    clock.now += 3600 - 61
    await visit(client, aki, "ben")
    assert await footprints_until_marker(client, me, marker, "ben") == []
    items = await my_footprints(client, ben)
    assert [i["visitor"]["handle"] for i in items] == ["aki"]
    assert items[0]["at"] > note["data"]["at"]  # the latest visit, not the first
    # An hour after the last notification, the next visit is announced again.
    clock.now += 1
    await visit(client, aki, "ben")
    again = await footprints_until_marker(client, me, marker, "ben")
    assert [n["visitor"]["handle"] for n in again] == ["aki"]
    # A clock that went backwards does not repeat it.
    clock.now -= 30
    await visit(client, aki, "ben")
    assert await footprints_until_marker(client, me, marker, "ben") == []
    await me.close()


async def test_list_latest_visit_per_visitor_newest_first(client: Any, rdb: Any,
                                                          clock: ManualClock) -> None:  # fmt: skip
    ben = await signup(client, rdb, "ben")
    visitors = [await signup(client, rdb, f"v{i:02d}") for i in range(52)]
    for v in visitors:
        clock.now += 1
        await visit(client, v, "ben")
    clock.now += 1
    await visit(client, visitors[0], "ben")  # v00 again: now the newest, listed once
    items = await my_footprints(client, ben)
    handles = [i["visitor"]["handle"] for i in items]
    assert len(items) == 50
    assert handles[0] == "v00" and handles[1:] == [f"v{i:02d}" for i in range(51, 2, -1)]
    assert items[0]["at"] > items[1]["at"]
    assert await rdb.zcard(f"eh:footprints:{ben.user['id']}") == 50  # trimmed in the engine


async def test_private_self_and_blocked_leave_none(client: Any, rdb: Any) -> None:
    ben = await signup(client, rdb, "ben")
    aki = await signup(client, rdb, "aki")
    cho = await signup(client, rdb, "cho")
    marker = await signup(client, rdb, "marker")
    me = await subscribe_me(client, ben)
    await visit(client, ben, "ben")  # self-visit
    resp = await client.post("/api/users/cho/block", headers=ben.auth)
    assert resp.status == 200
    await visit(client, cho, "ben", status=403)  # blocked: cannot even see the profile
    await visit(client, ben, "cho")  # the blocker's visit is not revealed either
    assert await footprints_until_marker(client, me, marker, "ben") == []
    assert await my_footprints(client, ben) == []
    assert await my_footprints(client, cho) == []
    assert await rdb.exists(f"eh:footprints:{ben.user['id']}") == 0
    assert await rdb.exists(f"eh:footprints:{cho.user['id']}") == 0
    # Footprints are private: nobody else's appear in one's own list, and the owner's
    # notification topic is the owner's alone.
    await visit(client, aki, "ben")
    assert [i["visitor"]["handle"] for i in await my_footprints(client, ben)] == ["aki"]
    assert await my_footprints(client, aki) == []
    assert await my_footprints(client, cho) == []
    client.session.cookie_jar.clear()
    assert (await client.get("/api/footprints")).status == 401
    # A block placed after a visit hides the visitor from the list too.
    resp = await client.post("/api/users/aki/block", headers=ben.auth)
    assert resp.status == 200
    assert await my_footprints(client, ben) == []
    await me.close()


async def test_simultaneous_views_on_two_processes_notify_once(
    two_servers: tuple[Server, Server], rdb: Any
) -> None:
    a, b = two_servers
    ben = await signup(a, rdb, "ben")
    aki = await signup(b, rdb, "aki")
    marker = await signup(a, rdb, "marker")
    me = await subscribe_me(a, ben)
    views = [visit(server, aki, "ben") for _ in range(10) for server in (a, b)]
    await asyncio.gather(*views)
    notes = await footprints_until_marker(b, me, marker, "ben")
    assert [n["visitor"]["handle"] for n in notes] == ["aki"]
    items = await my_footprints(a, ben)
    assert [i["visitor"]["handle"] for i in items] == ["aki"]
    await me.close()
