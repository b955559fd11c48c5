"""Jobs for the media pool's tests: importable by a spawned worker process."""

from __future__ import annotations

import time


def sleep_for(seconds: float) -> str:
    time.sleep(seconds)
    return "woke"


def allocate(megabytes: int) -> str:
    try:
        block = bytearray(megabytes * 1024 * 1024)
    except MemoryError:
        return "refused"
    return f"got {len(block) // (1024 * 1024)}"


def echo(value: str) -> str:
    return value


def spin(seconds: float) -> str:
    """Busy for `seconds` of real time (CPU all the way)."""
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
    return f"spun {n}"
