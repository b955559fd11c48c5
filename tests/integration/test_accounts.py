"""Accounts over real HTTP on a real engine: invites, sign-up, sessions, roles."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import pytest

from tests.support import PASSWORD, make_invite, signup


def body(invite_code: str, **over: Any) -> dict[str, Any]:
    base = {"invite": invite_code, "handle": "aki_01", "password": PASSWORD,
            "display_name": "Aki", "birthdate": "1990-05-01"}  # fmt: skip
    base.update(over)
    return base


def assert_error(data: dict[str, Any], code: str, field: str | None = None) -> None:
    assert set(data) == {"error"}
    assert data["error"]["code"] == code
    assert isinstance(data["error"]["message"], str) and data["error"]["message"]
    if field is not None:
        assert data["error"]["field"] == field


async def test_signup_login_me_logout(app_client: Any, rdb: Any) -> None:
    code = await make_invite(rdb, uses=2)
    resp = await app_client.post("/api/signup", json=body(code, handle="Aki_01"))
    assert resp.status == 201
    data = await resp.json()
    assert data["user"]["handle"] == "aki_01"
    assert data["user"]["role"] == "member"
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    token = data["token"]
    me = await app_client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status == 200
    assert (await me.json())["handle"] == "aki_01"
    # The password is never stored in the clear.
    stored = await rdb.hgetall(f"eh:user:{data['user']['id']}")
    assert PASSWORD not in str(stored) and stored["pw"].startswith("scrypt$")

    login = await app_client.post("/api/login", json={"handle": "AKI_01", "password": PASSWORD})
    assert login.status == 200
    second = (await login.json())["token"]
    assert second != token
    out = await app_client.post("/api/logout", headers={"Authorization": f"Bearer {token}"})
    assert out.status == 200
    gone = await app_client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert gone.status == 401
    still = await app_client.get("/api/me", headers={"Authorization": f"Bearer {second}"})
    assert still.status == 200


async def test_cookie_session_works(app_client: Any, rdb: Any) -> None:
    code = await make_invite(rdb)
    resp = await app_client.post("/api/signup", json=body(code))
    assert resp.status == 201
    me = await app_client.get("/api/me")  # the client's cookie jar carries the session
    assert me.status == 200


@pytest.mark.parametrize(
    ("over", "status", "code", "field"),
    [
        ({"birthdate": (dt.date.today() - dt.timedelta(days=365 * 17)).isoformat()},
         400, "underage", "birthdate"),
        ({"birthdate": "1990-13-01"}, 400, "invalid_birthdate", "birthdate"),
        ({"birthdate": None}, 400, "invalid_birthdate", "birthdate"),
        ({"handle": "ab"}, 400, "invalid_handle", "handle"),
        ({"handle": "a" * 21}, 400, "invalid_handle", "handle"),
        ({"handle": "bad-handle"}, 400, "invalid_handle", "handle"),
        ({"handle": "ｆｕｌｌ"}, 400, "invalid_handle", "handle"),
        ({"handle": 12345}, 400, "invalid_handle", "handle"),
        ({"password": "short"}, 400, "invalid_password", "password"),
        ({"password": None}, 400, "invalid_password", "password"),
        ({"invite": "bogus-code"}, 400, "invite_invalid", "invite"),
        ({"invite": ""}, 400, "invalid_invite", "invite"),
        ({"display_name": "a\nb"}, 400, "invalid_display_name", "display_name"),
    ],
)  # fmt: skip
async def test_signup_rejects(
    app_client: Any, rdb: Any, over: dict[str, Any], status: int, code: str, field: str
) -> None:
    invite = await make_invite(rdb)
    resp = await app_client.post("/api/signup", json=body(invite, **over))
    assert resp.status == status
    assert_error(await resp.json(), code, field)
    assert await rdb.scard("eh:users") == 0
    assert await rdb.hget(f"eh:invite:{invite}", "uses_left") == "100"


async def test_used_up_and_expired_invites(app_client: Any, rdb: Any) -> None:
    code = await make_invite(rdb, uses=1)
    assert (await app_client.post("/api/signup", json=body(code))).status == 201
    resp = await app_client.post("/api/signup", json=body(code, handle="other"))
    assert resp.status == 400
    assert_error(await resp.json(), "invite_used_up", "invite")
    expired = await make_invite(rdb)
    await rdb.hset(f"eh:invite:{expired}", "expires_at", "1000")
    resp = await app_client.post("/api/signup", json=body(expired, handle="third"))
    assert resp.status == 400
    assert_error(await resp.json(), "invite_expired", "invite")


async def test_duplicate_handle_is_case_insensitive(app_client: Any, rdb: Any) -> None:
    code = await make_invite(rdb)
    assert (await app_client.post("/api/signup", json=body(code, handle="mika"))).status == 201
    resp = await app_client.post("/api/signup", json=body(code, handle="MIKA"))
    assert resp.status == 409
    assert_error(await resp.json(), "handle_taken", "handle")
    assert await rdb.hget(f"eh:invite:{code}", "uses_left") == "99"


@pytest.mark.parametrize(
    ("raw", "status", "code"),
    [(b"{nope", 400, "invalid_json"), (b"[1,2]", 400, "invalid_body"),
     (b"x" * (65 * 1024), 413, "payload_too_large")],
)  # fmt: skip
async def test_bad_bodies(app_client: Any, rdb: Any, raw: bytes, status: int, code: str) -> None:
    resp = await app_client.post(
        "/api/signup", data=raw, headers={"Content-Type": "application/json"}
    )
    assert resp.status == status
    assert_error(await resp.json(), code)


async def test_login_failures(app_client: Any, rdb: Any) -> None:
    await signup(app_client, rdb, "nana")
    for creds in ({"handle": "nana", "password": "wrong password"},
                  {"handle": "nobody", "password": PASSWORD}, {"handle": 1}):  # fmt: skip
        resp = await app_client.post("/api/login", json=creds)
        assert resp.status in (400, 401)
        assert (await resp.json())["error"]["code"] == "invalid_credentials"


async def test_invites_created_by_members(app_client: Any, rdb: Any) -> None:
    member = await signup(app_client, rdb, "hana")
    resp = await app_client.post("/api/invites", json={}, headers=member.auth)
    assert resp.status == 201
    invite = await resp.json()
    assert invite["uses_left"] == 5
    assert invite["url"].endswith("/join/" + invite["code"])
    assert len(invite["code"]) >= 22  # >= 128 bits in URL-safe base64
    expires = dt.datetime.fromisoformat(invite["expires_at"].replace("Z", "+00:00"))
    assert 13.9 < (expires - dt.datetime.now(dt.UTC)).total_seconds() / 86400 < 14.1
    for bad, field in (({"uses": 0}, "uses"), ({"uses": "5"}, "uses"),
                       ({"expires_in_days": 0}, "expires_in_days")):  # fmt: skip
        r = await app_client.post("/api/invites", json=bad, headers=member.auth)
        assert r.status == 400
        assert_error(await r.json(), (await r.json())["error"]["code"], field)
    app_client.session.cookie_jar.clear()
    assert (await app_client.post("/api/invites", json={})).status == 401
    # The invite works for a new member.
    resp = await app_client.post("/api/signup", json=body(invite["code"], handle="guest"))
    assert resp.status == 201


async def test_roles(app_client: Any, rdb: Any) -> None:
    admin = await signup(app_client, rdb, "boss", admin=True)
    assert admin.user["role"] == "admin"
    member = await signup(app_client, rdb, "mod_to_be")
    url = "/api/admin/users/mod_to_be/role"
    resp = await app_client.put(url, json={"role": "moderator"}, headers=member.auth)
    assert resp.status == 403
    resp = await app_client.put(url, json={"role": "moderator"}, headers=admin.auth)
    assert resp.status == 200
    assert (await resp.json())["role"] == "moderator"
    resp = await app_client.put(url, json={"role": "admin"}, headers=admin.auth)
    assert resp.status == 400
    assert_error(await resp.json(), "invalid_role", "role")
    resp = await app_client.put("/api/admin/users/nobody/role", json={"role": "member"},
                                headers=admin.auth)  # fmt: skip
    assert resp.status == 404
    resp = await app_client.put("/api/admin/users/boss/role", json={"role": "member"},
                                headers=admin.auth)  # fmt: skip
    assert resp.status == 403


async def test_unknown_api_route_has_error_shape(app_client: Any, rdb: Any) -> None:
    resp = await app_client.get("/api/nothing-here")
    assert resp.status == 404
    assert_error(await resp.json(), "not_found")


async def test_body_arriving_in_pieces_is_read_whole(app_client: Any, rdb: Any) -> None:
    import asyncio

    code = await make_invite(rdb)
    raw = orjson.dumps(body(code, display_name="x" * 40))

    async def trickle() -> Any:
        for i in range(0, len(raw), 16):
            yield raw[i : i + 16]
            await asyncio.sleep(0)  # each piece its own write (a chunked body)

    resp = await app_client.post("/api/signup", data=trickle(),
                                 headers={"Content-Type": "application/json"})  # fmt: skip
    assert resp.status == 201, await resp.text()


async def test_chunked_body_over_the_limit_is_413(app_client: Any, rdb: Any) -> None:
    async def big() -> Any:
        for _ in range(70):
            yield b"x" * 1024

    resp = await app_client.post("/api/signup", data=big(),
                                 headers={"Content-Type": "application/json"})  # fmt: skip
    assert resp.status == 413
    assert_error(await resp.json(), "payload_too_large")
