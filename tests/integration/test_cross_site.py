"""The guard in front of every state change (issue 13, item 4) and the footprint rule
(item 5), over real loopback HTTP: which browser headers make a cookie-authenticated
request the app's own, what a bearer script may do, and which bodies reach a handler."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData, web

from server.app import create_app
from server.handlers.common import SESSION_COOKIE, json_response
from server.handlers.security import CSRF_HEADER, body_types, csrf_token_for
from server.settings import Settings
from tests.conftest import TEST_SETTINGS
from tests.support import JSON_TYPE, PASSWORD, Member, signup


def cookie_of(who: Member) -> dict[str, str]:
    return {"Cookie": f"{SESSION_COOKIE}={who.token}"}



@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Uploads go to this test's own data directory."""
    return TEST_SETTINGS.with_(data_dir=str(tmp_path), media_workers=1)

@pytest.fixture
async def http(app_client: Any) -> Any:
    """The test client with an empty cookie jar: each request says what it carries."""
    app_client.session.cookie_jar.clear()
    return app_client


async def post_as_browser(http: Any, who: Member, headers: dict[str, str]) -> Any:
    http.session.cookie_jar.clear()
    return await http.post("/api/echoes", json={"text": "from a browser"},
                           headers={**cookie_of(who), **headers})  # fmt: skip


def own(http: Any) -> str:
    return f"http://{http.host}:{http.port}"


async def code_of(resp: Any) -> str:
    return str((await resp.json())["error"]["code"])


async def test_cookie_changes_need_the_apps_origin(http: Any, rdb: Any) -> None:
    aki = await signup(http, rdb, "aki")
    refused = {
        "another port": {"Origin": "http://127.0.0.1:1"},
        "another host": {"Origin": "https://evil.example"},
        "a sandboxed frame": {"Origin": "null"},
        "same site": {"Sec-Fetch-Site": "same-site"},
        "cross site": {"Sec-Fetch-Site": "cross-site"},
        "typed or linked": {"Sec-Fetch-Site": "none"},
        "foreign origin, same-origin claim": {"Origin": "http://127.0.0.1:1",
                                              "Sec-Fetch-Site": "same-origin"},
    }  # fmt: skip
    for why, headers in refused.items():
        resp = await post_as_browser(http, aki, headers)
        assert resp.status == 403, why
        assert await code_of(resp) == "cross_site_request", why
    resp = await post_as_browser(http, aki, {})
    assert (resp.status, await code_of(resp)) == (403, "csrf_token_required")
    resp = await post_as_browser(http, aki, {CSRF_HEADER: csrf_token_for("another session")})
    assert (resp.status, await code_of(resp)) == (403, "csrf_token_required")
    assert await rdb.keys("eh:echo:*") == []

    accepted = [{"Origin": own(http)}, {"Origin": own(http) + "/"},
                {"Sec-Fetch-Site": "same-origin"},
                {CSRF_HEADER: csrf_token_for(aki.token)}]  # fmt: skip
    for headers in accepted:
        resp = await post_as_browser(http, aki, headers)
        assert resp.status == 201, (headers, await resp.text())


async def test_bearer_scripts_are_unaffected(http: Any, rdb: Any) -> None:
    aki = await signup(http, rdb, "aki")
    for headers in ({}, {"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        resp = await http.post("/api/echoes", json={"text": "scripted"},
                               headers={**aki.auth, **headers})  # fmt: skip
        assert resp.status == 201, await resp.text()


async def test_the_allowed_origins_setting_replaces_the_own_origin(
    aiohttp_client: Any, engine_url: str, rdb: Any, settings: Any
) -> None:
    app = create_app(settings.with_(allowed_origins=("https://app.example",)), engine_url)
    client = await aiohttp_client(app)
    aki = await signup(client, rdb, "aki")
    client.session.cookie_jar.clear()
    ok = await post_as_browser(client, aki, {"Origin": "https://app.example"})
    assert ok.status == 201
    refused = await post_as_browser(client, aki, {"Origin": own(client)})
    assert refused.status == 403


async def test_signing_in_from_another_site_is_refused(http: Any, rdb: Any) -> None:
    """Login CSRF: another site must not sign the browser in as someone else."""
    await signup(http, rdb, "aki")
    http.session.cookie_jar.clear()
    body = {"handle": "aki", "password": PASSWORD}
    resp = await http.post("/api/login", json=body, headers={"Origin": "http://127.0.0.1:1"})
    assert (resp.status, await code_of(resp)) == (403, "cross_site_request")
    resp = await http.post("/api/login", json=body, headers={"Origin": own(http)})
    assert resp.status == 200
    # A stale cookie does not get in the way of signing in without browser headers.
    resp = await http.post("/api/login", json=body, headers={"Cookie": f"{SESSION_COOKIE}=old"})
    assert resp.status == 200


async def test_sign_in_and_me_hand_out_the_csrf_token(http: Any, rdb: Any) -> None:
    aki = await signup(http, rdb, "aki")
    resp = await http.post("/api/login", json={"handle": "aki", "password": PASSWORD})
    token = (await resp.json())["token"]
    assert resp.headers[CSRF_HEADER] == csrf_token_for(token) != token
    me = await http.get("/api/me", headers=aki.auth)
    assert me.headers[CSRF_HEADER] == csrf_token_for(aki.token)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [("text/plain", b'{"text": "form"}'), ("application/x-www-form-urlencoded", b"text=form"),
     ("multipart/form-data; boundary=x", b'--x\r\nContent-Disposition: form-data; name="t"'
      b"\r\n\r\nform\r\n--x--\r\n"), (None, b'{"text": "no type"}'),
     ("application/jsonp", b'{"text": "near miss"}')],
)  # fmt: skip
async def test_bodies_must_be_json(http: Any, rdb: Any, content_type: str | None,
                                   body: bytes) -> None:  # fmt: skip
    aki = await signup(http, rdb, "aki")
    headers = {**aki.auth, **({"Content-Type": content_type} if content_type else {})}
    for path in ("/api/echoes", f"/api/users/{aki.handle}/follow", "/api/logout"):
        resp = await http.post(path, data=body, headers=headers, skip_auto_headers=["Content-Type"])
        assert (resp.status, await code_of(resp)) == (415, "unsupported_content_type"), path
    assert await rdb.keys("eh:echo:*") == []
    typed = {**aki.auth, "Content-Type": "application/json; charset=utf-8"}
    ok = await http.post("/api/echoes", data=b'{"text": "typed"}', headers=typed)
    assert ok.status == 201


async def test_a_route_may_take_multipart_instead(
    aiohttp_client: Any, engine_url: str, rdb: Any, settings: Any
) -> None:
    """The way POST /api/media takes its upload: the route says so, and reads it itself."""

    @body_types("multipart/form-data")
    async def upload(request: web.Request) -> web.Response:
        form = await request.post()
        return json_response({"fields": sorted(form)}, status=201)

    app = create_app(settings, engine_url)
    app.router.add_post("/api/test-upload", upload)
    client = await aiohttp_client(app)
    aki = await signup(client, rdb, "aki")
    form = FormData()
    form.add_field("file", b"\x89PNG", filename="a.png", content_type="image/png")
    resp = await client.post("/api/test-upload", data=form, headers=aki.auth)
    assert resp.status == 201 and (await resp.json())["fields"] == ["file"]
    resp = await client.post("/api/test-upload", json={"file": 1}, headers=aki.auth)
    assert (resp.status, await code_of(resp)) == (415, "unsupported_content_type")
    # The origin check applies all the same.
    client.session.cookie_jar.clear()
    foreign = {**cookie_of(aki), "Origin": "http://127.0.0.1:1"}
    resp = await client.post("/api/test-upload", data=form, headers=foreign)
    assert resp.status == 403


async def test_raw_json_still_reaches_the_handler(http: Any, rdb: Any) -> None:
    aki = await signup(http, rdb, "aki")
    resp = await http.post("/api/echoes", data=b"{broken", headers={**aki.auth, **JSON_TYPE})
    assert (resp.status, await code_of(resp)) == (400, "invalid_json")


async def footprint_visitors(http: Any, owner: Member) -> list[str]:
    resp = await http.get("/api/footprints", headers=owner.auth)
    return [f["visitor"]["handle"] for f in (await resp.json())["items"]]


@pytest.mark.parametrize(
    ("how", "counts"),
    [("cross-site navigation", False), ("same-site embed", False), ("typed in the bar", False),
     ("no browser header", False), ("another origin", False), ("same-origin fetch", True),
     ("own origin", True), ("csrf token", True), ("bearer", True)],
)  # fmt: skip
async def test_only_the_apps_profile_views_leave_footprints(
    http: Any, rdb: Any, how: str, counts: bool
) -> None:
    owner, aki = await signup(http, rdb, "owner"), await signup(http, rdb, "aki")
    http.session.cookie_jar.clear()
    headers = {
        "cross-site navigation": {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"},
        "same-site embed": {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Dest": "image"},
        "typed in the bar": {"Sec-Fetch-Site": "none"},
        "no browser header": {},
        "another origin": {"Origin": "http://127.0.0.1:1"},
        "same-origin fetch": {"Sec-Fetch-Site": "same-origin"},
        "own origin": {"Origin": own(http)},
        "csrf token": {CSRF_HEADER: csrf_token_for(aki.token)},
    }.get(how)
    sent = aki.auth if headers is None else {**cookie_of(aki), **headers}
    resp = await http.get(f"/api/users/{owner.handle}", headers=sent)
    assert resp.status == 200  # the profile is served either way
    assert await footprint_visitors(http, owner) == (["aki"] if counts else [])


async def test_an_unreadable_multipart_body_is_400_not_500(http: Any, rdb: Any) -> None:
    """Found by schemathesis: a part header aiohttp cannot parse escaped as a 500."""
    aki = await signup(http, rdb, "aki")
    body = (b'--x\r\nContent-Disposition: form-data; name="\xc3\x9c\x18"\r\n\r\nhi\r\n'
            b"--x--\r\n")  # fmt: skip
    resp = await http.post("/api/media", data=body, headers={
        **aki.auth, "Content-Type": "multipart/form-data; boundary=x"})  # fmt: skip
    assert (resp.status, await code_of(resp)) == (400, "invalid_body")
