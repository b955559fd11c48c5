"""Shared fixtures: one private engine for the whole run (the same code path as
`echohub serve`), flushed before each test that uses it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from server.engine import EmbeddedEngine
from server.settings import Settings

# Sign-ups in tests use a cheap (but real) scrypt; limits are tested where they apply.
TEST_SETTINGS = Settings(rate_limits={}, login_limit=None, password_cost=2**10, heartbeat=5.0)


@pytest.fixture(scope="session")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedEngine]:
    eng = EmbeddedEngine(Path(tmp_path_factory.mktemp("engine")))
    eng.start()
    yield eng
    eng.stop()


@pytest.fixture(scope="session")
def engine_url(engine: EmbeddedEngine) -> str:
    return engine.url


@pytest.fixture
async def rdb(engine_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(engine_url, decode_responses=True)
    await client.flushall()
    yield client
    await client.aclose()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # The app's files (media) in the test's own directory, never the working tree's ./var.
    return TEST_SETTINGS.with_(data_dir=str(tmp_path))


@pytest.fixture(autouse=True)
def _quiet_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REDIS_URL", "ECHOHUB_RATE_LIMITS", "ECHOHUB_DATA_DIR", "PORT", "HOST"):
        monkeypatch.delenv(name, raising=False)
    os.environ.setdefault("PYTHONUNBUFFERED", "1")


@pytest.fixture
async def app_client(aiohttp_client: object, engine_url: str, rdb: aioredis.Redis,
                     settings: Settings) -> object:  # fmt: skip
    """The app in this process on a real loopback port, on the shared engine."""
    from server.app import create_app

    return await aiohttp_client(create_app(settings, engine_url))  # type: ignore[operator]
