"""Communities on a real engine: creating and browsing, the approval round trip live
across two processes, reading and posting rights, and refusals that change nothing."""

from __future__ import annotations

from typing import Any

from tests.support import Member, Server, call, error_of, receive_until, signup, subscribe, ws_sub


async def create(http: Any, who: Member, name: str, policy: str = "open") -> dict[str, Any]:
    body = {"name": name, "description": f"about {name}", "join_policy": policy}
    resp = await http.post("/api/communities", json=body, headers=who.auth)
    assert resp.status == 201, await resp.text()
    created: dict[str, Any] = await resp.json()
    return created


async def engine_snapshot(rdb: Any) -> dict[str, Any]:
    """Every community key and its content, to assert a refusal changed nothing."""
    snap: dict[str, Any] = {}
    for pattern in ("eh:community*", "eh:cmembers:*", "eh:crequests:*", "eh:mycommunities:*",
                    "eh:communities", "eh:cposts:*"):  # fmt: skip
        for key in await rdb.keys(pattern):
            kind = await rdb.type(key)
            if kind == "hash":
                snap[key] = await rdb.hgetall(key)
            else:
                snap[key] = await rdb.zrange(key, 0, -1, withscores=True)
    return snap


async def test_create_shape_browse_and_bad_input(app_client: Any, rdb: Any) -> None:
    aki = await signup(app_client, rdb, "aki")
    ben = await signup(app_client, rdb, "ben")
    cats = await create(app_client, aki, "Tokyo Cats", "approval")
    assert set(cats) == {"id", "name", "description", "join_policy", "owner", "members",
                         "membership", "created_at"}  # fmt: skip
    assert cats["owner"] == {"handle": "aki", "display_name": "Aki"}
    assert (cats["members"], cats["membership"], cats["join_policy"]) == (1, "owner", "approval")
    as_ben = await call(app_client, "get", f"/api/communities/{cats['id']}", ben, 200)
    assert as_ben["membership"] == "none" and as_ben["members"] == 1
    before = await engine_snapshot(rdb)
    cases: list[tuple[Any, int, str, str | None]] = [
        ({"name": "TOKYO CATS", "join_policy": "open"}, 409, "name_taken", "name"),
        ({"name": "", "join_policy": "open"}, 400, "invalid_name", "name"),
        ({"name": "x" * 51, "join_policy": "open"}, 400, "invalid_name", "name"),
        ({"name": "ok", "join_policy": "secret"}, 400, "invalid_join_policy", "join_policy"),
        ({"name": "ok"}, 400, "invalid_join_policy", "join_policy"),
        ([1, 2], 400, "invalid_body", None),
    ]
    for body, status, code, field in cases:
        got = await error_of(app_client, "post", "/api/communities", ben, status, body)
        assert got == (code, field), body
    for path in ("/api/communities/ffffffffffffffffffff", "/api/communities/nope",
                 "/api/communities/ffffffffffffffffffff/echoes"):  # fmt: skip
        assert (await error_of(app_client, "get", path, ben, 404))[0] == "community_not_found"
    assert await engine_snapshot(rdb) == before
    # Browsing: newest first, in cursor pages; `mine` lists one's own communities.
    made = [cats] + [await create(app_client, ben, f"club {i}") for i in range(4)]
    page1 = await call(app_client, "get", "/api/communities?limit=3", aki, 200)
    page2 = await call(app_client, "get", f"/api/communities?limit=3&before={page1['next']}",
                       aki, 200)  # fmt: skip
    assert page2["next"] is None
    ids = [c["id"] for c in page1["items"] + page2["items"]]
    assert ids == [c["id"] for c in reversed(made)]
    mine = await call(app_client, "get", "/api/communities?mine=1", aki, 200)
    assert [c["name"] for c in mine["items"]] == ["Tokyo Cats"]
    bad = await error_of(app_client, "get", "/api/communities?before=zz", aki, 400)
    assert bad == ("invalid_cursor", "before")


async def test_approval_round_trip_live_across_processes(
    two_servers: tuple[Server, Server], rdb: Any
) -> None:
    a, b = two_servers
    owner = await signup(a, rdb, "owner")
    ben = await signup(b, rdb, "ben")
    cho = await signup(b, rdb, "cho")
    club = await create(a, owner, "Night Owls", "approval")
    base = f"/api/communities/{club['id']}"
    owner_me = await subscribe(a, owner, "me")
    ben_me = await subscribe(b, ben, "me")
    cho_me = await subscribe(a, cho, "me")

    requested = await call(b, "post", f"{base}/join", ben, 200)
    assert requested["status"] == "requested"
    assert requested["community"]["membership"] == "requested"
    note = (await receive_until(owner_me, lambda f: f["op"] == "event"))[-1]
    assert note["type"] == "community.join_requested"
    assert note["data"]["user"]["handle"] == "ben"
    assert note["data"]["community"] == {"id": club["id"], "name": "Night Owls"}
    pending = await call(a, "get", f"{base}/requests", owner, 200)
    assert [r["user"]["handle"] for r in pending["items"]] == ["ben"]

    # Refusals, each leaving the engine as it was.
    before = await engine_snapshot(rdb)
    assert await error_of(b, "post", f"{base}/join", ben, 409) == ("request_pending", None)
    assert (await error_of(b, "post", f"{base}/requests/ben/approve", cho, 403))[0] == "forbidden"
    assert (await error_of(b, "get", f"{base}/requests", cho, 403))[0] == "forbidden"
    assert await error_of(a, "post", f"{base}/requests/cho/approve", owner, 404) == (
        "request_not_found", "handle")  # fmt: skip
    assert await error_of(a, "post", f"{base}/requests/cho/reject", owner, 404) == (
        "request_not_found", "handle")  # fmt: skip
    assert (await error_of(a, "post", f"{base}/requests/nobody_x/approve", owner, 404))[0] == (
        "user_not_found")  # fmt: skip
    assert (await error_of(a, "post", "/api/communities/ffffffffffffffffffff/requests/ben/approve",
                           owner, 404))[0] == "community_not_found"  # fmt: skip
    assert await engine_snapshot(rdb) == before

    approved = await call(a, "post", f"{base}/requests/ben/approve", owner, 200)
    assert approved["status"] == "joined" and approved["community"]["members"] == 2
    note = (await receive_until(ben_me, lambda f: f["op"] == "event"))[-1]
    assert note["type"] == "community.joined" and note["data"]["community"]["id"] == club["id"]
    assert await error_of(b, "post", f"{base}/join", ben, 409) == ("already_member", None)
    assert await error_of(a, "post", f"{base}/requests/ben/approve", owner, 404) == (
        "request_not_found", "handle")  # fmt: skip
    as_ben = await call(b, "get", base, ben, 200)
    assert as_ben["membership"] == "member" and as_ben["members"] == 2

    # A rejection reaches the requester live too; the request is gone afterwards.
    assert (await call(a, "post", f"{base}/join", cho, 200))["status"] == "requested"
    rejected = await call(a, "post", f"{base}/requests/cho/reject", owner, 200)
    assert rejected["status"] == "rejected" and rejected["community"]["members"] == 2
    note = (await receive_until(cho_me, lambda f: f["op"] == "event"))[-1]
    assert note["type"] == "community.join_rejected"
    assert (await call(a, "get", base, cho, 200))["membership"] == "none"
    for ws in (owner_me, ben_me, cho_me):
        await ws.close()


async def post_in(http: Any, who: Member, community: str, text: str) -> Any:
    return await http.post("/api/echoes", json={"text": text, "community": community},
                           headers=who.auth)  # fmt: skip


async def test_approval_community_is_for_members(app_client: Any, rdb: Any) -> None:
    owner = await signup(app_client, rdb, "owner")
    member = await signup(app_client, rdb, "member")
    outsider = await signup(app_client, rdb, "outsider")
    club = await create(app_client, owner, "Secret Garden", "approval")
    cid, base = club["id"], f"/api/communities/{club['id']}"
    await call(app_client, "post", f"{base}/join", member, 200)
    await call(app_client, "post", f"{base}/requests/member/approve", owner, 200)

    before = await engine_snapshot(rdb)
    resp = await post_in(app_client, outsider, cid, "let me in")
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "not_a_member"
    assert await engine_snapshot(rdb) == before
    _, reply = await ws_sub(app_client, outsider, f"community:{cid}")
    assert reply["op"] == "error" and reply["code"] == "forbidden"
    _, reply = await ws_sub(app_client, outsider, "community:ffffffffffffffffffff")
    assert reply["op"] == "error" and reply["code"] == "community_not_found"
    assert (await error_of(app_client, "get", f"{base}/echoes", outsider, 403))[0] == "forbidden"
    assert (await error_of(app_client, "get", f"{base}/members", outsider, 403))[0] == "forbidden"

    live = await subscribe(app_client, owner, f"community:{cid}")
    public = await subscribe(app_client, outsider, "public")
    resp = await post_in(app_client, member, cid, "members only")
    assert resp.status == 201
    posted = await resp.json()
    event = (await receive_until(live, lambda f: f["op"] == "event"))[-1]
    assert event["type"] == "post.created" and event["data"]["id"] == posted["id"]
    assert event["data"]["community"] == cid
    page = await call(app_client, "get", f"{base}/echoes", member, 200)
    assert [p["text"] for p in page["items"]] == ["members only"]
    assert (await app_client.get(f"/api/echoes/{posted['id']}",
                                 headers=outsider.auth)).status == 404  # fmt: skip
    members = await call(app_client, "get", f"{base}/members", member, 200)
    assert {m["user"]["handle"] for m in members["items"]} == {"owner", "member"}

    # The owner removes a member's post; it disappears from the community topic live.
    resp = await app_client.delete(f"/api/echoes/{posted['id']}", headers=owner.auth)
    assert resp.status == 200
    gone = (await receive_until(live, lambda f: f.get("type") == "post.deleted"))[-1]
    assert gone["data"]["id"] == posted["id"]
    # The public topic never carried the closed community's post: the outsider's own
    # public post is the first thing it shows.
    resp = await app_client.post("/api/echoes", json={"text": "outside"}, headers=outsider.auth)
    frames = await receive_until(public, lambda f: f["op"] == "event")
    assert [f["data"]["text"] for f in frames if f["op"] == "event"] == ["outside"]
    await live.close()
    await public.close()


async def test_open_community_reading_joining_leaving(app_client: Any, rdb: Any) -> None:
    owner = await signup(app_client, rdb, "owner")
    reader = await signup(app_client, rdb, "reader")
    club = await create(app_client, owner, "Open Mic", "open")
    cid, base = club["id"], f"/api/communities/{club['id']}"
    resp = await post_in(app_client, owner, cid, "welcome all")
    assert resp.status == 201
    # Everyone signed in reads an open community, live and by page; only members post.
    live = await subscribe(app_client, reader, f"community:{cid}")
    page = await call(app_client, "get", f"{base}/echoes", reader, 200)
    assert [p["text"] for p in page["items"]] == ["welcome all"]
    resp = await post_in(app_client, reader, cid, "can I?")
    assert resp.status == 403
    me = await subscribe(app_client, reader, "me")
    joined = await call(app_client, "post", f"{base}/join", reader, 200)
    assert joined["status"] == "joined" and joined["community"]["membership"] == "member"
    note = (await receive_until(me, lambda f: f["op"] == "event"))[-1]
    assert note["type"] == "community.joined"
    assert await error_of(app_client, "post", f"{base}/join", reader, 409) == (
        "already_member", None)  # fmt: skip
    resp = await post_in(app_client, reader, cid, "now I can")
    assert resp.status == 201
    event = (await receive_until(live, lambda f: f["op"] == "event"))[-1]
    assert event["data"]["text"] == "now I can"

    left = await call(app_client, "post", f"{base}/leave", reader, 200)
    assert left["status"] == "left" and left["community"]["members"] == 1
    before = await engine_snapshot(rdb)
    assert await error_of(app_client, "post", f"{base}/leave", reader, 409) == (
        "not_a_member", None)  # fmt: skip
    assert await error_of(app_client, "post", f"{base}/leave", owner, 409) == (
        "owner_cannot_leave", None)  # fmt: skip
    assert (await error_of(app_client, "post", "/api/communities/x/join", reader,
                           404))[0] == "community_not_found"  # fmt: skip
    assert await engine_snapshot(rdb) == before
    resp = await post_in(app_client, reader, cid, "not any more")
    assert resp.status == 403
    await live.close()
    await me.close()
