"""The cluster bus on a real local cluster: one order across shards, history and
`recovered`, guards, a lost history recorded, and a primary's failover mid-stream with
every acknowledged event delivered once, in order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.crc import key_slot
from redis.exceptions import ConnectionError as EngineConnectionError

from server.cluster import LocalCluster
from server.cluster_bus import BusEvent, ClusterBus, pubsub_channel, stream_key
from server.store.cluster_resp import ClusterEngineClient
from server.watermark import Stamp
from tests.support import until


def spread_channels(engine: ClusterEngineClient, count: int) -> list[str]:
    names = [f"user:{i}" for i in range(count)]
    owners = {engine._owner[key_slot(pubsub_channel(n).encode())] for n in names}
    assert len(owners) == len({o for o in engine._owner if o}), "every primary has a channel"
    return names


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    local = LocalCluster(tmp_path_factory.mktemp("bus"), primaries=3, replicas=0)
    local.start()
    yield local
    local.stop()


@pytest.fixture
async def engines(shared_cluster: LocalCluster) -> AsyncIterator[tuple[ClusterEngineClient, ...]]:
    # Two clients: the subscribing process and a publishing one.
    a, b = ClusterEngineClient(shared_cluster.url), ClusterEngineClient(shared_cluster.url)
    await a.refresh()
    await b.refresh()
    yield a, b
    await a.aclose()
    await b.aclose()


async def test_events_from_every_shard_arrive_in_one_order_per_channel_in_publish_order(
    engines: tuple[ClusterEngineClient, ClusterEngineClient],
) -> None:
    sub_engine, pub_engine = engines
    got: list[BusEvent] = []
    reader = ClusterBus(sub_engine, got.append)
    writer = ClusterBus(pub_engine, lambda e: None)
    channels = spread_channels(sub_engine, 9)
    try:
        await reader.subscribe(channels)
        stamps = await asyncio.gather(*(writer.publish(ch, f"{ch}/{i}".encode())
                                        for i in range(20) for ch in channels))  # fmt: skip
        assert all(s is not None for s in stamps)
        await until(lambda: len(got) == 180, 10, "every event delivered")
        assert [e.stamp for e in got] == sorted(e.stamp for e in got), "one merged order"
        assert len({(e.channel, e.stamp) for e in got}) == 180, "no duplicates"
        for ch in channels:
            assert [e.body for e in got if e.channel == ch] == [
                f"{ch}/{i}".encode() for i in range(20)]  # fmt: skip
        # History holds the same, and answers after a stamp.
        events, recovered = await writer.history(channels[0], None)
        assert [e.body for e in events] == [f"{channels[0]}/{i}".encode() for i in range(20)]
        after, recovered = await writer.history(channels[0], events[9].stamp)
        assert recovered and [e.stamp for e in after] == [e.stamp for e in events[10:]]
    finally:
        await reader.aclose()
        await writer.aclose()


async def test_trimmed_history_says_it_no_longer_reaches_back(
    engines: tuple[ClusterEngineClient, ClusterEngineClient],
) -> None:
    bus = ClusterBus(engines[1], lambda e: None, history_size=5)
    stamps = [await bus.publish("trim:1", str(i).encode()) for i in range(8)]
    events, recovered = await bus.history("trim:1", stamps[0])
    assert not recovered and len(events) == 5
    events, recovered = await bus.history("trim:1", stamps[5])
    assert recovered and [e.body for e in events] == [b"6", b"7"]


async def test_a_guard_that_moved_publishes_nothing_but_along_is_applied(
    engines: tuple[ClusterEngineClient, ClusterEngineClient],
) -> None:
    engine = engines[1]
    bus = ClusterBus(engine, lambda e: None)
    guard = "eh:{user:g}:gv"
    await engine.call("SET", guard, "3")
    stored = ("HSET", "eh:{user:g}:post:1", "text", "hi")
    assert await bus.publish("user:g", b"x", guard=(guard, "2"), along=[stored]) is None
    assert await engine.call("HGET", "eh:{user:g}:post:1", "text") == "hi"
    assert await engine.call("XLEN", stream_key("user:g")) == 0
    stamp = await bus.publish("user:g", b"y", guard=(guard, "3"), settle="4")
    assert stamp is not None and await engine.call("GET", guard) == "4"


async def test_history_lost_in_a_failover_is_recorded_never_a_silent_gap(
    engines: tuple[ClusterEngineClient, ClusterEngineClient],
) -> None:
    sub_engine, pub_engine = engines
    got: list[BusEvent] = []
    reader = ClusterBus(sub_engine, got.append)
    writer = ClusterBus(pub_engine, lambda e: None)
    try:
        await reader.subscribe(["lossy:1"])
        first = await writer.publish("lossy:1", b"a")
        assert first is not None
        await writer.publish("lossy:1", b"b")
        await until(lambda: len(got) == 2, 5, "both delivered")
        # As if the promoted replica had never received the two entries:
        await pub_engine.call("DEL", stream_key("lossy:1"))
        await reader._catch_up(["lossy:1"])  # what a shard reset runs
        assert reader.losses == 1
        _, recovered = await writer.history("lossy:1", first)
        assert not recovered, "a resume from inside the loss must reload"
        after = await writer.publish("lossy:1", b"c")
        assert after is not None and after > got[-1].stamp
        await until(lambda: [e.body for e in got] == [b"a", b"b", b"c"], 5, "c delivered")
    finally:
        await reader.aclose()
        await writer.aclose()


async def test_a_primary_killed_mid_stream_loses_no_acknowledged_event(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path / "c", primaries=3, replicas=1)
    cluster.start()
    sub_engine, pub_engine = ClusterEngineClient(cluster.url), ClusterEngineClient(cluster.url)
    got: list[BusEvent] = []
    reader = ClusterBus(sub_engine, got.append)
    writer = ClusterBus(pub_engine, lambda e: None)
    acked: dict[str, list[Stamp]] = {}
    refused = 0
    after_kill: dict[str, int] = {}
    try:
        await sub_engine.refresh()
        channels = spread_channels(sub_engine, 6)
        await reader.subscribe(channels)
        victim = cluster.nodes[0]
        started = time.monotonic()
        for i in range(2000):
            if i == 60:
                assert victim.process is not None
                victim.process.kill()
                after_kill = {ch: len(acked.get(ch, [])) for ch in channels}
            if time.monotonic() - started > 25 or (i > 60 and all(
                len(acked.get(ch, [])) > after_kill[ch] + 5 for ch in channels
            )):  # fmt: skip
                break
            channel = channels[i % len(channels)]
            try:
                stamp = await writer.publish(channel, str(i).encode(), replicas=1)
            except EngineConnectionError:
                refused += 1
                await asyncio.sleep(0.05)
                continue
            assert stamp is not None
            acked.setdefault(channel, []).append(stamp)
        assert refused > 0, "the dead primary's channels answered 503 for a while"
        assert all(len(acked[ch]) > after_kill[ch] + 5 for ch in channels), "all recovered"
        # The promoted replica has no replica of its own: held to what it has.
        assert pub_engine.degraded_writes > 0
        total = sum(len(v) for v in acked.values())
        await until(lambda: len(got) >= total, 15, "every acknowledged event delivered")
        for ch in channels:
            assert [e.stamp for e in got if e.channel == ch] == acked[ch], ch
        assert [e.stamp for e in got] == sorted(e.stamp for e in got)
        assert reader.losses == 0
    finally:
        await reader.aclose()
        await writer.aclose()
        await sub_engine.aclose()
        await pub_engine.aclose()
        cluster.stop()
