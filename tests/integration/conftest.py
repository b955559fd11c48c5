"""Fixtures for tests that run real server processes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import Server, start_server, stop_server


@pytest.fixture
async def two_servers(engine_url: str, rdb: Any,
                      tmp_path: Path) -> AsyncIterator[tuple[Server, Server]]:  # fmt: skip
    # Their files (media, shared as on one machine) in the test's directory, not ./var.
    a = start_server("--redis-url", engine_url, "--data-dir", str(tmp_path))
    b = start_server("--redis-url", engine_url, "--data-dir", str(tmp_path))
    yield a, b
    for s in (a, b):
        await s.close()
        stop_server(s)
