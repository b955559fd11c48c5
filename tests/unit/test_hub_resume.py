"""The hub's subscriptions, resume and fan-out on the in-memory bus and a simulated socket:
no socket, no engine, milliseconds each. The in-memory bus passes the same contract
suite as the Redis bus (tests/integration/test_bus_contract.py)."""

from __future__ import annotations

from server.eventbus import Audience, Event, encode_body
from server.hub import Hub
from server.memorybus import MemoryBus
from server.protocol import CloseCode
from tests.unit.hubkit import connect, messages, settle


def hub_on(bus: MemoryBus | None = None, **kw: int) -> tuple[Hub, MemoryBus]:
    bus = bus or MemoryBus(history_size=20)
    hub = Hub(bus, **kw)
    bus.sink = hub
    return hub, bus


async def publish(bus: MemoryBus, channel: str, n: int, audience: Audience | None = None) -> int:
    seq = await bus.publish([(channel, encode_body("test", {"n": n}, audience))])
    assert seq is not None
    return seq


def events_of(frames: list[dict[str, object]]) -> list[object]:
    return [f["data"]["n"] for f in frames if f["op"] == "event"]  # type: ignore[index]


async def test_a_sub_acks_at_the_head_then_goes_live() -> None:
    hub, bus = hub_on()
    await publish(bus, "a", 0)
    conn, transport, _ = connect(hub)
    await hub.subscribe(conn, "t", ["a"], request_id=1)
    head = await bus.head()
    await publish(bus, "a", 1)
    await settle()
    assert messages(transport) == [
        {"op": "ack", "id": 1, "topic": "t", "cursor": str(head)},
        {"op": "event", "topic": "t", "cursor": str(head + 1), "type": "test", "data": {"n": 1}},
    ]


async def test_on_a_live_channel_the_ack_is_the_watermark_without_asking_the_engine() -> None:
    hub, bus = hub_on()
    first, _, _ = connect(hub, principal="u1")
    await hub.subscribe(first, "t", ["a"])
    # The head moves on a channel this process does not hear; the watermark does not.
    await publish(bus, "elsewhere", 0)
    assert await bus.head() > bus.watermark
    second, transport2, _ = connect(hub, principal="u2")
    await hub.subscribe(second, "t", ["a"], request_id=2)
    await settle()
    ack = messages(transport2)[0]
    assert ack["cursor"] == str(bus.watermark)
    seq = await publish(bus, "a", 1)
    await settle()
    assert [f["cursor"] for f in messages(transport2)] == [str(seq)]


async def test_a_resume_replays_the_gap_in_order_then_live() -> None:
    hub, bus = hub_on()
    since = await publish(bus, "a", 0)
    missed = [await publish(bus, channel, n) for n, channel in enumerate("abab", 1)]
    conn, transport, _ = connect(hub)
    await hub.subscribe(conn, "home", ["a", "b"], request_id=3, since=since)
    await publish(bus, "b", 5)
    await settle()
    frames = messages(transport)
    assert frames[0] == {"op": "ack", "id": 3, "topic": "home", "cursor": str(since),
                         "recovered": True}  # fmt: skip
    assert events_of(frames) == [1, 2, 3, 4, 5]
    assert [int(str(f["cursor"])) for f in frames[1:5]] == missed


async def test_history_that_no_longer_reaches_back_is_not_recovered() -> None:
    hub, bus = hub_on(MemoryBus(history_size=3))
    since = await publish(bus, "a", 0)
    for n in range(1, 6):
        await publish(bus, "a", n)
    conn, transport, _ = connect(hub)
    await hub.subscribe(conn, "t", ["a"], request_id=4, since=since)
    await settle()
    frames = messages(transport)
    assert frames == [{"op": "ack", "id": 4, "topic": "t", "cursor": str(await bus.head()),
                       "recovered": False}]  # fmt: skip


async def test_a_cursor_from_the_future_is_not_recovered() -> None:
    hub, bus = hub_on()
    conn, transport, _ = connect(hub)
    await hub.subscribe(conn, "t", ["a"], request_id=5, since=await bus.head() + 10)
    await settle()
    (ack,) = messages(transport)
    assert ack["recovered"] is False and ack["cursor"] == str(await bus.head())


class RacingBus(MemoryBus):
    """An event is published, and delivered live, between the subscription going live on
    the bus and the hub reading the head: it is both in the replay and in the buffer."""

    racing = False

    async def head(self) -> int:
        if self.racing:
            self.racing = False
            await self.publish([("a", encode_body("test", {"n": 99}, None))])
            await settle()
        return await super().head()


async def test_replay_and_live_buffer_overlap_without_duplicates() -> None:
    bus = RacingBus(history_size=20)
    hub, _ = hub_on(bus)
    since = await publish(bus, "a", 0)
    await publish(bus, "a", 1)
    conn, transport, _ = connect(hub)
    bus.racing = True
    await hub.subscribe(conn, "t", ["a"], since=since)
    await publish(bus, "a", 2)
    await settle()
    assert events_of(messages(transport)) == [1, 99, 2]


async def test_replay_filter_drops_what_todays_rules_forbid() -> None:
    hub, bus = hub_on()
    since = await publish(bus, "a", 0)
    for n in range(1, 5):
        await publish(bus, "a", n)

    async def odd_only(events: list[Event]) -> list[Event]:
        return [e for e in events if e.data["n"] % 2]

    conn, transport, _ = connect(hub)
    await hub.subscribe(conn, "t", ["a"], since=since, replay_filter=odd_only)
    await settle()
    assert events_of(messages(transport)) == [1, 3]


async def test_audiences_and_filters_are_applied_live() -> None:
    hub, bus = hub_on()
    conns = {p: connect(hub, principal=p) for p in ("u1", "u2", "u3")}
    for principal, (conn, _, _) in conns.items():
        flt = (lambda e: e.data["n"] != 2) if principal == "u3" else None
        await hub.subscribe(conn, "t", ["a"], flt=flt)
    for _, transport, _ in conns.values():
        transport.read.clear()
        messages(transport)
    await publish(bus, "a", 1, Audience(frozenset({"u1", "u3"})))
    await publish(bus, "a", 2, Audience(None, frozenset({"u1"})))
    await publish(bus, "a", 3)
    await settle()
    got = {p: events_of(messages(t)) for p, (_, t, _) in conns.items()}
    assert got == {"u1": [1, 3], "u2": [2, 3], "u3": [1, 3]}


async def test_plans_follow_every_subscription_change() -> None:
    """Fan-out plans are cached per channel and rebuilt when the channel table changes
    (the epoch): a stale plan would serve a gone subscription or miss a new one."""
    hub, bus = hub_on()
    a, ta, _ = connect(hub, principal="a")
    b, tb, _ = connect(hub, principal="b")
    await hub.subscribe(a, "t", ["c"])
    await publish(bus, "c", 1)
    await settle()
    await hub.subscribe(b, "t", ["c"])
    await publish(bus, "c", 2)
    await settle()
    hub.unsubscribe(a, "t")
    await publish(bus, "c", 3)
    await settle()
    await hub.add_channels(b, "t", ["d"])
    await publish(bus, "d", 4)
    await settle()
    hub.remove_channels(b, "t", ["c"])
    await publish(bus, "c", 5)
    await publish(bus, "d", 6)
    await settle()
    assert events_of(messages(ta)) == [1, 2]
    assert events_of(messages(tb)) == [2, 3, 4, 6]
    # The last local subscriber gone, the bus is unsubscribed from the channel.
    hub.unsubscribe(b, "t")
    assert hub.channels == [] and not bus._live


async def test_frames_stay_whole_and_in_order_through_a_backlog_and_a_slow_reader_is_4008() -> None:
    hub, bus = hub_on(send_queue_limit=200_000)
    fast, tfast, _ = connect(hub, principal="fast", room=8192)
    slow, _, slow_peer = connect(hub, principal="slow", room=8192)
    for conn in (fast, slow):
        await hub.subscribe(conn, "t", ["a"])
    received: list[object] = []
    for n in range(300):
        await bus.publish([("a", encode_body("test", {"n": n, "pad": "x" * 2000}, None))])
        await settle()
        received += events_of(messages(tfast))  # the fast reader reads all it can
    await settle()
    received += events_of(messages(tfast))
    assert received == list(range(300))
    assert slow_peer.closes == [CloseCode.TOO_SLOW] and slow.closed and not fast.closed
    assert hub.channels == ["a"]  # the slow one's subscription went with it
