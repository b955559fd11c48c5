"""A resume (`sub` with `since`) replays only what the rules in force now show.

History keeps each event with the audience it had when published; these tests change
the graph or delete posts after publishing and before resuming, and check the replay
against what HTTP shows at that moment.
"""

from __future__ import annotations

from typing import Any

from tests.support import Member, call, receive_until, signup


async def post(client: Any, who: Member, text: str, **extra: Any) -> dict[str, Any]:
    return await call(client, "post", "/api/echoes", who, 201, {"text": text, **extra})


async def cursor_of(client: Any, who: Member, topic: str) -> str:
    """Where a subscription to `topic` starts now (a client's cursor before it left)."""
    ws = await client.ws_connect("/ws", headers=who.auth)
    await ws.send_json({"op": "sub", "id": 1, "topic": topic})
    ack = (await receive_until(ws, lambda f: f["op"] in ("ack", "error")))[-1]
    assert ack["op"] == "ack", ack
    await ws.close()
    return str(ack["cursor"])


async def replay(client: Any, who: Member, topic: str, since: str, marker: str) -> list[Any]:
    """The events a resume of `topic` from `since` replays, up to the post `marker`."""
    ws = await client.ws_connect("/ws", headers=who.auth)
    await ws.send_json({"op": "sub", "id": 1, "topic": topic, "since": since})
    frames = await receive_until(
        ws, lambda f: f["op"] == "error" or (f["op"] == "event" and f["data"].get("text") == marker)
    )
    await ws.close()
    assert frames[0]["op"] == "ack" and frames[0]["recovered"] is True, frames[0]
    return [(f["type"], f["data"].get("text") or f["data"]["id"])
            for f in frames if f["op"] == "event"]  # fmt: skip


async def befriend(client: Any, a: Member, b: Member) -> None:
    await call(client, "post", f"/api/users/{b.handle}/follow", a, 200)
    await call(client, "post", f"/api/users/{a.handle}/follow", b, 200)


async def test_after_an_unfriend_the_friends_only_post_is_not_replayed(
    app_client: Any, rdb: Any
) -> None:
    aki, ben, cai = [await signup(app_client, rdb, h) for h in ("aki", "ben", "cai")]
    await befriend(app_client, aki, ben)
    await befriend(app_client, aki, cai)
    home = await cursor_of(app_client, ben, "home")
    user = await cursor_of(app_client, ben, "user:aki")
    await post(app_client, aki, "for friends", visibility="friends")
    await call(app_client, "delete", "/api/users/ben/follow", aki, 200)  # no longer friends
    await post(app_client, aki, "marker")
    # HTTP no longer shows it to ben; a resume must not either, on any topic.
    await call(app_client, "get", "/api/users/aki/echoes", ben, 200)
    feed = await call(app_client, "get", "/api/feed/home", ben, 200)
    assert [p["text"] for p in feed["items"]] == ["marker"]
    assert await replay(app_client, ben, "home", home, "marker") == [("post.created", "marker")]
    assert await replay(app_client, ben, "user:aki", user, "marker") == [("post.created", "marker")]
    # A friend still gets it: the rule hides by today's graph, not everything.
    assert await replay(app_client, cai, "home", home, "marker") == [
        ("post.created", "for friends"), ("post.created", "marker")
    ]  # fmt: skip


async def test_after_a_block_the_blockers_post_is_not_replayed_on_public(
    app_client: Any, rdb: Any
) -> None:
    aki, ben, cai = [await signup(app_client, rdb, h) for h in ("aki", "ben", "cai")]
    since = await cursor_of(app_client, ben, "public")
    await post(app_client, aki, "before the block")
    await call(app_client, "post", "/api/users/ben/block", aki, 200)
    await post(app_client, cai, "marker")
    assert await replay(app_client, ben, "public", since, "marker") == [("post.created", "marker")]
    assert await replay(app_client, cai, "public", since, "marker") == [
        ("post.created", "before the block"), ("post.created", "marker")
    ]  # fmt: skip


async def test_a_muted_author_is_not_replayed_on_the_feeds_but_is_on_their_own_topic(
    app_client: Any, rdb: Any
) -> None:
    aki, ben = [await signup(app_client, rdb, h) for h in ("aki", "ben")]
    public = await cursor_of(app_client, ben, "public")
    user = await cursor_of(app_client, ben, "user:aki")
    await post(app_client, aki, "muted later")
    await call(app_client, "post", "/api/users/aki/mute", ben, 200)
    await post(app_client, ben, "marker")
    assert await replay(app_client, ben, "public", public, "marker") == [("post.created", "marker")]
    await post(app_client, aki, "aki's marker")
    assert await replay(app_client, ben, "user:aki", user, "aki's marker") == [
        ("post.created", "muted later"), ("post.created", "aki's marker")
    ]  # fmt: skip


async def test_deleted_and_removed_posts_replay_only_their_deletion(
    app_client: Any, rdb: Any
) -> None:
    aki, ben = [await signup(app_client, rdb, h) for h in ("aki", "ben")]
    mod = await signup(app_client, rdb, "mod", admin=True)
    since = await cursor_of(app_client, ben, "public")
    mod_since = await cursor_of(app_client, mod, "mod")
    deleted = await post(app_client, aki, "deleted by its author")
    removed = await post(app_client, aki, "removed by a moderator")
    kept = await post(app_client, aki, "kept")
    await call(app_client, "delete", f"/api/echoes/{deleted['id']}", aki, 200)
    await call(app_client, "delete", f"/api/echoes/{removed['id']}", mod, 200)
    await post(app_client, aki, "marker")
    expected = [
        ("post.created", "kept"),
        ("post.deleted", deleted["id"]),
        ("post.deleted", removed["id"]),
        ("post.created", "marker"),
    ]
    assert await replay(app_client, ben, "public", since, "marker") == expected
    assert kept["id"] not in (deleted["id"], removed["id"])
    # Moderators resume the mod topic without the removed text too.
    on_mod = await replay(app_client, mod, "mod", mod_since, "marker")
    assert ("post.created", "deleted by its author") not in on_mod
    assert ("post.created", "removed by a moderator") not in on_mod
    assert ("post.created", "kept") in on_mod


async def test_a_long_replay_costs_a_fixed_number_of_engine_calls(
    app_client: Any, rdb: Any
) -> None:
    aki, ben = [await signup(app_client, rdb, h) for h in ("aki", "ben")]
    since = await cursor_of(app_client, ben, "public")
    for i in range(40):
        await post(app_client, aki, f"post {i}")
    await post(app_client, aki, "marker")

    async def calls() -> dict[str, int]:
        stats = await rdb.info("commandstats")
        return {k: int(v["calls"]) for k, v in stats.items()}

    before = await calls()
    replayed = await replay(app_client, ben, "public", since, "marker")
    after = await calls()
    spent = {k: n - before.get(k, 0) for k, n in after.items() if n != before.get(k, 0)}
    assert len(replayed) == 41
    # The posts' standing: one HMGET each, all in one pipelined round trip.
    assert spent.pop("cmdstat_hmget") == 41
    # The rest: auth, subscribe, head, history, the viewer's graph (a handful of
    # commands each), whatever the number of events; per event it would be 41 more.
    assert sum(spent.values()) < 30, spent


async def reply_replays(
    client: Any, who: Member, cursors: dict[str, str], marker: str
) -> dict[str, list[Any]]:
    """What resuming each topic of `cursors` replays (by text), up to `marker`."""
    return {topic: await replay(client, who, topic, since, marker)
            for topic, since in cursors.items()}  # fmt: skip


async def test_after_a_block_by_the_answered_author_the_reply_is_not_replayed(
    app_client: Any, rdb: Any
) -> None:
    # The reply's own author did not block anyone: only its gate (the post it answers)
    # hides it now, as HTTP does.
    yui, fay, xan, cai = [await signup(app_client, rdb, h) for h in ("yui", "fay", "xan", "cai")]
    await call(app_client, "post", "/api/users/yui/follow", xan, 200)
    question = await post(app_client, yui, "the question")
    cursors = {t: await cursor_of(app_client, xan, t) for t in ("user:fay", "public")}
    others = {t: await cursor_of(app_client, cai, t) for t in ("user:fay", "public")}
    answer = await post(app_client, fay, "the answer", reply_to=question["id"])
    await call(app_client, "post", "/api/users/xan/block", yui, 200)
    await post(app_client, fay, "marker")
    assert (await app_client.get(f"/api/echoes/{answer['id']}", headers=xan.auth)).status == 404
    assert await reply_replays(app_client, xan, cursors, "marker") == {
        "user:fay": [("post.created", "marker")], "public": [("post.created", "marker")]
    }  # fmt: skip
    # One who still sees the question still gets the answer.
    assert await reply_replays(app_client, cai, others, "marker") == {
        "user:fay": [("post.created", "the answer"), ("post.created", "marker")],
        "public": [("post.created", "the answer"), ("post.created", "marker")],
    }  # fmt: skip


async def test_after_an_unfriend_a_reply_to_a_friends_only_post_is_not_replayed(
    app_client: Any, rdb: Any
) -> None:
    aki, fay, sam = [await signup(app_client, rdb, h) for h in ("aki", "fay", "sam")]
    await befriend(app_client, aki, fay)
    await befriend(app_client, aki, sam)
    question = await post(app_client, aki, "for friends", visibility="friends")
    cursors = {t: await cursor_of(app_client, sam, t) for t in ("user:fay", "public")}
    answer = await post(app_client, fay, "a public answer", reply_to=question["id"])
    seen = await call(app_client, "get", f"/api/echoes/{answer['id']}", sam, 200)
    assert seen["reply_to"] == question["id"]  # while friends, sam sees it
    await call(app_client, "delete", "/api/users/sam/follow", aki, 200)  # no longer friends
    await post(app_client, fay, "marker")
    assert (await app_client.get(f"/api/echoes/{answer['id']}", headers=sam.auth)).status == 404
    replayed = await reply_replays(app_client, sam, cursors, "marker")
    assert replayed == {
        "user:fay": [("post.created", "marker")], "public": [("post.created", "marker")]
    }  # fmt: skip


async def test_a_replayed_reply_to_a_post_deleted_since_has_no_reply_to(
    app_client: Any, rdb: Any
) -> None:
    # HTTP shows such a reply without `reply_to` and `in_reply_to`; so does a resume.
    aki, fay, ben = [await signup(app_client, rdb, h) for h in ("aki", "fay", "ben")]
    question = await post(app_client, aki, "soon gone")
    kept = await post(app_client, aki, "kept")
    since = await cursor_of(app_client, ben, "user:fay")
    orphan = await post(app_client, fay, "answer to a gone post", reply_to=question["id"])
    answer = await post(app_client, fay, "answer to a kept post", reply_to=kept["id"])
    await call(app_client, "delete", f"/api/echoes/{question['id']}", aki, 200)
    await post(app_client, fay, "marker")
    shown = await call(app_client, "get", f"/api/echoes/{orphan['id']}", ben, 200)
    assert shown["reply_to"] is None and shown["in_reply_to"] is None
    ws = await app_client.ws_connect("/ws", headers=ben.auth)
    await ws.send_json({"op": "sub", "id": 1, "topic": "user:fay", "since": since})
    frames = await receive_until(
        ws, lambda f: f["op"] != "ack" and (f["op"] == "error" or f["data"].get("text") == "marker")
    )
    await ws.close()
    by_id = {f["data"]["id"]: f["data"] for f in frames if f["op"] == "event"}
    assert by_id[orphan["id"]]["reply_to"] is None
    assert by_id[orphan["id"]]["in_reply_to"] is None
    assert question["id"] not in str(by_id[orphan["id"]])
    assert by_id[answer["id"]]["reply_to"] == kept["id"]
    assert by_id[answer["id"]]["in_reply_to"]["id"] == kept["id"]
