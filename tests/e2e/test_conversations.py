"""Conversations in Chromium: replying from the page, the other member's open page
showing the reply and the notification live, permalinks that survive a reload, tags,
and notifications read on one device clearing on another."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.e2e.conftest import MemberFactory


def test_reply_from_the_page_shows_live_to_the_other_member(member: MemberFactory) -> None:
    aki, ben = member("Aki"), member("Ben")
    for a, b in ((aki, ben), (ben, aki)):
        a.api("POST", f"/api/users/{b.handle}/follow")
    question = aki.api("POST", "/api/echoes", {"text": "ramen tonight? #ラーメン"})
    unread = aki.api("GET", "/api/me")["unread_notifications"]  # follows so far
    aki.goto()
    ben.goto()
    ben.page.evaluate("window.__sameDocument = true")
    expect(aki.page.locator("#notif-badge")).to_have_text(str(unread))

    card = ben.page.get_by_role("feed", name="Home feed").locator(
        ".echo", has_text="ramen tonight?"
    )
    card.get_by_role("button", name="Reply").click()
    box = card.get_by_role("textbox", name="Your Echo")
    expect(box).to_be_focused()
    box.fill(f"yes! @{aki.handle} see https://example.com/menu")
    card.get_by_role("button", name="Echo", exact=True).click()
    expect(card.locator(".reply-count")).to_have_text("1")

    # Aki's open page: the reply arrives in the feed with its context, the count on
    # the question goes up, and the notification badge shows, all without a reload.
    home = aki.page.get_by_role("feed", name="Home feed")
    reply = home.locator(".echo", has_text="yes!")
    expect(reply).to_have_count(1)
    expect(reply.locator(".reply-context")).to_contain_text(f"@{aki.handle}")
    mention = reply.locator("a.mention")
    expect(mention).to_have_attribute("href", f"#/u/{aki.handle}")
    link = reply.locator("a.link")
    expect(link).to_have_attribute("href", "https://example.com/menu")
    expect(link).to_have_attribute("rel", "noopener nofollow ugc")
    expect(home.locator(".echo", has_text="ramen tonight?").locator(".reply-count")).to_have_text(
        "1"
    )
    expect(aki.page.locator("#notif-badge")).to_have_text(str(unread + 1))
    assert ben.page.evaluate("window.__sameDocument") is True

    aki.page.locator("#nav-notifications").click()
    item = aki.page.locator(".notification", has_text="replied")
    expect(item).to_contain_text(ben.handle)
    expect(item.locator(".notification-about q")).to_have_text(
        f"yes! @{aki.handle} see https://example.com/menu"
    )
    expect(aki.page.locator("#notif-badge")).to_be_hidden()
    expect(aki.page.locator(".notification.unread")).to_have_count(0)  # painted as read

    # The permalink: the notification links there, the thread shows, and a reload of
    # the deep link shows it again.
    href = item.locator(".notification-about a").get_attribute("href")
    assert href is not None and href.startswith("#/e/")
    item.locator(".notification-about a").press("Enter")
    expect(aki.page).to_have_url(f"{aki.base}/{href}")
    expect(aki.page.locator(".thread-ancestors .echo")).to_contain_text("ramen tonight?")
    # Every card's timestamp is its permalink.
    stamp = aki.page.locator(".thread-ancestors .echo a.permalink")
    expect(stamp).to_have_attribute("href", f"#/e/{question['id']}")
    aki.page.reload()
    expect(aki.page.locator(".thread-post")).to_contain_text("yes!")
    expect(aki.page.locator(".thread-ancestors .echo")).to_contain_text("ramen tonight?")

    # Answering from the thread page: Ben's open thread of the question shows it live.
    ben.page.goto(f"{ben.base}/#/e/{question['id']}")
    expect(ben.page.locator(".thread-replies .echo")).to_have_count(1)
    aki.page.goto(f"{aki.base}/#/e/{question['id']}")
    composer = aki.page.get_by_role("form", name=f"Reply to {aki.name}")
    composer.get_by_role("textbox").fill("see you at 7")
    composer.get_by_role("button", name="Echo", exact=True).click()
    expect(ben.page.locator(".thread-replies .echo")).to_have_count(2)
    expect(ben.page.locator(".thread-replies .echo").nth(1)).to_contain_text("see you at 7")

    # The tag links to its page.
    aki.page.goto(f"{aki.base}/#/")
    aki.page.get_by_role("feed", name="Home feed").locator(
        "a.tag", has_text="#ラーメン"
    ).first.click()
    expect(aki.page.get_by_role("heading", name="#ラーメン")).to_be_visible()
    expect(aki.page.locator(".feed .echo")).to_contain_text("ramen tonight?")


def test_read_on_one_device_clears_the_badge_on_another(member: MemberFactory) -> None:
    aki, ben = member("Aki"), member("Ben")
    aki.goto()
    second = aki.context.new_page()  # another tab stands in for another device
    second.goto(f"{aki.base}/#/")
    expect(second.locator("#conn")).to_have_attribute("data-status", "open")
    unread = aki.api("GET", "/api/me")["unread_notifications"]
    ben.api("POST", f"/api/users/{aki.handle}/follow")
    expect(aki.page.locator("#notif-badge")).to_have_text(str(unread + 1))
    expect(second.locator("#notif-badge")).to_have_text(str(unread + 1))
    second.locator("#nav-notifications").click()
    expect(second.locator(".notification", has_text=ben.handle)).to_contain_text("followed you")
    expect(aki.page.locator("#notif-badge")).to_be_hidden()
    # A fresh load gets the history from the server, read.
    aki.page.goto(f"{aki.base}/#/notifications")
    expect(aki.page.locator(".notification", has_text=ben.handle)).to_be_visible()
    expect(aki.page.locator(".notification.unread")).to_have_count(0)
    second.close()


def test_an_approve_button_answered_on_another_device_updates_live(member: MemberFactory) -> None:
    aki, ben = member("Aki"), member("Ben")
    club = aki.api(
        "POST",
        "/api/communities",
        {"name": f"Club {aki.handle}", "description": "ask to join", "join_policy": "approval"},
    )
    ben.api("POST", f"/api/communities/{club['id']}/join")
    aki.goto("#/notifications")
    other = aki.context.new_page()  # the owner's second device
    other.goto(f"{aki.base}/#/notifications")
    expect(other.locator("#conn")).to_have_attribute("data-status", "open")
    request = aki.page.locator(".notification[data-type='community.join_requested']")
    there = other.locator(".notification[data-type='community.join_requested']")
    expect(there.get_by_role("button", name="Approve")).to_be_visible()
    request.get_by_role("button", name="Approve").click()
    expect(request).to_contain_text("Approved")
    expect(there.get_by_role("button", name="Approve")).to_have_count(0)
    expect(there).to_contain_text("Approved")
    # Opened afresh, the answered request shows no buttons either.
    other.reload()
    expect(there).to_contain_text("Already handled")
    expect(there.get_by_role("button")).to_have_count(0)
    other.close()
