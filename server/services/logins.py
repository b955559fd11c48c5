"""Sign-in limits and the password-hashing pool (issue 13, item 7).

Guessing is limited per handle and per client address with exponential backoff
(domain.logins): every attempt is counted as it starts, so that a burst of
simultaneous guesses is limited as well as a slow stream; a successful sign-in gives
its count back (so only failures add up), and resets its handle's count. Hashing runs
in its own small thread pool with a bounded queue, so a flood that gets past the
limits (many addresses) takes one core at most and never the event loop's.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from server.domain.errors import RateLimited
from server.domain.logins import backoff_table
from server.services.common import Clock
from server.settings import LoginLimit
from server.store.logins import LoginStore, address_key, handle_key

T = TypeVar("T")


class LoginGuard:
    def __init__(self, store: LoginStore, limit: LoginLimit, clock: Clock) -> None:
        self.store = store
        self.limit = limit
        self.clock = clock
        self._handle_waits = backoff_table(limit.free_per_handle, limit.base, limit.cap)
        self._address_waits = backoff_table(limit.free_per_address, limit.base, limit.cap)

    async def begin(self, handle: str, address: str | None) -> None:
        """Count an attempt for the address, then the handle; RateLimited if either
        must wait (the address first: one address guessing many handles). An attempt
        the handle refuses is given back to the address, so a member retrying early
        does not use up their address's allowance."""
        now = self.clock()
        limit = self.limit
        if address:
            wait = await self.store.attempt(address_key(address), now, limit.free_per_address,
                                            limit.forget_address, self._address_waits)  # fmt: skip
            if wait > 0:
                raise _too_many(wait)
        wait = await self.store.attempt(handle_key(handle), now, limit.free_per_handle,
                                        limit.forget_handle, self._handle_waits)  # fmt: skip
        if wait > 0:
            if address:
                await self.store.give_back(address_key(address))
            raise _too_many(wait)

    async def succeeded(self, handle: str, address: str | None) -> None:
        await self.store.forget(handle_key(handle))
        if address:
            await self.store.give_back(address_key(address))


def _too_many(wait: float) -> RateLimited:
    # The same rounding up as Retry-After: a client that waits what it is told gets in.
    seconds = max(1, int(wait + 0.999))
    return RateLimited(wait, f"too many sign-in attempts; try again in {seconds} s")


class HashPool:
    """Password hashing off the event loop: `workers` at a time, `queue` more waiting;
    beyond that a request is refused at once (429) rather than queued without bound."""

    def __init__(self, workers: int = 1, queue: int = 16) -> None:
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="echohub-hash")
        self._room = workers + queue
        self._pending = 0

    @property
    def pending(self) -> int:
        return self._pending

    async def run(self, fn: Callable[..., T], *args: object, **kwargs: object) -> T:
        if self._pending >= self._room:
            raise RateLimited(1.0, "too many sign-ins at once; try again in a moment")
        self._pending += 1
        try:
            job = functools.partial(fn, *args, **kwargs)
            return await asyncio.get_running_loop().run_in_executor(self._executor, job)
        finally:
            self._pending -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
