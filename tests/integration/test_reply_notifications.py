"""`reply` and `mention` notifications across two server processes on one engine: who
gets them (once, only if they may see the post, never across a block or a mute)."""

from __future__ import annotations

from typing import Any

from tests.support import Member, Server, call, receive_until, signup, subscribe


async def befriend(http: Server, a: Member, b: Member) -> None:
    await call(http, "post", f"/api/users/{b.handle}/follow", a, 200)
    await call(http, "post", f"/api/users/{a.handle}/follow", b, 200)


async def notes_until(ws: Any, echo_id: str) -> list[dict[str, Any]]:
    """The `me` events up to the one about post `echo_id` (sent last, on purpose)."""
    frames = await receive_until(
        ws, lambda f: f["op"] == "event" and f["data"].get("echo") == echo_id, timeout=5
    )
    return [f for f in frames if f["op"] == "event"]


async def test_reply_and_mention_cross_processes(
    two_servers: tuple[Server, Server], rdb: Any
) -> None:
    one, two = two_servers
    bea = await signup(one, rdb, "bea")
    ann = await signup(one, rdb, "ann")
    cal = await signup(one, rdb, "cal")
    await befriend(one, ann, bea)
    bea_me = await subscribe(one, bea, "me")
    cal_me = await subscribe(one, cal, "me")
    question = await call(two, "post", "/api/echoes", bea, 201, {"text": "lunch?"})
    # Posted on the other process: a reply that mentions bea (one notification: the
    # reply) and cal.
    reply = await call(two, "post", "/api/echoes", ann, 201,
                       {"text": "@bea yes! @Cal too", "reply_to": question["id"]})  # fmt: skip
    got = await notes_until(bea_me, reply["id"])
    assert [f["type"] for f in got] == ["reply"]
    data = got[0]["data"]
    assert data["echo"] == reply["id"] and data["reply_to"] == question["id"]
    assert data["text"] == "@bea yes! @Cal too" and data["reply_to_text"] == "lunch?"
    assert data["by"] == {"handle": "ann", "display_name": "Ann"}
    mention = (await notes_until(cal_me, reply["id"]))[-1]
    assert mention["type"] == "mention" and mention["data"]["text"] == reply["text"]

    # Replying to oneself, or mentioning oneself: nothing. A mention of a member who
    # may not see the post (friends-only), who blocked or muted the author: nothing.
    dan = await signup(one, rdb, "dan")
    eve = await signup(one, rdb, "eve")
    await call(one, "post", "/api/users/ann/block", dan, 200)
    await call(one, "post", "/api/users/ann/mute", eve, 200)
    dan_me = await subscribe(one, dan, "me")
    eve_me = await subscribe(one, eve, "me")
    ann_me = await subscribe(one, ann, "me")
    await call(
        two,
        "post",
        "/api/echoes",
        ann,
        201,
        {"text": "@ann @dan @eve note to self", "reply_to": reply["id"]},
    )
    await call(two, "post", "/api/echoes", ann, 201,
               {"text": "@cal friends only", "visibility": "friends"})  # fmt: skip
    last = await call(two, "post", "/api/echoes", bea, 201,
                      {"text": "@ann @cal @dan @eve all", "reply_to": reply["id"]})  # fmt: skip
    final = await call(two, "post", "/api/echoes", bea, 201, {"text": "@dan @eve hello"})
    # bea's posts come last; each sees only those (dan and eve did nothing to bea).
    assert [f["type"] for f in await notes_until(ann_me, last["id"])] == ["reply"]
    assert [f["type"] for f in await notes_until(cal_me, last["id"])] == ["mention"]
    # dan blocked ann, so may not see her post, nor bea's reply under it.
    got = await notes_until(dan_me, final["id"])
    assert [(f["type"], f["data"]["echo"]) for f in got] == [("mention", final["id"])]
    got = await notes_until(eve_me, final["id"])
    assert [f["data"]["echo"] for f in got] == [last["id"], final["id"]]
    for ws in (bea_me, cal_me, dan_me, eve_me, ann_me):
        await ws.close()


async def test_no_reply_notification_across_a_block_or_mute(
    two_servers: tuple[Server, Server], rdb: Any
) -> None:
    one, two = two_servers
    bea = await signup(one, rdb, "bea")
    ann = await signup(one, rdb, "ann")
    ren = await signup(one, rdb, "ren")
    question = await call(one, "post", "/api/echoes", bea, 201, {"text": "anyone?"})
    bea_me = await subscribe(one, bea, "me")
    await call(one, "post", "/api/users/ann/mute", bea, 200)
    await call(two, "post", "/api/echoes", ann, 201, {"text": "muted", "reply_to": question["id"]})
    await call(one, "post", "/api/users/bea/block", ren, 200)  # ren blocked bea: no reply at all
    assert (await two.post("/api/echoes", json={"text": "x", "reply_to": question["id"]},
                           headers=ren.auth)).status == 404  # fmt: skip
    last = await call(two, "post", "/api/echoes", bea, 201, {"text": "self", "reply_to":
                                                               question["id"]})  # fmt: skip
    cal = await signup(one, rdb, "cal")
    final = await call(two, "post", "/api/echoes", cal, 201,
                       {"text": "finally", "reply_to": last["id"]})  # fmt: skip
    got = await notes_until(bea_me, final["id"])
    assert [(f["type"], f["data"]["echo"]) for f in got] == [("reply", final["id"])]
    await bea_me.close()
