"""A local Valkey Cluster from the embedded engine binary: `echohub cluster`.

Owns the node processes of one cluster on loopback (primaries and their replicas), each
with its own directory, append-only file and `nodes.conf` under the cluster's data
directory. It forms the cluster from Python (CLUSTER ADDSLOTSRANGE, MEET, REPLICATE),
waits until every node reports `cluster_state:ok` and every replica's link to its primary
is up, and stops every node on `stop()`. Nothing else: how Echo Hub talks to a cluster
lives in the engine client and the bus, not here.

The ports are chosen once and kept in `cluster.json`, so a second start on the same data
directory brings the same cluster back (each node reloads its `nodes.conf` and AOF)
instead of forming a new one. Nodes are started with PR_SET_PDEATHSIG, like the embedded
engine, so a SIGKILLed `echohub cluster` leaves no node behind.

Measured here (3 primaries + 3 replicas, Valkey 8.1): formed and ready in about 2 s
(`time echohub cluster --data-dir $(mktemp -d)` until it prints the URL).
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from server.engine import EngineError, _set_pdeathsig, find_engine_binary

SLOTS = 16384
STATE_NAME = "cluster.json"


def slot_ranges(primaries: int) -> list[tuple[int, int]]:
    """The 16384 hash slots split into `primaries` contiguous, near-equal ranges."""
    if primaries < 1:
        raise ValueError("a cluster needs at least one primary")
    bounds = [round(i * SLOTS / primaries) for i in range(primaries + 1)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(primaries)]


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct ports free on `host` now (bound together, so never the same one)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


def command(host: str, port: int, *args: object, timeout: float = 2.0) -> Any:
    """One command on the node at `host:port`, on a connection closed right after."""
    # No retries: a node that is not up yet (or stopped) must say so at once; redis-py's
    # default retries with backoff turn one refused connection into ~4 s.
    with redis.Redis(host=host, port=port, socket_timeout=timeout, socket_connect_timeout=timeout,
                     retry=Retry(NoBackoff(), 0), decode_responses=True) as client:  # fmt: skip
        return client.execute_command(*args)


@dataclass
class ClusterNode:
    """One node: its client port, its cluster-bus port and, once started, its process."""

    port: int
    bus_port: int
    directory: Path
    process: subprocess.Popen[bytes] | None = None


@dataclass
class LocalCluster:
    """`primaries` primaries with `replicas` replicas each, on `host`. `start()`, `stop()`."""

    data_dir: Path
    primaries: int = 3
    replicas: int = 1
    host: str = "127.0.0.1"
    node_timeout_ms: int = 1000
    start_timeout: float = 30.0
    nodes: list[ClusterNode] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The REDIS_URL to give the servers: every primary as a seed, comma-separated."""
        return ",".join(f"redis://{self.host}:{n.port}" for n in self.nodes[: self.primaries])

    def start(self) -> str:
        if self.primaries < 1 or self.replicas < 0:
            raise EngineError("a cluster needs at least one primary and no negative replicas")
        binary = find_engine_binary()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.data_dir.resolve()
        formed = self._load_or_plan()
        try:
            for node in self.nodes:
                self._launch(binary, node)
            for node in self.nodes:
                self._wait_answers(node)
            if not formed:
                self._form()
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self.url

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM every node (each fsyncs its AOF), then SIGKILL what is left."""
        procs = [n.process for n in self.nodes if n.process is not None]
        for node in self.nodes:
            node.process = None
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    # -- planning --------------------------------------------------------------------

    def _load_or_plan(self) -> bool:
        """Reuse the ports of a cluster formed here before (True), or pick new ones."""
        state = self.data_dir / STATE_NAME
        total = self.primaries * (1 + self.replicas)
        if state.exists():
            saved = json.loads(state.read_text())
            if saved.get("primaries") != self.primaries or saved.get("replicas") != self.replicas:
                raise EngineError(
                    f"{self.data_dir} holds a cluster of {saved.get('primaries')} primaries "
                    f"with {saved.get('replicas')} replicas each; use another --data-dir"
                )
            self.host = saved.get("host", self.host)
            self.nodes = [ClusterNode(p, b, self.data_dir / str(p)) for p, b in saved["ports"]]
            return all((n.directory / "nodes.conf").exists() for n in self.nodes)
        ports = free_ports(2 * total, self.host)
        self.nodes = [
            ClusterNode(ports[2 * i], ports[2 * i + 1], self.data_dir / str(ports[2 * i]))
            for i in range(total)
        ]
        state.write_text(json.dumps({
            "primaries": self.primaries, "replicas": self.replicas, "host": self.host,
            "ports": [[n.port, n.bus_port] for n in self.nodes],
        }))  # fmt: skip
        return False

    # -- processes -------------------------------------------------------------------

    def _launch(self, binary: str, node: ClusterNode) -> None:
        node.directory.mkdir(parents=True, exist_ok=True)
        args = [
            binary,
            "--bind", self.host,
            "--port", str(node.port),
            "--cluster-enabled", "yes",
            "--cluster-port", str(node.bus_port),
            "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(self.node_timeout_ms),
            # Replicas sync at once instead of waiting 5 s for more replicas to batch.
            "--repl-diskless-sync-delay", "0",
            "--dir", str(node.directory),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--daemonize", "no",
            "--loglevel", "warning",
            "--logfile", str(node.directory / "node.log"),
        ]  # fmt: skip
        try:
            node.process = subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL, preexec_fn=_set_pdeathsig, start_new_session=True,
            )  # fmt: skip
        except OSError as exc:
            raise EngineError(f"cannot start cluster node {binary}: {exc}") from exc

    def _wait_answers(self, node: ClusterNode) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            assert node.process is not None
            if node.process.poll() is not None:
                log = node.directory / "node.log"
                tail = log.read_text(errors="replace")[-1500:] if log.exists() else "no output"
                raise EngineError(f"cluster node on port {node.port} exited at start: {tail}")
            with contextlib.suppress(redis.RedisError, OSError):
                if command(self.host, node.port, "PING", timeout=0.5):
                    return
            time.sleep(0.02)
        raise EngineError(f"cluster node on port {node.port} did not answer in time")

    # -- forming ---------------------------------------------------------------------

    def _form(self) -> None:
        primaries = self.nodes[: self.primaries]
        for node, (first, last) in zip(primaries, slot_ranges(self.primaries), strict=True):
            command(self.host, node.port, "CLUSTER", "ADDSLOTSRANGE", first, last)
        seed = self.nodes[0]
        for node in self.nodes[1:]:
            command(self.host, node.port, "CLUSTER", "MEET", self.host, seed.port, seed.bus_port)
        self._until(lambda: all(self._known(n) == len(self.nodes) for n in self.nodes),
                    "the nodes did not all meet")  # fmt: skip
        ids = [command(self.host, n.port, "CLUSTER", "MYID") for n in primaries]
        replicas = self.nodes[self.primaries :]
        for index, node in enumerate(replicas):
            primary_id = ids[index % self.primaries]
            # A replica may see its primary only as a handshake for a moment after MEET.
            self._until(lambda n=node, p=primary_id: self._replicate(n, p),
                        "a replica could not attach to its primary")  # fmt: skip

    def _known(self, node: ClusterNode) -> int:
        with contextlib.suppress(redis.RedisError, OSError):
            text = command(self.host, node.port, "CLUSTER", "NODES")
            lines = [ln for ln in str(text).splitlines() if ln.strip()]
            return sum(1 for ln in lines if "handshake" not in ln.split()[2])
        return 0

    def _replicate(self, node: ClusterNode, primary_id: str) -> bool:
        try:
            command(self.host, node.port, "CLUSTER", "REPLICATE", primary_id)
        except redis.ResponseError:
            return False
        return True

    def _wait_ready(self) -> None:
        def ready() -> bool:
            for node in self.nodes:
                try:
                    info = str(command(self.host, node.port, "CLUSTER", "INFO"))
                    if "cluster_state:ok" not in info:
                        return False
                    replication = command(self.host, node.port, "INFO", "replication")
                except (redis.RedisError, OSError):
                    return False
                if replication.get("role") == "slave" and (
                    replication.get("master_link_status") != "up"
                ):
                    return False
            return True

        self._until(ready, "the cluster did not reach cluster_state:ok")

    def _until(self, check: object, what: str) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if check():  # type: ignore[operator]
                return
            time.sleep(0.05)
        raise EngineError(f"{what} within {self.start_timeout:.0f} s")


def run_cluster(cluster: LocalCluster) -> int:
    """Start `cluster`, print its REDIS_URL on a line of its own, stop on SIGTERM/Ctrl-C."""
    stop_requested = False

    def request_stop(_signum: int, _frame: object) -> None:
        nonlocal stop_requested
        stop_requested = True

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        url = cluster.start()
        print(f"Valkey Cluster of {cluster.primaries} primaries with {cluster.replicas} "
              f"replica(s) each is ready. Give the servers:", flush=True)  # fmt: skip
        print(f"REDIS_URL={url}", flush=True)
        while not stop_requested:
            for node in cluster.nodes:
                if node.process is not None and node.process.poll() is not None:
                    # A dead node is a failover to watch, not a reason to stop the rest.
                    print(f"cluster node on port {node.port} exited "
                          f"({node.process.returncode})", file=sys.stderr, flush=True)  # fmt: skip
                    node.process = None
            time.sleep(0.2)
        return 0
    finally:
        cluster.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
