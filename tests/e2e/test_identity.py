"""A newcomer's first minute in Chromium: joining through a friend's invite, finding
people, following, presenting oneself; and the pages around it (invites, settings,
an admin appointing a moderator)."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, expect

from tests.e2e.conftest import EchoHubServer, MemberFactory, same_origin
from tests.support import PASSWORD


def test_a_newcomer_joins_finds_a_japanese_name_follows_and_writes_a_bio(
    browser: Browser, echohub: EchoHubServer, member: MemberFactory
) -> None:
    hana = member("Hana")
    aki = member("山田アキ", handle="yamada")
    hana.api("POST", f"/api/users/{aki.handle}/follow")
    hana.api("POST", "/api/echoes", {"text": "welcome to the party"})
    code = hana.api("POST", "/api/invites", {"uses": 1})["code"]

    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda err: errors.append(str(err)))
        page.goto(f"{echohub.base}/join/{code}")
        handle = echohub.handle("newbie")
        page.get_by_label("Handle").fill(handle)
        page.get_by_label("Display name").fill("Newbie")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_label("Birth date").fill("1990-01-01")
        page.get_by_role("button", name="Join").click()
        expect(page.locator("#conn")).to_have_attribute("data-status", "open")

        # Home already has the inviter as a friend: her latest post in the friends' box.
        friends_box = page.get_by_role("complementary")
        expect(friends_box.get_by_text("welcome to the party")).to_be_visible()
        # Discover is empty for a newcomer: people the inviter follows are suggested.
        page.get_by_role("link", name="Discover").click()
        people = page.get_by_role("region", name="People you may know")
        expect(people.get_by_text("山田アキ")).to_be_visible()

        # The search box finds her by typing part of her Japanese name.
        search = page.get_by_role("search").get_by_role("searchbox")
        search.fill("ｱｷ")  # half-width: width-insensitive
        results = page.locator("#search-results")
        expect(results.get_by_role("link", name="山田アキ")).to_be_visible()
        expect(page.locator("#search-status")).to_have_text("1 person found")
        results.get_by_role("link", name="山田アキ").click()
        expect(page.get_by_role("heading", name="山田アキ")).to_be_visible()
        page.get_by_role("button", name="Follow").click()
        expect(page.get_by_role("button", name="Following")).to_be_visible()
        hana_profile = context.request.get(f"{echohub.base}/api/users/{hana.handle}").json()
        assert hana_profile["relationship"]["friends"] is True

        # Settings: a bio (a mention of the inviter becomes a link on the profile).
        page.goto(f"{echohub.base}/#/settings")
        bio = page.get_by_label("Bio")
        bio.fill(f"New here, invited by @{hana.handle}")
        expect(page.locator(".counter").nth(1)).to_have_text(f"{len(bio.input_value())} / 160")
        page.get_by_role("button", name="Save").click()
        expect(page.locator(".toast")).to_contain_text("Your profile is saved.")
        page.goto(f"{echohub.base}/#/u/{handle}")
        expect(page.locator(".bio")).to_have_text(f"New here, invited by @{hana.handle}")
        expect(page.locator(".bio a.mention")).to_have_attribute("href", f"#/u/{hana.handle}")
        # A blank display name is refused by the server, shown by the field; nothing
        # changes.
        page.goto(f"{echohub.base}/#/settings")
        page.get_by_label("Display name").fill("   ")
        page.get_by_role("button", name="Save").click()
        expect(page.get_by_label("Display name")).to_have_attribute("aria-invalid", "true")
        me = context.request.get(f"{echohub.base}/api/me").json()
        assert me["display_name"] == "Newbie" and me["bio"].startswith("New here")
    finally:
        context.close()
    assert errors == []


def test_invites_page_lists_and_revokes(member: MemberFactory) -> None:
    ben = member("Ben")
    ben.goto("#/invite")
    page = ben.page
    expect(page.get_by_text("You have not made any invites yet.")).to_be_visible()
    page.get_by_label("Become friends with whoever joins through this link").uncheck()
    page.get_by_role("button", name="Create invite link").click()
    items = page.locator(".invite-item")
    expect(items).to_have_count(1)
    expect(items.first).to_contain_text("5 uses left")
    code = ben.api("GET", "/api/invites")["items"][0]["code"]
    assert ben.api("GET", "/api/invites")["items"][0]["befriend"] is False
    items.first.get_by_role("button", name="Revoke").click()
    expect(page.get_by_text("You have not made any invites yet.")).to_be_visible()
    assert ben.dialogs == ["confirm:Revoke this invite? Its link will stop working."]
    assert ben.api("GET", "/api/invites")["items"] == [] and code


def test_a_password_change_signs_out_the_other_page(
    member: MemberFactory, browser: Browser
) -> None:
    cho = member("Cho")
    cho.goto()
    other = browser.new_context()
    try:
        other_page = other.new_page()
        other.request.post(
            f"{cho.base}/api/login", data={"handle": cho.handle, "password": PASSWORD}
        )
        other_page.goto(f"{cho.base}/#/")
        expect(other_page.locator("#conn")).to_have_attribute("data-status", "open")
        cho.goto("#/settings")
        page = cho.page
        page.get_by_label("Current password").fill("not the password")
        page.get_by_label("New password").fill("a new password 2")
        page.get_by_role("button", name="Change password").click()
        expect(page.locator(".field-error")).to_have_text("The current password is not right.")
        page.get_by_label("Current password").fill(PASSWORD)
        page.get_by_role("button", name="Change password").click()
        expect(page.locator(".toast")).to_contain_text("1 other session was signed out")
        expect(other_page.get_by_role("heading", name="Sign in to Echo Hub")).to_be_visible()
        expect(page.locator("#conn")).to_have_attribute("data-status", "open")
    finally:
        other.close()


def test_an_admin_appoints_and_revokes_a_moderator_from_the_profile(
    browser: Browser, echohub: EchoHubServer, member: MemberFactory
) -> None:
    dan = member("Dan")
    # Members are not told each other's roles.
    assert "role" not in dan.api("GET", "/api/users/root")
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    try:
        login = {"handle": "root", "password": PASSWORD}
        resp = context.request.post(f"{echohub.base}/api/login", data=login,
                                    headers=same_origin(echohub.base))  # fmt: skip
        assert resp.status == 200, resp.text()
        page = context.new_page()
        page.goto(f"{echohub.base}/#/u/{dan.handle}")
        page.get_by_role("button", name="Make moderator").click()
        expect(page.get_by_role("button", name="Remove as moderator")).to_be_focused()
        expect(page.locator(".profile-head .tag")).to_have_text("Moderator")
        assert dan.api("GET", "/api/me")["role"] == "moderator"
        page.get_by_role("button", name="Remove as moderator").click()
        expect(page.get_by_role("button", name="Make moderator")).to_be_visible()
        assert dan.api("GET", "/api/me")["role"] == "member"
    finally:
        context.close()
    # A profile offers no such button to anyone but an admin.
    dan.goto("#/u/root")
    expect(dan.page.get_by_role("heading", name="Root")).to_be_visible()
    expect(dan.page.get_by_role("button", name="Make moderator")).to_have_count(0)


def test_a_profile_open_elsewhere_shows_a_new_name_and_bio_live(member: MemberFactory) -> None:
    eri, fumi = member("Eri"), member("Fumi")
    fumi.goto(f"#/u/{eri.handle}")
    page = fumi.page
    expect(page.get_by_role("heading", name="Eri")).to_be_visible()
    eri.api("PATCH", "/api/me", {"display_name": "えり", "bio": "https://eri.example and more"})
    expect(page.get_by_role("heading", name="えり")).to_be_visible()
    expect(page.locator(".bio a.link")).to_have_attribute("href", "https://eri.example")
    expect(page.locator(".bio")).to_have_text("https://eri.example and more")


def test_enter_in_the_search_box_finds_posts_by_japanese_words(member: MemberFactory) -> None:
    gen, hal = member("Gen"), member("Hal")
    gen.api("POST", "/api/echoes", {"text": "今日は新宿でラーメンを食べた"})
    gen.api("POST", "/api/echoes", {"text": "ramen in Shinjuku"})
    hal.goto()
    page = hal.page
    search = page.get_by_role("search").get_by_role("searchbox")
    search.fill("ラーメン")
    search.press("Enter")
    expect(page).to_have_url(re.compile(r"#/search/"))
    feed = page.get_by_role("feed", name="Echoes")
    # Other tests on this server may have posted ramen too: every post found has the
    # word, Gen's among them, and the English one is not.
    expect(feed.locator(".echo", has_text="今日は新宿でラーメンを食べた")).to_have_count(1)
    for text in feed.locator(".echo .echo-text").all_inner_texts():
        assert "ラーメン" in text, text
    expect(feed.get_by_text("ramen in Shinjuku")).to_have_count(0)
    expect(page).to_have_title(re.compile("ラーメン"))
