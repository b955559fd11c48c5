"""The composer counts and checks text exactly as the server does: web/js/markup.js run
in Chromium against server/domain/echo.py on the same inputs, a table plus random
markup-heavy strings."""

from __future__ import annotations

import random
from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from server.domain.echo import validate_echo_text, visible_length
from server.domain.effects import segments_to_wire
from server.domain.errors import DomainError
from tests.e2e.conftest import EchoHubServer

TABLE = [
    "hello",
    "$[shake wow]",
    "hello $[shake wow]",
    "$[big $[shake wow]]",
    "$[big $[shake $[big deep]]]",
    "\\$[shake not an effect]",
    "\\\\$[big x]",
    "\\\\\\$[big x]",
    "a\\b",
    "a] b ]",
    "$[shake a]b]",
    "$[wobble x]",
    "$[ x]",
    "$[shake  ]",
    "$[shake\u3000x]",
    "$[shakex]",
    "$[shake x",
    "$[",
    "$[shake",
    "$[big $[shake x]",
    "$ money $",
    "👨‍👩‍👧‍👦 family",
    "👍🏽👍🏽",
    "🇯🇵",
    "e\u0301",
    "ｶﾞ",
    "が",
    "か\u3099",
    "日本語のテキスト、句読点。",
    "$[big 大きな] お知らせ",
    "   ",
    "\u200b\u200d",
    "$[shake \u200b]",
    "line\nbreak",
    "tab\there",
    "bidi\u202eevil",
    "",
    "a" * 150,
    "a" * 151,
    "$[shake " + "あ" * 150 + "]",
    "$[shake " + "あ" * 151 + "]",
    "e" + "\u0301" * 3000,
    "e" + "\u0301" * 2047,
    "e" + "\u0301" * 8,
    "e" + "\u0301" * 9,
    "q" + "\u0301" * 9,
    "q" + "\u0301" * 8,
    "x" + "\u0301\u200d" * 9,
    "$[shake o" + "\u0308" * 12 + "]",
    "1\ufe0f\u20e3 🏳\ufe0f\u200d\u26a7\ufe0f ệ́",
    "Z" + "\u0336\u0351\u0344" * 3,
    "x" + "\ufeff" + "y",
    "$[shake\ufeffx]",
    "<img src=x onerror=alert(1)>",
]

ALPHABET = ["$[", "]", "\\", "shake ", "big ", "$", "[", " ", "a", "日", "👍🏽", "e\u0301",
            "\u200d", "\u3000", "x", "$[shake ", "$[big ", "\u0301\u0301\u0301"]  # fmt: skip


def random_inputs(count: int, seed: int = 6) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choices(ALPHABET, k=rng.randint(1, 14))) for _ in range(count)]


def server_view(text: str) -> dict[str, Any]:
    try:
        checked = validate_echo_text(text)
    except DomainError as err:
        return {"code": err.code, "message": err.message}
    return {
        "code": None,
        "text": checked.text,
        "length": visible_length(checked.text),
        "segments": segments_to_wire(checked.segments),
    }


@pytest.fixture(scope="module")
def page(browser: Browser, echohub: EchoHubServer) -> Any:
    context = browser.new_context()
    page = context.new_page()
    page.goto(echohub.base)  # any page of the app's origin will do
    page.wait_for_function("document.readyState === 'complete'")
    yield page
    context.close()


def client_view(page: Page, texts: list[str]) -> list[dict[str, Any]]:
    return list(
        page.evaluate(
            """async (texts) => {
                const { checkEcho } = await import("/js/markup.js");
                return texts.map((t) => {
                    const r = checkEcho(t);
                    if (r.error) return { code: r.error.code, message: r.error.message };
                    return { code: null, text: r.text, length: r.length, segments: r.segments };
                });
            }""",
            texts,
        )
    )


def test_table_matches_the_server(page: Page) -> None:
    for text, mine in zip(TABLE, client_view(page, TABLE), strict=True):
        assert mine == server_view(text), repr(text)


def test_random_markup_matches_the_server(page: Page) -> None:
    texts = random_inputs(400)
    for text, mine in zip(texts, client_view(page, texts), strict=True):
        assert mine == server_view(text), repr(text)


def test_wrap_selection(page: Page) -> None:
    result = page.evaluate(
        """async () => {
            const { wrapSelection } = await import("/js/markup.js");
            return [wrapSelection("hello wow", 6, 9, "shake"),
                    wrapSelection("hi", 2, 2, "big"),
                    wrapSelection("a]b", 0, 3, "big")];
        }"""
    )
    assert result == [
        {"value": "hello $[shake wow]", "start": 14, "end": 17},
        {"value": "hi$[big ]", "start": 8, "end": 8},
        None,
    ]
