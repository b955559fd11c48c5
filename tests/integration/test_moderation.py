"""Reports, the mod stream and its filter, removals, suspensions and the audit log, over
real HTTP and sockets on a real engine."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from tests.integration.test_echoes import follow, post, subscribe
from tests.support import JSON_TYPE, PASSWORD, Member, receive_until, signup


async def moderator(client: Any, rdb: Any, handle: str = "mia") -> Member:
    """A member made moderator by an admin, through the API."""
    admin = await signup(client, rdb, f"{handle}_admin", admin=True)
    mod = await signup(client, rdb, handle)
    resp = await client.put(f"/api/admin/users/{handle}/role", json={"role": "moderator"},
                            headers=admin.auth)  # fmt: skip
    assert resp.status == 200, await resp.text()
    return mod


async def error(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status == status, await resp.text()
    body: dict[str, Any] = (await resp.json())["error"]
    return body


async def next_event(ws: Any, type_: str) -> dict[str, Any]:
    frames = await receive_until(ws, lambda f: f["op"] == "event" and f["type"] == type_)
    return frames[-1]


async def next_event_of_any_type(ws: Any) -> dict[str, Any]:
    return (await receive_until(ws, lambda f: f["op"] == "event"))[-1]


async def test_a_report_reaches_the_mod_stream_and_the_reports_list(
    app_client: Any, rdb: Any
) -> None:
    mia = await moderator(app_client, rdb)
    aki = await signup(app_client, rdb, "aki")
    ben = await signup(app_client, rdb, "ben")
    stream = await subscribe(app_client, mia, "mod")
    created = await post(app_client, aki, "buy my $[big stuff]")
    assert (await next_event(stream, "post.created"))["data"]["id"] == created["id"]

    resp = await app_client.post("/api/reports", json={"echo": created["id"], "reason": "spam"},
                                 headers=ben.auth)  # fmt: skip
    assert resp.status == 201, await resp.text()
    report = await resp.json()
    assert report["reporter"] == {"handle": "ben", "display_name": "Ben"}
    assert report["reason"] == "spam" and report["status"] == "open"
    assert report["echo"]["id"] == created["id"] and report["echo"]["text"] == "buy my stuff"
    assert report["user"] is None and report["created_at"].endswith("Z")
    live = await next_event(stream, "report.created")
    assert live["topic"] == "mod" and live["data"] == report

    resp = await app_client.post("/api/reports", json={"user": "AKI", "reason": "rude"},
                                 headers=ben.auth)  # fmt: skip
    assert resp.status == 201
    about_aki = await resp.json()
    # The reporter learns nothing new about the member (who may have blocked them).
    assert about_aki["user"] == {"handle": "aki"}
    assert about_aki["echo"] is None
    live = await next_event(stream, "report.created")
    assert live["data"]["user"] == {"handle": "aki", "display_name": "Aki"}

    listed = await (await app_client.get("/api/mod/reports", headers=mia.auth)).json()
    assert [r["id"] for r in listed["items"]] == [about_aki["id"], report["id"]]
    assert listed["next"] is None
    assert listed["items"][0]["user"] == {"handle": "aki", "display_name": "Aki"}
    exactly = await (await app_client.get("/api/mod/reports?limit=2", headers=mia.auth)).json()
    assert len(exactly["items"]) == 2 and exactly["next"] is None
    resp = await app_client.get("/api/mod/reports", headers=ben.auth)
    assert (await error(resp, 403))["code"] == "forbidden"
    await stream.close()


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"reason": "spam"}, 400, "invalid_report", None),
        ({"echo": "x", "user": "aki", "reason": "spam"}, 400, "invalid_report", "echo"),
        ({"user": "aki"}, 400, "invalid_reason", "reason"),
        ({"user": "aki", "reason": "   "}, 400, "invalid_reason", "reason"),
        ({"user": "aki", "reason": "x" * 501}, 400, "invalid_reason", "reason"),
        ({"user": "aki", "reason": "two\nlines"}, 400, "invalid_reason", "reason"),
        ({"user": "aki", "reason": 5}, 400, "invalid_reason", "reason"),
        ({"user": "nobody_here", "reason": "spam"}, 404, "user_not_found", None),
        ({"user": "x!", "reason": "spam"}, 400, "invalid_handle", "user"),
        ({"user": "ben", "reason": "spam"}, 400, "cannot_report_self", "user"),
        ({"echo": "0" * 20, "reason": "spam"}, 404, "echo_not_found", "echo"),
        ({"echo": 17, "reason": "spam"}, 400, "invalid_report", "echo"),
        (["user", "aki"], 400, "invalid_body", None),
    ],
)
async def test_bad_reports(
    app_client: Any, rdb: Any, body: Any, status: int, code: str, field: str | None
) -> None:
    await signup(app_client, rdb, "aki")
    ben = await signup(app_client, rdb, "ben")
    err = await error(await app_client.post("/api/reports", json=body, headers=ben.auth), status)
    assert err["code"] == code
    assert err.get("field") == field


async def test_reports_need_a_session_and_a_visible_post_not_ones_own(
    app_client: Any, rdb: Any
) -> None:
    aki = await signup(app_client, rdb, "aki")
    ben = await signup(app_client, rdb, "ben")
    hidden = await post(app_client, aki, "for friends", visibility="friends")
    own = await post(app_client, ben, "mine")
    app_client.session.cookie_jar.clear()  # signing up left a session cookie
    resp = await app_client.post("/api/reports", json={"user": "aki", "reason": "x"})
    assert (await error(resp, 401))["code"]
    body = {"echo": hidden["id"], "reason": "x"}
    resp = await app_client.post("/api/reports", json=body, headers=ben.auth)
    assert (await error(resp, 404))["code"] == "echo_not_found"
    resp = await app_client.post("/api/reports", json={"echo": own["id"], "reason": "x"},
                                 headers=ben.auth)  # fmt: skip
    assert (await error(resp, 400))["code"] == "cannot_report_self"
    resp = await app_client.post("/api/reports", data=b"{not json",
                                 headers={**ben.auth, **JSON_TYPE})
    assert (await error(resp, 400))["code"] == "invalid_json"


async def test_reports_are_rate_limited_but_invalid_ones_take_nothing(
    aiohttp_client: Any, engine_url: str, rdb: Any, settings: Any
) -> None:
    from server.app import create_app
    from server.settings import parse_rate_limits

    limited = settings.with_(rate_limits=parse_rate_limits("reports=2/3600:2"))
    client = await aiohttp_client(create_app(limited, engine_url))
    ben = await signup(client, rdb, "ben")
    for handle in ("aki", "cho", "dan"):
        await signup(client, rdb, handle)
    for _ in range(3):
        resp = await client.post("/api/reports", json={"user": "aki", "reason": " "},
                                 headers=ben.auth)  # fmt: skip
        assert resp.status == 400
    for handle in ("aki", "cho"):
        resp = await client.post("/api/reports", json={"user": handle, "reason": "x"},
                                 headers=ben.auth)  # fmt: skip
        assert resp.status == 201
    resp = await client.post("/api/reports", json={"user": "dan", "reason": "x"}, headers=ben.auth)
    assert (await error(resp, 429))["code"] == "rate_limited"
    assert int(resp.headers["Retry-After"]) > 0


async def test_a_removed_post_leaves_every_page_and_the_audit_log_says_why(
    app_client: Any, rdb: Any
) -> None:
    mia = await moderator(app_client, rdb)
    aki = await signup(app_client, rdb, "aki")
    ben = await signup(app_client, rdb, "ben")
    await follow(app_client, ben, "aki")
    pages = [await subscribe(app_client, ben, "home"), await subscribe(app_client, ben, "public")]
    stream = await subscribe(app_client, mia, "mod")
    created = await post(app_client, aki, "against the rules")
    url = f"/api/mod/echoes/{created['id']}/remove"
    resp = await app_client.post(url, json={"reason": "rule 3"}, headers=ben.auth)
    assert (await error(resp, 403))["code"] == "forbidden"

    resp = await app_client.post(url, json={"reason": "rule 3"}, headers=mia.auth)
    assert resp.status == 200, await resp.text()
    action = await resp.json()
    assert action["action"] == "remove_echo" and action["reason"] == "rule 3"
    assert action["actor"] == {"handle": "mia", "display_name": "Mia"}
    assert action["echo"]["id"] == created["id"] and action["echo"]["text"] == "against the rules"
    assert action["user"] == {"handle": "aki", "display_name": "Aki"}
    for ws in pages:
        assert (await next_event(ws, "post.deleted"))["data"]["id"] == created["id"]
        await ws.close()
    assert (await next_event(stream, "mod.action"))["data"] == action
    resp = await app_client.get(f"/api/echoes/{created['id']}", headers=aki.auth)
    assert resp.status == 404
    resp = await app_client.post(url, json={"reason": "again"}, headers=mia.auth)
    assert (await error(resp, 404))["code"] == "echo_not_found"
    resp = await app_client.post("/api/mod/echoes/nope/remove", headers=mia.auth)
    assert (await error(resp, 404))["code"] == "echo_not_found"

    log = await (await app_client.get("/api/mod/audit", headers=mia.auth)).json()
    assert log["items"] == [action] and log["next"] is None
    resp = await app_client.get("/api/mod/audit", headers=aki.auth)
    assert (await error(resp, 403))["code"] == "forbidden"
    await stream.close()


async def test_suspension_closes_sockets_4003_and_ends_sessions_until_lifted(
    app_client: Any, rdb: Any
) -> None:
    mia = await moderator(app_client, rdb)
    ben = await signup(app_client, rdb, "ben")
    cho = await signup(app_client, rdb, "cho")
    sockets = [await subscribe(app_client, ben, "public"), await subscribe(app_client, ben, "me")]
    bystander = await subscribe(app_client, cho, "public")
    resp = await app_client.post("/api/mod/users/ben/suspend", json={"reason": "spam"},
                                 headers=cho.auth)  # fmt: skip
    assert (await error(resp, 403))["code"] == "forbidden"

    resp = await app_client.post("/api/mod/users/ben/suspend", json={"reason": "spam"},
                                 headers=mia.auth)  # fmt: skip
    assert resp.status == 200, await resp.text()
    result = await resp.json()
    assert result["user"]["handle"] == "ben" and result["user"]["suspended"] is True
    assert result["action"]["action"] == "suspend" and result["action"]["reason"] == "spam"
    for ws in sockets:
        msg = await ws.receive(timeout=5)
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4003
    assert (await error(await app_client.get("/api/me", headers=ben.auth), 401))["code"]
    login = {"handle": "ben", "password": PASSWORD}
    resp = await app_client.post("/api/login", json=login)
    assert (await error(resp, 403))["code"] == "suspended"
    refused = await app_client.get("/ws", headers=ben.auth)
    assert refused.status == 401
    resp = await app_client.post("/api/mod/users/ben/suspend", headers=mia.auth)
    assert (await error(resp, 409))["code"] == "already_suspended"
    # The bystander's socket is untouched.
    await bystander.send_json({"op": "ping", "id": 9})
    assert (await receive_until(bystander, lambda f: f["op"] == "pong"))[-1]["id"] == 9

    resp = await app_client.post("/api/mod/users/ben/unsuspend", json={"reason": "appeal"},
                                 headers=mia.auth)  # fmt: skip
    assert resp.status == 200
    assert (await resp.json())["user"]["suspended"] is False
    assert (await app_client.post("/api/login", json=login)).status == 200
    resp = await app_client.post("/api/mod/users/ben/unsuspend", headers=mia.auth)
    assert (await error(resp, 409))["code"] == "not_suspended"
    log = await (await app_client.get("/api/mod/audit", headers=mia.auth)).json()
    assert [(a["action"], a["reason"]) for a in log["items"]] == [
        ("unsuspend", "appeal"),
        ("suspend", "spam"),
    ]
    await bystander.close()


async def test_who_may_suspend_whom(app_client: Any, rdb: Any) -> None:
    mia = await moderator(app_client, rdb, "mia")
    max_ = await moderator(app_client, rdb, "max")
    admin = await signup(app_client, rdb, "root", admin=True)
    for target in ("mia", "max", "root", "mia_admin"):
        resp = await app_client.post(f"/api/mod/users/{target}/suspend", headers=mia.auth)
        assert (await error(resp, 403))["code"] == "forbidden", target
    resp = await app_client.post("/api/mod/users/nobody_here/suspend", headers=mia.auth)
    assert (await error(resp, 404))["code"] == "user_not_found"
    resp = await app_client.post("/api/mod/users/max/suspend", json={"reason": ["x"]},
                                 headers=admin.auth)  # fmt: skip
    assert (await error(resp, 400))["field"] == "reason"
    resp = await app_client.post("/api/mod/users/max/suspend", headers=admin.auth)
    assert resp.status == 200
    assert (await error(await app_client.get("/api/me", headers=max_.auth), 401))["code"]


async def test_resolving_reports(app_client: Any, rdb: Any) -> None:
    mia = await moderator(app_client, rdb)
    await signup(app_client, rdb, "aki")
    ben = await signup(app_client, rdb, "ben")
    ids = []
    for reporter, reason in ((ben, "one"), (await signup(app_client, rdb, "cho"), "two"),
                             (await signup(app_client, rdb, "dan"), "three")):  # fmt: skip
        resp = await app_client.post("/api/reports", json={"user": "aki", "reason": reason},
                                     headers=reporter.auth)  # fmt: skip
        ids.append((await resp.json())["id"])
    stream = await subscribe(app_client, mia, "mod")
    resp = await app_client.post(f"/api/mod/reports/{ids[0]}/resolve", headers=ben.auth)
    assert (await error(resp, 403))["code"] == "forbidden"
    resp = await app_client.post(f"/api/mod/reports/{ids[0]}/resolve",
                                 json={"reason": "warned"}, headers=mia.auth)  # fmt: skip
    assert resp.status == 200, await resp.text()
    resolved = await resp.json()
    assert resolved["status"] == "resolved" and resolved["resolution"] == "warned"
    assert resolved["resolved_by"]["handle"] == "mia" and resolved["resolved_at"].endswith("Z")
    action = (await next_event(stream, "mod.action"))["data"]
    assert action["action"] == "resolve_report" and action["report"] == ids[0]
    resp = await app_client.post(f"/api/mod/reports/{ids[0]}/resolve", headers=mia.auth)
    assert (await error(resp, 409))["code"] == "already_resolved"
    for bad in ("0" * 20, "nope"):
        resp = await app_client.post(f"/api/mod/reports/{bad}/resolve", headers=mia.auth)
        assert (await error(resp, 404))["code"] == "report_not_found"

    async def listed(query: str) -> list[str]:
        resp = await app_client.get(f"/api/mod/reports{query}", headers=mia.auth)
        assert resp.status == 200, await resp.text()
        return [r["id"] for r in (await resp.json())["items"]]

    assert await listed("") == [ids[2], ids[1]]
    assert await listed("?status=resolved") == [ids[0]]
    assert await listed("?status=all") == ids[::-1]
    first = await (await app_client.get("/api/mod/reports?status=all&limit=2",
                                        headers=mia.auth)).json()  # fmt: skip
    assert [r["id"] for r in first["items"]] == [ids[2], ids[1]] and first["next"] == ids[1]
    assert await listed(f"?status=all&before={first['next']}") == [ids[0]]
    resp = await app_client.get("/api/mod/reports?status=bogus", headers=mia.auth)
    assert (await error(resp, 400))["field"] == "status"
    resp = await app_client.get("/api/mod/reports?before=zzz", headers=mia.auth)
    assert (await error(resp, 400))["code"] == "invalid_cursor"
    await stream.close()


async def test_the_mod_stream_filters_by_member_keyword_and_community(
    app_client: Any, rdb: Any
) -> None:
    mia = await moderator(app_client, rdb)
    aki = await signup(app_client, rdb, "aki")
    ben = await signup(app_client, rdb, "ben")
    resp = await app_client.post("/api/communities", headers=aki.auth, json={
        "name": "Tea", "description": "", "join_policy": "open"})  # fmt: skip
    community = (await resp.json())["id"]
    by_aki = await subscribe(app_client, mia, "mod", filter={"member": "AKI"})
    sales = await subscribe(app_client, mia, "mod", filter={"keyword": "Sale"})
    tea = await subscribe(app_client, mia, "mod", filter={"community": community})
    both = await subscribe(app_client, mia, "mod", filter={"member": "ben", "keyword": "sale"})

    await post(app_client, ben, "nothing to see")
    await post(app_client, ben, "big SALE today")
    await post(app_client, aki, "tea time", community=community)
    resp = await app_client.post("/api/reports", json={"user": "ben", "reason": "sale spam"},
                                 headers=aki.auth)  # fmt: skip
    assert resp.status == 201

    async def seen(ws: Any, count: int) -> list[str]:
        """The first `count` events: what the filter let through, in order."""
        got: list[str] = []
        while len(got) < count:
            data = (await next_event_of_any_type(ws))["data"]
            got.append(data.get("text") or data.get("reason"))
        return got

    assert await seen(by_aki, 2) == ["tea time", "sale spam"]
    assert await seen(sales, 2) == ["big SALE today", "sale spam"]
    assert await seen(tea, 1) == ["tea time"]
    assert await seen(both, 2) == ["big SALE today", "sale spam"]
    for ws in (by_aki, sales, tea, both):
        await ws.close()


@pytest.mark.parametrize(
    "flt",
    [
        ["aki"],
        {"member": "x!"},
        {"keyword": ""},
        {"keyword": "k" * 101},
        {"colour": "red"},
        {"community": 5},
        {"keyword": 3},
    ],  # fmt: skip
)
async def test_bad_mod_filters_and_members_are_refused(app_client: Any, rdb: Any, flt: Any) -> None:
    mia = await moderator(app_client, rdb)
    ben = await signup(app_client, rdb, "ben")
    ws = await app_client.ws_connect("/ws", headers=mia.auth)
    await ws.send_json({"op": "sub", "id": 1, "topic": "mod", "filter": flt})
    frame = (await receive_until(ws, lambda f: f["op"] in ("ack", "error")))[-1]
    assert frame["op"] == "error" and frame["code"] == "bad_filter" and frame["id"] == 1
    await ws.send_json({"op": "ping", "id": 2})  # the socket stays usable
    assert (await receive_until(ws, lambda f: f["op"] == "pong"))[-1]["id"] == 2
    await ws.close()
    ws = await app_client.ws_connect("/ws", headers=ben.auth)
    await ws.send_json({"op": "sub", "id": 3, "topic": "mod"})
    frame = (await receive_until(ws, lambda f: f["op"] in ("ack", "error")))[-1]
    assert frame["op"] == "error" and frame["code"] == "forbidden"
    await ws.close()


async def test_two_moderators_removing_one_post_count_once(app_client: Any, rdb: Any) -> None:
    mia = await moderator(app_client, rdb, "mia")
    max_ = await moderator(app_client, rdb, "max")
    aki = await signup(app_client, rdb, "aki")
    created = await post(app_client, aki, "contested")
    url = f"/api/mod/echoes/{created['id']}/remove"
    answers = await asyncio.gather(app_client.post(url, headers=mia.auth),
                                   app_client.post(url, headers=max_.auth))  # fmt: skip
    assert sorted(r.status for r in answers) == [200, 404]
    log = await (await app_client.get("/api/mod/audit", headers=mia.auth)).json()
    assert [a["action"] for a in log["items"]] == ["remove_echo"]


async def test_a_filtered_mod_stream_hears_of_every_deletion(app_client: Any, rdb: Any) -> None:
    mia = await moderator(app_client, rdb)
    aki = await signup(app_client, rdb, "aki")
    stream = await subscribe(app_client, mia, "mod", filter={"member": "aki"})
    created = await post(app_client, aki, "soon gone")
    assert (await next_event(stream, "post.created"))["data"]["id"] == created["id"]
    resp = await app_client.delete(f"/api/echoes/{created['id']}", headers=aki.auth)
    assert resp.status == 200
    assert (await next_event(stream, "post.deleted"))["data"]["id"] == created["id"]
    await stream.close()


async def test_a_demoted_moderator_loses_the_mod_stream_at_once(app_client: Any, rdb: Any) -> None:
    mia = await moderator(app_client, rdb)
    admin = await signup(app_client, rdb, "root", admin=True)
    ben = await signup(app_client, rdb, "ben")
    await signup(app_client, rdb, "aki")
    stream = await subscribe(app_client, mia, "mod")
    await stream.send_json({"op": "sub", "id": 2, "topic": "public"})
    await receive_until(stream, lambda f: f["op"] == "ack")
    resp = await app_client.put("/api/admin/users/mia/role", json={"role": "member"},
                                headers=admin.auth)  # fmt: skip
    assert resp.status == 200
    frame = (await receive_until(stream, lambda f: f["op"] == "error"))[-1]
    assert frame["code"] == "forbidden" and frame["topic"] == "mod"
    resp = await app_client.post("/api/reports", json={"user": "aki", "reason": "secret"},
                                 headers=ben.auth)  # fmt: skip
    assert resp.status == 201
    marker = await post(app_client, ben, "marker")  # public: the socket's other topic
    frames = await receive_until(stream, lambda f: f.get("data", {}).get("id") == marker["id"])
    assert [f["topic"] for f in frames if f["op"] == "event"] == ["public"]
    await stream.close()


async def test_a_suspension_that_failed_half_way_completes_on_retry(
    app_client: Any, rdb: Any
) -> None:
    mia = await moderator(app_client, rdb)
    ben = await signup(app_client, rdb, "ben")
    ws = await subscribe(app_client, ben, "public")
    # As if a suspension set the flag and the engine went away before the rest.
    await rdb.hset(f"eh:user:{ben.user['id']}", "suspended", "1")
    resp = await app_client.post("/api/mod/users/ben/suspend", headers=mia.auth)
    assert (await error(resp, 409))["code"] == "already_suspended"
    msg = await ws.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4003
    assert await rdb.scard(f"eh:sessions:{ben.user['id']}") == 0


async def test_members_get_403_from_moderator_endpoints_whatever_they_send(
    app_client: Any, rdb: Any
) -> None:
    ben = await signup(app_client, rdb, "ben")
    for path in ("/api/mod/reports/0/resolve", "/api/mod/echoes/0/remove",
                 "/api/mod/users/ben/suspend", "/api/mod/users/ben/unsuspend"):  # fmt: skip
        resp = await app_client.post(path, data=b"{not json", headers={**ben.auth, **JSON_TYPE})
        assert (await error(resp, 403))["code"] == "forbidden", path


async def test_a_demoted_moderator_cannot_resubscribe_on_a_socket_opened_before(
    app_client: Any, rdb: Any
) -> None:
    mia = await moderator(app_client, rdb)
    admin = await signup(app_client, rdb, "root", admin=True)
    ws = await subscribe(app_client, mia, "public")  # opened while a moderator
    resp = await app_client.put("/api/admin/users/mia/role", json={"role": "member"},
                                headers=admin.auth)  # fmt: skip
    assert resp.status == 200
    await ws.send_json({"op": "sub", "id": 7, "topic": "mod"})
    frame = (await receive_until(ws, lambda f: f["op"] in ("ack", "error")))[-1]
    assert frame["op"] == "error" and frame["code"] == "forbidden" and frame["id"] == 7
    await ws.close()


async def test_a_socket_upgrading_while_its_member_is_suspended_is_closed_4003(
    app_client: Any, rdb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The suspension's broadcast lands after the upgrade authenticated the member and
    before the socket is registered, so the broadcast itself cannot reach it."""
    from server.services.container import SERVICES

    ben = await signup(app_client, rdb, "ben")
    svc = app_client.server.app[SERVICES]
    authenticate = svc.accounts.authenticate

    async def suspended_meanwhile(token: str | None) -> Any:
        user = await authenticate(token)
        svc.on_control({"close_user": user.id, "code": 4003, "reason": "suspended"})
        return user

    monkeypatch.setattr(svc.accounts, "authenticate", suspended_meanwhile)
    ws = await app_client.ws_connect("/ws", headers=ben.auth)
    msg = await ws.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4003
    await ws.close()


async def test_a_moderator_deleting_someone_elses_post_is_audited_an_author_is_not(
    app_client: Any, rdb: Any
) -> None:
    mia = await moderator(app_client, rdb)
    aki = await signup(app_client, rdb, "aki")
    theirs = await post(app_client, aki, "theirs")
    own = await post(app_client, mia, "own")
    mine = await post(app_client, aki, "mine")
    resp = await app_client.delete(f"/api/echoes/{theirs['id']}", headers=mia.auth)
    assert resp.status == 200
    assert (await resp.json())["action"]["action"] == "remove_echo"
    for who, created in ((mia, own), (aki, mine)):
        resp = await app_client.delete(f"/api/echoes/{created['id']}", headers=who.auth)
        assert resp.status == 200 and "action" not in await resp.json()
    log = await (await app_client.get("/api/mod/audit", headers=mia.auth)).json()
    assert [(a["action"], a["echo"]["id"]) for a in log["items"]] == [("remove_echo", theirs["id"])]


async def test_a_removal_and_its_audit_entry_are_written_in_one_step(
    app_client: Any, rdb: Any
) -> None:
    from server.services.container import FEATURES
    from server.store.moderation import AUDIT, audit_key

    echoes = app_client.server.app[FEATURES].echoes
    aki = await signup(app_client, rdb, "aki")
    created = await post(app_client, aki, "going")
    first: dict[str, Any] = {"id": "0" * 19 + "1", "n": 1}
    second: dict[str, Any] = {"id": "0" * 19 + "2", "n": 2}
    assert await echoes.store.delete(created["id"], first)
    assert await rdb.zrange(AUDIT, 0, -1) == [first["id"]]
    assert json.loads(await rdb.get(audit_key(first["id"]))) == first
    # The post was already gone: nothing removed, nothing logged.
    assert not await echoes.store.delete(created["id"], second)
    assert await rdb.zrange(AUDIT, 0, -1) == [first["id"]]
    assert await rdb.exists(audit_key(second["id"])) == 0


async def test_a_demotion_landing_while_a_mod_sub_is_resolved_still_ends_it(
    app_client: Any, rdb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The revocation is broadcast after the role was read for the `sub` and before the
    subscription exists, so the broadcast itself finds nothing to end."""
    from server.services.container import SERVICES

    mia = await moderator(app_client, rdb)
    svc = app_client.server.app[SERVICES]
    read_user = svc.accounts.store.user

    async def demoted_meanwhile(user_id: str) -> Any:
        record = await read_user(user_id)
        svc.on_control({"revoke": user_id, "topic": "mod", "why": "no longer a moderator"})
        return record

    monkeypatch.setattr(svc.accounts.store, "user", demoted_meanwhile)
    ws = await app_client.ws_connect("/ws", headers=mia.auth)
    await ws.send_json({"op": "sub", "id": 1, "topic": "mod"})
    frame = (await receive_until(ws, lambda f: f["op"] == "error"))[-1]
    assert frame["code"] == "forbidden" and frame["topic"] == "mod"
    conn = next(iter(svc.hub.connections_of(mia.user["id"])))
    assert "mod" not in conn.subs
    await ws.close()


async def test_one_open_report_per_reporter_and_thing(app_client: Any, rdb: Any) -> None:
    mia = await moderator(app_client, rdb)
    aki = await signup(app_client, rdb, "aki")
    ben = await signup(app_client, rdb, "ben")
    cho = await signup(app_client, rdb, "cho")
    created = await post(app_client, aki, "reported twice")

    async def report(who: Member, body: dict[str, str]) -> Any:
        return await app_client.post("/api/reports", json={**body, "reason": "again"},
                                     headers=who.auth)  # fmt: skip

    first = await (await report(ben, {"echo": created["id"]})).json()
    err = await error(await report(ben, {"echo": created["id"]}), 409)
    assert err["code"] == "already_reported" and err["field"] == "echo"
    assert (await report(ben, {"user": "aki"})).status == 201  # the member is another thing
    assert (await error(await report(ben, {"user": "aki"}), 409))["field"] == "user"
    assert (await report(cho, {"echo": created["id"]})).status == 201  # another reporter
    listed = await (await app_client.get("/api/mod/reports", headers=mia.auth)).json()
    assert len(listed["items"]) == 3
    resp = await app_client.post(f"/api/mod/reports/{first['id']}/resolve", headers=mia.auth)
    assert resp.status == 200
    assert (await report(ben, {"echo": created["id"]})).status == 201  # resolved: anew


async def test_two_moderators_resolving_one_report_log_it_once(app_client: Any, rdb: Any) -> None:
    mia = await moderator(app_client, rdb, "mia")
    max_ = await moderator(app_client, rdb, "max")
    await signup(app_client, rdb, "aki")
    ben = await signup(app_client, rdb, "ben")
    resp = await app_client.post("/api/reports", json={"user": "aki", "reason": "x"},
                                 headers=ben.auth)  # fmt: skip
    url = f"/api/mod/reports/{(await resp.json())['id']}/resolve"
    answers = await asyncio.gather(app_client.post(url, headers=mia.auth),
                                   app_client.post(url, headers=max_.auth))  # fmt: skip
    assert sorted(r.status for r in answers) == [200, 409]
    log = await (await app_client.get("/api/mod/audit", headers=mia.auth)).json()
    assert [a["action"] for a in log["items"]] == ["resolve_report"]


async def test_moderator_endpoints_refuse_bad_bodies_and_queries(app_client: Any, rdb: Any) -> None:
    mia = await moderator(app_client, rdb)
    aki = await signup(app_client, rdb, "aki")
    created = await post(app_client, aki, "stays")
    paths = (f"/api/mod/echoes/{created['id']}/remove", "/api/mod/users/aki/suspend",
             "/api/mod/users/aki/unsuspend", f"/api/mod/reports/{'0' * 20}/resolve")  # fmt: skip
    for path in paths:
        resp = await app_client.post(path, json=[1], headers=mia.auth)
        assert (await error(resp, 400))["code"] == "invalid_body", path
        resp = await app_client.post(path, data=b"{not json", headers={**mia.auth, **JSON_TYPE})
        assert (await error(resp, 400))["code"] == "invalid_json", path
        resp = await app_client.post(path, json={"reason": "x" * 501}, headers=mia.auth)
        assert (await error(resp, 400))["field"] == "reason", path
    # Nothing was done: the post is there, aki is not suspended, nothing was logged.
    assert (await app_client.get(f"/api/echoes/{created['id']}", headers=aki.auth)).status == 200
    assert (await app_client.get("/api/me", headers=aki.auth)).status == 200
    for query, code in (("?before=zzz", "invalid_cursor"), ("?limit=0", "invalid_limit"),
                        ("?limit=abc", "invalid_limit")):  # fmt: skip
        resp = await app_client.get(f"/api/mod/audit{query}", headers=mia.auth)
        assert (await error(resp, 400))["code"] == code, query
    log = await (await app_client.get("/api/mod/audit", headers=mia.auth)).json()
    assert log["items"] == []
