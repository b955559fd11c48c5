"""Supervision: restart what dies, with backoff, and give up honestly on a crash loop.

Owns the processes `echohub serve` starts besides its own: the embedded engine and,
with `--workers N`, the N worker processes. A dead worker is restarted while the others
keep serving (their sockets never notice); a dead engine is restarted on the same data
directory and socket (its append-only file is loaded again), and the servers' clients
reconnect by themselves. Something that keeps dying is not restarted forever: past
`RestartPolicy.limit` exits within `window` seconds the supervisor reports it plainly
and stops everything with a non-zero exit status, so that whatever runs `echohub`
(systemd, a container runtime) sees the failure. Until then, liveness (`/healthz`) says
what cannot recover.

The policy is a pure object (time passed in); the keepers are stepped by their owner's
loop (`tick`), never blocking it for long, and always from the main thread: the engine's
PR_SET_PDEATHSIG follows the thread that started it.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any

from server.engine import EmbeddedEngine, EngineError

log = logging.getLogger("echohub.supervisor")

# How often the master looks at its children (seconds).
TICK = 0.1
# How long stopping workers may take before they are killed (the app's own shutdown
# takes up to ~8 s: sockets closed with 1001, then up to 5 s for handlers).
STOP_TIMEOUT = 15.0


@dataclass
class RestartPolicy:
    """When to restart something that exited, and when to stop trying.

    The n-th exit within `window` seconds is restarted after `first_delay * 2**(n-1)`
    seconds (at most `max_delay`); one exit more than `limit` is a crash loop.
    """

    limit: int = 5
    window: float = 60.0
    first_delay: float = 0.25
    max_delay: float = 8.0
    exits: collections.deque[float] = field(default_factory=collections.deque)

    def on_exit(self, now: float) -> float | None:
        """The delay before restarting after an exit at `now`; None: give up."""
        exits = self.exits
        while exits and exits[0] <= now - self.window:
            exits.popleft()
        exits.append(now)
        if len(exits) > self.limit:
            return None
        return min(self.max_delay, self.first_delay * (1 << (len(exits) - 1)))


class EngineKeeper:
    """Keeps the embedded engine running: `tick()` notices its death and restarts it.

    `failure` is set (a sentence) once it has given up; the process cannot recover then.
    """

    def __init__(self, engine: EmbeddedEngine, policy: RestartPolicy | None = None) -> None:
        self.engine = engine
        self.policy = policy or RestartPolicy()
        self.failure: str | None = None
        self.restarts = 0
        self._restart_at: float | None = None
        self._starting_until: float | None = None

    def tick(self, now: float) -> None:
        if self.failure is not None:
            return
        engine = self.engine
        if self._restart_at is not None:
            if now >= self._restart_at:
                self._restart_at = None
                try:
                    engine.spawn()
                except EngineError as exc:
                    self._exited(now, str(exc))
                    return
                self._starting_until = now + engine.start_timeout
            return
        if self._starting_until is not None:
            if engine.exited():
                self._starting_until = None
                self._exited(now, "it exited as it started")
            elif engine.answers():
                self._starting_until = None
                self.restarts += 1
                log.warning("embedded engine restarted (pid %s)", self._pid())
            elif now > self._starting_until:
                self._starting_until = None
                engine.kill()
                self._exited(now, "it did not answer in time")
            return
        if engine.exited():
            code = engine.process.returncode if engine.process is not None else None
            self._exited(now, f"exit status {code}")

    def _exited(self, now: float, how: str) -> None:
        self.engine.reap()
        delay = self.policy.on_exit(now)
        if delay is None:
            self.failure = (
                f"the embedded engine keeps dying ({len(self.policy.exits)} times within "
                f"{self.policy.window:.0f} s, last: {how}; see {self.engine.data_dir}/engine.log)"
            )
            log.error("%s; giving up", self.failure)
            return
        log.warning("embedded engine died (%s); restarting in %.2f s", how, delay)
        self._restart_at = now + delay

    def _pid(self) -> int | None:
        return self.engine.process.pid if self.engine.process is not None else None


@dataclass
class _Slot:
    """One worker position: its current process and its own restart policy."""

    index: int
    policy: RestartPolicy
    process: BaseProcess | None = None
    restart_at: float | None = None


class WorkerMaster:
    """`--workers N`: starts N worker processes and keeps N running until stopped.

    `run()` returns the exit status: 0 after a requested stop, 1 after giving up on a
    crash loop (of a worker, or of the engine when `keeper` is given).
    """

    def __init__(
        self,
        count: int,
        target: Callable[..., None],
        args: tuple[Any, ...],
        keeper: EngineKeeper | None = None,
        policy: Callable[[], RestartPolicy] = RestartPolicy,
    ) -> None:
        self.ctx = multiprocessing.get_context("spawn")
        # Liveness shared with the workers: nonzero once the engine cannot recover.
        self.unrecoverable = self.ctx.Value("b", 0, lock=False)
        self.target = target
        self.args = args
        self.keeper = keeper
        self.slots = [_Slot(i, policy()) for i in range(count)]
        self.stopping = False
        self.failure: str | None = None

    def _start(self, slot: _Slot) -> None:
        proc = self.ctx.Process(
            target=self.target, args=(*self.args, self.unrecoverable),
            name=f"echohub-worker-{slot.index}",
        )  # fmt: skip
        proc.start()
        slot.process = proc

    def request_stop(self, _signum: int = 0, _frame: Any = None) -> None:
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)
        for slot in self.slots:
            self._start(slot)
        while not self.stopping and self.failure is None:
            sentinels = [s.process.sentinel for s in self.slots if s.process is not None]
            with contextlib.suppress(InterruptedError):
                multiprocessing.connection.wait(sentinels, timeout=TICK)
            self.tick(time.monotonic())
        if self.failure is not None:
            log.error("%s; stopping", self.failure)
            if self.keeper is not None and self.keeper.failure is not None:
                self.unrecoverable.value = 1
        self._stop_all()
        return 1 if self.failure is not None else 0

    def tick(self, now: float) -> None:
        if self.keeper is not None:
            self.keeper.tick(now)
            if self.keeper.failure is not None:
                self.failure = self.keeper.failure
                return
        for slot in self.slots:
            proc = slot.process
            if proc is not None and not proc.is_alive():
                code = proc.exitcode
                proc.close()
                slot.process = None
                delay = slot.policy.on_exit(now)
                if delay is None:
                    self.failure = (
                        f"worker {slot.index} keeps dying ({len(slot.policy.exits)} times "
                        f"within {slot.policy.window:.0f} s, last exit status {code})"
                    )
                    return
                log.warning("worker %d exited (status %s); restarting in %.2f s",
                            slot.index, code, delay)  # fmt: skip
                slot.restart_at = now + delay
            if slot.process is None and slot.restart_at is not None and now >= slot.restart_at:
                slot.restart_at = None
                self._start(slot)

    def _stop_all(self) -> None:
        """SIGTERM every worker (each closes its sockets with 1001), then wait; SIGKILL
        what is still there after STOP_TIMEOUT."""
        procs = [s.process for s in self.slots if s.process is not None]
        for proc in procs:
            if proc.is_alive() and proc.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for proc in procs:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join(5)
