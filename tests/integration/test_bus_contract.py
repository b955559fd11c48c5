"""The bus contract (`server.eventbus`), one suite for every implementation: the Redis bus
on the real engine, and the in-memory bus the hub's unit tests run on. What the hub's
unit tests show on the in-memory bus holds on the engine because both pass this."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from server.bus import RedisBus
from server.eventbus import Audience, Event, encode_body
from server.memorybus import MemoryBus
from server.store.resp import EngineClient


class Recorder:
    """A sink that records what the bus delivers, and each flush."""

    def __init__(self) -> None:
        self.got: list[tuple[str, Event]] = []
        self.flushes = 0

    def dispatch(self, channel: str, event: Event) -> None:
        self.got.append((channel, event))

    def flush(self) -> None:
        self.flushes += 1

    async def until(self, count: int) -> list[tuple[str, Event]]:
        async with asyncio.timeout(5):
            while len(self.got) < count:
                await asyncio.sleep(0.005)  # polling a condition, bounded
        return self.got


@dataclass
class Subject:
    bus: Any
    sink: Recorder
    set_guard: Callable[[str, str], Awaitable[None]]
    history_size: int
    seen: list[str] = field(default_factory=list)


HISTORY = 5


@pytest.fixture(params=["memory", "redis"])
async def subject(request: Any, engine_url: str, rdb: Any) -> AsyncIterator[Subject]:
    sink = Recorder()
    if request.param == "memory":
        memory = MemoryBus(history_size=HISTORY)
        memory.sink = sink

        async def set_memory_guard(key: str, value: str) -> None:
            memory.set_guard(key, value)

        yield Subject(memory, sink, set_memory_guard, HISTORY)
        return
    engine = EngineClient(engine_url)
    bus = RedisBus(engine_url, rdb, engine, history_size=HISTORY)
    bus.sink = sink
    await bus.start()

    async def set_engine_guard(key: str, value: str) -> None:
        await rdb.set(key, value)

    try:
        yield Subject(bus, sink, set_engine_guard, HISTORY)
    finally:
        await bus.stop()
        await engine.aclose()


def body(n: int, audience: Audience | None = None) -> bytes:
    return encode_body("test", {"n": n}, audience)


async def test_publishing_after_subscribe_returns_is_delivered_in_order(subject: Subject) -> None:
    bus, sink = subject.bus, subject.sink
    await bus.subscribe(["a"])
    seqs = [await bus.publish([("a", body(n))]) for n in range(4)]
    got = await sink.until(4)
    assert [(c, e.seq, e.data) for c, e in got] == [("a", s, {"n": n}) for n, s in enumerate(seqs)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4
    assert sink.flushes >= 1
    assert bus.watermark >= seqs[-1] and await bus.head() >= seqs[-1]


async def test_one_publish_is_one_seq_on_every_channel(subject: Subject) -> None:
    bus, sink = subject.bus, subject.sink
    await bus.subscribe(["a", "b"])
    only = Audience(frozenset({"u1"}), frozenset({"u2"}))
    seq = await bus.publish([("a", body(1, only)), ("b", body(2))])
    got = await sink.until(2)
    assert sorted((c, e.seq, e.data["n"]) for c, e in got) == [("a", seq, 1), ("b", seq, 2)]
    assert dict(got)["a"].audience == only and dict(got)["b"].audience is None
    history, recovered = await bus.history(["a", "b"], 0, seq)
    assert recovered and [e.seq for e in history] == [seq, seq]


async def test_seqs_are_one_order_across_channels(subject: Subject) -> None:
    bus = subject.bus
    seqs = [await bus.publish([(channel, body(i))]) for i, channel in enumerate("abcab")]
    assert seqs == sorted(seqs) and len(set(seqs)) == 5
    history, recovered = await bus.history(["a", "b", "c"], 0, seqs[-1])
    assert recovered and [e.seq for e in history] == seqs


async def test_unsubscribed_channels_are_not_delivered(subject: Subject) -> None:
    bus, sink = subject.bus, subject.sink
    await bus.subscribe(["a", "b"])
    bus.unsubscribe(["a"])
    await bus.publish([("a", body(1))])
    last = await bus.publish([("b", body(2))])
    got = await sink.until(1)
    assert [(c, e.seq) for c, e in got] == [("b", last)]


async def test_history_is_the_window_after_since_up_to_upto(subject: Subject) -> None:
    bus = subject.bus
    seqs = [await bus.publish([("h", body(n))]) for n in range(4)]
    events, recovered = await bus.history(["h"], seqs[0], seqs[2])
    assert recovered and [e.seq for e in events] == seqs[1:3]
    assert [e.data for e in events] == [{"n": 1}, {"n": 2}]
    events, recovered = await bus.history(["nothing-here"], 0, seqs[-1])
    assert recovered and events == []


async def test_history_says_when_it_no_longer_reaches_back(subject: Subject) -> None:
    bus = subject.bus
    seqs = [await bus.publish([("t", body(n))]) for n in range(subject.history_size + 2)]
    # The two oldest were trimmed: from before them, history does not reach back.
    events, recovered = await bus.history(["t"], seqs[0] - 1, seqs[-1])
    assert not recovered
    assert [e.seq for e in events] == seqs[2:]
    # From the last trimmed one on, it does.
    events, recovered = await bus.history(["t"], seqs[1], seqs[-1])
    assert recovered and [e.seq for e in events] == seqs[2:]


async def test_a_guard_that_no_longer_holds_publishes_nothing(subject: Subject) -> None:
    bus, sink = subject.bus, subject.sink
    await bus.subscribe(["g"])
    await subject.set_guard("contract:guard", "3")
    assert await bus.publish([("g", body(1))], guard=("contract:guard", "2")) is None
    held = await bus.publish([("g", body(2))], guard=("contract:guard", "3"))
    assert held is not None
    # A key never set reads as "0".
    assert await bus.publish([("g", body(3))], guard=("contract:never-set", "0")) is not None
    got = await sink.until(2)
    assert [e.data["n"] for _, e in got] == [2, 3]
    events, _ = await bus.history(["g"], 0, await bus.head())
    assert [e.data["n"] for e in events] == [2, 3]
