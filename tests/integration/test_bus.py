"""The bus's guarded publish: a guard that no longer holds publishes nothing; writes sent
along with a publish are applied once, in the same transaction."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from server.bus import RedisBus, encode_body, stream_key
from server.store.resp import EngineClient


@pytest.fixture
async def bus(engine_url: str, rdb: Any) -> AsyncIterator[RedisBus]:
    engine = EngineClient(engine_url)
    yield RedisBus(engine_url, rdb, engine)
    await engine.aclose()


def entry(n: int) -> list[tuple[str, bytes]]:
    return [("t", encode_body("test", {"n": n}, None))]


async def test_a_guard_that_holds_publishes(bus: RedisBus, rdb: Any) -> None:
    await rdb.set("v", "3")
    seq = await bus.publish(entry(1), guard=("v", "3"), along=[("SET", "stored", "1")])
    assert seq is not None and await rdb.xlen(stream_key("t")) == 1
    assert await rdb.get("stored") == "1"
    # A key never set reads as "0".
    assert await bus.publish(entry(2), guard=("unset", "0")) is not None


async def test_a_stale_guard_publishes_nothing_but_applies_along(bus: RedisBus, rdb: Any) -> None:
    await rdb.set("v", "4")
    assert await bus.publish(entry(1), guard=("v", "3"), along=[("INCR", "stored")]) is None
    assert await rdb.xlen(stream_key("t")) == 0
    assert await rdb.get("stored") == "1"


async def test_an_unknown_script_inside_the_transaction_applies_along_once(
    bus: RedisBus, rdb: Any
) -> None:
    await rdb.script_flush()
    seq = await bus.publish(entry(1), guard=("v", "0"), along=[("INCR", "stored")])
    assert seq is not None and await rdb.xlen(stream_key("t")) == 1
    assert await rdb.get("stored") == "1"
    assert await bus.publish(entry(2), along=[("INCR", "stored")]) is not None
    assert await rdb.get("stored") == "2"


async def test_a_failing_write_along_raises(bus: RedisBus, rdb: Any) -> None:
    await rdb.set("text", "x")
    with pytest.raises(Exception, match="WRONGTYPE"):
        await bus.publish(entry(1), along=[("HSET", "text", "f", "v")])


async def test_settle_marks_the_guard_done_in_the_same_script(bus: RedisBus, rdb: Any) -> None:
    await rdb.set("claim", "token")
    first = await bus.publish([*entry(1), ("u", encode_body("test", {}, None))],
                              guard=("claim", "token"), settle="done")  # fmt: skip
    assert first is not None and await rdb.get("claim") == "done"
    assert await rdb.xlen(stream_key("t")) == 1 and await rdb.xlen(stream_key("u")) == 1
    # The claim is spent: publishing under it again publishes nothing.
    assert await bus.publish(entry(2), guard=("claim", "token"), settle="done") is None
    assert await rdb.xlen(stream_key("t")) == 1
    # A stale guard leaves the key as it was.
    await rdb.set("other", "new")
    assert await bus.publish(entry(3), guard=("other", "old"), settle="done") is None
    assert await rdb.get("other") == "new"
    with pytest.raises(ValueError):
        await bus.publish(entry(4), settle="done")
