"""What else ran on the machine during a run: other processes' CPU, cores' busy shares."""

from __future__ import annotations

import os

from loadtest import procstat
from loadtest.procstat import MachineSnapshot, machine_delta


def test_others_are_every_process_but_ours_and_cores_include_softirq() -> None:
    before = MachineSnapshot({1: 10.0, 2: 5.0, 3: 1.0}, {0: (100, 10, 1000), 1: (50, 0, 1000)})
    after = MachineSnapshot(
        {1: 12.0, 2: 5.5, 3: 1.0, 4: 0.25},  # 4 started during the run
        {0: (600, 110, 1500), 1: (300, 50, 1500)},
    )
    d = machine_delta(before, after, ours={1}, wall_s=5.0)
    assert d["others_cpu_s"] == 0.75  # 2 and 4; 1 is ours, 3 did nothing
    assert d["others_share"] == 0.15
    assert len(d["others_top"]) == 2
    assert d["cores"] == [
        {"core": 0, "busy": 1.0, "softirq": 0.2},
        {"core": 1, "busy": 0.5, "softirq": 0.1},
    ]


def test_a_real_snapshot_sees_this_process_and_the_cores() -> None:
    snap = MachineSnapshot.take()
    assert os.getpid() in snap.procs
    assert snap.cores
    assert all(busy <= total for busy, _, total in snap.cores.values())
    assert procstat.machine_delta(snap, snap, {os.getpid()}, 1.0)["others_cpu_s"] == 0
