"""Every change to a member's reach bumps their graph version (server.store.graph): a
reach loaded before the change must stop holding, or a post could reach someone who
blocked its author in the meantime."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from server.store.graph import GraphStore, version_key
from server.store.resp import EngineClient


@pytest.fixture
async def graph(engine_url: str, rdb: Any) -> AsyncIterator[GraphStore]:
    engine = EngineClient(engine_url)
    try:
        yield GraphStore(rdb, engine)
    finally:
        await engine.aclose()


async def versions(rdb: Any, *users: str) -> list[int]:
    return [int(await rdb.get(version_key(u)) or 0) for u in users]


async def still_holds(rdb: Any, guard: tuple[str, str]) -> bool:
    return str(await rdb.get(guard[0]) or "0") == guard[1]


Step = Callable[[GraphStore], Awaitable[object]]

STEPS: list[tuple[str, Step, tuple[bool, bool]]] = [
    # (what, the change, whether it bumps (ann's version, bob's version))
    ("follow", lambda g: g.follow("ann", "bob"), (True, True)),
    ("unfollow", lambda g: g.unfollow("ann", "bob"), (True, True)),
    ("block", lambda g: g.block("ann", "bob"), (True, True)),
    ("unblock", lambda g: g.unblock("ann", "bob"), (True, True)),
    ("mute", lambda g: g.set_mute("ann", "bob", True), (False, True)),
    ("unmute", lambda g: g.set_mute("ann", "bob", False), (False, True)),
]


async def test_each_change_to_reach_bumps_the_versions_of_whose_reach_changed(
    graph: GraphStore, rdb: Any
) -> None:
    for what, step, bumps in STEPS:
        held = await graph.reach("bob", friends=True)
        before = await versions(rdb, "ann", "bob")
        await step(graph)
        after = await versions(rdb, "ann", "bob")
        assert [a > b for a, b in zip(after, before, strict=True)] == list(bumps), what
        assert not await still_holds(rdb, held.guard), what


async def test_a_follow_that_changes_nothing_leaves_the_versions(
    graph: GraphStore, rdb: Any
) -> None:
    assert await graph.follow("cat", "dan") == 1
    held = await graph.reach("dan", friends=False)
    assert await graph.follow("cat", "dan") == 0
    assert await still_holds(rdb, held.guard)
    assert await graph.block("dan", "cat")
    assert await graph.follow("cat", "dan") == -1  # refused: a block stands between
    held = await graph.reach("dan", friends=False)
    assert await graph.follow("cat", "dan") == -1
    assert await still_holds(rdb, held.guard)
