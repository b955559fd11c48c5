"""Persistence in the Redis-protocol engine: the key schema and Lua scripts.

One module per aggregate. Every key starts with `eh:`. Multi-key changes that must be
all-or-nothing are Lua scripts, so a half-written record never exists.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


class _FailFastPool(redis.BlockingConnectionPool):
    """No connection (a TimeoutError at once) while `unresponsive()` says the engine
    is known not to answer: requests would otherwise each wait the socket timeout."""

    unresponsive: Callable[[], bool] = staticmethod(lambda: False)

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        if self.unresponsive():
            raise RedisTimeoutError("the engine is not answering")
        return await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]


def connect(url: str, unresponsive: Callable[[], bool] | None = None) -> redis.Redis:
    """A pooled client that fails fast while the engine is away (callers answer 503),
    and at once while `unresponsive()` (the lean client's verdict, server.store.resp)."""
    # A blocking pool: a burst of requests (a thousand sockets upgrading at once) waits
    # for a free connection instead of failing with "too many connections".
    pool = _FailFastPool.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=1.0,
        socket_timeout=5.0,
        health_check_interval=0,
        max_connections=128,
        # A burst queues for a connection rather than failing; only a real stall is a 503.
        timeout=20.0,
        # One quick retry reconnects a pooled connection the engine dropped on restart.
        # Not on a timeout: an engine that did not answer in 5 s will not in 10.
        retry=Retry(
            ExponentialBackoff(cap=0.05, base=0.01), 1, supported_errors=(RedisConnectionError,)
        ),  # fmt: skip
        retry_on_error=[RedisConnectionError],
    )
    if unresponsive is not None:
        pool.unresponsive = unresponsive
    return redis.Redis.from_pool(pool)  # owns the pool: aclose() closes its connections
