"""Replies over real HTTP and sockets on a real engine: who sees a reply on every route
(the answered post's audience: by id, archive, home, tag page, search, discover, thread,
likes, live on home and public, and on resume), threads and their paging, and bad
replies."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import Member, call, error_of, receive_until, signup, subscribe

RELATIONS = ("follower", "friend", "stranger", "blocked", "muted")
# Whether the viewer may see the answered post (so its replies), by its kind and the
# viewer's relation to its author.
SEES = {
    "public": {"follower": True, "friend": True, "stranger": True, "blocked": False,
               "muted": True},
    "friends": {"follower": False, "friend": True, "stranger": False, "blocked": False,
                "muted": True},
    "community": {"follower": True, "friend": True, "stranger": True, "blocked": False,
                  "muted": True},
    "community_outsider": {relation: False for relation in RELATIONS},
}  # fmt: skip


async def relate(http: Any, viewer: Member, author: Member, relation: str) -> None:
    if relation in ("follower", "friend", "muted"):
        await call(http, "post", f"/api/users/{author.handle}/follow", viewer, 200)
    if relation in ("friend", "muted"):
        await call(http, "post", f"/api/users/{viewer.handle}/follow", author, 200)
    if relation == "muted":
        await call(http, "post", f"/api/users/{author.handle}/mute", viewer, 200)
    if relation == "blocked":
        await call(http, "post", f"/api/users/{viewer.handle}/block", author, 200)


async def closed_community(http: Any, owner: Member, members: list[Member]) -> str:
    body = {"name": "Quiet room", "description": "members only", "join_policy": "approval"}
    community: str = (await call(http, "post", "/api/communities", owner, 201, body))["id"]
    for member in members:
        await call(http, "post", f"/api/communities/{community}/join", member, 200)
        await call(http, "post", f"/api/communities/{community}/requests/{member.handle}/approve",
                   owner, 200)  # fmt: skip
    return community


async def ids_of(http: Any, path: str, who: Member) -> list[str]:
    return [p["id"] for p in (await call(http, "get", path, who, 200))["items"]]


@pytest.mark.parametrize("relation", RELATIONS)
@pytest.mark.parametrize("kind", ["public", "friends", "community", "community_outsider"])
async def test_a_reply_is_seen_only_by_who_sees_what_it_answers(
    app_client: Any, rdb: Any, kind: str, relation: str
) -> None:
    http = app_client
    bea = await signup(http, rdb, "bea")  # writes the answered post
    ann = await signup(http, rdb, "ann")  # replies publicly; bea's friend
    vic = await signup(http, rdb, "vic")  # the viewer
    for a, b in ((ann, bea), (bea, ann)):
        await call(http, "post", f"/api/users/{b.handle}/follow", a, 200)
    await relate(http, vic, bea, relation)
    await call(http, "post", "/api/users/ann/follow", vic, 200)  # vic's home shows ann
    body: dict[str, Any] = {"text": "the question"}
    if kind == "friends":
        body["visibility"] = "friends"
    if kind.startswith("community"):
        inside = [ann] if kind == "community_outsider" else [ann, vic]
        body["community"] = await closed_community(http, bea, inside)
    answered = await call(http, "post", "/api/echoes", bea, 201, body)
    sees = SEES[kind][relation]

    home = await subscribe(http, vic, "home")
    ack_cursor = None
    await home.send_json({"op": "ping", "id": 9})
    await receive_until(home, lambda f: f["op"] == "pong")
    public_ws = await http.ws_connect("/ws", headers=vic.auth)
    await public_ws.send_json({"op": "sub", "id": 1, "topic": "public"})
    ack = (await receive_until(public_ws, lambda f: f["op"] == "ack"))[-1]
    ack_cursor = ack["cursor"]

    reply = await call(http, "post", "/api/echoes", ann, 201,
                       {"text": "my answer #talk", "reply_to": answered["id"]})  # fmt: skip
    assert reply["reply_to"] == answered["id"]
    assert reply["in_reply_to"] == {
        "id": answered["id"],
        "author": {"handle": "bea", "display_name": "Bea"},
    }
    marker = await call(http, "post", "/api/echoes", ann, 201, {"text": "marker"})

    # Live, on home and public (the reply is public, to the answered post's audience).
    for ws, expected in ((home, sees), (public_ws, sees)):
        frames = await receive_until(
            ws, lambda f: f["op"] == "event" and f["data"].get("id") == marker["id"]
        )
        got = [f["data"] for f in frames if f["op"] == "event"]
        assert any(d.get("id") == reply["id"] for d in got) is expected
        assert all(d.get("reply_to") in (None, answered["id"]) for d in got)
        if not sees:  # the hidden post's id never reaches this viewer
            assert answered["id"] not in str(got)
        await ws.close()

    # A resume over the same stretch replays the same.
    resumed = await http.ws_connect("/ws", headers=vic.auth)
    await resumed.send_json({"op": "sub", "id": 1, "topic": "public", "since": ack_cursor})
    frames = await receive_until(
        resumed, lambda f: f["op"] == "event" and f["data"].get("id") == marker["id"]
    )
    replayed = [f["data"].get("id") for f in frames if f["op"] == "event"]
    assert (reply["id"] in replayed) is sees
    await resumed.close()

    # Every HTTP route.
    one = await http.get(f"/api/echoes/{reply['id']}", headers=vic.auth)
    assert one.status == (200 if sees else 404)
    if sees:
        shown = await one.json()
        assert shown["reply_to"] == answered["id"] and shown["in_reply_to"]["id"] == answered["id"]
    assert (reply["id"] in await ids_of(http, "/api/users/ann/echoes", vic)) is sees
    assert (reply["id"] in await ids_of(http, "/api/feed/home", vic)) is sees
    assert (reply["id"] in await ids_of(http, "/api/tags/talk", vic)) is sees
    assert (reply["id"] in await ids_of(http, "/api/search?type=posts&q=answer", vic)) is sees
    await call(http, "post", f"/api/echoes/{reply['id']}/like", ann, 200)  # vic follows ann
    assert (reply["id"] in await ids_of(http, "/api/feed/discover", vic)) is sees
    thread = await http.get(f"/api/echoes/{reply['id']}/thread", headers=vic.auth)
    assert thread.status == (200 if sees else 404)
    if sees:
        assert [p["id"] for p in (await thread.json())["ancestors"]] == [answered["id"]]
        parent = await call(http, "get", f"/api/echoes/{answered['id']}/thread", vic, 200)
        assert [p["id"] for p in parent["items"]] == [reply["id"]]
        assert parent["post"]["reply_count"] == 1
    # Liking the reply needs seeing it too.
    like = await http.post(f"/api/echoes/{reply['id']}/like", headers=vic.auth)
    assert like.status == (200 if sees else 404)


async def test_reply_count_is_per_viewer(app_client: Any, rdb: Any) -> None:
    http = app_client
    bea = await signup(http, rdb, "bea")
    ann = await signup(http, rdb, "ann")
    ren = await signup(http, rdb, "ren")
    for a, b in ((ann, bea), (bea, ann)):
        await call(http, "post", f"/api/users/{b.handle}/follow", a, 200)
    answered = await call(http, "post", "/api/echoes", bea, 201, {"text": "question"})
    await call(
        http,
        "post",
        "/api/echoes",
        ann,
        201,
        {"text": "for friends", "visibility": "friends", "reply_to": answered["id"]},
    )
    await call(http, "post", "/api/echoes", ren, 201, {"text": "open", "reply_to": answered["id"]})
    # fmt: skip
    by_bea = await call(http, "get", f"/api/echoes/{answered['id']}", bea, 200)
    by_ren = await call(http, "get", f"/api/echoes/{answered['id']}", ren, 200)
    assert (by_bea["reply_count"], by_ren["reply_count"]) == (2, 1)
    archive = await call(http, "get", "/api/users/bea/echoes", ren, 200)
    assert archive["items"][0]["reply_count"] == 1


async def test_thread_chain_and_paging(app_client: Any, rdb: Any) -> None:
    http = app_client
    aki = await signup(http, rdb, "aki")
    chain = [await call(http, "post", "/api/echoes", aki, 201, {"text": "root"})]
    for depth in range(22):
        chain.append(
            await call(
                http,
                "post",
                "/api/echoes",
                aki,
                201,
                {"text": f"level {depth}", "reply_to": chain[-1]["id"]},
            )
        )
    # fmt: skip
    deepest = await call(http, "get", f"/api/echoes/{chain[-1]['id']}/thread", aki, 200)
    assert [p["id"] for p in deepest["ancestors"]] == [p["id"] for p in chain[-21:-1]]
    root = chain[0]
    replies = [chain[1]]
    for n in range(4):
        replies.append(
            await call(
                http,
                "post",
                "/api/echoes",
                aki,
                201,
                {"text": f"reply {n}", "reply_to": root["id"]},
            )
        )
    # fmt: skip
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        path = f"/api/echoes/{root['id']}/thread?limit=2" + (f"&before={cursor}" if cursor else "")
        page = await call(http, "get", path, aki, 200)
        assert page["post"]["id"] == root["id"] and page["ancestors"] == []
        seen += [p["id"] for p in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == [p["id"] for p in replies]  # oldest first, each once
    # A deleted post drops out of the thread; its replies stay, without a reply_to.
    await call(http, "delete", f"/api/echoes/{replies[2]['id']}", aki, 200)
    page = await call(http, "get", f"/api/echoes/{root['id']}/thread", aki, 200)
    assert replies[2]["id"] not in [p["id"] for p in page["items"]]
    await call(http, "delete", f"/api/echoes/{chain[5]['id']}", aki, 200)
    orphan = await call(http, "get", f"/api/echoes/{chain[6]['id']}/thread", aki, 200)
    assert orphan["ancestors"] == [] and orphan["post"]["reply_to"] is None
    assert orphan["post"]["in_reply_to"] is None


@pytest.mark.parametrize(
    ("reply_to", "status", "code"),
    [
        ("ffffffffffffffffffff", 404, "echo_not_found"),
        ("not an id", 404, "echo_not_found"),
        (12, 400, "invalid_reply_to"),
        (["x"], 400, "invalid_reply_to"),
        ({"id": "x"}, 400, "invalid_reply_to"),
        ("hidden", 404, "echo_not_found"),
        ("deleted", 404, "echo_not_found"),
    ],
)
async def test_bad_replies_store_nothing(
    app_client: Any, rdb: Any, reply_to: Any, status: int, code: str
) -> None:
    http = app_client
    aki = await signup(http, rdb, "aki")
    ren = await signup(http, rdb, "ren")
    hidden = await call(http, "post", "/api/echoes", ren, 201,
                        {"text": "friends only", "visibility": "friends"})  # fmt: skip
    deleted = await call(http, "post", "/api/echoes", aki, 201, {"text": "gone"})
    await call(http, "delete", f"/api/echoes/{deleted['id']}", aki, 200)
    named = {"hidden": hidden["id"], "deleted": deleted["id"]}
    target = named.get(reply_to, reply_to) if isinstance(reply_to, str) else reply_to
    body = {"text": "answer", "reply_to": target}
    assert await error_of(http, "post", "/api/echoes", aki, status, body) == (code, "reply_to")
    assert await rdb.zcard(f"eh:posts:{aki.user['id']}") == 0
    assert await rdb.exists(f"eh:replies:{hidden['id']}") == 0


@pytest.mark.parametrize(
    ("path", "code", "field"),
    [
        ("/api/echoes/{id}/thread?before=garbage", "invalid_cursor", "before"),
        ("/api/echoes/{id}/thread?limit=0", "invalid_limit", "limit"),
        ("/api/echoes/ffffffffffffffffffff/thread", "echo_not_found", None),
        ("/api/echoes/nope/thread", "echo_not_found", None),
    ],
)
async def test_bad_thread_requests(
    app_client: Any, rdb: Any, path: str, code: str, field: str | None
) -> None:
    aki = await signup(app_client, rdb, "aki")
    root = await call(app_client, "post", "/api/echoes", aki, 201, {"text": "root"})
    status = 404 if code == "echo_not_found" else 400
    found = await error_of(app_client, "get", path.format(id=root["id"]), aki, status)
    assert found[0] == code and (field is None or found[1] == field)


async def test_no_reply_or_mention_notification_to_one_who_may_not_see_the_thread_now(
    app_client: Any, rdb: Any
) -> None:
    # The notifications of a reply go to its audience as it is when it is written, the
    # posts above included: a block by an author above, or an unfriending that hides a
    # friends-only post above, keeps both the `reply` and the `mention` away.
    http = app_client
    yui, fay, xan, zoe = [await signup(http, rdb, h) for h in ("yui", "fay", "xan", "zoe")]
    question = await call(http, "post", "/api/echoes", yui, 201, {"text": "question"})
    answer = await call(http, "post", "/api/echoes", fay, 201,
                        {"text": "answer", "reply_to": question["id"]})  # fmt: skip
    for a, b in ((yui, zoe), (zoe, yui)):
        await call(http, "post", f"/api/users/{b.handle}/follow", a, 200)
    secret = await call(http, "post", "/api/echoes", yui, 201,
                        {"text": "for friends", "visibility": "friends"})  # fmt: skip
    for hidden_from in (fay, xan):  # neither may see the question now
        await call(http, "post", f"/api/users/{hidden_from.handle}/block", yui, 200)
    fay_me = await subscribe(http, fay, "me")
    xan_me = await subscribe(http, xan, "me")
    # Written after the block: fay, the answered author, and xan, mentioned, may not see it.
    await call(http, "post", "/api/echoes", zoe, 201,
               {"text": "on fay's answer @xan", "reply_to": answer["id"]})  # fmt: skip
    # Neither is yui's friend: a mention on a reply under the friends-only post skips them.
    await call(http, "post", "/api/echoes", zoe, 201,
               {"text": "@fay @xan about the secret", "reply_to": secret["id"]})  # fmt: skip
    await call(http, "post", "/api/echoes", zoe, 201, {"text": "marker @fay @xan"})
    for ws in (fay_me, xan_me):
        frames = await receive_until(
            ws, lambda f: f["op"] == "event" and f["data"].get("text") == "marker @fay @xan"
        )
        got = [(f["type"], f["data"].get("text")) for f in frames if f["op"] == "event"]
        assert got == [("mention", "marker @fay @xan")]
        await ws.close()
