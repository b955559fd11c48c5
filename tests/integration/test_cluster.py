"""`echohub cluster`: a local Valkey Cluster from the embedded binary, formed, used,
failed over, restarted on its data dir and stopped with nothing left behind."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster

from server.cluster import LocalCluster, command, slot_ranges
from server.engine import EngineError


def node_roles(cluster: LocalCluster) -> dict[int, tuple[str, str]]:
    """port -> (role, primary's node id or '-') as the first live node sees the cluster."""
    for node in cluster.nodes:
        try:
            text = command(cluster.host, node.port, "CLUSTER", "NODES")
        except (redis.RedisError, OSError):
            continue
        roles = {}
        for line in str(text).splitlines():
            fields = line.split()
            port = int(fields[1].split("@")[0].rsplit(":", 1)[1])
            flags = fields[2].split(",")
            role = "primary" if "master" in flags else "replica"
            if "fail" in flags or "fail?" in flags:
                role += ",fail"
            roles[port] = (role, fields[3])
        return roles
    raise AssertionError("no node answered")


def alive(port: int) -> bool:
    try:
        return bool(command("127.0.0.1", port, "PING", timeout=0.3))
    except (redis.RedisError, OSError):
        return False


def wait_for(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} within {timeout} s")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    local = LocalCluster(tmp_path / "cluster", primaries=3, replicas=1)
    local.start()
    yield local
    local.stop()


def test_slot_ranges_cover_every_slot_once() -> None:
    for primaries in (1, 2, 3, 5, 7):
        ranges = slot_ranges(primaries)
        assert ranges[0][0] == 0 and ranges[-1][1] == 16383
        assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(ranges))
        sizes = [last - first + 1 for first, last in ranges]
        assert max(sizes) - min(sizes) <= 1
    with pytest.raises(ValueError):
        slot_ranges(0)


def test_three_primaries_each_with_a_replica_serve_keys_and_sharded_pubsub(
    cluster: LocalCluster,
) -> None:
    roles = node_roles(cluster)
    primaries = [p for p, (role, _) in roles.items() if role == "primary"]
    replicas = [(p, of) for p, (role, of) in roles.items() if role == "replica"]
    assert len(primaries) == 3 and len(replicas) == 3
    assert len({of for _, of in replicas}) == 3, "every primary has its own replica"
    for node in cluster.nodes:
        info = str(command(cluster.host, node.port, "CLUSTER", "INFO"))
        assert "cluster_state:ok" in info and "cluster_slots_assigned:16384" in info

    seed = cluster.url.split(",")[0].removeprefix("redis://").split(":")
    client = RedisCluster(host=seed[0], port=int(seed[1]), decode_responses=True)
    try:
        for i in range(30):  # keys spread over every primary's slots
            client.set(f"k{i}", str(i))
        assert [client.get(f"k{i}") for i in range(30)] == [str(i) for i in range(30)]
        pubsub = client.pubsub()
        pubsub.ssubscribe("user:{aki}")
        first = pubsub.get_sharded_message(timeout=2.0)  # type: ignore[no-untyped-call]
        assert first is not None and first["type"] == "ssubscribe"
        assert client.spublish("user:{aki}", "hello") == 1
        message = pubsub.get_sharded_message(timeout=2.0)  # type: ignore[no-untyped-call]
        assert message is not None and message["data"] == "hello"
        pubsub.close()
    finally:
        client.close()


def test_a_killed_primary_is_replaced_by_its_replica(cluster: LocalCluster) -> None:
    roles = node_roles(cluster)
    victim = cluster.nodes[0]
    victim_id = command(cluster.host, victim.port, "CLUSTER", "MYID")
    standby = next(p for p, (role, of) in roles.items() if role == "replica" and of == victim_id)
    assert victim.process is not None
    victim.process.kill()
    victim.process.wait()

    def promoted() -> bool:
        info = str(command(cluster.host, standby, "CLUSTER", "INFO"))
        return node_roles(cluster).get(standby, ("",))[0] == "primary" and (
            "cluster_state:ok" in info
        )

    # cluster-node-timeout is 1 s: the replica takes over in a few seconds.
    wait_for(promoted, 15, "the replica was not promoted")


def test_a_second_start_on_the_same_dir_brings_the_same_cluster_and_data_back(
    tmp_path: Path,
) -> None:
    first = LocalCluster(tmp_path / "c", primaries=2, replicas=0)
    url = first.start()
    try:
        seed = first.nodes[0]
        client = RedisCluster(host="127.0.0.1", port=seed.port)
        client.set("kept", "yes")
        client.close()
    finally:
        first.stop()
    assert not any(alive(n.port) for n in first.nodes)
    again = LocalCluster(tmp_path / "c", primaries=2, replicas=0)
    assert again.start() == url
    try:
        client = RedisCluster(host="127.0.0.1", port=again.nodes[1].port)
        assert client.get("kept") == b"yes"
        client.close()
    finally:
        again.stop()
    with pytest.raises(EngineError, match="another --data-dir"):
        LocalCluster(tmp_path / "c", primaries=3, replicas=0).start()


def test_the_cli_prints_the_url_and_stops_every_node_on_sigterm(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-m", "server", "cluster", "--data-dir", str(tmp_path / "cl"),
             "--primaries", "2", "--replicas", "1"],
            stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        try:
            wait_for(lambda: "REDIS_URL=" in out.read_text(), 30, "no REDIS_URL printed")
            line = next(ln for ln in out.read_text().splitlines() if ln.startswith("REDIS_URL="))
            seeds = line.removeprefix("REDIS_URL=").split(",")
            assert len(seeds) == 2 and all(s.startswith("redis://127.0.0.1:") for s in seeds)
            ports = [int(s.rsplit(":", 1)[1]) for s in seeds]
            assert all(alive(p) for p in ports)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert not any(alive(p) for p in ports)
    state = (tmp_path / "cl" / "cluster.json").read_text()
    for port_pair in json.loads(state)["ports"]:
        assert not alive(port_pair[0])


def test_the_cli_refuses_a_cluster_without_primaries(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "server", "cluster", "--data-dir", str(tmp_path),
         "--primaries", "0"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 2
    assert "at least one primary" in done.stderr
