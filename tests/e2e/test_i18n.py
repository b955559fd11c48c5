"""Languages in the page: the browser's language first, a switch in the page that is
remembered, dates and counts through Intl in the chosen locale."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.conftest import MemberFactory


def test_a_japanese_browser_gets_japanese(member: MemberFactory) -> None:
    aki = member("Aki", locale="ja-JP")
    aki.api("POST", "/api/echoes", {"text": "こんにちは"})
    aki.goto()
    page = aki.page
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    nav = page.get_by_role("navigation", name="メイン")
    expect(nav.get_by_role("link", name="ホーム")).to_be_visible()
    expect(nav.get_by_role("link", name="お知らせ")).to_be_visible()
    expect(page.locator("#conn")).to_have_text("ライブ")
    # Relative times come from Intl.RelativeTimeFormat in Japanese.
    expect(page.locator(".echo time").first).to_have_text("今")


def test_the_language_switch_is_remembered(member: MemberFactory) -> None:
    ben = member("Ben", locale="en-US")
    ben.goto()
    page = ben.page
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("link", name="Events")).to_be_visible()
    page.get_by_label("Language").select_option("ja")
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    expect(page.get_by_role("link", name="イベント")).to_be_visible()
    expect(page.locator("#conn")).to_have_text("ライブ")
    # A reload keeps the pick, although the browser still says en-US.
    ben.goto()
    expect(page.get_by_role("link", name="イベント")).to_be_visible()
    expect(page.get_by_label("言語")).to_have_value("ja")
    page.get_by_label("言語").select_option("en")
    expect(page.get_by_role("link", name="Events")).to_be_visible()


def test_an_unknown_browser_language_falls_back_to_english(member: MemberFactory) -> None:
    chika = member("Chika", locale="fr-FR")
    chika.goto()
    expect(chika.page.locator("html")).to_have_attribute("lang", "en")
    expect(chika.page.get_by_role("link", name="Footprints")).to_be_visible()
