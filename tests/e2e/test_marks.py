"""A pile of combining marks stays inside its post (CSS clip), in Chromium.

The domain now refuses more than 8 marks on one character, but posts stored before
that rule, and whatever a font draws tall, must still not paint over the rest of the
page: the post body is rendered by the app's own renderer, and the band above it is
compared with and without the pile.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.e2e.conftest import EchoHubServer

# The flood the audit found: "e" and 2,047 U+0301, one grapheme within 4 KiB.
FLOOD = "e" + "\u0301" * 2047
TOP = 320  # where the post starts; the band above it must stay untouched


@pytest.fixture
def page(browser: Browser, echohub: EchoHubServer) -> Any:
    context = browser.new_context(viewport={"width": 480, "height": 800})
    page = context.new_page()
    page.goto(echohub.base)
    page.wait_for_function("document.readyState === 'complete'")
    yield page
    context.close()


def show(page: Page, text: str) -> None:
    page.evaluate(
        """async ([text, top]) => {
            const { renderBody } = await import("/js/effects.js");
            document.getElementById("marks-stage")?.remove();
            const stage = document.createElement("div");
            stage.id = "marks-stage";
            stage.style.cssText = `position: fixed; inset: 0; z-index: 2147483647;
                background: #fff; padding: ${top}px 16px 0`;
            const card = document.createElement("article");
            card.className = "echo";
            card.append(renderBody({ text, segments: [{ text }] }));
            stage.append(card);
            document.body.append(stage);
            await document.fonts.ready;
        }""",
        [text, TOP],
    )


def band_above(page: Page) -> bytes:
    return page.screenshot(clip={"x": 0, "y": 0, "width": 480, "height": TOP - 16},
                           animations="disabled")  # fmt: skip


def band_below(page: Page) -> bytes:
    top = TOP + 120
    return page.screenshot(clip={"x": 0, "y": top, "width": 480, "height": 800 - top},
                           animations="disabled")  # fmt: skip


def test_a_pile_of_marks_is_clipped_to_its_post(page: Page) -> None:
    show(page, "e")
    above, below = band_above(page), band_below(page)
    show(page, FLOOD)
    assert page.locator("#marks-stage .echo-text").inner_text() == FLOOD
    assert band_above(page) == above, "the marks painted over what is above the post"
    assert band_below(page) == below, "the marks painted over what is below the post"
