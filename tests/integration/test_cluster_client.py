"""The lean engine client over a real local cluster: routing by slot, MOVED and ASK,
one-slot transactions and scripts, failover answered at once and recovered by itself."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
from redis.crc import key_slot
from redis.exceptions import ConnectionError as EngineConnectionError
from redis.exceptions import ResponseError

from server.cluster import LocalCluster, command
from server.store.cluster_resp import (
    ClusterEngineClient,
    CrossSlotError,
    is_cluster,
    keys_of,
    parse_seeds,
    slot_of,
)


@pytest.fixture(scope="module")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    local = LocalCluster(tmp_path_factory.mktemp("cluster"), primaries=3, replicas=0)
    local.start()
    yield local
    local.stop()


@pytest.fixture
async def client(shared_cluster: LocalCluster) -> AsyncIterator[ClusterEngineClient]:
    engine = ClusterEngineClient(shared_cluster.url)
    await engine.call("FLUSHALL")  # a keyless command: any primary; flush each below
    for node in shared_cluster.nodes:
        command(shared_cluster.host, node.port, "FLUSHALL")
    yield engine
    await engine.aclose()


def owner_port(cluster: LocalCluster, key: str) -> int:
    slot = key_slot(key.encode())
    for entry in command(cluster.host, cluster.nodes[0].port, "CLUSTER", "SLOTS"):
        if int(entry[0]) <= slot <= int(entry[1]):
            return int(entry[2][1])
    raise AssertionError(slot)


@pytest.mark.parametrize(
    ("cmd", "keys"),
    [
        (("GET", "a"), [b"a"]),
        (("HSET", "h", "f", "v"), [b"h"]),
        (("EVALSHA", "abc", 2, "k1", "k2", "arg"), [b"k1", b"k2"]),
        (("EVAL", "return 1", 0), []),
        (("DEL", "x", "y"), [b"x", b"y"]),
        (("SUNION", "s1", "s2"), [b"s1", b"s2"]),
        (("SINTERCARD", 2, "s1", "s2", "LIMIT", 5), [b"s1", b"s2"]),
        (("MSET", "a", 1, "b", 2), [b"a", b"b"]),
        (("PING",), []),
        (("SCRIPT", "LOAD", "return 1"), []),
    ],
)
def test_keys_of_commands(cmd: tuple[object, ...], keys: list[bytes]) -> None:
    assert keys_of(cmd) == keys  # type: ignore[arg-type]


def test_slot_of_keeps_a_hash_tag_together_and_refuses_two_slots() -> None:
    assert slot_of([("SET", "user:{aki}:a", 1), ("SADD", "{aki}:b", 2)]) == key_slot(b"aki")
    assert slot_of([("PING",)]) is None
    with pytest.raises(CrossSlotError):
        slot_of([("SET", "user:{aki}", 1), ("SET", "user:{ben}", 1)])


def test_seed_lists() -> None:
    assert parse_seeds("redis://127.0.0.1:7000,redis://127.0.0.1:7001") == [
        ("127.0.0.1", 7000), ("127.0.0.1", 7001)]  # fmt: skip
    assert parse_seeds("redis://h:1, h2:2") == [("h", 1), ("h2", 2)]
    for bad in ("", " , ", "unix:///tmp/x.sock,redis://h:1", "http://h:1"):
        with pytest.raises(ValueError):
            parse_seeds(bad)


async def test_detects_cluster_mode(shared_cluster: LocalCluster, engine_url: str) -> None:
    assert await is_cluster(shared_cluster.url)
    assert not await is_cluster(engine_url)


async def test_commands_reach_every_primary_and_calls_keep_their_order(
    client: ClusterEngineClient, shared_cluster: LocalCluster
) -> None:
    keys = [f"key:{i}" for i in range(60)]
    assert len({owner_port(shared_cluster, k) for k in keys}) == 3
    await asyncio.gather(*(client.call("SET", k, k.upper()) for k in keys))
    assert await client.calls([("GET", k) for k in keys]) == [k.upper() for k in keys]
    # Each key landed on its slot's primary, read there directly.
    for k in keys[:10]:
        assert command(shared_cluster.host, owner_port(shared_cluster, k), "GET", k) == k.upper()
    replies = await client.calls([("GET", keys[0]), ("HGET", keys[1], "f")], raise_on_error=False)
    assert replies[0] == keys[0].upper() and isinstance(replies[1], ResponseError)
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await client.calls([("GET", keys[0]), ("HGET", keys[1], "f")])


async def test_one_slot_transactions_and_scripts(client: ClusterEngineClient) -> None:
    done = await client.transaction([("SET", "{aki}:a", 1), ("INCR", "{aki}:a"),
                                     ("SADD", "posts:{aki}", "p1")])  # fmt: skip
    assert done == ["OK", 2, 1]
    with pytest.raises(CrossSlotError):
        client.transaction([("SET", "{aki}:a", 1), ("SET", "{ben}:a", 1)])
    script = client.script("return redis.call('INCRBY', KEYS[1], ARGV[1]) + #KEYS")
    assert await script(["{ben}:n", "{ben}:m"], [5]) == 7  # NOSCRIPT, then EVAL
    assert await script(["{ben}:n", "{ben}:m"], [1]) == 8  # EVALSHA
    with pytest.raises(CrossSlotError):
        await script(["{ben}:n", "{aki}:n"], [1])


async def test_a_stale_slot_map_follows_moved_and_learns(
    client: ClusterEngineClient, shared_cluster: LocalCluster
) -> None:
    await client.call("SET", "moved:key", "v")
    slot = key_slot(b"moved:key")
    right = f"127.0.0.1:{owner_port(shared_cluster, 'moved:key')}"
    wrong = next(f"127.0.0.1:{n.port}" for n in shared_cluster.nodes
                 if f"127.0.0.1:{n.port}" != right)  # fmt: skip
    client._owner[slot] = wrong  # as if the slot had moved since the map was loaded
    assert await client.call("GET", "moved:key") == "v"
    assert client._owner[slot] == right
    tx_slot = key_slot(b"mv")
    tx_right = f"127.0.0.1:{owner_port(shared_cluster, '{mv}')}"
    client._owner[tx_slot] = next(f"127.0.0.1:{n.port}" for n in shared_cluster.nodes
                                  if f"127.0.0.1:{n.port}" != tx_right)  # fmt: skip
    assert await client.transaction([("INCR", "{mv}:n"), ("INCR", "{mv}:n")]) == [1, 2]
    assert client._owner[tx_slot] == tx_right


async def test_a_slot_being_migrated_answers_through_ask(
    client: ClusterEngineClient, shared_cluster: LocalCluster
) -> None:
    host = shared_cluster.host
    key = "ask:{migrating}"
    slot = key_slot(key.encode())
    source = owner_port(shared_cluster, key)
    target = next(n.port for n in shared_cluster.nodes if n.port != source)
    source_id = command(host, source, "CLUSTER", "MYID")
    target_id = command(host, target, "CLUSTER", "MYID")
    await client.refresh()
    command(host, target, "CLUSTER", "SETSLOT", slot, "IMPORTING", source_id)
    command(host, source, "CLUSTER", "SETSLOT", slot, "MIGRATING", target_id)
    try:
        # The key is not on the source, so the source answers ASK: the client asks the
        # importing node for it (ASKING first) and leaves its map alone.
        assert await client.call("SET", key, "new") == "OK"
        with redis.Redis(host=host, port=target, decode_responses=True) as direct:
            # One connection: ASKING holds for the next command on it only.
            assert direct.execute_command("ASKING") in (True, "OK")
            assert direct.get(key) == "new", "the key was written on the importing node"
        assert client._owner[slot] == f"127.0.0.1:{source}"
    finally:
        for port in (source, target):
            command(host, port, "CLUSTER", "SETSLOT", slot, "STABLE")
        with contextlib.suppress(ResponseError):
            command(host, target, "DEL", key)


async def test_a_killed_primary_answers_at_once_then_its_replica_serves(
    tmp_path: Path,
) -> None:
    cluster = LocalCluster(tmp_path / "c", primaries=3, replicas=1)
    cluster.start()
    engine = ClusterEngineClient(cluster.url)
    try:
        victim = cluster.nodes[0]
        keys = [f"fo:{i}" for i in range(40)]
        on_victim = [k for k in keys if owner_port(cluster, k) == victim.port]
        others = [k for k in keys if k not in on_victim]
        assert on_victim
        await engine.call("SET", on_victim[0], "before")
        # WAIT goes to any primary, so make sure through the victim itself that its
        # replica has the write before the kill (what a post answered 201 will need).
        assert command(cluster.host, victim.port, "WAIT", 1, 2000) == 1
        assert victim.process is not None
        victim.process.kill()
        victim.process.wait()
        started = time.monotonic()
        errors = 0
        value = None
        while time.monotonic() - started < 20:
            try:
                value = await engine.call("GET", on_victim[0])
                break
            except EngineConnectionError:
                errors += 1
                await asyncio.sleep(0.1)
        assert value == "before", "the replica took over with the acknowledged write"
        assert errors > 0, "requests touching the dead primary failed fast meanwhile"
        # Keys of the other primaries never stopped working.
        await asyncio.gather(*(engine.call("SET", k, "x") for k in others))
    finally:
        await engine.aclose()
        cluster.stop()


async def test_a_transaction_waits_for_its_replica(tmp_path: Path) -> None:
    with_replicas = LocalCluster(tmp_path / "r", primaries=1, replicas=1)
    with_replicas.start()
    engine = ClusterEngineClient(with_replicas.url)
    try:
        assert await engine.transaction([("SET", "{w}:a", 1)], replicas=1) == ["OK"]
        replica = with_replicas.nodes[1]
        with redis.Redis(host="127.0.0.1", port=replica.port, decode_responses=True) as r:
            r.execute_command("READONLY")
            assert r.get("{w}:a") == "1", "the replica held the write when the answer came"
        # Asking for more replicas than are attached: held to the one there is.
        assert await engine.transaction([("SET", "{w}:b", 1)], replicas=2,
                                        replica_timeout_ms=50) == ["OK"]  # fmt: skip
        # A replica that is attached but does not confirm (paused): refused, not durable.
        assert replica.process is not None
        replica.process.send_signal(signal.SIGSTOP)
        try:
            with pytest.raises(EngineConnectionError, match="0 of 1 replicas"):
                await engine.transaction([("SET", "{w}:c", 1)], replicas=1,
                                         replica_timeout_ms=100)  # fmt: skip
        finally:
            replica.process.send_signal(signal.SIGCONT)
    finally:
        await engine.aclose()
        with_replicas.stop()
