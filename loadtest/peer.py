"""Starting and stopping the processes a run measures: Valkey, the Socket.IO peer, Echo Hub.

Every process is started in its own session (process group) so that stopping it also
stops what it started (Echo Hub's embedded engine); stopping is SIGTERM, a bounded
wait, then SIGKILL. Everything listens on loopback only.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

PEER_SCRIPT = Path(__file__).with_name("peers") / "socketio_peer.py"
JOIN_RE = re.compile(r"/join/([A-Za-z0-9_\-]+)\s*$")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class ManagedProcess:
    """A child process whose output lines are collected by a reader thread."""

    name: str
    popen: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None

    @classmethod
    def start(
        cls,
        name: str,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cpus: set[int] | None = None,
        cwd: str | None = None,
    ) -> ManagedProcess:
        def pin() -> None:  # runs in the child before exec
            if cpus:
                os.sched_setaffinity(0, cpus)

        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=pin if cpus else None,
        )
        proc = cls(name, popen)
        proc._reader = threading.Thread(target=proc._read, name=f"{name}-out", daemon=True)
        proc._reader.start()
        return proc

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            if len(self.lines) < 10_000:
                self.lines.append(line.rstrip("\n"))

    @property
    def pid(self) -> int:
        return self.popen.pid

    def wait_for_line(self, pattern: re.Pattern[str], within: float) -> re.Match[str] | None:
        deadline = time.monotonic() + within
        seen = 0
        while time.monotonic() < deadline:
            while seen < len(self.lines):
                m = pattern.search(self.lines[seen])
                seen += 1
                if m:
                    return m
            if self.popen.poll() is not None and seen >= len(self.lines):
                return None
            time.sleep(0.05)
        return None

    def output(self, last: int = 40) -> str:
        return "\n".join(self.lines[-last:])

    def stop(self, within: float = 15.0) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(within)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(5)
        else:  # the leader is gone; make sure nothing of its group is left
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signal.SIGKILL)
        if self._reader is not None:
            self._reader.join(2)
        if self.popen.stdout is not None:
            self.popen.stdout.close()


def valkey_binary() -> str:
    """The same engine binary `echohub serve` would start."""
    from server.engine import EngineError, find_engine_binary

    try:
        return find_engine_binary()
    except EngineError as exc:
        raise RuntimeError(str(exc)) from exc


def start_valkey(workdir: Path, *, cpus: set[int] | None = None) -> tuple[ManagedProcess, str]:
    """A private, non-persistent Valkey on a unix socket in ``workdir`` (no TCP port)."""
    workdir.mkdir(parents=True, exist_ok=True)
    sock = workdir / "valkey.sock"
    argv = [
        valkey_binary(),
        "--port", "0",
        "--unixsocket", str(sock),
        "--unixsocketperm", "700",
        "--save", "",
        "--appendonly", "no",
        "--dir", str(workdir),
        "--daemonize", "no",
    ]  # fmt: skip
    proc = ManagedProcess.start("valkey", argv, cpus=cpus)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if sock.exists() and _ping_unix(sock):
            return proc, f"unix://{sock}"
        if proc.popen.poll() is not None:
            break
        time.sleep(0.05)
    proc.stop()
    raise RuntimeError(f"valkey did not start:\n{proc.output()}")


def _ping_unix(path: Path) -> bool:
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(1)
            s.connect(str(path))
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_socketio_peer(
    redis_url: str, *, host: str = "127.0.0.1", port: int = 0, cpus: set[int] | None = None
) -> tuple[ManagedProcess, int]:
    argv = [sys.executable, str(PEER_SCRIPT), "--host", host, "--port", str(port)]
    argv += ["--redis-url", redis_url]
    proc = ManagedProcess.start("socketio-peer", argv, cpus=cpus)
    m = proc.wait_for_line(re.compile(r"^READY (\d+)"), 30)
    if m is None:
        proc.stop()
        raise RuntimeError(f"socketio peer did not start:\n{proc.output()}")
    return proc, int(m.group(1))


def wait_http_ok(url: str, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def start_echohub(
    data_dir: Path,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    cpus: set[int] | None = None,
    redis_url: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> tuple[ManagedProcess, int]:
    """``echohub serve`` with rate limits off; waits for ``/readyz``."""
    port = port or free_port(host)
    argv = [sys.executable, "-m", "server", "serve", "--host", host, "--port", str(port)]
    argv += ["--data-dir", str(data_dir)]
    if redis_url:
        argv += ["--redis-url", redis_url]
    env = {**os.environ, "ECHOHUB_RATE_LIMITS": "off", **(extra_env or {})}
    if not redis_url:
        env.pop("REDIS_URL", None)  # an inherited one would override --data-dir
    proc = ManagedProcess.start("echohub", argv, env=env, cpus=cpus)
    if not wait_http_ok(f"http://{host}:{port}/readyz", 60):
        proc.stop()
        raise RuntimeError(f"echohub did not become ready:\n{proc.output()}")
    return proc, port


def echohub_admin_invite(
    *, data_dir: Path | None = None, redis_url: str | None = None, within: float = 60
) -> str:
    """Run ``echohub invite --admin`` and return the code from its ``/join/<code>`` line."""
    argv = [sys.executable, "-m", "server", "invite", "--admin"]
    if redis_url:
        argv += ["--redis-url", redis_url]
    elif data_dir:
        argv += ["--data-dir", str(data_dir)]
    out = subprocess.run(
        argv, capture_output=True, text=True, timeout=within, stdin=subprocess.DEVNULL
    )
    for line in out.stdout.splitlines():
        m = JOIN_RE.search(line.strip())
        if m:
            return m.group(1)
    raise RuntimeError(f"echohub invite --admin printed no /join/ link:\n{out.stdout}{out.stderr}")
