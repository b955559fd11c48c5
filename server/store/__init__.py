"""Persistence in the Redis-protocol engine: the key schema and Lua scripts.

One module per aggregate. Every key starts with `eh:`. Multi-key changes that must be
all-or-nothing are Lua scripts, so a half-written record never exists.
"""

from __future__ import annotations

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError


def connect(url: str) -> redis.Redis:
    """A pooled client that fails fast while the engine is away (callers answer 503)."""
    # A blocking pool: a burst of requests (a thousand sockets upgrading at once) waits
    # for a free connection instead of failing with "too many connections".
    pool = redis.BlockingConnectionPool.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=1.0,
        socket_timeout=5.0,
        health_check_interval=0,
        max_connections=128,
        # A burst queues for a connection rather than failing; only a real stall is a 503.
        timeout=20.0,
        # One quick retry reconnects a pooled connection the engine dropped on restart.
        retry=Retry(ExponentialBackoff(cap=0.05, base=0.01), 1),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
    )
    return redis.Redis.from_pool(pool)  # owns the pool: aclose() closes its connections
