"""The lean engine client (server.store.resp) against the real engine."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.exceptions import ConnectionError as EngineConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as EngineTimeoutError

from server.store.resp import EngineClient


@pytest.fixture
async def engine_client(engine_url: str, rdb: Any) -> AsyncIterator[EngineClient]:
    client = EngineClient(engine_url)
    yield client
    await client.aclose()


async def test_concurrent_calls_get_their_own_replies(engine_client: EngineClient) -> None:
    await engine_client.calls([("SET", f"k{i}", str(i)) for i in range(200)])
    # Issued together, written together, answered in order to the right caller.
    replies = await asyncio.gather(*(engine_client.call("GET", f"k{i}") for i in range(200)))
    assert replies == [str(i) for i in range(200)]


async def test_an_error_reply_raises_and_the_connection_stays_usable(
    engine_client: EngineClient,
) -> None:
    with pytest.raises(ResponseError, match="unknown command"):
        await engine_client.call("NO_SUCH_COMMAND")
    await engine_client.call("SET", "s", "1")
    commands = [("INCR", "s"), ("HGET", "s", "f"), ("GET", "s")]
    replies = await engine_client.calls(commands, raise_on_error=False)
    assert replies[0] == 2
    assert isinstance(replies[1], ResponseError)  # WRONGTYPE, in its place
    assert replies[2] == "2"
    # By default an error reply raises, as a redis-py pipeline does.
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await engine_client.calls(commands)


async def test_transaction_applies_every_command(engine_client: EngineClient, rdb: Any) -> None:
    assert await engine_client.transaction([("SET", "t", "5"), ("INCRBY", "t", 3)]) == ["OK", 8]
    assert await rdb.get("t") == "8"


async def test_a_transaction_with_a_bad_command_applies_nothing(
    engine_client: EngineClient, rdb: Any
) -> None:
    with pytest.raises(ResponseError):
        await engine_client.transaction([("SET", "u", "1"), ("NO_SUCH_COMMAND",)])
    assert await rdb.get("u") is None


async def test_a_runtime_error_inside_a_transaction_raises_after_the_others_apply(
    engine_client: EngineClient, rdb: Any
) -> None:
    await rdb.set("w", "text")
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await engine_client.transaction([("SET", "v", "1"), ("HGET", "w", "f")])
    assert await rdb.get("v") == "1"  # the engine does not roll a transaction back


async def test_commands_are_sent_when_issued_not_when_awaited(
    engine_client: EngineClient, rdb: Any
) -> None:
    # Issued, never awaited: still sent in this iteration's write, ahead of the GET.
    stored = engine_client.transaction([("SET", "a", "1")])
    counted = engine_client.calls([("INCR", "n"), ("INCR", "n")])
    assert await engine_client.call("MGET", "a", "n") == ["1", "2"]
    assert stored.done() and counted.done()
    assert await counted == [1, 2]


async def test_a_lost_connection_fails_a_batch_once(engine_client: EngineClient, rdb: Any) -> None:
    client_id = await engine_client.call("CLIENT", "ID")
    batch = engine_client.calls([("BLPOP", "never-pushed", 0), ("PING",)])
    await rdb.client_kill_filter(_id=client_id)
    with pytest.raises(EngineConnectionError):
        await batch
    assert await engine_client.calls([("PING",), ("PING",)]) == ["PONG", "PONG"]


async def test_script_is_loaded_again_after_the_engine_forgets_it(
    engine_client: EngineClient, rdb: Any
) -> None:
    script = engine_client.script("return {KEYS[1], ARGV[1], 3}")
    assert await script(["key"], ["arg"]) == ["key", "arg", 3]
    await rdb.script_flush()
    assert await script(["again"], [1.5]) == ["again", "1.5", 3]


async def test_a_killed_connection_fails_pending_calls_and_the_next_call_reconnects(
    engine_client: EngineClient, rdb: Any
) -> None:
    client_id = await engine_client.call("CLIENT", "ID")
    # The engine drops this connection while a call waits on it.
    blocked = engine_client.call("BLPOP", "never-pushed", 0)
    await rdb.client_kill_filter(_id=client_id)
    with pytest.raises(EngineConnectionError):
        await blocked
    assert await engine_client.call("CLIENT", "ID") != client_id
    assert await engine_client.call("PING") == "PONG"


async def test_an_unanswered_call_times_out(engine_url: str, rdb: Any) -> None:
    client = EngineClient(engine_url, timeout=0.5)
    try:
        with pytest.raises(EngineTimeoutError):
            await client.call("BLPOP", "never-pushed", 0)
        # Known unresponsive until a probe on another connection is answered (at once
        # here: only that one command hung); meanwhile calls fail without waiting.
        assert client.unresponsive
        async with asyncio.timeout(5):
            while client.unresponsive:
                await asyncio.sleep(0.01)
        assert await client.call("PING") == "PONG"  # a fresh connection
    finally:
        await client.aclose()


async def test_an_unreachable_engine_fails_fast_with_a_connection_error() -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = EngineClient(f"redis://127.0.0.1:{port}/0")
    try:
        with pytest.raises(EngineConnectionError):
            await client.call("PING")
        with pytest.raises(EngineConnectionError):
            await client.calls([("PING",), ("PING",)])
    finally:
        await client.aclose()


async def test_database_number_in_the_url_is_selected(engine_url: str, rdb: Any) -> None:
    base = engine_url.split("?")[0]
    url = f"{base}?db=3" if base.startswith("unix://") else base.rsplit("/", 1)[0] + "/3"
    client = EngineClient(url)
    try:
        await client.call("SET", "in-db-3", "yes")
        assert await rdb.get("in-db-3") is None
        assert await client.call("GET", "in-db-3") == "yes"
        await client.call("DEL", "in-db-3")
    finally:
        await client.aclose()


async def test_a_closed_client_refuses_calls(engine_url: str) -> None:
    client = EngineClient(engine_url)
    assert await client.call("PING") == "PONG"
    await client.aclose()
    with pytest.raises(EngineConnectionError):
        client.call("PING")
