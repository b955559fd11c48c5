"""Languages in the page: the browser's language first, a switch in the page that is
remembered, dates and counts through Intl in the chosen locale."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from tests.e2e.conftest import EchoHubServer, MemberFactory


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


def test_japanese_typography(member: MemberFactory) -> None:
    aki = member("Kana", locale="ja-JP")
    aki.api("POST", "/api/echoes", {"text": "おにぎり 🍙"})
    aki.api("POST", "/api/echoes", {"text": "日本語の文章は、句読点で改行しないようにします。"})
    aki.goto()
    page = aki.page
    style = page.evaluate("""() => {
        const body = getComputedStyle(document.body);
        const h1 = getComputedStyle(document.querySelector("h1"));
        return { family: body.fontFamily, lineBreak: body.lineBreak,
                 synthesis: h1.fontSynthesisWeight };
    }""")
    # The system's Japanese fonts come first (Japanese glyph shapes for kanji).
    assert style["family"].startswith('"Hiragino Sans"'), style
    assert style["lineBreak"] == "strict" and style["synthesis"] == "none", style
    expect(page.locator(".echo-text").first).to_have_attribute("lang", "ja")
    # What Chromium really drew the posts with: a Japanese font and the emoji font
    # (installed by scripts/test), so nothing shows as empty boxes.
    cdp = aki.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    root = cdp.send("DOM.getDocument")["root"]["nodeId"]
    used: set[str] = set()
    for node in cdp.send("DOM.querySelectorAll", {"nodeId": root, "selector": ".echo-text"})[
        "nodeIds"
    ]:
        fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
        used |= {f["familyName"] for f in fonts}
    assert any("CJK JP" in f or f in ("Hiragino Sans", "Noto Sans JP") for f in used), used
    assert "Noto Color Emoji" in used, used


def test_server_errors_show_by_code_in_the_members_language(
    browser: Browser, echohub: EchoHubServer
) -> None:
    context = browser.new_context(locale="ja-JP")
    try:
        page = context.new_page()
        page.goto(f"{echohub.base}/")
        page.get_by_label("ユーザー名").fill("nobody_here")
        page.get_by_label("パスワード").fill("wrong password")
        page.get_by_role("button", name="ログイン").click()
        # invalid_credentials, from the catalogue (the server says it in English).
        expect(
            page.get_by_role("alert").filter(has_text="ユーザー名かパスワードが違います。")
        ).to_be_visible()
        # A code the catalogue does not know: the server's own message is shown.
        shown = page.evaluate("""async () => {
            const { errorText } = await import("/js/i18n.js");
            return [errorText({ code: "brand_new_code", message: "as the server said" }),
                    errorText({ code: "event_full", message: "ignored" })];
        }""")
        assert shown == ["as the server said", "このイベントは満員です。"]
    finally:
        context.close()


def test_the_language_is_also_in_settings_out_of_an_endless_feed(member: MemberFactory) -> None:
    aki = member("Settler", locale="en-US")
    aki.goto("#/settings")
    page = aki.page
    card = page.get_by_role("region", name="Language")
    card.get_by_label("Language").focus()
    card.get_by_label("Language").select_option("ja")
    expect(page.get_by_role("heading", name="設定", level=1)).to_be_visible()
    # Drawn again in Japanese, with focus back on the same control.
    expect(page.get_by_role("region", name="言語").get_by_label("言語")).to_be_focused()
    expect(page.locator("#lang-select")).to_have_value("ja")
