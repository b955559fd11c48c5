"""Conversations over real HTTP on a real engine: mention, link and tag segments, tag
pages (replies, threads and notifications have their own files)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import call, error_of, signup


async def test_segments_of_mentions_links_and_tags(app_client: Any, rdb: Any) -> None:
    aki = await signup(app_client, rdb, "aki")
    await signup(app_client, rdb, "ren")
    text = "@Ren @nobody see https://example.com/x. $[big #東京 @ren]"
    created = await call(app_client, "post", "/api/echoes", aki, 201, {"text": text})
    assert created["text"] == "@Ren @nobody see https://example.com/x. #東京 @ren"
    assert created["segments"] == [
        {"mention": "ren", "text": "@Ren"},
        {"text": " @nobody see "},
        {"link": "https://example.com/x", "text": "https://example.com/x"},
        {"text": ". "},
        {"effect": "big", "children": [
            {"tag": "東京", "text": "#東京"}, {"text": " "}, {"mention": "ren", "text": "@ren"},
        ]},
    ]  # fmt: skip
    # Stored as sent: a read gives the same segments.
    again = await call(app_client, "get", f"/api/echoes/{created['id']}", aki, 200)
    assert again["segments"] == created["segments"]


async def test_tag_page_lists_visible_posts_newest_first(app_client: Any, rdb: Any) -> None:
    aki = await signup(app_client, rdb, "aki")
    ren = await signup(app_client, rdb, "ren")
    first = await call(app_client, "post", "/api/echoes", aki, 201, {"text": "#Tokyo one"})
    second = await call(app_client, "post", "/api/echoes", aki, 201, {"text": "two #tokyo"})
    hidden = await call(app_client, "post", "/api/echoes", aki, 201,
                        {"text": "#TOKYO friends", "visibility": "friends"})  # fmt: skip
    await call(app_client, "post", "/api/echoes", aki, 201, {"text": "#osaka"})
    page = await call(app_client, "get", "/api/tags/tokyo?limit=1", ren, 200)
    assert page["tag"] == "tokyo"
    assert [p["id"] for p in page["items"]] == [second["id"]]
    rest = await call(app_client, "get", f"/api/tags/%23Tokyo?before={page['next']}", ren, 200)
    assert [p["id"] for p in rest["items"]] == [first["id"]] and rest["next"] is None
    mine = await call(app_client, "get", "/api/tags/tokyo", aki, 200)
    assert [p["id"] for p in mine["items"]] == [hidden["id"], second["id"], first["id"]]
    # A deleted post leaves its tags.
    await call(app_client, "delete", f"/api/echoes/{second['id']}", aki, 200)
    assert await rdb.zscore("eh:tag:tokyo", second["id"]) is None
    jp = await call(app_client, "post", "/api/echoes", aki, 201, {"text": "今日は#ラーメン"})
    found = await call(app_client, "get", "/api/tags/%E3%83%A9%E3%83%BC%E3%83%A1%E3%83%B3", ren,
                       200)  # fmt: skip
    assert [p["id"] for p in found["items"]] == [jp["id"]]


@pytest.mark.parametrize(
    ("path", "status", "code", "field"),
    [
        ("/api/tags/" + "a" * 51, 400, "invalid_tag", "tag"),
        ("/api/tags/" + "a" * 5000, 400, "invalid_tag", "tag"),
        ("/api/tags/123", 400, "invalid_tag", "tag"),
        ("/api/tags/a%20b", 400, "invalid_tag", "tag"),
        ("/api/tags/%23", 400, "invalid_tag", "tag"),
        ("/api/tags/ok?before=garbage", 400, "invalid_cursor", "before"),
        ("/api/tags/ok?limit=nope", 400, "invalid_limit", "limit"),
    ],
)
async def test_bad_tag_pages(
    app_client: Any, rdb: Any, path: str, status: int, code: str, field: str
) -> None:
    aki = await signup(app_client, rdb, "aki")
    assert await error_of(app_client, "get", path, aki, status) == (code, field)


async def test_an_empty_tag_is_no_page(app_client: Any, rdb: Any) -> None:
    aki = await signup(app_client, rdb, "aki")
    assert await error_of(app_client, "get", "/api/tags/", aki, 404) == ("not_found", None)
