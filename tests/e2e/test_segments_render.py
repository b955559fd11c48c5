"""The page renders the server's mention, link and tag segments as the server means them:
web/js/effects.js run in Chromium on segments from server/domain/segments.py, a table
plus random texts. The rendered text is the post's text, and the links are exactly the
server's, made of text nodes (no markup from a post ever becomes elements)."""

from __future__ import annotations

import random
import urllib.parse
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from server.domain.echo import validate_echo_text
from server.domain.errors import DomainError
from server.domain.segments import annotate
from tests.e2e.conftest import EchoHubServer

MEMBERS = {"aki", "ren_2"}

TABLE = [
    "hello @aki and @nobody",
    "see https://example.com/a?b=1&c=<2>#x.",
    "HTTPS://EXAMPLE.COM/@aki#tag",
    "#東京 今日は#ラーメン ＃ｔｏｋｙｏ",
    "$[big @ren_2 $[shake #wow https://e.com]]",
    'https://e.com/"><img src=x onerror=alert(1)>',
    "@aki<script>alert(1)</script>",
    "javascript:alert(1) #x",
]
ALPHABET = ["@", "#", "aki", "ren_2", "https://", "http://", "e.com", "/", ".", ")", "(", " ",
            "東京", "が", "<b>", "&amp;", "$[big ", "]", "x", "'", '"', "＃"]  # fmt: skip


def random_texts(count: int, seed: int = 14) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choices(ALPHABET, k=rng.randint(1, 12))) for _ in range(count)]


def server_view(source: str) -> dict[str, Any] | None:
    """The segments the server sends, the text and the links a page must show."""
    try:
        echo = validate_echo_text(source)
    except DomainError:
        return None
    segments = annotate(echo.segments, MEMBERS).segments
    links: list[list[str]] = []

    def walk(items: list[dict[str, Any]]) -> None:
        for seg in items:
            if "children" in seg:
                walk(seg["children"])
            elif "mention" in seg:
                links.append(["mention", "#/u/" + seg["mention"], "", seg["text"]])
            elif "tag" in seg:
                href = "#/t/" + urllib.parse.quote(seg["tag"], safe="")
                links.append(["tag", href, "", seg["text"]])
            elif "link" in seg:
                links.append(["link", seg["link"], "noopener nofollow ugc", seg["text"]])

    walk(segments)
    return {"segments": segments, "text": echo.text, "links": links}


@pytest.fixture(scope="module")
def page(browser: Browser, echohub: EchoHubServer) -> Any:
    context = browser.new_context()
    page = context.new_page()
    page.goto(echohub.base)
    page.wait_for_function("document.readyState === 'complete'")
    yield page
    context.close()


def rendered(page: Page, segment_lists: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return list(
        page.evaluate(
            """async (lists) => {
                const { renderSegments } = await import("/js/effects.js");
                return lists.map((segments) => {
                    const p = document.createElement("p");
                    p.append(renderSegments(segments));
                    const links = [...p.querySelectorAll("a")].map((a) => [
                        a.className, a.getAttribute("href"), a.getAttribute("rel") || "",
                        a.textContent,
                    ]);
                    const onlyText = [...p.querySelectorAll("a")].every((a) =>
                        [...a.childNodes].every((n) => n.nodeType === Node.TEXT_NODE));
                    const elements = [...p.querySelectorAll("*")].map((e) => e.tagName);
                    return { text: p.textContent, links, onlyText, elements };
                });
            }""",
            segment_lists,
        )
    )


def check(page: Page, sources: list[str]) -> int:
    views = [v for v in map(server_view, sources) if v is not None]
    for view, shown in zip(views, rendered(page, [v["segments"] for v in views]), strict=True):
        assert shown["text"] == view["text"]
        assert shown["links"] == view["links"], view["text"]
        assert shown["onlyText"]
        assert set(shown["elements"]) <= {"A", "SPAN"}
    return len(views)


def test_table_renders_as_the_server_parsed_it(page: Page) -> None:
    assert check(page, TABLE) == len(TABLE)


def test_random_texts_render_as_the_server_parsed_them(page: Page) -> None:
    assert check(page, random_texts(300)) > 200


def test_a_link_the_server_did_not_make_is_not_followed(page: Page) -> None:
    # Defence in depth: even a forged segment with another scheme stays text.
    shown = rendered(page, [[{"link": "javascript:alert(1)", "text": "click"}]])[0]
    assert shown == {"text": "click", "links": [], "onlyText": True, "elements": []}
