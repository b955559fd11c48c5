"""Echo posts, the graph, feeds and likes over real HTTP and sockets on a real engine."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import Member, receive_until, signup


async def post(client: Any, who: Member, text: str, **extra: Any) -> dict[str, Any]:
    resp = await client.post("/api/echoes", json={"text": text, **extra}, headers=who.auth)
    assert resp.status == 201, await resp.text()
    created: dict[str, Any] = await resp.json()
    return created


async def follow(client: Any, who: Member, handle: str) -> None:
    resp = await client.post(f"/api/users/{handle}/follow", headers=who.auth)
    assert resp.status == 200, await resp.text()


async def subscribe(client: Any, who: Member, topic: str, **extra: Any) -> Any:
    ws = await client.ws_connect("/ws", headers=who.auth)
    await ws.send_json({"op": "sub", "id": 1, "topic": topic, **extra})
    frames = await receive_until(ws, lambda f: f["op"] in ("ack", "error"))
    assert frames[-1]["op"] == "ack", frames[-1]
    return ws


async def texts_until_marker(ws: Any, marker: str) -> list[str]:
    """Event texts up to the post whose text is `marker` (published last, seen by all)."""
    frames = await receive_until(
        ws, lambda f: f["op"] == "event" and f["data"].get("text") == marker, timeout=5
    )
    return [f["data"]["text"] for f in frames if f["op"] == "event"]


async def test_post_shape_and_effects(app_client: Any, rdb: Any) -> None:
    aki = await signup(app_client, rdb, "aki")
    created = await post(app_client, aki, "hello $[shake wow] \\$[x")
    assert created["text"] == "hello wow $[x"
    assert created["segments"] == [
        {"text": "hello "},
        {"effect": "shake", "children": [{"text": "wow"}]},
        {"text": " $[x"},
    ]
    assert created["author"] == {"handle": "aki", "display_name": "Aki"}
    assert created["visibility"] == "public" and created["community"] is None
    assert created["created_at"].endswith("Z") and isinstance(created["id"], str)


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"text": ""}, "text_required", "text"),
        ({"text": "   "}, "text_blank", "text"),
        ({"text": "a" * 151}, "text_too_long", "text"),
        ({"text": "two\nlines"}, "text_multiline", "text"),
        ({"text": "bell\x07"}, "text_control_character", "text"),
        ({"text": "$[spin x]"}, "unknown_effect", "text"),
        ({"text": "$[big $[shake $[big x]]]"}, "effects_too_deep", "text"),
        ({"text": "$[big oops"}, "unclosed_effect", "text"),
        ({"text": 5}, "invalid_text", "text"),
        ({"text": "ok", "visibility": "secret"}, "invalid_visibility", "visibility"),
        ({"text": "ok", "reply_to": "ffffffffffffffffffff"}, "echo_not_found", "reply_to"),
        ({"text": "ok", "reply_to": 12}, "invalid_reply_to", "reply_to"),
        ({"text": "ok", "reply_to": ["x"]}, "invalid_reply_to", "reply_to"),
        ({"text": "ok", "community": "nope"}, "community_not_found", "community"),
    ],
)
async def test_bad_posts(
    app_client: Any, rdb: Any, body: dict[str, Any], code: str, field: str
) -> None:
    aki = await signup(app_client, rdb, "aki")
    resp = await app_client.post("/api/echoes", json=body, headers=aki.auth)
    assert resp.status in (400, 404)
    error = (await resp.json())["error"]
    assert (error["code"], error.get("field")) == (code, field)
    assert await rdb.zcard(f"eh:posts:{aki.user['id']}") == 0  # nothing half-written


async def test_151_vs_150_in_several_scripts(app_client: Any, rdb: Any) -> None:
    aki = await signup(app_client, rdb, "aki")
    for unit in ("a", "あ", "👨‍👩‍👧‍👦", "e\u0301"):
        ok = await app_client.post("/api/echoes", json={"text": unit * 150}, headers=aki.auth)
        assert ok.status == 201, unit
        bad = await app_client.post("/api/echoes", json={"text": unit * 151}, headers=aki.auth)
        assert bad.status == 400
        assert (await bad.json())["error"]["code"] == "text_too_long"
    markup = await app_client.post("/api/echoes", json={"text": "$[big " + "x" * 150 + "]"},
                                   headers=aki.auth)  # fmt: skip
    assert markup.status == 201


async def setup_cast(client: Any, rdb: Any) -> dict[str, Member]:
    """author; friend (mutual); follower (one-way); stranger; blocked; muted (follows, muted)."""
    names = ("author", "friend", "follower", "stranger", "blocked", "muted")
    cast = {name: await signup(client, rdb, name) for name in names}
    for name in ("friend", "follower", "muted", "blocked"):
        await follow(client, cast[name], "author")
    await follow(client, cast["author"], "friend")
    resp = await client.post("/api/users/blocked/block", headers=cast["author"].auth)
    assert resp.status == 200
    resp = await client.post("/api/users/author/mute", headers=cast["muted"].auth)
    assert resp.status == 200
    return cast


# Who sees a public / friends-only post: live on home, in the home feed, on replay.
EXPECTED = {
    "public": {"author", "friend", "follower"},
    "friends": {"author", "friend"},
}


async def test_visibility_matrix(app_client: Any, rdb: Any) -> None:
    cast = await setup_cast(app_client, rdb)
    viewers = list(cast)
    sockets = {n: await subscribe(app_client, cast[n], "home") for n in viewers}
    public = await post(app_client, cast["author"], "public one")
    friends = await post(app_client, cast["author"], "friends one", visibility="friends")
    # A marker every viewer's home shows: each viewer posts it themself.
    for n in viewers:
        await post(app_client, cast[n], f"marker {n}")
    for n in viewers:
        got = set(await texts_until_marker(sockets[n], f"marker {n}"))
        want = {t for t, vis in (("public one", "public"), ("friends one", "friends"))
                if n in EXPECTED[vis]}  # fmt: skip
        assert {t for t in got if not t.startswith("marker")} == want, n
        feed = await app_client.get("/api/feed/home", headers=cast[n].auth)
        items = {p["text"] for p in (await feed.json())["items"]}
        items = {t for t in items if not t.startswith("marker")}
        assert items == want, n
        await sockets[n].close()
    # The public topic shows the public post to all but the blocked and the muted.
    for n in viewers:
        ws = await subscribe(app_client, cast[n], "public", since="0")
        await post(app_client, cast["stranger"], f"public marker {n}")
        got = set(await texts_until_marker(ws, f"public marker {n}"))
        assert ("public one" in got) == (n not in ("blocked", "muted")), n
        assert "friends one" not in got
        await ws.close()
    # Direct reads follow can_see_post: mutes do not hide a post by link, blocks do.
    for n in viewers:
        resp = await app_client.get(f"/api/echoes/{friends['id']}", headers=cast[n].auth)
        assert (resp.status == 200) == (n in EXPECTED["friends"]), n
        resp = await app_client.get(f"/api/echoes/{public['id']}", headers=cast[n].auth)
        assert (resp.status == 200) == (n != "blocked"), n


async def test_replay_respects_visibility(app_client: Any, rdb: Any) -> None:
    cast = await setup_cast(app_client, rdb)
    ws = await subscribe(app_client, cast["author"], "user:author")
    await post(app_client, cast["author"], "zero")
    first = (await receive_until(ws, lambda f: f["op"] == "event"))[-1]["cursor"]
    await ws.close()
    await post(app_client, cast["author"], "friends only", visibility="friends")
    await post(app_client, cast["author"], "for all")
    for n, want in (("friend", ["friends only", "for all"]), ("follower", ["for all"]),
                    ("stranger", ["for all"])):  # fmt: skip
        ws = await subscribe(app_client, cast[n], "user:author", since=first)
        assert await texts_until_marker(ws, "for all") == want, n
        await ws.close()
    # The blocked member may not subscribe to the blocker's topic at all.
    ws = await app_client.ws_connect("/ws", headers=cast["blocked"].auth)
    await ws.send_json({"op": "sub", "id": 1, "topic": "user:author"})
    reply = await ws.receive_json(timeout=5)
    assert reply["op"] == "error" and reply["code"] == "forbidden"
    await ws.close()


async def test_follow_mute_unfollow_rebind_home_live(app_client: Any, rdb: Any) -> None:
    aki = await signup(app_client, rdb, "aki")
    ben = await signup(app_client, rdb, "ben")
    ws = await subscribe(app_client, aki, "home")
    await follow(app_client, aki, "ben")
    await post(app_client, ben, "after follow")
    assert "after follow" in await texts_until_marker(ws, "after follow")
    resp = await app_client.post("/api/users/ben/mute", headers=aki.auth)
    assert (await resp.json())["relationship"]["muting"] is True
    await post(app_client, ben, "while muted")
    await post(app_client, aki, "aki marker 1")
    assert await texts_until_marker(ws, "aki marker 1") == ["aki marker 1"]
    await app_client.delete("/api/users/ben/mute", headers=aki.auth)
    await post(app_client, ben, "unmuted")
    assert await texts_until_marker(ws, "unmuted") == ["unmuted"]
    await app_client.delete("/api/users/ben/follow", headers=aki.auth)
    await post(app_client, ben, "after unfollow")
    await post(app_client, aki, "aki marker 2")
    assert await texts_until_marker(ws, "aki marker 2") == ["aki marker 2"]
    await ws.close()


async def test_graph_errors(app_client: Any, rdb: Any) -> None:
    aki = await signup(app_client, rdb, "aki")
    ben = await signup(app_client, rdb, "ben")
    cases = [
        ("post", "/api/users/nobody_here/follow", 404, "user_not_found"),
        ("post", "/api/users/aki/follow", 400, "cannot_follow_self"),
        ("post", "/api/users/aki/block", 400, "cannot_target_self"),
        ("get", "/api/users/nobody_here", 404, "user_not_found"),
        ("get", "/api/users/aki/echoes?before=zzz", 400, "invalid_cursor"),
        ("get", "/api/feed/home?before=1234", 400, "invalid_cursor"),
        ("get", "/api/feed/home?limit=0", 400, "invalid_limit"),
        ("get", "/api/feed/discover?before=abc", 400, "invalid_cursor"),
    ]
    for method, path, status, code in cases:
        resp = await getattr(app_client, method)(path, headers=aki.auth)
        assert resp.status == status, path
        assert (await resp.json())["error"]["code"] == code, path
    # Following someone who blocked you is refused, and the block removed both follows.
    await follow(app_client, aki, "ben")
    await follow(app_client, ben, "aki")
    await app_client.post("/api/users/aki/block", headers=ben.auth)
    resp = await app_client.post("/api/users/ben/follow", headers=aki.auth)
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "blocked"
    assert await rdb.scard(f"eh:following:{aki.user['id']}") == 0
    assert await rdb.scard(f"eh:following:{ben.user['id']}") == 0
    resp = await app_client.get("/api/users/ben", headers=aki.auth)
    assert resp.status == 403
    app_client.session.cookie_jar.clear()
    assert (await app_client.post("/api/users/ben/follow")).status == 401


async def test_likes_are_private(app_client: Any, rdb: Any) -> None:
    aki = await signup(app_client, rdb, "aki")
    ben = await signup(app_client, rdb, "ben")
    cho = await signup(app_client, rdb, "cho")
    me = await subscribe(app_client, aki, "me")
    created = await post(app_client, aki, "like me")
    resp = await app_client.post(f"/api/echoes/{created['id']}/like", headers=ben.auth)
    assert resp.status == 200
    note = (await receive_until(me, lambda f: f["op"] == "event"))[-1]
    assert note["type"] == "like"
    assert note["data"]["echo"] == created["id"] and note["data"]["by"]["handle"] == "ben"
    again = await app_client.post(f"/api/echoes/{created['id']}/like", headers=ben.auth)
    assert again.status == 200  # idempotent, and no second notification:
    await me.send_json({"op": "ping", "id": 9})
    assert (await me.receive_json(timeout=5)) == {"op": "pong", "id": 9}
    who = await app_client.get(f"/api/echoes/{created['id']}/likes", headers=aki.auth)
    data = await who.json()
    assert data["count"] == 1 and data["items"][0]["user"]["handle"] == "ben"
    nope = await app_client.get(f"/api/echoes/{created['id']}/likes", headers=cho.auth)
    assert nope.status == 403
    as_ben = await (await app_client.get(f"/api/echoes/{created['id']}",
                                         headers=ben.auth)).json()  # fmt: skip
    assert "like_count" not in as_ben and as_ben["liked"] is True
    as_aki = await (await app_client.get(f"/api/echoes/{created['id']}",
                                         headers=aki.auth)).json()  # fmt: skip
    assert as_aki["like_count"] == 1
    hidden = await post(app_client, aki, "friends only", visibility="friends")
    resp = await app_client.post(f"/api/echoes/{hidden['id']}/like", headers=cho.auth)
    assert resp.status == 404
    assert await rdb.zcard(f"eh:likes:{hidden['id']}") == 0
    resp = await app_client.post("/api/echoes/notanid/like", headers=cho.auth)
    assert resp.status == 404
    await me.close()


async def test_delete_reaches_every_page(app_client: Any, rdb: Any) -> None:
    aki = await signup(app_client, rdb, "aki")
    ben = await signup(app_client, rdb, "ben")
    mod = await signup(app_client, rdb, "mod")
    await rdb.hset(f"eh:user:{mod.user['id']}", "role", "moderator")
    await follow(app_client, ben, "aki")
    pages = [await subscribe(app_client, ben, "home"), await subscribe(app_client, ben, "public"),
             await subscribe(app_client, aki, "user:aki")]  # fmt: skip
    created = await post(app_client, aki, "short lived")
    resp = await app_client.delete(f"/api/echoes/{created['id']}", headers=ben.auth)
    assert resp.status == 403
    resp = await app_client.delete(f"/api/echoes/{created['id']}", headers=aki.auth)
    assert resp.status == 200
    for ws in pages:
        frames = await receive_until(ws, lambda f: f.get("type") == "post.deleted")
        assert frames[-1]["data"]["id"] == created["id"]
        await ws.close()
    assert (await app_client.get(f"/api/echoes/{created['id']}", headers=aki.auth)).status == 404
    other = await post(app_client, aki, "moderated")
    resp = await app_client.delete(f"/api/echoes/{other['id']}", headers=mod.auth)
    assert resp.status == 200
    resp = await app_client.delete(f"/api/echoes/{other['id']}", headers=mod.auth)
    assert resp.status == 404


async def test_feeds_paging_friends_and_discover(app_client: Any, rdb: Any) -> None:
    aki = await signup(app_client, rdb, "aki")
    ben = await signup(app_client, rdb, "ben")
    cho = await signup(app_client, rdb, "cho")
    await follow(app_client, aki, "ben")
    await follow(app_client, ben, "aki")
    await follow(app_client, aki, "cho")
    for i in range(30):
        await post(app_client, ben, f"ben {i}")
    page1 = await (await app_client.get("/api/feed/home", headers=aki.auth)).json()
    assert len(page1["items"]) == 25 and page1["next"]
    page2 = await (await app_client.get(f"/api/feed/home?before={page1['next']}",
                                        headers=aki.auth)).json()  # fmt: skip
    texts = [p["text"] for p in page1["items"] + page2["items"]]
    assert texts == [f"ben {i}" for i in range(29, -1, -1)]
    assert page2["next"] is None
    friends = await (await app_client.get("/api/feed/friends", headers=aki.auth)).json()
    assert [p["text"] for p in friends["items"]] == [f"ben {i}" for i in (29, 28, 27, 26, 25)]
    arch = await (await app_client.get("/api/users/ben/echoes?limit=10", headers=cho.auth)).json()
    assert len(arch["items"]) == 10 and arch["next"]
    popular = await post(app_client, cho, "popular")
    quiet = await post(app_client, cho, "quiet")
    await app_client.post(f"/api/echoes/{popular['id']}/like", headers=ben.auth)
    await app_client.post(f"/api/echoes/{popular['id']}/like", headers=aki.auth)
    await app_client.post(f"/api/echoes/{quiet['id']}/like", headers=aki.auth)
    # aki follows ben and cho; ben liked popular; aki's own likes do not count.
    disc = await (await app_client.get("/api/feed/discover", headers=aki.auth)).json()
    assert [p["text"] for p in disc["items"]] == ["popular"]
    assert "like_count" not in disc["items"][0]
    assert all(set(p) >= {"id", "text", "segments"} for p in disc["items"])


async def test_post_over_the_socket(app_client: Any, rdb: Any) -> None:
    aki = await signup(app_client, rdb, "aki")
    ws = await subscribe(app_client, aki, "home")
    await ws.send_json({"op": "post", "id": 5, "text": "via $[big socket]"})
    # The ack and the live event may come in either order; both must come.
    seen: dict[str, dict[str, Any]] = {}

    def both(frame: dict[str, Any]) -> bool:
        seen[frame["op"]] = frame
        return {"ack", "event"} <= set(seen)

    await receive_until(ws, both)
    assert seen["ack"]["id"] == 5 and seen["ack"]["post"]["text"] == "via socket"
    assert seen["event"]["data"] == seen["ack"]["post"]
    await ws.send_json({"op": "post", "id": 6, "text": "x" * 151})
    reply = (await receive_until(ws, lambda f: f.get("id") == 6))[-1]
    assert reply["op"] == "error" and reply["code"] == "text_too_long"
    assert reply["field"] == "text"
    await ws.close()


async def test_post_rate_limit(aiohttp_client: Any, engine_url: str, rdb: Any,
                               settings: Any) -> None:  # fmt: skip
    from server.app import create_app
    from server.settings import parse_rate_limits

    client = await aiohttp_client(create_app(
        settings.with_(rate_limits=parse_rate_limits("posts=10/60:3")), engine_url))  # fmt: skip
    aki = await signup(client, rdb, "aki")
    statuses = []
    for i in range(4):
        resp = await client.post("/api/echoes", json={"text": f"n{i}"}, headers=aki.auth)
        statuses.append(resp.status)
    assert statuses == [201, 201, 201, 429]
    assert int(resp.headers["Retry-After"]) >= 1
    error = (await resp.json())["error"]
    assert error["code"] == "rate_limited" and error["retry_after"] >= 1
    ws = await client.ws_connect("/ws", headers=aki.auth)
    await ws.send_json({"op": "post", "id": 1, "text": "over"})
    reply = await ws.receive_json(timeout=5)
    assert reply["code"] == "rate_limited" and reply["retry_after"] >= 1
    await ws.send_json({"op": "ping", "id": 2})
    assert await ws.receive_json(timeout=5) == {"op": "pong", "id": 2}
    assert not ws.closed
    await ws.close()


async def test_a_graph_change_reaches_the_very_next_post(app_client: Any, rdb: Any) -> None:
    """Each process keeps an author's blocks, mutes and friends to publish without a
    read; a change made since (here through the same process, which is told nothing)
    must still decide who gets the next post, in both directions."""
    author = await signup(app_client, rdb, "author")
    viewer = await signup(app_client, rdb, "viewer")
    other = await signup(app_client, rdb, "other")
    ws = await subscribe(app_client, viewer, "public")
    await post(app_client, author, "one")
    assert await texts_until_marker(ws, "one") == ["one"]
    assert (await app_client.post("/api/users/author/mute", headers=viewer.auth)).status == 200
    await post(app_client, author, "while muted")
    await post(app_client, other, "marker 1")
    assert await texts_until_marker(ws, "marker 1") == ["marker 1"]
    assert (await app_client.delete("/api/users/author/mute", headers=viewer.auth)).status == 200
    await post(app_client, author, "unmuted")
    assert await texts_until_marker(ws, "unmuted") == ["unmuted"]
    assert (await app_client.post("/api/users/viewer/block", headers=author.auth)).status == 200
    await post(app_client, author, "after the block")
    await post(app_client, other, "marker 2")
    assert await texts_until_marker(ws, "marker 2") == ["marker 2"]
    await ws.close()

    # Friends only: a friendship that ends takes the next friends-only post with it.
    await follow(app_client, other, "author")
    await follow(app_client, author, "other")
    ws = await subscribe(app_client, other, "user:author")
    await post(app_client, author, "for friends", visibility="friends")
    assert await texts_until_marker(ws, "for friends") == ["for friends"]
    assert (await app_client.delete("/api/users/author/follow", headers=other.auth)).status == 200
    await post(app_client, author, "no longer friends", visibility="friends")
    await post(app_client, author, "for all")
    assert await texts_until_marker(ws, "for all") == ["for all"]
    await ws.close()
