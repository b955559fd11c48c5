"""The front end in Chromium: joining, live posts with effects, safe text, deletion,
footprints."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from tests.e2e.conftest import EchoHubServer, MemberFactory, same_origin, signup
from tests.support import PASSWORD


def test_join_with_invite_then_sign_out_and_in(browser: Browser, echohub: EchoHubServer) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        invite = context.request.post(
            f"{echohub.base}/api/invites", data={}, headers=same_origin(echohub.base)
        )
        assert invite.status == 401  # no session yet: only members invite
        helper = browser.new_context()
        signup(helper, echohub.base, echohub.invite, echohub.handle("host"), "Host")
        code = helper.request.post(
            f"{echohub.base}/api/invites", data={"uses": 1}, headers=same_origin(echohub.base)
        ).json()["code"]
        helper.close()

        handle = echohub.handle("mika")
        page.goto(f"{echohub.base}/join/{code}")
        page.get_by_label("Handle").fill(handle)
        page.get_by_label("Display name").fill("ミカ Mika")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_label("Birth date").fill("2015-01-01")
        page.get_by_label("Birth date").evaluate("el => el.removeAttribute('max')")
        page.get_by_role("button", name="Join").click()
        # Under 18: the server's message shows by the birth date field.
        expect(page.locator(".field-error")).to_contain_text("18")
        page.get_by_label("Birth date").fill("1990-01-01")
        page.get_by_role("button", name="Join").click()
        expect(page.locator("#conn")).to_have_attribute("data-status", "open")
        expect(page).to_have_url(f"{echohub.base}/#/")
        expect(page.get_by_role("form", name="New Echo")).to_be_visible()

        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("heading", name="Sign in to Echo Hub")).to_be_visible()
        assert context.request.get(f"{echohub.base}/api/me").status == 401

        page.get_by_label("Handle").fill(handle)
        page.get_by_label("Password").fill("wrong password")
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator(".form-error")).not_to_be_empty()
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.locator("#conn")).to_have_attribute("data-status", "open")
        page.reload()  # the cookie keeps the session
        expect(page.locator("#conn")).to_have_attribute("data-status", "open")
    finally:
        context.close()


def test_shake_post_appears_live_with_its_effect(member: MemberFactory) -> None:
    aki, ben = member("Aki"), member("Ben")
    ben.api("POST", f"/api/users/{aki.handle}/follow")
    aki.goto()
    ben.goto()
    ben.page.evaluate("window.__sameDocument = true")

    box = aki.page.get_by_role("textbox", name="Your Echo")
    box.fill("hello wow")
    box.evaluate("el => el.setSelectionRange(6, 9)")
    aki.page.get_by_role("button", name="Shake").click()
    expect(box).to_have_value("hello $[shake wow]")
    # Markup does not count: 9 visible characters.
    expect(aki.page.locator(".counter")).to_have_text("9/150")
    expect(aki.page.locator(".preview .fx-shake")).to_have_text("wow")
    aki.page.get_by_role("button", name="Echo", exact=True).click()
    expect(box).to_have_value("")

    card = ben.page.locator(".feed .echo", has_text="hello wow")
    expect(card).to_have_count(1)
    expect(card.locator(".fx-shake")).to_have_text("wow")
    expect(card.locator(".member")).to_contain_text(aki.handle)
    assert ben.page.evaluate("window.__sameDocument") is True  # no reload happened
    animation = card.locator(".fx-shake").evaluate("el => getComputedStyle(el).animationName")
    assert animation == "fx-shake"


def test_reduced_motion_keeps_the_effect_without_animation(member: MemberFactory) -> None:
    aki = member("Calm", reduced_motion="reduce")
    aki.api("POST", "/api/echoes", {"text": "so $[shake calm] and $[big big]"})
    aki.goto()
    card = aki.page.locator(".feed .echo", has_text="so calm")
    expect(card.locator(".fx-shake")).to_have_text("calm")
    expect(card.locator(".fx-big")).to_have_text("big")
    assert card.locator(".fx-shake").evaluate("el => getComputedStyle(el).animationName") == "none"


def test_markup_looking_text_is_only_text(member: MemberFactory) -> None:
    aki, ben = member("Xss"), member("Reader")
    ben.api("POST", f"/api/users/{aki.handle}/follow")
    aki.goto()
    ben.goto()
    payload = "<img src=x onerror=alert(1)>"
    aki.page.get_by_role("textbox", name="Your Echo").fill(payload)
    aki.page.get_by_role("button", name="Echo", exact=True).click()

    for page in (aki.page, ben.page):
        text = page.locator(".feed .echo .echo-text", has_text="onerror")
        expect(text).to_have_text(payload)
        assert page.locator("main img").count() == 0
    ben.page.reload()  # and from the HTTP feed, not only the live event
    expect(ben.page.locator(".feed .echo .echo-text", has_text="onerror")).to_have_text(payload)
    assert ben.page.locator("main img").count() == 0
    assert aki.dialogs == [] and ben.dialogs == []


def test_deleted_post_vanishes_from_other_pages(member: MemberFactory) -> None:
    aki, ben = member("Del"), member("Watcher")
    ben.api("POST", f"/api/users/{aki.handle}/follow")
    aki.goto()
    ben.goto()
    aki.page.get_by_role("textbox", name="Your Echo").fill("soon gone")
    aki.page.get_by_role("button", name="Echo", exact=True).click()
    seen = ben.page.locator(".echo", has_text="soon gone")
    expect(seen).to_have_count(1)

    aki.page.locator(".echo", has_text="soon gone").get_by_role("button", name="Delete").click()
    expect(aki.page.locator(".echo", has_text="soon gone")).to_have_count(0)
    expect(seen).to_have_count(0)
    assert aki.dialogs == ["confirm:Delete this Echo?"]


def test_profile_visit_shows_up_live_in_footprints(member: MemberFactory) -> None:
    owner, visitor = member("Owner"), member("Visitor")
    owner.goto("#/footprints")
    expect(owner.page.get_by_role("heading", name="Footprints")).to_be_visible()
    visitor.goto(f"#/u/{owner.handle}")
    expect(visitor.page.get_by_role("heading", name="Owner", exact=True)).to_be_visible()

    row = owner.page.locator(".footprints li", has_text=visitor.handle)
    expect(row).to_have_count(1)
    expect(row.locator(".display-name")).to_have_text("Visitor")


def test_follow_from_profile_then_their_posts_arrive_live(member: MemberFactory) -> None:
    aki, ben = member("Poster"), member("Fan")
    ben.goto(f"#/u/{aki.handle}")
    ben.page.get_by_role("button", name="Follow").click()
    expect(ben.page.get_by_role("button", name="Following")).to_have_attribute(
        "aria-pressed", "true"
    )
    ben.page.get_by_role("link", name="Home", exact=True).click()
    expect(ben.page.get_by_role("form", name="New Echo")).to_be_visible()
    ben.wait_ready()
    aki.api("POST", "/api/echoes", {"text": "$[big 大きな] お知らせ"})
    card = ben.page.locator(".feed .echo", has_text="お知らせ")
    expect(card.locator(".fx-big")).to_have_text("大きな")
    expect(card.locator(".echo-text")).to_have_attribute("lang", "ja")


def test_infinite_scroll_through_pages(member: MemberFactory) -> None:
    aki = member("Many")
    for n in range(30):
        aki.api("POST", "/api/echoes", {"text": f"number {n}"})
    aki.goto(f"#/u/{aki.handle}")
    cards = aki.page.locator(".feed .echo")
    expect(cards).to_have_count(25)
    aki.page.locator(".sentinel").scroll_into_view_if_needed()
    expect(cards).to_have_count(30)
    expect(cards.last).to_contain_text("number 0")


def test_likes_and_follows_raise_the_badge_live(member: MemberFactory) -> None:
    aki, ben = member("Liked"), member("Liker")
    post = aki.api("POST", "/api/echoes", {"text": "like me"})
    # The server keeps notifications: the page starts from its unread count (the
    # inviter's follow), on every device.
    unread = aki.api("GET", "/api/me")["unread_notifications"]
    aki.goto()
    badge = aki.page.locator("#notif-badge")
    if unread:
        expect(badge).to_have_text(str(unread))
    else:
        expect(badge).to_be_hidden()

    ben.goto(f"#/u/{aki.handle}")
    expect(badge).to_have_text(str(unread + 1))  # ben's footprint
    ben.page.locator(".echo", has_text="like me").get_by_role("button", name="Like").click()
    expect(badge).to_have_text(str(unread + 2))
    ben.page.get_by_role("button", name="Follow").click()
    expect(badge).to_have_text(str(unread + 3))
    # Only the author sees the count.
    expect(aki.page.locator(f"[data-echo-id='{post['id']}'] .like")).to_contain_text("1")
    # The toggle keeps its name; pressed says it is on (and no count for others).
    liked = ben.page.locator(f"[data-echo-id='{post['id']}'] .like")
    expect(liked).to_have_attribute("aria-pressed", "true")
    expect(liked).to_have_text("♥ Like")

    aki.page.get_by_role("link", name="Notifications").click()
    expect(aki.page.locator(".notification[data-type='like']")).to_contain_text("liked your Echo")
    expect(aki.page.locator(".notification[data-type='follow']").first).to_contain_text(ben.handle)
    expect(badge).to_be_hidden()


def test_block_hides_the_profile(member: MemberFactory) -> None:
    aki, ben = member("Blocker"), member("Blocked")
    aki.goto(f"#/u/{ben.handle}")
    aki.page.get_by_role("button", name="Block").click()
    expect(aki.page.get_by_role("button", name="Unblock")).to_have_attribute("aria-pressed", "true")
    ben.goto(f"#/u/{aki.handle}")
    expect(ben.page.locator(".form-error")).to_be_visible()


def test_session_ended_elsewhere_returns_to_sign_in(member: MemberFactory) -> None:
    aki = member("Leaver")
    aki.goto()
    # Signing out (here from the same browser's cookie) closes the socket with 4001.
    aki.api("POST", "/api/logout")
    expect(aki.page.get_by_role("heading", name="Sign in to Echo Hub")).to_be_visible()
    expect(aki.page.locator("#topbar")).to_be_hidden()
