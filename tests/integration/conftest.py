"""Fixtures for tests that run real server processes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support import Server, start_server, stop_server


@pytest.fixture
async def two_servers(engine_url: str, rdb: Any) -> AsyncIterator[tuple[Server, Server]]:
    a = start_server("--redis-url", engine_url)
    b = start_server("--redis-url", engine_url)
    yield a, b
    for s in (a, b):
        await s.close()
        stop_server(s)
