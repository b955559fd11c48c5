"""Servers the load tester starts itself when no ``--url`` is given (loopback only).

``echohub``: ``echohub serve`` on a free port with a temporary data directory (its own
embedded engine) and rate limits off. ``socketio``: a private Valkey plus the peer
script. Either way the caller gets the URL, the server's pid (for CPU and memory)
and, for Echo Hub, an admin invite.
"""

from __future__ import annotations

import contextlib
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from loadtest.peer import (
    JOIN_RE,
    ManagedProcess,
    echohub_admin_invite,
    start_echohub,
    start_socketio_peer,
    start_valkey,
)


@dataclass
class LocalServer:
    target: str
    url: str
    pid: int
    procs: list[ManagedProcess]
    data_dir: Path | None = None
    invite: str | None = None
    engine_pid: int | None = None  # an engine that is not the server's child


@contextlib.contextmanager
def local_server(
    target: str,
    *,
    cpus: set[int] | None = None,
    workdir: Path | None = None,
    data_dir: Path | None = None,
) -> Iterator[LocalServer]:
    """Start ``target`` on loopback, yield it, stop everything it started.

    Echo Hub keeps its data in ``data_dir`` when given (a later run finds its accounts
    there), else in a temporary directory.
    """
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="echohub-lt-")))
        procs: list[ManagedProcess] = []
        try:
            if target == "socketio":
                valkey, redis_url = start_valkey(workdir / "peer-valkey", cpus=cpus)
                procs.append(valkey)
                peer, port = start_socketio_peer(redis_url, cpus=cpus)
                procs.append(peer)
                yield LocalServer(
                    target, f"http://127.0.0.1:{port}", peer.pid, procs, engine_pid=valkey.pid
                )
            else:
                data_dir = data_dir or workdir / "echohub-data"
                data_dir.mkdir(parents=True, exist_ok=True)
                # sign-ups are setup, not measured: the cheapest scrypt the server allows
                env = {"ECHOHUB_PASSWORD_COST": "1024"}
                server, port = start_echohub(data_dir, cpus=cpus, extra_env=env)
                procs.append(server)
                invite = _first_start_invite(server) or echohub_admin_invite(data_dir=data_dir)
                yield LocalServer(
                    target, f"http://127.0.0.1:{port}", server.pid, procs, data_dir, invite
                )
        finally:
            for proc in reversed(procs):
                proc.stop()


def _first_start_invite(server: ManagedProcess) -> str | None:
    """The one-time admin invite a fresh server prints on its first start."""
    m = server.wait_for_line(re.compile(JOIN_RE.pattern), 3.0)
    return m.group(1) if m else None
