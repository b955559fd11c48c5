"""Profiles over real HTTP and sockets: editing oneself, the password, invites that
befriend, and who may do what."""

from __future__ import annotations

from typing import Any

import aiohttp
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

NEW_PASSWORD = "a brand new secret"


async def me(http: Any, who: Member) -> dict[str, Any]:
    return await call(http, "get", "/api/me", who, 200)


async def test_a_member_edits_name_and_bio_seen_everywhere(app_client: Any, rdb: Any) -> None:
    aki = await signup(app_client, rdb, "aki")
    ben = await signup(app_client, rdb, "ben")
    await call(app_client, "post", "/api/users/aki/follow", ben, 200)
    followers_home = await subscribe(app_client, ben, "home")
    profile_page = await subscribe(app_client, ben, "user:aki")
    own_socket = await subscribe(app_client, aki, "me")

    body = {
        "display_name": "山田アキ",
        "bio": "Tokyo. Friends with @ben and @nobody: https://aki.example/x.",
    }
    updated = await call(app_client, "patch", "/api/me", aki, 200, body)
    assert updated["display_name"] == "山田アキ" and updated["bio"] == body["bio"]
    assert updated["bio_segments"] == [
        {"text": "Tokyo. Friends with "},
        {"mention": "ben", "text": "@ben"},
        {"text": " and @nobody: "},
        {"link": "https://aki.example/x", "text": "https://aki.example/x"},
        {"text": "."},
    ]
    assert (await me(app_client, aki))["bio_segments"] == updated["bio_segments"]
    profile = await call(app_client, "get", "/api/users/aki", ben, 200)
    assert profile["display_name"] == "山田アキ" and profile["bio"] == body["bio"]
    assert profile["bio_segments"] == updated["bio_segments"] and "role" not in profile

    # Open pages learn of it live: the profile page and the follower's home.
    for ws in (followers_home, profile_page):
        event = (await receive_until(ws, lambda f: f["op"] == "event"))[-1]
        assert event["type"] == "profile.updated"
        assert event["data"]["handle"] == "aki" and event["data"]["display_name"] == "山田アキ"
    # The next posts carry the new name, over HTTP and over a socket opened before.
    post = await call(app_client, "post", "/api/echoes", aki, 201, {"text": "renamed"})
    assert post["author"]["display_name"] == "山田アキ"
    await own_socket.send_json({"op": "post", "id": 7, "text": "from the old socket"})
    ack = (await receive_until(own_socket, lambda f: f.get("id") == 7))[-1]
    assert ack["post"]["author"]["display_name"] == "山田アキ", ack

    # Clearing the bio.
    cleared = await call(app_client, "patch", "/api/me", aki, 200, {"bio": ""})
    assert cleared["bio"] == "" and cleared["bio_segments"] == []
    assert cleared["display_name"] == "山田アキ"
    for ws in (followers_home, profile_page, own_socket):
        await ws.close()


async def test_a_blocked_member_is_not_told_of_a_profile_change(app_client: Any, rdb: Any) -> None:
    aki = await signup(app_client, rdb, "aki")
    ben = await signup(app_client, rdb, "ben")
    cho = await signup(app_client, rdb, "cho")
    await call(app_client, "post", "/api/users/aki/follow", ben, 200)
    await call(app_client, "post", "/api/users/aki/follow", cho, 200)
    ben_home = await subscribe(app_client, ben, "home")
    cho_home = await subscribe(app_client, cho, "home")
    await call(app_client, "post", "/api/users/ben/block", aki, 200)
    await call(app_client, "patch", "/api/me", aki, 200, {"display_name": "Secret Aki"})
    await call(app_client, "post", "/api/echoes", cho, 201, {"text": "marker"})
    frames = await receive_until(cho_home, lambda f: f.get("type") == "post.created")
    assert any(f.get("type") == "profile.updated" for f in frames)
    await call(app_client, "post", "/api/echoes", ben, 201, {"text": "marker"})
    frames = await receive_until(ben_home, lambda f: f.get("type") == "post.created")
    assert not any(f.get("type") == "profile.updated" for f in frames)
    for ws in (ben_home, cho_home):
        await ws.close()


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"bio": "x" * 161}, "invalid_bio", "bio"),
        ({"bio": "line one\nline two"}, "invalid_bio", "bio"),
        ({"bio": "bell\x07"}, "invalid_bio", "bio"),
        ({"display_name": ""}, "invalid_display_name", "display_name"),
        ({"display_name": "x" * 51}, "invalid_display_name", "display_name"),
        ({"display_name": "tab\there"}, "invalid_display_name", "display_name"),
        ({"display_name": "Fine", "bio": "x" * 161}, "invalid_bio", "bio"),
        ({"handle": "other"}, "unknown_field", "handle"),
        ({"avatar": "not an id"}, "invalid_avatar", "avatar"),
        ({}, "nothing_to_change", None),
        (["bio"], "invalid_body", None),
    ],
)
async def test_bad_profile_edits_change_nothing(
    app_client: Any, rdb: Any, body: Any, code: str, field: str | None
) -> None:
    aki = await signup(app_client, rdb, "aki")
    await call(app_client, "patch", "/api/me", aki, 200, {"bio": "before"})
    before = await me(app_client, aki)
    assert await error_of(app_client, "patch", "/api/me", aki, 400, body) == (code, field)
    assert await me(app_client, aki) == before


async def test_a_password_change_needs_the_old_one_and_ends_other_sessions(
    app_client: Any, rdb: Any
) -> None:
    aki = await signup(app_client, rdb, "aki")
    login = await app_client.post("/api/login", json={"handle": "aki", "password": PASSWORD})
    other = Member("aki", (await login.json())["token"], aki.user)
    other_socket = await subscribe(app_client, other, "me")
    this_socket = await subscribe(app_client, aki, "me")

    wrong = {"old": "not my password", "new": NEW_PASSWORD}
    assert await error_of(app_client, "put", "/api/me/password", aki, 400, wrong) == (
        "wrong_password", "old")  # fmt: skip
    assert (await app_client.get("/api/me", headers=other.auth)).status == 200
    short = {"old": PASSWORD, "new": "short"}
    assert await error_of(app_client, "put", "/api/me/password", aki, 400, short) == (
        "invalid_password", "new")  # fmt: skip

    body = {"old": PASSWORD, "new": NEW_PASSWORD}
    result = await call(app_client, "put", "/api/me/password", aki, 200, body)
    assert result["sessions_ended"] == 1
    msg = await other_socket.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4001
    assert (await app_client.get("/api/me", headers=other.auth)).status == 401
    await this_socket.send_json({"op": "ping", "id": 3})
    assert (await receive_until(this_socket, lambda f: f["op"] == "pong"))[-1]["id"] == 3
    assert (await app_client.get("/api/me", headers=aki.auth)).status == 200
    old_login = await app_client.post("/api/login", json={"handle": "aki", "password": PASSWORD})
    assert old_login.status == 401
    new_login = await app_client.post("/api/login",
                                      json={"handle": "aki", "password": NEW_PASSWORD})  # fmt: skip
    assert new_login.status == 200
    await this_socket.close()


async def test_wrong_old_passwords_are_rate_limited(
    aiohttp_client: Any, engine_url: str, rdb: Any, settings: Any
) -> None:
    from server.app import create_app
    from server.settings import parse_rate_limits

    limited = settings.with_(rate_limits=parse_rate_limits("passwords=2/900:2"))
    client = await aiohttp_client(create_app(limited, engine_url))
    aki = await signup(client, rdb, "aki")
    wrong = {"old": "guess number one", "new": NEW_PASSWORD}
    for _ in range(2):
        assert (await error_of(client, "put", "/api/me/password", aki, 400, wrong))[0] == (
            "wrong_password")  # fmt: skip
    resp = await client.put("/api/me/password", json={"old": PASSWORD, "new": NEW_PASSWORD},
                            headers=aki.auth)  # fmt: skip
    assert resp.status == 429 and (await resp.json())["error"]["code"] == "rate_limited"
    assert int(resp.headers["Retry-After"]) > 0
    still = await client.post("/api/login", json={"handle": "aki", "password": PASSWORD})
    assert still.status == 200  # nothing changed


async def test_a_password_change_on_a_closes_the_other_sessions_sockets_on_b(
    two_servers: tuple[Server, Server], rdb: Any
) -> None:
    a, b = two_servers
    aki = await signup(a, rdb, "aki")
    resp = await b.post("/api/login", json={"handle": "aki", "password": PASSWORD})
    other = Member("aki", (await resp.json())["token"], aki.user)
    others = [await subscribe(b, other, "me"), await subscribe(a, other, "public")]
    mine = await subscribe(b, aki, "me")
    resp = await a.put("/api/me/password", json={"old": PASSWORD, "new": NEW_PASSWORD},
                       headers=aki.auth)  # fmt: skip
    assert resp.status == 200, await resp.text()
    for ws in others:
        msg = await ws.receive(timeout=5)
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 4001
        await ws.close()
    await mine.send_json({"op": "ping", "id": 5})
    assert (await receive_until(mine, lambda f: f["op"] == "pong"))[-1]["id"] == 5
    await mine.close()
    assert (await b.get("/api/me", headers=other.auth)).status == 401
    assert (await b.get("/api/me", headers=aki.auth)).status == 200


async def test_signing_up_through_a_members_invite_makes_friends(app_client: Any, rdb: Any) -> None:
    aki = await signup(app_client, rdb, "aki")
    notices = await subscribe(app_client, aki, "me")
    invite = await call(app_client, "post", "/api/invites", aki, 201, {"uses": 2})
    assert invite["befriend"] is True and invite["uses_left"] == 2
    ben = await signup(app_client, rdb, "ben", invite=invite["code"])
    follow = (await receive_until(notices, lambda f: f.get("type") == "follow"))[-1]
    assert follow["data"]["by"]["handle"] == "ben"
    profile = await call(app_client, "get", "/api/users/aki", ben, 200)
    assert profile["relationship"]["friends"] is True
    friends = await call(app_client, "get", "/api/feed/friends", ben, 200)
    assert friends["items"] == []  # friends, but aki has not posted yet
    await call(app_client, "post", "/api/echoes", aki, 201, {"text": "welcome ben"})
    friends = await call(app_client, "get", "/api/feed/friends", ben, 200)
    assert [p["text"] for p in friends["items"]] == ["welcome ben"]

    listed = await call(app_client, "get", "/api/invites", aki, 200)
    assert [(i["code"], i["uses_left"], i["uses"]) for i in listed["items"]] == [
        (invite["code"], 1, 2)]  # fmt: skip
    await notices.close()


async def test_befriend_false_and_admin_invites_befriend_nobody(app_client: Any, rdb: Any) -> None:
    aki = await signup(app_client, rdb, "aki", admin=True)  # an admin invite from the CLI
    assert (await call(app_client, "get", "/api/users/aki", aki, 200))["following"] == 0
    quiet = await call(app_client, "post", "/api/invites", aki, 201, {"befriend": False})
    assert quiet["befriend"] is False
    ben = await signup(app_client, rdb, "ben", invite=quiet["code"])
    profile = await call(app_client, "get", "/api/users/aki", ben, 200)
    assert profile["relationship"] == {
        "following": False,
        "followed_by": False,
        "friends": False,
        "blocking": False,
        "muting": False,
    }
    assert await error_of(app_client, "post", "/api/invites", aki, 400, {"befriend": "yes"}) == (
        "invalid_befriend", "befriend")  # fmt: skip


async def test_invites_are_listed_and_revoked_by_their_maker_only(
    app_client: Any, rdb: Any
) -> None:
    aki = await signup(app_client, rdb, "aki")
    ben = await signup(app_client, rdb, "ben")
    first = await call(app_client, "post", "/api/invites", aki, 201, {"uses": 3})
    second = await call(app_client, "post", "/api/invites", aki, 201, {"expires_in_days": 2})
    listed = (await call(app_client, "get", "/api/invites", aki, 200))["items"]
    assert [i["code"] for i in listed] == [second["code"], first["code"]]
    assert listed[1]["url"].endswith(f"/join/{first['code']}") and listed[1]["expired"] is False
    assert (await call(app_client, "get", "/api/invites", ben, 200))["items"] == []

    assert await error_of(app_client, "delete", f"/api/invites/{first['code']}", ben, 404) == (
        "invite_not_found", None)  # fmt: skip
    assert await error_of(app_client, "delete", "/api/invites/nonsense", aki, 404) == (
        "invite_not_found", None)  # fmt: skip
    revoked = await call(app_client, "delete", f"/api/invites/{first['code']}", aki, 200)
    assert revoked == {"code": first["code"], "revoked": True}
    listed = (await call(app_client, "get", "/api/invites", aki, 200))["items"]
    assert [i["code"] for i in listed] == [second["code"]]
    resp = await app_client.post("/api/signup", json={
        "invite": first["code"], "handle": "cho", "password": PASSWORD, "display_name": "Cho",
        "birthdate": "1990-01-01"})  # fmt: skip
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invite_invalid"


ENDPOINTS = [
    ("patch", "/api/me", {"bio": "hi"}),
    ("put", "/api/me/password", {"old": PASSWORD, "new": NEW_PASSWORD}),
    ("get", "/api/invites", None),
    ("delete", "/api/invites/abc", None),
    ("get", "/api/search?q=aki", None),
    ("get", "/api/suggestions", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
async def test_no_session_and_suspended_members_are_refused(
    app_client: Any, rdb: Any, method: str, path: str, body: Any
) -> None:
    resp = await getattr(app_client, method)(path, json=body)
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "unauthenticated"
    root = await signup(app_client, rdb, "root", admin=True)
    ben = await signup(app_client, rdb, "ben")
    await call(app_client, "post", "/api/mod/users/ben/suspend", root, 200, {"reason": "spam"})
    resp = await getattr(app_client, method)(path, json=body, headers=ben.auth)
    assert resp.status == 401
    assert await rdb.hget(f"eh:user:{ben.user['id']}", "bio") is None
