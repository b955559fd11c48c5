"""Login backoff: how long a sign-in attempt must wait, from how many came before.

Counted per handle and per client address (the service decides what is counted and
when a count is given back). Pure: no clock, no I/O.
"""

from __future__ import annotations


def backoff_wait(attempts: int, free: int, base: float, cap: float) -> float:
    """Seconds the next attempt waits after `attempts` counted ones, from the last one.

    The first `free` attempts wait nothing; then `base`, doubling with each attempt,
    never more than `cap`.
    """
    if attempts < free:
        return 0.0
    exponent = min(attempts - free, 64)  # 2**64 s is past any cap; no float overflow
    return float(min(cap, base * 2.0**exponent))


def backoff_table(free: int, base: float, cap: float) -> tuple[float, ...]:
    """The waits after `free`, `free + 1`, … counted attempts, up to the first that
    reaches `cap` (every later count waits as long as the last entry)."""
    waits = []
    attempts = free
    while True:
        wait = backoff_wait(attempts, free, base, cap)
        waits.append(wait)
        if wait >= cap or len(waits) >= 64:
            return tuple(waits)
        attempts += 1
