"""The authorization matrix (issue 13): every HTTP endpoint and every socket topic,
crossed with nine kinds of caller, against the status (or the ack / refusal) each
must get; and resumes with `since`, which must replay exactly what HTTP shows the
same caller now.

The callers, in the order of each row's expectations:
    anon      no session
    owner     aki: author of the posts, host of the event, owner of the community
    member    ben: aki's friend (mutual follow) and a member of her community
    blocked   cal: aki blocked cal
    blocking  dan: dan blocked aki
    outsider  eve: a member with no relation to aki, not in the community
    pending   fay: asked to join aki's (approval) community, not yet approved
    mod       mia: a moderator
    admin     root: the admin
Rows that change state get a fresh target per caller (`fresh`), so one caller's
success never changes what the next one is asked.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from server.settings import Settings
from tests.conftest import TEST_SETTINGS
from tests.support import Member, receive_until, signup

CALLERS = ("anon", "owner", "member", "blocked", "blocking", "outsider", "pending", "mod",
           "admin")  # fmt: skip
SIGNED_IN = CALLERS[1:]


@dataclass
class World:
    http: Any
    rdb: Any
    who: dict[str, Member]
    ids: dict[str, str]
    counter: itertools.count[int]

    def auth(self, caller: str) -> dict[str, str]:
        return {} if caller == "anon" else self.who[caller].auth

    async def call(self, method: str, path: str, who: Member, body: Any = None,
                   status: int = 200) -> Any:  # fmt: skip
        resp = await self.http.request(method, path, json=body, headers=who.auth)
        assert resp.status == status, (method, path, await resp.text())
        return await resp.json()

    async def post(self, text: str, **extra: Any) -> str:
        body = {"text": text, **extra}
        return str((await self.call("POST", "/api/echoes", self.who["owner"], body, 201))["id"])

    async def member(self, prefix: str) -> Member:
        return await signup(self.http, self.rdb, f"{prefix}{next(self.counter)}")


async def build_world(http: Any, rdb: Any) -> World:
    names = {"owner": "aki", "member": "ben", "blocked": "cal", "blocking": "dan",
             "outsider": "eve", "pending": "fay", "mod": "mia"}  # fmt: skip
    who = {role: await signup(http, rdb, name) for role, name in names.items()}
    who["admin"] = await signup(http, rdb, "root", admin=True)
    world = World(http, rdb, who, {}, itertools.count(1))
    aki, ben = who["owner"], who["member"]
    await world.call("PUT", "/api/admin/users/mia/role", who["admin"], {"role": "moderator"})
    await world.call("POST", "/api/users/aki/follow", ben)
    await world.call("POST", "/api/users/ben/follow", aki)
    await world.call("POST", "/api/users/cal/block", aki)
    await world.call("POST", "/api/users/aki/block", who["blocking"])
    community = await world.call("POST", "/api/communities", aki, {
        "name": "Closed circle", "description": "members only", "join_policy": "approval"},
        201)  # fmt: skip
    cid = world.ids["community"] = str(community["id"])
    await world.call("POST", f"/api/communities/{cid}/join", ben)
    await world.call("POST", f"/api/communities/{cid}/requests/ben/approve", aki)
    await world.call("POST", f"/api/communities/{cid}/join", who["pending"])
    world.ids["public"] = await world.post("public words")
    world.ids["friends"] = await world.post("friends words", visibility="friends")
    world.ids["closed"] = await world.post("closed words", community=cid)
    event = await world.call("POST", "/api/events", aki, {
        "title": "Picnic", "description": "by the river",
        "starts_at": "2031-05-01T10:00:00Z"}, 201)  # fmt: skip
    world.ids["event"] = str(event["id"])
    return world


# --- HTTP ---------------------------------------------------------------------------------

Factory = Callable[[World, str], Awaitable[str]]


@dataclass(frozen=True)
class Fresh:
    """A path whose `{}` is a target made anew for each caller."""

    template: str
    factory: Factory


RowPath = str | Fresh


@dataclass(frozen=True)
class Row:
    method: str
    path: RowPath
    expect: str  # nine statuses, space separated, in CALLERS order
    body: Any = None


def codes(row: Row) -> dict[str, int]:
    values = [int(v) for v in row.expect.split()]
    assert len(values) == len(CALLERS), row
    return dict(zip(CALLERS, values, strict=True))


def fresh_post(**extra: Any) -> Callable[[World, str], Awaitable[str]]:
    async def make(world: World, caller: str) -> str:
        return await world.post(f"fresh for {caller}", **extra)

    return make


def at(template: str, factory: Factory) -> Fresh:
    return Fresh(template, factory)


async def fresh_event(world: World, caller: str) -> str:
    event = await world.call("POST", "/api/events", world.who["owner"], {
        "title": f"Event for {caller}", "description": "x",
        "starts_at": "2031-06-01T10:00:00Z"}, 201)  # fmt: skip
    return str(event["id"])


async def fresh_report(world: World, caller: str) -> str:
    echo = await fresh_post()(world, caller)
    report = await world.call("POST", "/api/reports", world.who["member"],
                              {"echo": echo, "reason": "spam"}, 201)  # fmt: skip
    return str(report["id"])


async def fresh_handle(world: World, caller: str) -> str:
    return (await world.member("zed")).handle


async def fresh_suspended(world: World, caller: str) -> str:
    handle = await fresh_handle(world, caller)
    await world.call("POST", f"/api/mod/users/{handle}/suspend", world.who["mod"], {})
    return handle


async def fresh_applicant(world: World, caller: str) -> str:
    applicant = await world.member("gus")
    await world.call("POST", f"/api/communities/{world.ids['community']}/join", applicant)
    return applicant.handle


def png() -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 40, 40)).save(out, "PNG")
    return out.getvalue()


def upload_form() -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("file", png(), filename="a.png", content_type="image/png")
    return form


async def fresh_media(world: World, caller: str) -> str:
    resp = await world.http.post("/api/media", data=upload_form(),
                                 headers=world.who["owner"].auth)  # fmt: skip
    assert resp.status == 201, await resp.text()
    return str((await resp.json())["id"])


async def fresh_invite(world: World, caller: str) -> str:
    made = await world.call("POST", "/api/invites", world.who["owner"], {"uses": 1}, 201)
    return str(made["code"])


P, F, C, E, CID = "{public}", "{friends}", "{closed}", "{event}", "{community}"
MULTIPART = "multipart"  # the body: a fresh one-file upload form
OK = "401 200 200 200 200 200 200 200 200"
ROWS = [
    # accounts and profiles
    Row("POST", "/api/login", "401 401 401 401 401 401 401 401 401",
        {"handle": "aki", "password": "not the password"}),
    Row("POST", "/api/signup", "400 400 400 400 400 400 400 400 400",
        {"invite": "no such invite", "handle": "newcomer", "password": "long enough",
         "display_name": "New", "birthdate": "1990-01-01"}),
    Row("GET", "/api/me", OK),
    Row("GET", "/api/invites", OK),
    Row("POST", "/api/invites", "401 201 201 201 201 201 201 201 201", {"uses": 1}),
    Row("DELETE", at("/api/invites/{}", fresh_invite), "401 200 404 404 404 404 404 404 404"),
    Row("PATCH", "/api/me", OK, {"bio": "hello"}),
    Row("PUT", "/api/me/password", "401 400 400 400 400 400 400 400 400",
        {"old": "not the password", "new": "another password"}),
    Row("PUT", at("/api/admin/users/{}/role", fresh_handle), "401 403 403 403 403 403 403 403 200",
        {"role": "moderator"}),
    Row("GET", "/api/users/aki", "401 200 200 403 200 200 200 200 200"),
    Row("GET", "/api/users/aki/echoes", "401 200 200 403 200 200 200 200 200"),
    Row("GET", "/api/footprints", OK),
    Row("GET", "/api/search?q=aki&type=members", OK),
    Row("GET", "/api/search?q=words&type=posts", OK),
    Row("GET", "/api/suggestions", OK),
    Row("GET", "/api/notifications", OK),
    Row("POST", "/api/notifications/read", "401 400 400 400 400 400 400 400 400", {"until": "x"}),
    # posts
    Row("GET", f"/api/echoes/{P}", "401 200 200 404 404 200 200 200 200"),
    Row("GET", f"/api/echoes/{F}", "401 200 200 404 404 404 404 404 404"),
    Row("GET", f"/api/echoes/{C}", "401 200 200 404 404 404 404 404 404"),
    Row("GET", f"/api/echoes/{P}/thread", "401 200 200 404 404 200 200 200 200"),
    Row("GET", f"/api/echoes/{F}/thread", "401 200 200 404 404 404 404 404 404"),
    Row("GET", f"/api/echoes/{P}/likes", "401 200 403 404 404 403 403 403 403"),
    Row("POST", f"/api/echoes/{P}/like", "401 200 200 404 404 200 200 200 200"),
    Row("DELETE", f"/api/echoes/{P}/like", "401 200 200 404 404 200 200 200 200"),
    Row("POST", f"/api/echoes/{C}/like", "401 200 200 404 404 404 404 404 404"),
    Row("POST", "/api/echoes", "401 201 201 201 201 201 201 201 201", {"text": "mine"}),
    Row("POST", "/api/echoes", "401 201 201 403 403 403 403 403 403",
        {"text": "in the circle", "community": CID}),
    Row("POST", "/api/echoes", "401 201 201 404 404 201 201 201 201",
        {"text": "a reply", "reply_to": P}),
    Row("POST", "/api/echoes", "401 201 201 404 404 404 404 404 404",
        {"text": "a reply", "reply_to": F}),
    Row("DELETE", at("/api/echoes/{}", fresh_post()), "401 200 403 404 404 403 403 200 200"),
    Row("POST", "/api/reports", "401 400 201 404 404 201 201 201 201",
        {"echo": "{fresh}", "reason": "spam"}),
    Row("POST", "/api/reports", "401 400 201 201 201 201 201 201 201",
        {"user": "aki", "reason": "rude"}),
    Row("GET", "/api/feed/home", OK),
    Row("GET", "/api/feed/friends", OK),
    Row("GET", "/api/feed/discover", OK),
    Row("GET", "/api/tags/words", OK),
    # events
    Row("GET", "/api/events", OK),
    Row("GET", f"/api/events/{E}", "401 200 200 404 404 200 200 200 200"),
    Row("POST", "/api/events", "401 201 201 201 201 201 201 201 201",
        {"title": "Mine", "description": "x", "starts_at": "2031-07-01T10:00:00Z"}),
    Row("PATCH", f"/api/events/{E}", "401 200 403 404 404 403 403 403 403", {"place": "Kyoto"}),
    Row("PUT", f"/api/events/{E}/rsvp", "401 200 200 404 404 200 200 200 200",
        {"status": "interested"}),
    Row("POST", at("/api/events/{}/cancel", fresh_event), "401 200 403 404 404 403 403 403 403"),
    # communities
    Row("GET", "/api/communities", OK),
    Row("GET", f"/api/communities/{CID}", OK),
    Row("GET", f"/api/communities/{CID}/echoes", "401 200 200 403 403 403 403 403 403"),
    Row("GET", f"/api/communities/{CID}/events", "401 200 200 403 403 403 403 403 403"),
    Row("GET", f"/api/communities/{CID}/members", "401 200 200 403 403 403 403 403 403"),
    Row("GET", f"/api/communities/{CID}/requests", "401 200 403 403 403 403 403 403 403"),
    Row("POST", "/api/communities", "401 201 201 201 201 201 201 201 201",
        {"name": "{fresh}", "description": "x", "join_policy": "open"}),
    Row("POST", at(f"/api/communities/{CID}/requests/{{}}/approve", fresh_applicant),
        "401 200 403 403 403 403 403 403 403"),
    Row("POST", at(f"/api/communities/{CID}/requests/{{}}/reject", fresh_applicant),
        "401 200 403 403 403 403 403 403 403"),
    # moderation
    Row("GET", "/api/mod/reports", "401 403 403 403 403 403 403 200 200"),
    Row("GET", "/api/mod/audit", "401 403 403 403 403 403 403 200 200"),
    Row("POST", at("/api/mod/echoes/{}/remove", fresh_post()),
        "401 403 403 403 403 403 403 200 200", {}),
    Row("POST", at("/api/mod/reports/{}/resolve", fresh_report),
        "401 403 403 403 403 403 403 200 200", {}),
    Row("POST", at("/api/mod/users/{}/suspend", fresh_handle),
        "401 403 403 403 403 403 403 200 200", {}),
    Row("POST", at("/api/mod/users/{}/unsuspend", fresh_suspended),
        "401 403 403 403 403 403 403 200 200", {}),
    # media: an upload belongs to its uploader until it is attached to a post
    Row("POST", "/api/media", "401 201 201 201 201 201 201 201 201", MULTIPART),
    Row("GET", at("/api/media/{}", fresh_media), "401 200 404 404 404 404 404 404 404"),
    Row("PATCH", at("/api/media/{}", fresh_media), "401 200 404 404 404 404 404 404 404",
        {"alt": "a red square"}),
    Row("DELETE", at("/api/media/{}", fresh_media), "401 200 404 404 404 404 404 404 404"),
    Row("GET", "/api/openapi.json", "200 200 200 200 200 200 200 200 200"),
    # graph edits, then leaving, then signing out: last, as they change the world
    # The member aki blocked cannot act on her profile at all (it is not there for them).
    Row("POST", "/api/users/aki/mute", "401 400 200 403 200 200 200 200 200"),
    Row("DELETE", "/api/users/aki/mute", "401 400 200 403 200 200 200 200 200"),
    Row("POST", "/api/users/aki/follow", "401 400 200 403 403 200 200 200 200"),
    Row("DELETE", "/api/users/aki/follow", "401 400 200 403 200 200 200 200 200"),
    Row("POST", "/api/users/aki/block", "401 400 200 403 200 200 200 200 200"),
    Row("DELETE", "/api/users/aki/block", "401 400 200 403 200 200 200 200 200"),
    Row("POST", f"/api/communities/{CID}/leave", "401 409 200 409 409 409 200 409 409"),
    Row("POST", f"/api/communities/{CID}/join", "401 409 200 200 200 200 200 200 200"),
    Row("POST", "/api/logout", OK),
]


async def resolve(world: World, row: Row, caller: str) -> tuple[str, Any]:
    if isinstance(row.path, str):
        path = row.path
    else:
        path = row.path.template.replace("{}", await row.path.factory(world, caller))
    body = row.body
    if isinstance(body, dict):
        body = dict(body)
        for key, value in body.items():
            if value == "{fresh}":
                body[key] = (await fresh_post()(world, caller) if key == "echo"
                             else f"Circle {caller} {next(world.counter)}")  # fmt: skip
            elif isinstance(value, str) and value.startswith("{"):
                body[key] = world.ids[value.strip("{}")]
    return path.format(**world.ids), body



@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Uploads go to this test's own data directory."""
    return TEST_SETTINGS.with_(data_dir=str(tmp_path), media_workers=1)

@pytest.fixture
async def world(app_client: Any, rdb: Any) -> World:
    app_client.session.cookie_jar.clear()
    built = await build_world(app_client, rdb)
    app_client.session.cookie_jar.clear()  # bearer tokens only from here on
    return built


async def test_every_endpoint_for_every_caller(world: World) -> None:
    wrong = []
    for row in ROWS:
        expected = codes(row)
        for caller in CALLERS:
            path, body = await resolve(world, row, caller)
            world.http.session.cookie_jar.clear()  # factories sign people up: no cookie
            sent = {"data": upload_form()} if body == MULTIPART else {"json": body}
            resp = await world.http.request(row.method, path, headers=world.auth(caller),
                                            **sent)  # fmt: skip
            text = await resp.text()
            if resp.status != expected[caller]:
                wrong.append(f"{row.method} {_template(row.path)}"
                             f" as {caller}: {resp.status}, expected {expected[caller]}"
                             f" ({text[:120]})")  # fmt: skip
            elif resp.status >= 400:
                assert set((await resp.json())["error"]) >= {"code", "message"}
    assert not wrong, "\n".join(wrong)


def test_the_matrix_covers_every_endpoint() -> None:
    from server import openapi

    covered = {(row.method, _template(row.path)) for row in ROWS}
    described = {(op.method, op.path) for op in openapi.OPERATIONS}
    missing = {d for d in described if not any(_matches(d, c) for c in covered)}
    assert not missing, sorted(missing)


def _template(path: RowPath) -> str:
    return path.split("?")[0] if isinstance(path, str) else path.template.replace("{}", "x")


def _matches(described: tuple[str, str], covered: tuple[str, str]) -> bool:
    import re

    method, path = described
    if method != covered[0]:
        return False
    pattern = re.sub(r"\\{\w+\\}", "[^/]+", re.escape(path)) + "$"
    return re.match(pattern, covered[1]) is not None


# --- topics -------------------------------------------------------------------------------

TOPIC_ROWS = {
    # topic: (owner, member, blocked, blocking, outsider, pending, mod, admin); + ack, - refused
    "home": "+ + + + + + + +",
    "me": "+ + + + + + + +",
    "public": "+ + + + + + + +",
    "user:aki": "+ + - + + + + +",
    "community:{community}": "+ + - - - - - -",
    "event:{event}": "+ + - - + + + +",
    "mod": "- - - - - - + +",
}


async def subscribe(world: World, caller: str, topic: str, **extra: Any) -> list[dict[str, Any]]:
    """The frames a `sub` gets: its ack or error, then (with `since`) the replay, up to
    the answer to a ping sent right behind it (a socket answers in order, and a `sub`
    is done once its replay is queued)."""
    ws = await world.http.ws_connect("/ws", headers=world.who[caller].auth)
    try:
        await ws.send_json({"op": "sub", "id": 1, "topic": topic, **extra})
        await ws.send_json({"op": "ping", "id": 2})
        frames = await receive_until(ws, lambda f: f["op"] == "pong")
    finally:
        await ws.close()
    return frames[:-1]


async def test_every_topic_for_every_caller(world: World) -> None:
    wrong = []
    for template, row in TOPIC_ROWS.items():
        topic = template.format(**world.ids)
        for caller, sign in zip(SIGNED_IN, row.split(), strict=True):
            answer = (await subscribe(world, caller, topic))[0]
            expected = ("ack", None) if sign == "+" else ("error", "forbidden")
            got = (answer["op"], answer.get("code"))
            if got != expected:
                wrong.append(f"{template} as {caller}: {got}, expected {expected}")
    resp = await world.http.get("/ws")  # no session: the upgrade itself is refused
    assert resp.status == 401
    assert not wrong, "\n".join(wrong)


async def test_replays_show_what_http_shows_now(world: World) -> None:
    """A resume with `since` from before a batch of posts, by every caller on every
    topic that carries them, replays exactly the posts HTTP shows that caller now, and
    of a deleted or removed post only its deletion."""
    aki, ben, mia = world.who["owner"], world.who["member"], world.who["mod"]
    topics = ("public", "user:aki", f"community:{world.ids['community']}")
    since = {}
    for topic in topics:
        ack = (await subscribe(world, "owner", topic))[0]
        since[topic] = ack["cursor"]
    posts = {
        "public two": await world.post("public two"),
        "friends two": await world.post("friends two", visibility="friends"),
        "closed two": await world.post("closed two", community=world.ids["community"]),
        "deleted": await world.post("deleted"),
        "removed": await world.post("removed"),
    }
    by_ben = await world.call("POST", "/api/echoes", ben, {"text": "ben's own"}, 201)
    await world.call("DELETE", f"/api/echoes/{posts['deleted']}", aki)
    await world.call("POST", f"/api/mod/echoes/{posts['removed']}/remove", mia, {})
    # Today's rules after the posts: ben unfriends aki (so loses the friends-only post).
    await world.call("DELETE", "/api/users/aki/follow", ben)
    carried = {  # which topic each post went out on
        "public": {"public two", "deleted", "removed"},
        "user:aki": {"public two", "friends two", "closed two", "deleted", "removed"},
        topics[2]: {"closed two"},
    }
    wrong = []
    for caller in SIGNED_IN:
        shown = set()
        for text, echo_id in posts.items():
            resp = await world.http.get(f"/api/echoes/{echo_id}", headers=world.auth(caller))
            if resp.status == 200:
                shown.add(text)
        for topic in topics:
            frames = await subscribe(world, caller, topic, since=since[topic])
            if frames[0]["op"] != "ack":
                continue  # refused: the topic rows above say who may
            assert frames[0]["recovered"] is True
            created = {f["data"]["text"] for f in frames
                       if f["op"] == "event" and f["type"] == "post.created"}  # fmt: skip
            created.discard(by_ben["text"])
            deleted = {f["data"]["id"] for f in frames
                       if f["op"] == "event" and f["type"] == "post.deleted"}  # fmt: skip
            expected = shown & carried[topic]
            if created != expected:
                wrong.append(f"{topic} as {caller}: replayed {sorted(created)}, "
                             f"HTTP shows {sorted(expected)}")  # fmt: skip
            # The deleted and removed posts were public: their deletions reach whoever
            # may see aki's public posts, and nobody else (not even their ids).
            gone = {posts["deleted"], posts["removed"]} & {posts[t] for t in carried[topic]}
            if "public two" in shown and not gone <= deleted:
                wrong.append(f"{topic} as {caller}: deletions missing")
            if "public two" not in shown and gone & deleted:
                wrong.append(f"{topic} as {caller}: deletions of posts never shown")
    assert not wrong, "\n".join(wrong)
