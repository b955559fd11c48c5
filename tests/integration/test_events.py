"""Events on a real engine: shape and refusals, live updates, capacity under concurrent
RSVPs from two processes, and `event.starting` exactly once — with two processes
running, and after a restart that missed the moment (injected clock)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from server.app import create_app
from tests.support import Member, Server, call, error_of, receive_until, signup, subscribe, ws_sub

EVENT_KEYS = {"id", "host", "title", "description", "starts_at", "ends_at", "place",
              "community", "capacity", "going", "interested", "cancelled", "created_at",
              "my_rsvp"}  # fmt: skip


def at(seconds_from_now: float, base: float | None = None) -> str:
    moment = datetime.fromtimestamp(base if base is not None else time.time(), UTC)
    return (moment + timedelta(seconds=seconds_from_now)).isoformat().replace("+00:00", "Z")


async def announce(http: Any, host: Member, **fields: Any) -> dict[str, Any]:
    body = {"title": "Picnic", "description": "bring snacks", "starts_at": at(3600), **fields}
    return await call(http, "post", "/api/events", host, 201, body)


async def event_snapshot(rdb: Any) -> dict[str, Any]:
    """Every event key and its content, to assert a refusal changed nothing."""
    snap: dict[str, Any] = {}
    for pattern in ("eh:event:*", "eh:going:*", "eh:interested:*", "eh:events:pending",
                    "eh:hevents:*", "eh:cevents:*", "eh:myrsvps:*"):  # fmt: skip
        for key in await rdb.keys(pattern):
            kind = await rdb.type(key)
            if kind == "hash":
                snap[key] = await rdb.hgetall(key)
            elif kind == "string":
                snap[key] = await rdb.get(key)
            else:
                snap[key] = await rdb.zrange(key, 0, -1, withscores=True)
    return snap


async def types_until_marker(http: Any, ws: Any, marker: Member, owner: str) -> list[str]:
    """Event types on a `me` socket up to a `follow` the marker causes now (published
    after everything before it, so it bounds what arrived)."""
    await call(http, "post", f"/api/users/{owner}/follow", marker, 200)
    frames = await receive_until(
        ws, lambda f: f.get("type") == "follow" and f["data"]["by"]["handle"] == marker.handle,
        timeout=10,
    )  # fmt: skip
    await call(http, "delete", f"/api/users/{owner}/follow", marker, 200)
    return [f["type"] for f in frames if f["op"] == "event"][:-1]


async def test_shape_times_and_bad_input(app_client: Any, rdb: Any) -> None:
    host = await signup(app_client, rdb, "host")
    ben = await signup(app_client, rdb, "ben")
    event = await announce(
        app_client,
        host,
        starts_at="2099-01-02T19:00:00+09:00",
        ends_at="2099-01-02T21:30:00.5+09:00",
        place="Ueno",
        capacity=10,
    )
    assert set(event) == EVENT_KEYS
    assert event["starts_at"] == "2099-01-02T10:00:00.000Z"
    assert event["ends_at"] == "2099-01-02T12:30:00.500Z"
    assert event["host"] == {"handle": "host", "display_name": "Host"}
    assert (event["going"], event["interested"], event["capacity"]) == (0, 0, 10)
    assert (event["cancelled"], event["community"], event["my_rsvp"]) == (False, None, "none")
    seen = await call(app_client, "get", f"/api/events/{event['id']}", ben, 200)
    assert seen == event
    plain = await announce(app_client, host)
    assert (plain["ends_at"], plain["place"], plain["capacity"]) == (None, None, None)

    before = await event_snapshot(rdb)
    bad: list[tuple[dict[str, Any], int, str, str | None]] = [
        ({"starts_at": at(3600)}, 400, "invalid_title", "title"),
        ({"title": "x", "starts_at": "tomorrow"}, 400, "invalid_time", "starts_at"),
        ({"title": "x", "starts_at": "2099-01-02T19:00:00"}, 400, "invalid_time", "starts_at"),
        ({"title": "x"}, 400, "invalid_time", "starts_at"),
        ({"title": "x", "starts_at": at(-3600)}, 400, "starts_in_past", "starts_at"),
        ({"title": "x", "starts_at": at(3600), "ends_at": at(1800)}, 400, "ends_before_start",
         "ends_at"),
        ({"title": "x", "starts_at": at(3600), "capacity": 0}, 400, "invalid_capacity",
         "capacity"),
        ({"title": "x", "starts_at": at(3600), "capacity": True}, 400, "invalid_capacity",
         "capacity"),
        ({"title": "x", "starts_at": at(3600), "community": "ffffffffffffffffffff"}, 404,
         "community_not_found", "community"),
    ]  # fmt: skip
    for body, status, code, field in bad:
        got = await error_of(app_client, "post", "/api/events", ben, status, body)
        assert got == (code, field), body
    assert await error_of(app_client, "post", "/api/events", ben, 400, [1]) == (
        "invalid_body", None)  # fmt: skip
    for path in ("/api/events/ffffffffffffffffffff", "/api/events/nope"):
        assert await error_of(app_client, "get", path, ben, 404) == ("event_not_found", None)
    assert await event_snapshot(rdb) == before


async def test_edits_cancel_and_refusals(app_client: Any, rdb: Any) -> None:
    host = await signup(app_client, rdb, "host")
    ben = await signup(app_client, rdb, "ben")
    cho = await signup(app_client, rdb, "cho")
    event = await announce(app_client, host, capacity=3)
    path = f"/api/events/{event['id']}"
    ben_me = await subscribe(app_client, ben, "me")
    topic = await subscribe(app_client, cho, f"event:{event['id']}")
    counts = await call(app_client, "put", f"{path}/rsvp", ben, 200, {"status": "going"})
    assert counts == {"going": 1, "interested": 0, "status": "going"}
    counts = await call(app_client, "put", f"{path}/rsvp", cho, 200, {"status": "interested"})
    assert counts == {"going": 1, "interested": 1, "status": "interested"}
    rsvps = [f for f in await receive_until(topic, lambda f: f.get("type") == "event.rsvp"
                                            and f["data"]["status"] == "interested")
             if f.get("type") == "event.rsvp"]  # fmt: skip
    assert [(r["data"]["user"]["handle"], r["data"]["going"]) for r in rsvps] == [
        ("ben", 1), ("cho", 1)]  # fmt: skip
    assert (await call(app_client, "get", path, ben, 200))["my_rsvp"] == "going"

    before = await event_snapshot(rdb)
    refusals: list[tuple[str, str, Member, Any, int, tuple[str, str | None]]] = [
        ("patch", path, ben, {"title": "mine now"}, 403, ("forbidden", None)),
        ("post", f"{path}/cancel", ben, None, 403, ("forbidden", None)),
        ("patch", path, host, {"capacity": 0}, 400, ("invalid_capacity", "capacity")),
        ("patch", path, host, {"starts_at": at(-7200)}, 400, ("starts_in_past", "starts_at")),
        ("patch", path, host, {"ends_at": at(60)}, 400, ("ends_before_start", "ends_at")),
        ("patch", path, host, {"starts_at": "soon"}, 400, ("invalid_time", "starts_at")),
        ("patch", path, host, {"community": "ffffffffffffffffffff"}, 400,
         ("invalid_community", "community")),
        ("patch", "/api/events/ffffffffffffffffffff", host, {"title": "x"}, 404,
         ("event_not_found", None)),
        ("post", "/api/events/ffffffffffffffffffff/cancel", host, None, 404,
         ("event_not_found", None)),
        ("put", "/api/events/ffffffffffffffffffff/rsvp", ben, {"status": "going"}, 404,
         ("event_not_found", None)),
        ("put", f"{path}/rsvp", ben, {"status": "maybe"}, 400, ("invalid_rsvp", "status")),
    ]  # fmt: skip
    for method, where, who, body, status, want in refusals:
        assert await error_of(app_client, method, where, who, status, body) == want, (where, body)
    # Two more going, then capacity cannot drop below the three who are.
    dan = await signup(app_client, rdb, "dan")
    await call(app_client, "put", f"{path}/rsvp", host, 200, {"status": "going"})
    await call(app_client, "put", f"{path}/rsvp", dan, 200, {"status": "going"})
    before = await event_snapshot(rdb)
    assert await error_of(app_client, "patch", path, host, 409, {"capacity": 2}) == (
        "capacity_below_attendance", "capacity")  # fmt: skip
    assert await error_of(app_client, "put", f"{path}/rsvp", cho, 409, {"status": "going"}) == (
        "event_full", "status")  # fmt: skip
    assert await event_snapshot(rdb) == before

    change = {"title": "Picnic (moved)", "place": "Yoyogi", "capacity": None}
    edited = await call(app_client, "patch", path, host, 200, change)
    assert (edited["title"], edited["place"], edited["capacity"]) == (
        "Picnic (moved)", "Yoyogi", None)  # fmt: skip
    assert edited["my_rsvp"] == "going" and edited["going"] == 3
    note = (await receive_until(ben_me, lambda f: f.get("type") == "event.updated"))[-1]
    assert note["data"]["title"] == "Picnic (moved)" and "my_rsvp" not in note["data"]
    cancelled = await call(app_client, "post", f"{path}/cancel", host, 200)
    assert cancelled["cancelled"] is True
    note = (await receive_until(ben_me, lambda f: f.get("type") == "event.cancelled"))[-1]
    assert note["data"]["id"] == event["id"]
    (await receive_until(topic, lambda f: f.get("type") == "event.cancelled"))
    before = await event_snapshot(rdb)
    assert await error_of(app_client, "post", f"{path}/cancel", host, 409) == (
        "event_cancelled", None)  # fmt: skip
    assert await error_of(app_client, "patch", path, host, 409, {"title": "again"}) == (
        "event_cancelled", None)  # fmt: skip
    assert await error_of(app_client, "put", f"{path}/rsvp", cho, 409, {"status": "none"}) == (
        "event_cancelled", None)  # fmt: skip
    assert await event_snapshot(rdb) == before
    assert await rdb.zscore("eh:events:pending", event["id"]) is None
    await ben_me.close()
    await topic.close()


async def test_announced_to_followers_and_community_members(app_client: Any, rdb: Any) -> None:
    host = await signup(app_client, rdb, "host")
    fan = await signup(app_client, rdb, "fan")
    member = await signup(app_client, rdb, "member")
    outsider = await signup(app_client, rdb, "outsider")
    blocked = await signup(app_client, rdb, "blocked")
    await call(app_client, "post", "/api/users/host/follow", fan, 200)
    home = await subscribe(app_client, fan, "home")
    event = await announce(app_client, host)
    got = (await receive_until(home, lambda f: f["op"] == "event"))[-1]
    assert got["type"] == "event.announced" and got["data"]["id"] == event["id"]
    await call(app_client, "post", "/api/users/blocked/block", host, 200)
    assert await error_of(app_client, "get", f"/api/events/{event['id']}", blocked, 404) == (
        "event_not_found", None)  # fmt: skip
    _, reply = await ws_sub(app_client, blocked, f"event:{event['id']}")
    assert reply["op"] == "error" and reply["code"] == "forbidden"

    body = {"name": "Hikers", "join_policy": "approval"}
    club = await call(app_client, "post", "/api/communities", host, 201, body)
    cbase = f"/api/communities/{club['id']}"
    await call(app_client, "post", f"{cbase}/join", member, 200)
    await call(app_client, "post", f"{cbase}/requests/member/approve", host, 200)
    live = await subscribe(app_client, member, f"community:{club['id']}")
    hike = await announce(app_client, host, community=club["id"], title="Hike")
    got = (await receive_until(live, lambda f: f["op"] == "event"))[-1]
    assert got["type"] == "event.announced" and got["data"]["community"] == club["id"]
    listed = await call(app_client, "get", f"{cbase}/events", member, 200)
    assert [e["title"] for e in listed["items"]] == ["Hike"]
    # Outside the closed community the event does not exist; its followers' home shows
    # the community event only to members (the fan's home got nothing but the first).
    before = await event_snapshot(rdb)
    for method, where, body2 in (
        ("get", f"/api/events/{hike['id']}", None),
        ("put", f"/api/events/{hike['id']}/rsvp", {"status": "going"}),
    ):
        assert await error_of(app_client, method, where, outsider, 404, body2) == (
            "event_not_found", None)  # fmt: skip
    assert (await error_of(app_client, "get", f"{cbase}/events", outsider, 403))[0] == "forbidden"
    body = {"title": "Crash", "starts_at": at(3600), "community": club["id"]}
    assert await error_of(app_client, "post", "/api/events", outsider, 403, body) == (
        "not_a_member", "community")  # fmt: skip
    assert await event_snapshot(rdb) == before
    await call(app_client, "post", "/api/echoes", fan, 201, {"text": "fan marker"})
    frames = await receive_until(home, lambda f: f.get("data", {}).get("text") == "fan marker")
    assert [f["type"] for f in frames if f["op"] == "event"] == ["post.created"]
    for ws in (home, live):
        await ws.close()


async def test_capacity_holds_under_concurrent_rsvps_on_two_processes(
    two_servers: tuple[Server, Server], rdb: Any
) -> None:
    a, b = two_servers
    host = await signup(a, rdb, "host")
    event = await announce(a, host, capacity=1)
    members = [await signup(a if i % 2 else b, rdb, f"m{i:02d}") for i in range(20)]

    async def rsvp(i: int, who: Member) -> int:
        server = a if i % 2 else b
        resp = await server.put(f"/api/events/{event['id']}/rsvp", json={"status": "going"},
                                headers=who.auth)  # fmt: skip
        if resp.status == 409:
            assert (await resp.json())["error"]["code"] == "event_full"
        return resp.status

    statuses = await asyncio.gather(*(rsvp(i, m) for i, m in enumerate(members)))
    assert sorted(statuses) == [200] + [409] * 19
    assert await rdb.zcard(f"eh:going:{event['id']}") == 1
    seen = await call(b, "get", f"/api/events/{event['id']}", host, 200)
    assert seen["going"] == 1
    # Interest takes no seat; the seat frees when its holder leaves.
    holder = members[statuses.index(200)]
    other = next(m for m in members if m is not holder)
    await call(a, "put", f"/api/events/{event['id']}/rsvp", other, 200, {"status": "interested"})
    await call(a, "put", f"/api/events/{event['id']}/rsvp", holder, 200, {"status": "none"})
    counts = await call(b, "put", f"/api/events/{event['id']}/rsvp", other, 200,
                        {"status": "going"})  # fmt: skip
    assert counts == {"going": 1, "interested": 0, "status": "going"}


async def test_starting_exactly_once_with_two_processes(
    two_servers: tuple[Server, Server], rdb: Any
) -> None:
    a, b = two_servers
    host = await signup(a, rdb, "host")
    ann = await signup(b, rdb, "ann")
    bob = await signup(a, rdb, "bob")
    marker = await signup(a, rdb, "marker")
    ann_me = await subscribe(a, ann, "me")
    bob_me = await subscribe(b, bob, "me")
    start = at(2.5)  # waiting below is for the notification itself, bounded
    soon = [await announce(a, host, title=f"soon {i}", starts_at=start) for i in range(3)]
    called_off = await announce(a, host, title="called off", starts_at=start)
    for event in [*soon, called_off]:
        await call(a, "put", f"/api/events/{event['id']}/rsvp", ann, 200, {"status": "going"})
        await call(b, "put", f"/api/events/{event['id']}/rsvp", bob, 200,
                   {"status": "interested"})  # fmt: skip
    await call(b, "post", f"/api/events/{called_off['id']}/cancel", host, 200)
    for ws in (ann_me, bob_me):
        frames = await receive_until(
            ws, lambda f: f.get("type") == "event.starting" and f["data"]["title"] == "soon 2",
            timeout=15,
        )  # fmt: skip
        assert frames[-1]["data"]["going"] == 1 and frames[-1]["data"]["interested"] == 1
    assert await rdb.zcard("eh:events:pending") == 0
    for ws, who in ((ann_me, "ann"), (bob_me, "bob")):
        rest = await types_until_marker(a, ws, marker, who)
        assert "event.starting" not in rest
        ws_all, _ = await ws_sub(b, ann if who == "ann" else bob, "me", since="0")
        frames = await receive_until(ws_all, lambda f: f.get("type") == "follow")
        starting = [f["data"]["title"] for f in frames if f.get("type") == "event.starting"]
        assert sorted(starting) == ["soon 0", "soon 1", "soon 2"], who
        await ws_all.close()
        await ws.close()


class ManualClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def test_starting_caught_up_once_after_a_restart(
    aiohttp_client: Any, engine_url: str, rdb: Any, settings: Any
) -> None:
    clock = ManualClock()
    first = await aiohttp_client(create_app(settings, engine_url, clock=clock))
    host = await signup(first, rdb, "host")
    ann = await signup(first, rdb, "ann")
    marker = await signup(first, rdb, "marker")
    event = await announce(first, host, starts_at=at(600, clock.now))
    await call(first, "put", f"/api/events/{event['id']}/rsvp", ann, 200, {"status": "going"})
    me, ack = await ws_sub(first, ann, "me")
    cursor = ack["cursor"]
    await me.close()
    await first.close()  # every process is down when the event starts
    clock.now += 700
    # Two processes come back at once: both find the missed start, one announces it.
    second = await aiohttp_client(create_app(settings, engine_url, clock=clock))
    third = await aiohttp_client(create_app(settings, engine_url, clock=clock))
    me = await subscribe(second, ann, "me", since=cursor)
    got = (await receive_until(me, lambda f: f.get("type") == "event.starting", timeout=10))[-1]
    assert got["data"]["id"] == event["id"]
    assert await types_until_marker(third, me, marker, "ann") == []
    replay = await subscribe(third, ann, "me", since=cursor)
    frames = await receive_until(replay, lambda f: f.get("type") == "follow")
    assert [f["type"] for f in frames if f["op"] == "event"].count("event.starting") == 1
    await me.close()
    await replay.close()


@dataclass
class Stage:
    """An app whose scheduler sleeps, so that a test plays the processes around it; a
    host's events starting in ten minutes, with ann going to each and listening."""

    clock: ManualClock
    client: Any
    events: Any  # the app's EventService
    host: Member
    marker: Member
    me: Any  # ann's `me` socket
    started: list[dict[str, Any]]


async def stage(
    aiohttp_client: Any, engine_url: str, rdb: Any, settings: Any, titles: list[str]
) -> Stage:
    from server.services.container import FEATURES

    clock = ManualClock()
    quiet = settings.with_(scheduler_interval=3600.0)
    client = await aiohttp_client(create_app(quiet, engine_url, clock=clock))
    host = await signup(client, rdb, "host")
    ann = await signup(client, rdb, "ann")
    marker = await signup(client, rdb, "marker")
    started = []
    for title in titles:
        event = await announce(client, host, title=title, starts_at=at(600, clock.now))
        await call(client, "put", f"/api/events/{event['id']}/rsvp", ann, 200,
                   {"status": "going"})  # fmt: skip
        started.append(event)
    me = await subscribe(client, ann, "me")
    events = client.server.app[FEATURES].events
    return Stage(clock, client, events, host, marker, me, started)


async def test_a_start_whose_claimant_died_or_stalled_is_announced_exactly_once(
    aiohttp_client: Any, engine_url: str, rdb: Any, settings: Any
) -> None:
    """A process that claimed a start and died before announcing it: another takes the
    lapsed claim over. One that stalled past its lease: its late publication is refused.
    One that announced and died before clearing its claim: nothing is sent again."""
    from server.store.events import start_key

    st = await stage(aiohttp_client, engine_url, rdb, settings, ["orphaned", "settled"])
    clock, client, events, marker, me = st.clock, st.client, st.events, st.marker, st.me
    orphaned, settled = st.started
    start_ms = int((clock.now + 600) * 1000)
    # A process claims both starts and has until a second after the start to announce.
    for event in (orphaned, settled):
        assert not await events.store.claim_start(event["id"], "early", start_ms, start_ms - 1)
        assert await events.store.claim_start(event["id"], "dead", start_ms + 1000, start_ms)
        assert not await events.store.claim_start(event["id"], "late", start_ms + 1000, start_ms)
    clock.now += 700
    # It announced one of them, then died before clearing its claim.
    rec = await events.store.get(settled["id"])
    assert await events._to_attendees("event.starting", rec, None,
                                      claim=(start_key(settled["id"]), "dead"))  # fmt: skip
    await events.fire_due()  # the lapsed claims: one taken over, one only cleared
    assert await rdb.zcard("eh:events:firing") == 0
    assert await rdb.exists(start_key(orphaned["id"]), start_key(settled["id"])) == 0
    # The dead process was only stalled: its own announcement now publishes nothing.
    rec = await events.store.get(orphaned["id"])
    assert not await events._to_attendees("event.starting", rec, None,
                                          claim=(start_key(orphaned["id"]), "dead"))  # fmt: skip
    await events.fire_due()
    frames = await receive_until(
        me, lambda f: f.get("type") == "event.starting" and f["data"]["title"] == "orphaned"
    )
    titles = [f["data"]["title"] for f in frames if f.get("type") == "event.starting"]
    assert sorted(titles) == ["orphaned", "settled"]
    assert await types_until_marker(client, me, marker, "ann") == []
    await me.close()


async def test_a_start_moved_or_cancelled_while_claimed_is_not_announced_by_that_claim(
    aiohttp_client: Any, engine_url: str, rdb: Any, settings: Any
) -> None:
    """Edits and cancels win over a claim in progress: a start moved while claimed is
    announced at its new time (once), a cancelled one never, and a start moved after
    the scheduler listed it is not claimed early."""
    from server.store.events import start_key

    titles = ["moved", "called off", "listed"]
    st = await stage(aiohttp_client, engine_url, rdb, settings, titles)
    clock, client, events, host, marker, me = (st.clock, st.client, st.events, st.host,
                                               st.marker, st.me)  # fmt: skip
    moved, called_off, listed = st.started
    clock.now += 700
    now_ms = int(clock.now * 1000)
    assert set(await events.store.due(now_ms)) == {moved["id"], called_off["id"], listed["id"]}
    for event in (moved, called_off):  # claimed, then stalled before announcing
        assert await events.store.claim_start(event["id"], "slow", now_ms + 30_000, now_ms)
        rec = await events.store.get(event["id"])
        event["rec"] = rec
    later = at(3600, clock.now)
    await call(client, "patch", f"/api/events/{moved['id']}", host, 200, {"starts_at": later})
    await call(client, "post", f"/api/events/{called_off['id']}/cancel", host, 200)
    # Listed as due, then moved before anyone claimed it.
    await call(client, "patch", f"/api/events/{listed['id']}", host, 200, {"starts_at": later})
    assert not await events.store.claim_start(listed["id"], "eager", now_ms + 30_000, now_ms)
    for event in (moved, called_off):  # the stalled claimant wakes up
        assert not await events._to_attendees("event.starting", event["rec"], None,
                                              claim=(start_key(event["id"]), "slow"))  # fmt: skip
    assert await events.fire_due() == 0
    assert "event.starting" not in await types_until_marker(client, me, marker, "ann")
    clock.now += 3600
    assert await events.fire_due() == 2
    await call(client, "post", "/api/users/ann/follow", marker, 200)
    frames = await receive_until(me, lambda f: f.get("type") == "follow")
    titles = sorted(f["data"]["title"] for f in frames if f.get("type") == "event.starting")
    assert titles == ["listed", "moved"]
    assert await rdb.zcard("eh:events:firing") == 0 and await rdb.zcard("eh:events:pending") == 0
    await me.close()


async def test_upcoming_events_list(app_client: Any, rdb: Any) -> None:
    host = await signup(app_client, rdb, "host")
    guest = await signup(app_client, rdb, "guest")
    blocked = await signup(app_client, rdb, "blocked")
    later = await announce(app_client, host, title="Later", starts_at=at(7200))
    sooner = await announce(app_client, host, title="Sooner", starts_at=at(600))
    gone = await announce(app_client, host, title="Called off", starts_at=at(900))
    await call(app_client, "post", f"/api/events/{gone['id']}/cancel", host, 200)
    await call(app_client, "post", "/api/users/blocked/block", host, 200)
    page = await call(app_client, "get", "/api/events", guest, 200)
    assert [e["id"] for e in page["items"]] == [sooner["id"], later["id"]]
    assert page["next"] is None
    first = await call(app_client, "get", "/api/events?limit=1", guest, 200)
    assert [e["id"] for e in first["items"]] == [sooner["id"]] and first["next"]
    second = await call(app_client, "get", f"/api/events?limit=1&before={first['next']}",
                        guest, 200)  # fmt: skip
    assert [e["id"] for e in second["items"]] == [later["id"]]
    hidden = await call(app_client, "get", "/api/events", blocked, 200)
    assert hidden["items"] == []
    assert await error_of(app_client, "get", "/api/events?before=x", guest, 400) == (
        "invalid_cursor",
        "before",
    )
