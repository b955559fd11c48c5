"""Sign-in limits (issue 13, item 7) on a real engine, with the service clock moved by
the test: backoff per handle and per address, counted as attempts start (so bursts
are limited too), given back on success; and the bounded hashing pool."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from typing import Any

import pytest

from server.app import create_app
from server.settings import LoginLimit
from tests.support import PASSWORD, signup

LIMIT = LoginLimit(free_per_handle=3, free_per_address=6, base=1.0, cap=8.0)
PROXY = (ipaddress.ip_network("127.0.0.0/8"),)


class ManualClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def http(aiohttp_client: Any, engine_url: str, rdb: Any, settings: Any,
               clock: ManualClock) -> Any:  # fmt: skip
    # Behind a "proxy" (loopback), so each test picks its client address.
    limited = settings.with_(login_limit=LIMIT, trusted_proxies=PROXY)
    return await aiohttp_client(create_app(limited, engine_url, clock=clock))


async def login(http: Any, handle: str, password: str = "wrong password",
                address: str = "203.0.113.1") -> tuple[int, Any, Any]:  # fmt: skip
    http.session.cookie_jar.clear()
    resp = await http.post("/api/login", json={"handle": handle, "password": password},
                           headers={"X-Forwarded-For": address})  # fmt: skip
    return resp.status, resp.headers.get("Retry-After"), await resp.json()


async def test_a_handle_backs_off_after_its_free_attempts(http: Any, rdb: Any,
                                                          clock: ManualClock) -> None:  # fmt: skip
    await signup(http, rdb, "aki")
    for _ in range(3):
        assert (await login(http, "aki"))[0] == 401
    status, retry_after, body = await login(http, "aki")
    assert (status, retry_after) == (429, "1")
    assert body["error"]["code"] == "rate_limited" and body["error"]["retry_after"] == 1
    # Even the right password waits: a limited attempt says nothing about the password.
    assert (await login(http, "aki", PASSWORD))[0] == 429
    # And from another address: the handle is what is limited.
    assert (await login(http, "aki", address="198.51.100.7"))[0] == 429
    clock.now += 1.0
    assert (await login(http, "aki"))[0] == 401
    status, retry_after, _ = await login(http, "aki")
    assert (status, retry_after) == (429, "2")
    clock.now += 2.0
    assert (await login(http, "aki"))[0] == 401
    assert (await login(http, "aki"))[1] == "4"
    clock.now += 4.0
    # The right password gets in, and the handle starts afresh.
    assert (await login(http, "aki", PASSWORD))[0] == 200
    for _ in range(3):
        assert (await login(http, "aki", address="198.51.100.7"))[0] == 401
    assert (await login(http, "aki", address="198.51.100.7"))[0] == 429


async def test_the_wait_is_capped(http: Any, rdb: Any, clock: ManualClock) -> None:
    waits = []
    for n in range(20):  # unknown handles count too; a new address each time
        status, retry_after, _ = await login(http, "ghost", address=f"203.0.113.{n}")
        if status == 429:
            waits.append(int(retry_after))
            clock.now += float(retry_after)
    assert waits[:5] == [1, 2, 4, 8, 8] and set(waits) == {1, 2, 4, 8}


async def test_an_address_guessing_many_handles_backs_off(http: Any, rdb: Any,
                                                          clock: ManualClock) -> None:  # fmt: skip
    await signup(http, rdb, "aki")
    for n in range(6):
        assert (await login(http, f"member{n}"))[0] == 401
    assert (await login(http, "member9"))[:2] == (429, "1")
    # Another address is not held back by this one.
    assert (await login(http, "member9", address="198.51.100.7"))[0] == 401
    # A member behind the guessing address still gets in once the wait is over, and
    # their success gives one count back rather than clearing the address.
    clock.now += 1.0
    assert (await login(http, "aki", PASSWORD))[0] == 200
    clock.now += 1.0
    assert (await login(http, "member10"))[0] == 401
    # 7 failures counted, not 8: the next waits 2 s, not 4.
    assert (await login(http, "member11"))[:2] == (429, "2")


async def test_a_burst_of_simultaneous_guesses_is_limited_too(http: Any, rdb: Any) -> None:
    await signup(http, rdb, "aki")
    answers = await asyncio.gather(*(login(http, "aki", address=f"203.0.113.{n}")
                                     for n in range(12)))  # fmt: skip
    statuses = sorted(a[0] for a in answers)
    assert statuses == [401] * 3 + [429] * 9


async def test_hashing_has_a_bounded_queue_and_other_requests_keep_going(
    aiohttp_client: Any, engine_url: str, rdb: Any, settings: Any
) -> None:
    """A flood past the limits (limits off here) fills the pool's queue; the rest are
    refused at once, and requests that hash nothing are served meanwhile."""
    pooled = settings.with_(password_cost=2**14, hash_workers=1, hash_queue=2)
    client = await aiohttp_client(create_app(pooled, engine_url))
    aki = await signup(client, rdb, "aki")
    client.session.cookie_jar.clear()

    async def guess() -> int:
        resp = await client.post("/api/login", json={"handle": "aki", "password": "nope nope"})
        status: int = resp.status
        return status

    flood = [asyncio.create_task(guess()) for _ in range(12)]
    served = 0
    while not all(task.done() for task in flood):
        resp = await client.get("/api/me", headers=aki.auth)
        assert resp.status == 200
        served += 1
    statuses = sorted(task.result() for task in flood)
    assert statuses.count(429) >= 8 and set(statuses) <= {401, 429}, statuses
    assert served >= 1
