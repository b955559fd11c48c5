"""The accessibility sweep: every screen (tests/e2e/screens.py) in Chromium, checked by
axe-core for WCAG 2.2 A/AA, with the title following the route and no word of the
other language on the page.

Four runs cover every pair of language (ja-JP, en-US), colour scheme (light, dark) and
size (desktop, phone): each pair of settings meets in one run, so a problem that needs
two of them together (dark and phone, Japanese and phone, …) is still found."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.e2e.axe import violations
from tests.e2e.conftest import TIMEOUT_MS, EchoHubServer, same_origin
from tests.e2e.screens import SCREENS, Scene, Screen, build_scene
from tests.support import PASSWORD

CATALOGUES = Path(__file__).resolve().parents[2] / "web" / "js" / "i18n"
DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 800}}
PHONE: dict[str, Any] = {"viewport": {"width": 390, "height": 844}, "is_mobile": True,
                         "has_touch": True}  # fmt: skip
RUNS = [
    pytest.param("en-US", "light", DESKTOP, id="en-light-desktop"),
    pytest.param("en-US", "dark", PHONE, id="en-dark-phone"),
    pytest.param("ja-JP", "dark", DESKTOP, id="ja-dark-desktop"),
    pytest.param("ja-JP", "light", PHONE, id="ja-light-phone"),
]
JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff]")
PLACEHOLDER = re.compile(r"\{\w+\}")

# The words a screen shows (text, and names in attributes), leaving out what is marked
# as another language (the language switch's endonyms).
UI_TEXT = """() => {
    const lang = document.documentElement.lang;
    const out = [];
    const walk = (el) => {
        if (el.lang && el.lang !== lang) return;
        for (const attr of ["aria-label", "title", "placeholder", "alt"]) {
            if (el.hasAttribute(attr)) out.push(el.getAttribute(attr));
        }
        for (const child of el.childNodes) {
            if (child.nodeType === Node.TEXT_NODE) out.push(child.textContent);
            else if (child.nodeType === Node.ELEMENT_NODE) walk(child);
        }
    };
    walk(document.body);
    out.push(document.title);
    return out.join("\\n");
}"""


def forms(value: str | dict[str, str]) -> list[str]:
    return list(value.values()) if isinstance(value, dict) else [value]


@cache
def english_only_phrases() -> list[str]:
    """Pieces of English catalogue text (between placeholders) that no Japanese entry
    contains: finding one on a Japanese page means a string was not translated."""
    en = json.loads((CATALOGUES / "en.json").read_text(encoding="utf-8"))
    ja = json.loads((CATALOGUES / "ja.json").read_text(encoding="utf-8"))
    japanese = "\n".join(text for value in ja.values() for text in forms(value))
    phrases = set()
    for value in en.values():
        for text in forms(value):
            for piece in PLACEHOLDER.split(text):
                piece = piece.strip(" .,:;!?·“”()…")
                if re.search(r"[A-Za-z]{4,}", piece) and piece not in japanese:
                    phrases.add(piece)
    return sorted(phrases, key=len, reverse=True)


@pytest.fixture(scope="module")
def scene(browser: Browser, echohub: EchoHubServer) -> Iterator[Scene]:
    built = build_scene(browser, echohub)
    yield built
    built.close()


def signed_in_context(browser: Browser, base: str, handle: str, **options: Any) -> BrowserContext:
    context = browser.new_context(**options)
    context.set_default_timeout(TIMEOUT_MS)
    login = {"handle": handle, "password": PASSWORD}
    resp = context.request.post(f"{base}/api/login", data=login, headers=same_origin(base))
    assert resp.status == 200, resp.text()
    return context


def open_screen(page: Page, scene: Scene, base: str, screen: Screen) -> None:
    if screen.signed_in:
        route = screen.route.format(**scene.ids)
        if page.url.startswith(base + "/#"):
            page.evaluate("(hash) => { location.hash = hash; }", route)
        else:
            page.goto(scene.url(base, screen))
            expect(page.locator("#conn")).to_have_attribute("data-status", "open")
        expect(page.locator("main")).to_have_attribute("aria-busy", "false")
        # The title follows the route: the view's own, never just the brand.
        expect(page).not_to_have_title("Echo Hub")
    else:
        page.goto(scene.url(base, screen))
        expect(page.locator("main form")).to_be_visible()


def check(page: Page, screen: Screen, lang: str, found: dict[str, Any]) -> None:
    bad = violations(page)
    if bad:
        found[f"{screen.name} axe"] = bad
    text = page.evaluate(UI_TEXT)
    assert page.evaluate("document.documentElement.lang") == lang[:2], screen.name
    if lang.startswith("en"):
        stray = sorted(set(JAPANESE.findall(text)))
    else:
        words = re.compile(
            r"(?<![A-Za-z])(?:"
            + "|".join(map(re.escape, english_only_phrases()))
            + r")(?![A-Za-z])"
        )
        stray = sorted(set(words.findall(text)))
    if stray:
        found[f"{screen.name} other language"] = stray[:10]


@pytest.mark.parametrize(("lang", "scheme", "size"), RUNS)
def test_every_screen_is_accessible_in_its_language(
    browser: Browser,
    echohub: EchoHubServer,
    scene: Scene,
    lang: str,
    scheme: str,
    size: dict[str, Any],
) -> None:
    options = {"locale": lang, "color_scheme": scheme, **size}
    found: dict[str, Any] = {}
    errors: list[str] = []
    signed_in = signed_in_context(browser, echohub.base, scene.viewer.handle, **options)
    signed_out = browser.new_context(**options)
    try:
        for context in (signed_in, signed_out):
            page = context.new_page()
            page.on("pageerror", lambda err: errors.append(str(err)))
            # A style or script the CSP blocked is a broken page too.
            page.on("console", lambda msg: errors.append(msg.text)
                    if "Content Security Policy" in msg.text else None)  # fmt: skip
            for screen in SCREENS:
                if screen.signed_in == (context is signed_in):
                    open_screen(page, scene, echohub.base, screen)
                    check(page, screen, lang, found)
    finally:
        signed_in.close()
        signed_out.close()
    assert found == {}, json.dumps(found, ensure_ascii=False, indent=1)
    assert errors == []
