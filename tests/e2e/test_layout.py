"""Keyboard use and the phone-sized layout."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import MemberFactory

PHONE = {"width": 390, "height": 844}


def test_keyboard_only_posting_with_an_effect(member: MemberFactory) -> None:
    aki = member("Keys")
    aki.goto()
    page = aki.page
    box = page.get_by_role("textbox", name="Your Echo")
    # From the top of the page, Tab reaches the composer through the navigation.
    page.locator("body").focus()
    for _ in range(20):
        page.keyboard.press("Tab")
        if box.evaluate("el => el === document.activeElement"):
            break
    expect(box).to_be_focused()
    page.keyboard.type("キーボード only ")
    page.keyboard.type("yay")
    box.evaluate("el => el.setSelectionRange(el.value.length - 3, el.value.length)")
    page.keyboard.press("Control+Shift+S")
    expect(box).to_have_value("キーボード only $[shake yay]")
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Shake")).to_be_focused()
    box.focus()
    page.keyboard.press("Enter")
    card = page.locator(".feed .echo", has_text="キーボード only yay")
    expect(card.locator(".fx-shake")).to_have_text("yay")
    expect(box).to_have_value("")


def test_enter_while_composing_japanese_does_not_post(member: MemberFactory) -> None:
    aki = member("Ime")
    aki.goto()
    box = aki.page.get_by_role("textbox", name="Your Echo")
    box.fill("にほんご")
    # An IME confirms its candidate with Enter; that must not send the Echo.
    box.dispatch_event("keydown", {"key": "Enter", "isComposing": True, "keyCode": 229})
    expect(box).to_have_value("にほんご")
    expect(aki.page.locator(".counter")).to_have_text("4/150")


@pytest.mark.parametrize("route", ["#/", "#/u/{me}", "#/events", "#/communities", "#/footprints",
                                   "#/notifications", "#/invite"])  # fmt: skip
def test_phone_width_has_no_sideways_scroll(member: MemberFactory, route: str) -> None:
    aki = member("Phone", viewport=PHONE, is_mobile=True, has_touch=True)
    aki.api("POST", "/api/echoes", {"text": "$[big とても長い単語] " + "あ" * 140})
    aki.goto(route.format(me=aki.handle))
    expect(aki.page.locator(".view").last).not_to_be_empty()
    width = aki.page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{route}: {width}px wide"
    expect(aki.page.get_by_role("navigation", name="Main")).to_be_in_viewport()
