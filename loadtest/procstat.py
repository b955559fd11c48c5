"""Reading another process's CPU time and memory from /proc (Linux), for server costs.

CPU per delivered event = (utime+stime after - before) / deliveries, with the server's
pid (``/proc/<pid>/stat``); memory per socket from ``VmRSS`` in ``/proc/<pid>/status``.
Children (an embedded engine) are found through ``/proc/<pid>/task/*/children``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of ``pid`` in seconds, or ``None`` if it is gone/unreadable."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may contain spaces; fields after its ")" are safe
    fields = raw[raw.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / _TICKS


def rss_kb(pid: int) -> int | None:
    """Resident set size (``VmRSS``) of ``pid`` in KiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def children(pid: int) -> list[int]:
    """Direct children of ``pid``."""
    out: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return out
    for task in tasks:
        try:
            out.extend(int(c) for c in (task / "children").read_text().split())
        except OSError:
            continue
    return out


def descendants(pid: int) -> list[int]:
    out: list[int] = []
    todo = children(pid)
    while todo and len(out) < 1000:
        child = todo.pop()
        out.append(child)
        todo.extend(children(child))
    return out


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


@dataclass(frozen=True, slots=True)
class ProcSnapshot:
    """CPU seconds of a process and of its descendants at one moment."""

    pid: int
    cpu_s: float
    children_cpu_s: dict[int, float]
    rss_kb: int | None

    @classmethod
    def take(cls, pid: int) -> ProcSnapshot | None:
        cpu = cpu_seconds(pid)
        if cpu is None:
            return None
        kids = {c: v for c in descendants(pid) if (v := cpu_seconds(c)) is not None}
        return cls(pid, cpu, kids, rss_kb(pid))


def cpu_delta(before: ProcSnapshot, after: ProcSnapshot) -> tuple[float, float]:
    """``(process_cpu_s, descendants_cpu_s)`` spent between two snapshots."""
    own = after.cpu_s - before.cpu_s
    kids = sum(v - before.children_cpu_s.get(c, 0.0) for c, v in after.children_cpu_s.items())
    return own, kids


def wait_idle(pid: int, *, threshold: float = 0.1, window: float = 1.0, within: float = 90) -> bool:
    """Wait until ``pid`` uses less than ``threshold`` of a core over ``window`` seconds.

    Between workloads an overloaded server may still be working off its backlog; the
    next measurement must not start on top of it. Returns False if it never settled.
    """
    import time

    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(window)
        after = cpu_seconds(pid)
        if before is None or after is None:
            return False
        if (after - before) / window < threshold:
            return True
    return False


def all_cpu_seconds() -> dict[int, float]:
    """utime + stime of every process this user may read in /proc."""
    out: dict[int, float] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (cpu := cpu_seconds(int(entry.name))) is not None:
            out[int(entry.name)] = cpu
    return out


def core_ticks() -> dict[int, tuple[int, int, int]]:
    """Per core, from /proc/stat: ``(busy, softirq, total)`` clock ticks since boot."""
    out: dict[int, tuple[int, int, int]] = {}
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return out
    for line in lines:
        if line.startswith("cpu") and line[3:4].isdigit():
            name, *vals = line.split()
            # user nice system idle iowait irq softirq steal [guest guest_nice]
            t = [int(v) for v in vals[:8]]
            total = sum(t)
            out[int(name[3:])] = (total - t[3] - t[4], t[6], total)
    return out


@dataclass(frozen=True, slots=True)
class MachineSnapshot:
    """Every process's CPU time and every core's ticks at one moment: what else ran."""

    procs: dict[int, float]
    cores: dict[int, tuple[int, int, int]]

    @classmethod
    def take(cls) -> MachineSnapshot:
        return cls(all_cpu_seconds(), core_ticks())


def machine_delta(
    before: MachineSnapshot, after: MachineSnapshot, ours: set[int], wall_s: float
) -> dict[str, Any]:
    """CPU used by processes not in ``ours`` (a share of one core over ``wall_s``), and
    each core's busy and softirq shares: kernel work no process's CPU time includes
    (loopback TCP is largely softirq, on the sender's core)."""
    others: dict[int, float] = {}
    for pid, cpu in after.procs.items():
        if pid not in ours:
            used = cpu - before.procs.get(pid, 0.0)
            if used >= 0.01:
                others[pid] = used
    cores = []
    for core, (busy1, si1, total1) in sorted(after.cores.items()):
        busy0, si0, total0 = before.cores.get(core, (0, 0, 0))
        span = max(1, total1 - total0)
        cores.append(
            {
                "core": core,
                "busy": round((busy1 - busy0) / span, 3),
                "softirq": round((si1 - si0) / span, 3),
            }
        )
    top = sorted(others.items(), key=lambda kv: -kv[1])[:3]
    return {
        "others_cpu_s": round(sum(others.values()), 3),
        "others_share": round(sum(others.values()) / wall_s, 3) if wall_s > 0 else 0.0,
        "others_top": [f"{comm(pid)}[{pid}] {cpu:.1f}s" for pid, cpu in top],
        "cores": cores,
    }
