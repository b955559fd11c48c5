"""The parent: how the work is split over processes, and the worker pipes (a worker
that dies is named, not waited for)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing import Pipe
from multiprocessing.connection import Connection

import pytest

from loadtest.runner import Cast, Orchestra, Progress, RunConfig, WorkerDied, make_plans


@dataclass
class FakeProc:
    """What Orchestra reads of a worker process: its sentinel, exit code and pid."""

    sentinel: int
    exitcode: int | None
    pid: int = 4242

    def is_alive(self) -> bool:
        return self.exitcode is None

    def join(self, timeout: float | None = None) -> None:
        pass


def orchestra_with(conns: list[Connection], procs: list[FakeProc]) -> Orchestra:
    orch = Orchestra.__new__(Orchestra)  # no real processes
    orch.cfg = RunConfig()
    orch.progress = Progress(quiet=True)
    orch.conns = conns
    orch.procs = procs  # type: ignore[assignment]
    orch.intervals = {}
    orch.tick_reports = Counter()
    orch.cpu_by_tick = {}
    orch.connecting = {}
    orch.printed_tick = 0
    orch.t0_ns = 0
    orch.ended = set()
    return orch


@pytest.fixture
def fds() -> Iterator[list[int]]:
    opened: list[int] = []
    yield opened
    for fd in opened:
        os.close(fd)


def sentinel(fds: list[int], *, exited: bool) -> int:
    """A readable fd (EOF) like an exited process's sentinel, or one never readable."""
    r, w = os.pipe()
    fds.append(r)
    if exited:
        os.close(w)
    else:
        fds.append(w)
    return r


def test_a_killed_worker_is_reported_with_its_signal_and_what_it_said_counts(
    fds: list[int],
) -> None:
    parent0, child0 = Pipe()
    parent1, child1 = Pipe()
    child0.send(("result", 0, {"ok": 0}))
    child1.send(("connecting", 1, 5, 0))  # said something, then was killed
    child1.close()
    running = FakeProc(sentinel(fds, exited=False), exitcode=None)
    killed = FakeProc(sentinel(fds, exited=True), exitcode=-9)
    orch = orchestra_with([parent0, parent1], [running, killed])
    with pytest.raises(WorkerDied, match=r"worker 1 .* before 'result': killed by SIGKILL"):
        orch.collect("result", within=5)
    assert orch.connecting[1] == (5, 0)


def test_a_worker_that_reported_then_exited_is_fine(fds: list[int]) -> None:
    parent, child = Pipe()
    child.send(("result", 0, {"ok": 1}))
    child.close()
    orch = orchestra_with([parent], [FakeProc(sentinel(fds, exited=True), 0)])
    assert orch.collect("result", within=5) == {0: {"ok": 1}}


def test_a_worker_whose_sentinel_closed_but_which_runs_is_still_waited_for(
    fds: list[int],
) -> None:
    parent, child = Pipe()
    child.send(("result", 0, {"ok": 2}))
    orch = orchestra_with([parent], [FakeProc(sentinel(fds, exited=True), exitcode=None)])
    assert orch.collect("result", within=5) == {0: {"ok": 2}}


def test_exit_codes_that_are_no_signal_are_shown_as_codes(fds: list[int]) -> None:
    parent, child = Pipe()
    child.close()
    orch = orchestra_with([parent], [FakeProc(sentinel(fds, exited=True), 3)])
    with pytest.raises(WorkerDied, match="exit code 3"):
        orch.collect("ready", within=5)


def cast(subs: int, posters: int) -> Cast:
    return Cast(
        [f"s{i}" for i in range(subs)],
        [f"p{i}" for i in range(posters)],
        [f"h{i}" for i in range(posters)],
        "lt",
    )


def test_posters_get_a_process_of_their_own_unless_told_otherwise() -> None:
    cfg = RunConfig(clients=10, posters=3, rate=30)
    plans = make_plans(cfg, cast(10, 3), procs=2)
    assert [(p.index, len(p.sub_ids), p.poster_ids) for p in plans] == [
        (0, 5, []),
        (1, 5, []),
        (2, 0, [0, 1, 2]),
    ]
    assert plans[2].poster_auth == ["p0", "p1", "p2"]
    cfg.poster_proc = False
    plans = make_plans(cfg, cast(10, 3), procs=2)
    assert [(len(p.sub_ids), p.poster_ids) for p in plans] == [(5, [0, 2]), (5, [1])]
    connect = RunConfig(scenario="connect", clients=10, posters=1)
    assert len(make_plans(connect, cast(10, 1), procs=2)) == 2  # nobody posts
