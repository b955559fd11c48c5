"""Search and suggestions over real HTTP on a real engine: what is found, in what
order, and what never is."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import Member, call, error_of, signup


async def named(http: Any, rdb: Any, handle: str, name: str) -> Member:
    member = await signup(http, rdb, handle)
    await call(http, "patch", "/api/me", member, 200, {"display_name": name})
    return member


async def handles(http: Any, who: Member, query: str, **params: str) -> list[str]:
    from urllib.parse import urlencode

    page = await call(http, "get", "/api/search?" + urlencode({"q": query, **params}), who, 200)
    return [item["handle"] for item in page["items"]]


async def texts(http: Any, who: Member, query: str, **params: str) -> list[str]:
    from urllib.parse import urlencode

    url = "/api/search?" + urlencode({"q": query, "type": "posts", **params})
    return [item["text"] for item in (await call(http, "get", url, who, 200))["items"]]


async def test_members_by_handle_or_name_prefix_case_and_width_insensitive(
    app_client: Any, rdb: Any
) -> None:
    me = await signup(app_client, rdb, "searcher")
    await named(app_client, rdb, "aki", "Aki")
    await named(app_client, rdb, "yamada", "山田アキ")
    await named(app_client, rdb, "akira", "Akira Kurosawa")
    await named(app_client, rdb, "kuro", "アキコ")
    assert await handles(app_client, me, "AKI") == ["aki", "akira"]
    assert await handles(app_client, me, "ｱｷ") == ["kuro", "yamada"]  # half-width finds full
    assert await handles(app_client, me, "山田") == ["yamada"]
    assert await handles(app_client, me, "kuros") == ["akira"]  # a word of the name
    assert await handles(app_client, me, "@akir") == ["akira"]
    assert await handles(app_client, me, "nobody") == []
    # A rename moves the member in the index.
    cho = await named(app_client, rdb, "cho", "Chocolate")
    assert await handles(app_client, me, "choc") == ["cho"]
    await call(app_client, "patch", "/api/me", cho, 200, {"display_name": "Vanilla"})
    assert await handles(app_client, me, "choc") == []
    assert await handles(app_client, me, "vani") == ["cho"]
    item = (await call(app_client, "get", "/api/search?q=vani", me, 200))["items"][0]
    assert item == {"handle": "cho", "display_name": "Vanilla", "bio": "", "following": False}


async def test_member_ranking_and_paging(app_client: Any, rdb: Any) -> None:
    me = await signup(app_client, rdb, "searcher")
    await named(app_client, rdb, "sam_b", "Zed")
    await named(app_client, rdb, "zed", "Sam")
    await named(app_client, rdb, "sam", "Whoever")
    await named(app_client, rdb, "sam_a", "Zoe")
    await call(app_client, "post", "/api/users/sam_b/follow", me, 200)
    # The exact handle, then handles (followed first), then display names.
    assert await handles(app_client, me, "sam") == ["sam", "sam_b", "sam_a", "zed"]
    first = await call(app_client, "get", "/api/search?q=sam&limit=3", me, 200)
    assert [i["handle"] for i in first["items"]] == ["sam", "sam_b", "sam_a"]
    assert first["items"][1]["following"] is True
    rest = await call(app_client, "get", f"/api/search?q=sam&limit=3&before={first['next']}", me,
                      200)  # fmt: skip
    assert [i["handle"] for i in rest["items"]] == ["zed"] and rest["next"] is None


async def test_blocked_blocking_and_suspended_members_are_never_found(
    app_client: Any, rdb: Any
) -> None:
    me = await signup(app_client, rdb, "searcher")
    blocker = await named(app_client, rdb, "aki_blocker", "Aki B")
    await named(app_client, rdb, "aki_blocked", "Aki C")
    await named(app_client, rdb, "aki_ok", "Aki D")
    root = await signup(app_client, rdb, "root", admin=True)
    await named(app_client, rdb, "aki_gone", "Aki E")
    await call(app_client, "post", "/api/users/searcher/block", blocker, 200)
    await call(app_client, "post", "/api/users/aki_blocked/block", me, 200)
    await call(app_client, "post", "/api/mod/users/aki_gone/suspend", root, 200, {"reason": "x"})
    assert await handles(app_client, me, "aki") == ["aki_ok"]
    # The blocker does not find the searcher either.
    assert await handles(app_client, blocker, "search") == []


async def test_posts_by_words_and_japanese_newest_first(app_client: Any, rdb: Any) -> None:
    aki = await signup(app_client, rdb, "aki")
    me = await signup(app_client, rdb, "reader")
    for text in ("東京都で $[shake 猫カフェ]", "東京と京都に行った", "Cats in TOKYO", "tokyo dogs",
                 "hello world"):  # fmt: skip
        await call(app_client, "post", "/api/echoes", aki, 201, {"text": text})
    assert await texts(app_client, me, "tokyo") == ["tokyo dogs", "Cats in TOKYO"]
    assert await texts(app_client, me, "ＴＯＫＹＯ cats") == ["Cats in TOKYO"]
    assert await texts(app_client, me, "東京都") == ["東京都で 猫カフェ"]  # not 東京と京都
    assert await texts(app_client, me, "京都") == ["東京と京都に行った", "東京都で 猫カフェ"]
    assert await texts(app_client, me, "猫") == ["東京都で 猫カフェ"]
    assert await texts(app_client, me, "ｶﾌｪ") == ["東京都で 猫カフェ"]
    assert await texts(app_client, me, "shake") == []  # markup is not text
    assert await texts(app_client, me, "world hello") == ["hello world"]
    assert await texts(app_client, me, "hello mars") == []


async def test_posts_found_are_only_those_the_searcher_may_see(app_client: Any, rdb: Any) -> None:
    aki = await signup(app_client, rdb, "aki")
    friend = await signup(app_client, rdb, "friend")
    stranger = await signup(app_client, rdb, "stranger")
    blocked = await signup(app_client, rdb, "blocked")
    for a, b in (("aki", friend), ("friend", aki)):
        await call(app_client, "post", f"/api/users/{a}/follow", b, 200)
    await call(app_client, "post", "/api/echoes", aki, 201, {"text": "secret picnic",
                                                             "visibility": "friends"})  # fmt: skip
    public = await call(app_client, "post", "/api/echoes", aki, 201, {"text": "open picnic"})
    gone = await call(app_client, "post", "/api/echoes", aki, 201, {"text": "deleted picnic"})
    await call(app_client, "delete", f"/api/echoes/{gone['id']}", aki, 200)
    await call(app_client, "post", "/api/users/blocked/block", aki, 200)
    await call(app_client, "post", "/api/echoes", blocked, 201, {"text": "blocked picnic"})
    assert await texts(app_client, friend, "picnic") == ["blocked picnic", "open picnic",
                                                         "secret picnic"]  # fmt: skip
    assert await texts(app_client, stranger, "picnic") == ["blocked picnic", "open picnic"]
    assert await texts(app_client, aki, "picnic") == ["open picnic", "secret picnic"]
    assert await texts(app_client, blocked, "picnic") == ["blocked picnic"]
    # A deleted post stays in its terms' lists until trimmed, but is never found.
    assert await rdb.lrange("eh:tl:deleted", 0, -1) == [gone["id"]]
    assert await texts(app_client, aki, "deleted") == []
    assert await rdb.lrange("eh:tl:open", 0, -1) == [public["id"]]


async def test_post_search_pages(app_client: Any, rdb: Any) -> None:
    aki = await signup(app_client, rdb, "aki")
    for i in range(7):
        await call(app_client, "post", "/api/echoes", aki, 201, {"text": f"page item {i}"})
    seen: list[str] = []
    before = None
    for _ in range(5):
        url = "/api/search?q=item&type=posts&limit=3" + (f"&before={before}" if before else "")
        page = await call(app_client, "get", url, aki, 200)
        seen += [p["text"] for p in page["items"]]
        before = page["next"]
        if before is None:
            break
    assert seen == [f"page item {i}" for i in reversed(range(7))]


@pytest.mark.parametrize(
    ("query", "code", "field"),
    [
        ("", "query_required", "q"),
        ("q=", "query_required", "q"),
        ("q=%20%20", "query_required", "q"),
        ("q=!!!%3F", "query_no_words", "q"),
        ("q=" + "a" * 101, "query_too_long", "q"),
        ("q=" + "a" * 5000, "query_too_long", "q"),
        ("q=%00x", "invalid_query", "q"),
        ("q=aki&type=users", "invalid_type", "type"),
        ("q=aki&type=posts&before=zzz", "invalid_cursor", "before"),
        ("q=aki&before=-1", "invalid_cursor", "before"),
        ("q=aki&limit=0", "invalid_limit", "limit"),
        ("q=aki&limit=51", "invalid_limit", "limit"),
        ("q=aki&type=posts&limit=x", "invalid_limit", "limit"),
    ],
)
async def test_bad_searches(app_client: Any, rdb: Any, query: str, code: str, field: str) -> None:
    me = await signup(app_client, rdb, "searcher")
    assert await error_of(app_client, "get", f"/api/search?{query}", me, 400) == (code, field)


async def test_suggestions_are_whom_several_friends_follow(app_client: Any, rdb: Any) -> None:
    me = await signup(app_client, rdb, "newbie")
    assert (await call(app_client, "get", "/api/suggestions", me, 200))["items"] == []
    b, c, d = [await signup(app_client, rdb, h) for h in ("bea", "cal", "dee")]
    popular, liked, once, followed, blocker, blocked = [
        await signup(app_client, rdb, h)
        for h in ("popular", "liked", "once", "followed", "blocker", "blocked")
    ]
    for friend in (b, c, d):
        await call(app_client, "post", f"/api/users/{friend.handle}/follow", me, 200)
        await call(app_client, "post", "/api/users/newbie/follow", friend, 200)
    follows = {
        "bea": ["popular", "liked", "once", "followed", "blocker", "blocked"],
        "cal": ["popular", "liked", "followed", "blocker", "blocked"],
        "dee": ["popular"],
    }
    for who, targets in follows.items():
        member = {"bea": b, "cal": c, "dee": d}[who]
        for target in targets:
            await call(app_client, "post", f"/api/users/{target}/follow", member, 200)
    await call(app_client, "post", "/api/users/followed/follow", me, 200)
    await call(app_client, "post", "/api/users/newbie/block", blocker, 200)
    await call(app_client, "post", "/api/users/blocked/block", me, 200)
    items = (await call(app_client, "get", "/api/suggestions", me, 200))["items"]
    assert [(i["handle"], i["friends"]) for i in items] == [("popular", 3), ("liked", 2)]
    assert popular and liked and once and followed and blocked  # signed up above


async def test_ones_only_friend_is_enough_for_a_newcomer(app_client: Any, rdb: Any) -> None:
    host = await signup(app_client, rdb, "host")
    await signup(app_client, rdb, "pal")
    await call(app_client, "post", "/api/users/pal/follow", host, 200)
    invite = await call(app_client, "post", "/api/invites", host, 201, {})
    newcomer = await signup(app_client, rdb, "newcomer", invite=invite["code"])
    items = (await call(app_client, "get", "/api/suggestions", newcomer, 200))["items"]
    assert [(i["handle"], i["friends"]) for i in items] == [("pal", 1)]


async def test_members_from_before_the_index_are_indexed_on_the_first_search(
    app_client: Any, rdb: Any
) -> None:
    me = await signup(app_client, rdb, "searcher")
    await named(app_client, rdb, "old_timer", "Old Timer")
    await rdb.delete("eh:names", "eh:names:built")  # as an engine from before the index
    assert await handles(app_client, me, "old") == ["old_timer"]
    assert await handles(app_client, me, "tim") == ["old_timer"]


async def test_a_terms_list_is_trimmed_to_the_newest(app_client: Any, rdb: Any) -> None:
    from server.store.search import INDEX_POST

    for i in range(1004):
        await rdb.eval(INDEX_POST, 0, f"{i:020x}", "word other", 3)
    # Trimmed back to 3 when it grew past 3 + 1,000; then pushed on again.
    assert await rdb.lrange("eh:tl:word", 0, -1) == [f"{i:020x}" for i in (1003, 1002, 1001)]
    assert await rdb.llen("eh:tl:other") == 3
