"""Notification history over real HTTP, sockets and two server processes on one engine:
what is kept (with its context), paging, the cap, the read marker on every device, and
bad input."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from tests.support import (
    PASSWORD,
    Member,
    Server,
    call,
    error_of,
    receive_until,
    signup,
    subscribe,
)


async def history(http: Any, who: Member, query: str = "") -> dict[str, Any]:
    return await call(http, "get", f"/api/notifications{query}", who, 200)


async def test_every_kind_is_kept_newest_first_with_its_context(app_client: Any, rdb: Any) -> None:
    http = app_client
    bea = await signup(http, rdb, "bea")
    ann = await signup(http, rdb, "ann")
    question = await call(http, "post", "/api/echoes", bea, 201, {"text": "lunch?"})
    await call(http, "post", "/api/users/bea/follow", ann, 200)
    await call(http, "post", f"/api/echoes/{question['id']}/like", ann, 200)
    reply = await call(http, "post", "/api/echoes", ann, 201,
                       {"text": "yes @bea", "reply_to": question["id"]})  # fmt: skip
    mention = await call(http, "post", "/api/echoes", ann, 201, {"text": "hi @bea"})
    body = {"name": "Lunch club", "description": "we eat", "join_policy": "approval"}
    club = await call(http, "post", "/api/communities", bea, 201, body)
    await call(http, "post", f"/api/communities/{club['id']}/join", ann, 200)

    page = await history(http, bea)
    kinds = [item["type"] for item in page["items"]]
    assert kinds == ["community.join_requested", "mention", "reply", "like", "follow"]
    by_type = {item["type"]: item for item in page["items"]}
    assert by_type["like"]["data"]["text"] == "lunch?"
    assert by_type["reply"]["data"]["text"] == "yes @bea"
    assert by_type["reply"]["data"]["reply_to_text"] == "lunch?"
    assert by_type["mention"]["data"]["echo"] == mention["id"]
    assert by_type["community.join_requested"]["data"]["community"]["name"] == "Lunch club"
    assert by_type["follow"]["data"]["by"]["handle"] == "ann"
    assert all(item["at"].endswith("Z") and item["read"] is False for item in page["items"])
    assert page["unread"] == 5 and page["next"] is None
    assert (await call(http, "get", "/api/me", bea, 200))["unread_notifications"] == 5
    # Paging: two at a time, each once, in order.
    seen, cursor = [], None
    for _ in range(5):
        part = await history(http, bea, "?limit=2" + (f"&before={cursor}" if cursor else ""))
        seen += [item["id"] for item in part["items"]]
        cursor = part["next"]
        if cursor is None:
            break
    assert seen == [item["id"] for item in page["items"]]
    # A deleted post's words leave the history with it.
    await call(http, "delete", f"/api/echoes/{reply['id']}", ann, 200)
    after = {item["type"]: item for item in (await history(http, bea))["items"]}
    assert "text" not in after["reply"]["data"] and after["reply"]["data"]["deleted"] == ["echo"]
    assert after["reply"]["data"]["reply_to_text"] == "lunch?"
    # Each member has their own: ann was notified of nothing.
    assert (await history(http, ann))["items"] == []


async def test_marking_read(app_client: Any, rdb: Any) -> None:
    http = app_client
    bea = await signup(http, rdb, "bea")
    fans = [await signup(http, rdb, f"fan{n}") for n in range(3)]
    for fan in fans:
        await call(http, "post", "/api/users/bea/follow", fan, 200)
    items = (await history(http, bea))["items"]
    middle = items[1]["id"]
    marked = await call(http, "post", "/api/notifications/read", bea, 200, {"until": middle})
    assert marked == {"read_until": middle, "unread": 1}
    page = await history(http, bea)
    assert [item["read"] for item in page["items"]] == [False, True, True]
    # Never backwards; never past the newest (a later notification stays unread).
    again = await call(http, "post", "/api/notifications/read", bea, 200, {"until": items[2]["id"]})
    assert again == marked
    far = await call(http, "post", "/api/notifications/read", bea, 200, {"until": "9" * 19})
    assert far == {"read_until": items[0]["id"], "unread": 0}
    late = await signup(http, rdb, "late")
    await call(http, "post", "/api/users/bea/follow", late, 200)
    assert (await call(http, "get", "/api/me", bea, 200))["unread_notifications"] == 1


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"until": "garbage"}, "invalid_cursor", "until"),
        ({"until": ""}, "invalid_cursor", "until"),
        ({"until": 12}, "invalid_cursor", "until"),
        ({"until": None}, "invalid_cursor", "until"),
        ({"until": "1" * 40}, "invalid_cursor", "until"),
        ({"until": "-5"}, "invalid_cursor", "until"),
        ({"until": "١٢"}, "invalid_cursor", "until"),  # Arabic-Indic digits
        ({}, "invalid_cursor", "until"),
        ([1], "invalid_body", None),
    ],
)
async def test_bad_read_marks_store_nothing(
    app_client: Any, rdb: Any, body: Any, code: str, field: str | None
) -> None:
    bea = await signup(app_client, rdb, "bea")
    ann = await signup(app_client, rdb, "ann")
    await call(app_client, "post", "/api/users/bea/follow", ann, 200)
    assert await error_of(app_client, "post", "/api/notifications/read", bea, 400, body) == (
        code,
        field,
    )
    assert await rdb.get(f"eh:notes_read:{bea.user['id']}") is None
    assert (await call(app_client, "get", "/api/me", bea, 200))["unread_notifications"] == 1


@pytest.mark.parametrize(
    ("query", "code", "field"),
    [("?before=garbage", "invalid_cursor", "before"), ("?before=", "invalid_cursor", "before"),
     ("?limit=1000", "invalid_limit", "limit")],
)  # fmt: skip
async def test_bad_history_pages(
    app_client: Any, rdb: Any, query: str, code: str, field: str
) -> None:
    bea = await signup(app_client, rdb, "bea")
    assert await error_of(app_client, "get", f"/api/notifications{query}", bea, 400) == (
        code,
        field,
    )


@pytest.fixture
def settings(settings: Any) -> Any:
    return dataclasses.replace(settings, history_size=12)


async def test_the_history_is_capped_in_the_engine(app_client: Any, rdb: Any) -> None:
    http = app_client
    bea = await signup(http, rdb, "bea")
    ann = await signup(http, rdb, "ann")
    for _ in range(15):
        await call(http, "post", "/api/users/bea/follow", ann, 200)
        await call(http, "delete", "/api/users/bea/follow", ann, 200)
    page = await history(http, bea, "?limit=100")
    assert len(page["items"]) == 12 and page["unread"] == 12
    assert await rdb.xlen(f"eh:hist:me:{bea.user['id']}") == 12


async def login(http: Server, handle: str) -> Member:
    resp = await http.post("/api/login", json={"handle": handle, "password": PASSWORD})
    assert resp.status == 200, await resp.text()
    data = await resp.json()
    return Member(handle, data["token"], data["user"])


async def test_read_on_one_device_is_read_on_every_device(
    two_servers: tuple[Server, Server], rdb: Any
) -> None:
    one, two = two_servers
    bea_phone = await signup(one, rdb, "bea")
    bea_laptop = await login(two, "bea")
    ann = await signup(one, rdb, "ann")
    phone = await subscribe(one, bea_phone, "me")
    laptop = await subscribe(two, bea_laptop, "me")
    await call(two, "post", "/api/users/bea/follow", ann, 200)
    live = await receive_until(laptop, lambda f: f["op"] == "event" and f["type"] == "follow")
    cursor = live[-1]["cursor"]
    # The live event's cursor is the kept notification's id.
    assert (await history(one, bea_phone))["items"][0]["id"] == cursor
    assert (await call(two, "get", "/api/me", bea_laptop, 200))["unread_notifications"] == 1
    await call(one, "post", "/api/notifications/read", bea_phone, 200, {"until": cursor})
    for ws in (laptop, phone):
        frames = await receive_until(
            ws, lambda f: f["op"] == "event" and f["type"] == "notifications.read"
        )
        assert frames[-1]["data"] == {"read_until": cursor, "unread": 0}
    assert (await call(two, "get", "/api/me", bea_laptop, 200))["unread_notifications"] == 0
    # Read marks are not notifications: the history still holds the follow alone.
    assert [i["type"] for i in (await history(two, bea_laptop))["items"]] == ["follow"]
    for ws in (phone, laptop):
        await ws.close()


async def test_an_answered_request_is_announced_to_the_owners_devices_not_kept(
    app_client: Any, rdb: Any
) -> None:
    http = app_client
    bea = await signup(http, rdb, "bea")
    ann = await signup(http, rdb, "ann")
    body = {"name": "Tea", "description": "tea time", "join_policy": "approval"}
    club = await call(http, "post", "/api/communities", bea, 201, body)
    await call(http, "post", f"/api/communities/{club['id']}/join", ann, 200)
    owner = await subscribe(http, bea, "me")
    await call(http, "post", f"/api/communities/{club['id']}/requests/ann/approve", bea, 200)
    frames = await receive_until(owner, lambda f: f["op"] == "event")
    event = frames[-1]
    assert event["type"] == "community.joined" and event["data"]["decided"] is True
    assert event["data"]["user"]["handle"] == "ann"
    assert event["data"]["community"]["id"] == club["id"]
    kept = [i["type"] for i in (await history(http, bea))["items"]]
    assert kept == ["community.join_requested"]
    await owner.close()


async def test_a_removed_posts_author_is_told_why_not_by_whom(app_client: Any, rdb: Any) -> None:
    http = app_client
    admin = await signup(http, rdb, "root", admin=True)  # admins moderate
    ann = await signup(http, rdb, "ann")
    rude = await call(http, "post", "/api/echoes", ann, 201, {"text": "something rude"})
    await call(http, "post", f"/api/mod/echoes/{rude['id']}/remove", admin, 200,
               {"reason": "rudeness"})  # fmt: skip
    items = (await history(http, ann))["items"]
    notice = items[0]
    assert notice["type"] == "mod.action"
    assert notice["data"]["action"] == "remove_echo" and notice["data"]["reason"] == "rudeness"
    assert notice["data"]["echo"] == rude["id"] and notice["data"]["deleted"] == ["echo"]
    assert "root" not in str(notice["data"])  # not by whom
    # Deleting one's own post tells no one.
    own = await call(http, "post", "/api/echoes", ann, 201, {"text": "mine"})
    await call(http, "delete", f"/api/echoes/{own['id']}", ann, 200)
    assert len((await history(http, ann))["items"]) == len(items)
