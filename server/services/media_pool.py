"""The media workers: a small pool of processes that decode uploads, off the event loop.

Bounded three ways: at most `workers` jobs run at once (the rest wait their turn on a
semaphore, holding only their temporary file on disk), each worker's address space is
capped (`memory_limit`), and each job has a deadline enforced by the kernel: at most
`job_seconds` of CPU time (RLIMIT_CPU, SIGXCPU) and four times that in real time
(SIGALRM), both with their default action, so a job stuck inside C code is ended all
the same. A dead worker breaks the pool; it is replaced, and
the jobs that died beside the culprit are run once more.

Workers run at a lower CPU priority (nice 10): a burst of uploads slows other uploads,
not the fan-out of the process that took them.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import resource
import signal
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

from server.domain.errors import Unprocessable

T = TypeVar("T")

# A job may take this many times its CPU allowance in real time (waiting for the CPU
# included) before it is ended all the same.
WALL_FACTOR = 4.0
# A worker is replaced after this many jobs: whatever the decoders' allocators kept
# (fragmented arenas after a 40 MP image) is given back.
JOBS_PER_WORKER = 50


def _init_worker(memory_limit: int) -> None:
    if memory_limit > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a killed job leaves no core file
    os.nice(10)
    # A parent's Ctrl-C is the parent's to handle; the pool is shut down by it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_with_deadline(seconds: float, fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` with at most `seconds` of CPU time (SIGXCPU ends the worker: a busy
    machine starving the worker at nice 10 costs an upload time, not its acceptance),
    and WALL_FACTOR times that in real time (SIGALRM ends it, stuck or starved)."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    soft = int(used.ru_utime + used.ru_stime + seconds) + 1
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
    signal.signal(signal.SIGXCPU, signal.SIG_DFL)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.setitimer(signal.ITIMER_REAL, seconds * WALL_FACTOR)
    try:
        return fn(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


class MediaPool:
    """Runs decoding jobs in worker processes; `run` is awaited on the event loop."""

    def __init__(self, workers: int, *, memory_limit: int, job_seconds: float) -> None:
        self.workers = max(1, workers)
        self.memory_limit = memory_limit
        self.job_seconds = job_seconds
        self._slots = asyncio.Semaphore(self.workers)
        self._pool: ProcessPoolExecutor | None = None
        self._generation = 0

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: the server process has threads and an event loop that a
            # forked child must not inherit half-way.
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker, initargs=(self.memory_limit,),
                max_tasks_per_child=JOBS_PER_WORKER,
            )  # fmt: skip
        return self._pool

    def _replace(self, generation: int) -> None:
        if generation == self._generation and self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
            self._generation += 1

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)` in a worker; Unprocessable (422) if it overran its deadline or
        killed its worker twice."""
        loop = asyncio.get_running_loop()
        async with self._slots:
            for attempt in range(2):
                generation = self._generation
                started = time.monotonic()
                try:
                    return await loop.run_in_executor(
                        self._executor(), _run_with_deadline, self.job_seconds, fn, *args
                    )
                except BrokenProcessPool:
                    self._replace(generation)
                    # The culprit ran out of its time (CPU or real); a neighbour that died
                    # with it is run once more.
                    if time.monotonic() - started >= self.job_seconds * 0.95 or attempt == 1:
                        raise Unprocessable(
                            "media_too_complex",
                            "the file took too long or too much memory to process",
                            field="file",
                        ) from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
