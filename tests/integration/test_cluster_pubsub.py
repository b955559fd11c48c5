"""Sharded pub/sub on a real local cluster: one connection per primary, order per
channel, unsubscribe, and a primary's failover reported as a reset, then healed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.crc import key_slot
from redis.exceptions import ConnectionError as EngineConnectionError

from server.cluster import LocalCluster, command
from server.cluster_pubsub import ShardedSubscriber
from server.store.cluster_resp import ClusterEngineClient
from tests.support import until


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[bytes, bytes]] = []
        self.batches = 0
        self.resets: list[list[bytes]] = []

    def on_message(self, channel: bytes, payload: bytes) -> None:
        self.messages.append((channel, payload))

    def on_batch_end(self) -> None:
        self.batches += 1

    def on_reset(self, channels: list[bytes]) -> None:
        self.resets.append(sorted(channels))

    def of(self, channel: str) -> list[bytes]:
        return [p for c, p in self.messages if c == channel.encode()]


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    local = LocalCluster(tmp_path_factory.mktemp("pubsub"), primaries=3, replicas=0)
    local.start()
    yield local
    local.stop()


@pytest.fixture
async def engine(shared_cluster: LocalCluster) -> AsyncIterator[ClusterEngineClient]:
    client = ClusterEngineClient(shared_cluster.url)
    yield client
    await client.aclose()


def channels_on_every_primary(cluster: LocalCluster, count: int) -> list[str]:
    owners = {}
    for entry in command(cluster.host, cluster.nodes[0].port, "CLUSTER", "SLOTS"):
        owners[(int(entry[0]), int(entry[1]))] = int(entry[2][1])
    names = [f"eh:ch:{{user:{i}}}" for i in range(count)]

    def owner(name: str) -> int:
        slot = key_slot(name.encode())
        return next(p for (a, b), p in owners.items() if a <= slot <= b)

    assert len({owner(n) for n in names}) == 3
    return names


async def test_one_connection_per_primary_and_order_per_channel(
    engine: ClusterEngineClient, shared_cluster: LocalCluster
) -> None:
    inbox = Inbox()
    sub = ShardedSubscriber(engine, inbox.on_message, on_batch_end=inbox.on_batch_end)
    channels = channels_on_every_primary(shared_cluster, 24)
    try:
        await sub.subscribe(channels)
        assert sub.connections == 3, "one pub/sub connection per primary, not per channel"
        await asyncio.gather(*(engine.call("SPUBLISH", ch, str(i).encode())
                               for ch in channels for i in range(20)))  # fmt: skip
        await until(lambda: len(inbox.messages) == 24 * 20, 5, "every message arrived")
        for ch in channels:
            assert inbox.of(ch) == [str(i).encode() for i in range(20)]
        assert 0 < inbox.batches <= len(inbox.messages)
        sub.unsubscribe(channels[:12])
        # A kept channel on the same primary as channels[0]: its message comes on the same
        # connection, after anything sent to channels[0] before it.
        owner = engine._owner[key_slot(channels[0].encode())]
        kept = next(c for c in channels[12:] if engine._owner[key_slot(c.encode())] == owner)
        await engine.call("SPUBLISH", channels[0], b"late")
        await engine.call("SPUBLISH", kept, b"seen")
        await until(lambda: inbox.of(kept)[-1:] == [b"seen"], 5, "kept channel")
        assert b"late" not in inbox.of(channels[0])
    finally:
        await sub.aclose()


async def test_a_subscribe_to_an_unreachable_cluster_fails_clearly() -> None:
    engine = ClusterEngineClient("redis://127.0.0.1:1")
    sub = ShardedSubscriber(engine, lambda c, p: None)
    try:
        with pytest.raises(EngineConnectionError):
            await sub.subscribe(["x"])
    finally:
        await sub.aclose()
        await engine.aclose()


async def test_a_failover_is_reported_as_a_reset_and_delivery_resumes(tmp_path: Path) -> None:
    cluster = LocalCluster(tmp_path / "c", primaries=3, replicas=1)
    cluster.start()
    engine = ClusterEngineClient(cluster.url)
    inbox = Inbox()
    sub = ShardedSubscriber(engine, inbox.on_message, on_reset=inbox.on_reset)
    try:
        channels = channels_on_every_primary(cluster, 12)
        await sub.subscribe(channels)
        victim = cluster.nodes[0]
        victim_slots = [
            (int(e[0]), int(e[1]))
            for e in command(cluster.host, cluster.nodes[1].port, "CLUSTER", "SLOTS")
            if int(e[2][1]) == victim.port
        ]
        on_victim = [c for c in channels
                     if any(a <= key_slot(c.encode()) <= b for a, b in victim_slots)]  # fmt: skip
        elsewhere = [c for c in channels if c not in on_victim]
        assert on_victim and elsewhere
        assert victim.process is not None
        victim.process.kill()
        victim.process.wait()
        # The other primaries' channels keep flowing during the failover.
        await engine.call("SPUBLISH", elsewhere[0], b"during")
        await until(lambda: inbox.of(elsewhere[0]) == [b"during"], 5, "other shards flow")
        # The victim's channels come back once its replica is promoted: reported first.
        await until(lambda: inbox.resets, 20, "no reset reported")
        assert inbox.resets == [sorted(c.encode() for c in on_victim)]
        for channel in on_victim:
            for _ in range(50):  # the map may still be settling for a moment
                try:
                    await engine.call("SPUBLISH", channel, b"after")
                    break
                except EngineConnectionError:
                    await asyncio.sleep(0.1)
        await until(lambda: all(inbox.of(c) == [b"after"] for c in on_victim), 5,
                    "the victim's channels deliver again")  # fmt: skip
    finally:
        await sub.aclose()
        await engine.aclose()
        cluster.stop()
