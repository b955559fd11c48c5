"""The rough edges a new member hit (issue 17), each as the member meets it in Chromium:
contrast of pressed toggles and of orange text, the Notifications link's name, the
author's like count, the new-posts pill, offline states and toasts, the phone's bottom
bar and Friends' latest, moderator actions, plurals, a full event, the mod filter by
community name, the title and focus on navigation."""

from __future__ import annotations

import json
import re
from typing import Any

from playwright.sync_api import Browser, Page, WebSocket, expect

from tests.e2e.axe import axe_source
from tests.e2e.conftest import EchoHubServer, MemberFactory
from tests.e2e.test_moderation import set_role

PHONE: dict[str, Any] = {"viewport": {"width": 390, "height": 844}, "is_mobile": True,
                         "has_touch": True}  # fmt: skip


def contrast(page: Page, selector: str) -> dict[str, list[str]]:
    """axe's colour-contrast verdict on the elements matching `selector`."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe_source())
    result = page.evaluate(
        """async (sel) => {
            const r = await axe.run({ include: [[sel]] }, { runOnly: ["color-contrast"] });
            const nodes = (list) => list.flatMap((x) => x.nodes.map((n) => n.target.join(" ")));
            return { passes: nodes(r.passes), violations: nodes(r.violations),
                     incomplete: nodes(r.incomplete) };
        }""",
        selector,
    )
    return dict(result)


def test_following_and_orange_text_are_readable_light_and_dark(member: MemberFactory) -> None:
    for scheme in ("light", "dark"):
        aki, ben = member("Aki", color_scheme=scheme), member("Ben")
        aki.api("POST", f"/api/users/{ben.handle}/follow")
        aki.goto(f"#/u/{ben.handle}")
        following = aki.page.get_by_role("button", name="Following")
        expect(following).to_have_attribute("aria-pressed", "true")
        verdict = contrast(aki.page, "[data-action=follow]")
        assert verdict["violations"] == [] and verdict["passes"], (scheme, verdict)
        # Orange text (the current place in the bar, a summary) and the Live pill, and
        # white on orange (a primary button).
        aki.goto("#/events")
        expect(aki.page.locator("#conn")).to_have_text("Live")
        for sel in ("#conn", ".mainnav a[aria-current=page]", "details.announce summary"):
            verdict = contrast(aki.page, sel)
            assert verdict["passes"] and verdict["violations"] == [], (scheme, sel, verdict)
        aki.page.locator("details.announce summary").click()
        verdict = contrast(aki.page, ".event-form button.primary")
        assert verdict["passes"] and verdict["violations"] == [], (scheme, verdict)


def test_notifications_link_name_starts_with_its_visible_text(member: MemberFactory) -> None:
    aki, ben = member("Named"), member("Fan")
    aki.goto()
    link = aki.page.locator("#nav-notifications")
    expect(link).to_have_accessible_name("Notifications")
    ben.api("POST", f"/api/users/{aki.handle}/follow")
    expect(aki.page.locator("#notif-badge")).to_have_text("1")
    # WCAG 2.5.3: the visible label comes first in the name; the count follows.
    expect(link).to_have_accessible_name("Notifications (1 unread)")
    expect(link).not_to_have_attribute("aria-label", re.compile(".*"))


def test_the_author_sees_like_counts_on_fresh_and_live_posts(member: MemberFactory) -> None:
    aki, ben = member("Author"), member("Liker")
    aki.goto()
    box = aki.page.get_by_role("textbox", name="Your Echo")
    box.fill("fresh from the composer")
    box.press("Enter")
    fresh = aki.page.locator(".feed .echo", has_text="fresh from the composer")
    expect(fresh.locator(".like-count")).to_have_text(" 0")
    # Posted elsewhere (another device): it arrives live, with its count too.
    other = aki.api("POST", "/api/echoes", {"text": "from my phone"})
    live = aki.page.locator(f".feed [data-echo-id='{other['id']}']")
    expect(live.locator(".like-count")).to_have_text(" 0")
    fresh_id = fresh.get_attribute("data-echo-id")
    ben.api("POST", f"/api/echoes/{fresh_id}/like")
    ben.api("POST", f"/api/echoes/{other['id']}/like")
    expect(fresh.locator(".like-count")).to_have_text(" 1")
    expect(live.locator(".like-count")).to_have_text(" 1")


def test_new_posts_pill_when_reading_further_down(member: MemberFactory) -> None:
    aki, ben = member("Reader"), member("Chatty")
    aki.api("POST", f"/api/users/{ben.handle}/follow")
    for i in range(14):
        ben.api("POST", "/api/echoes", {"text": f"older post {i} " + "🍙" * 40})
    aki.goto()
    page = aki.page
    pill = page.locator(".new-posts")
    # At the top: a new post shows in place, announced politely, no pill.
    ben.api("POST", "/api/echoes", {"text": "seen at the top"})
    expect(page.locator(".feed .echo").first).to_contain_text("seen at the top")
    expect(page.locator(".feed-announcer").first).to_have_text("1 new Echo")
    expect(pill.first).to_be_hidden()
    page.mouse.wheel(0, 2500)
    page.wait_for_function("() => window.scrollY > 1500")
    ben.api("POST", "/api/echoes", {"text": "while you read one"})
    ben.api("POST", "/api/echoes", {"text": "while you read two"})
    expect(pill.first).to_have_text("2 new Echoes")
    expect(pill.first).to_be_in_viewport()
    pill.first.click()
    expect(pill.first).to_be_hidden()
    newest = page.locator(".feed .echo").first
    expect(newest).to_contain_text("while you read two")
    expect(newest).to_be_focused()
    expect(newest).to_be_in_viewport()


def test_offline_says_so_and_toasts_do_not_pile_up(member: MemberFactory) -> None:
    aki = member("Offline")
    aki.api("POST", "/api/echoes", {"text": "mine to like"})
    aki.goto()
    page = aki.page
    aki.context.set_offline(True)
    # The socket is dropped at once, and the pill says why it is not live.
    expect(page.locator("#conn")).to_have_text("Offline")
    like = page.locator(".feed .echo", has_text="mine to like").locator("button.like")
    for _ in range(3):
        like.click()
        expect(like).to_be_enabled()
    # The same failure three times is one toast, counted.
    expect(page.locator(".toast")).to_have_count(1)
    expect(page.locator(".toast")).to_contain_text("Cannot reach the server")
    expect(page.locator(".toast")).to_contain_text("×3")
    # Not "No events yet": the page cannot know, and says why.
    page.get_by_role("link", name="Events").click()
    expect(page.locator(".offline-state")).to_contain_text("Cannot reach the server")
    expect(page.get_by_text("No events yet")).to_be_hidden()
    page.get_by_role("link", name="Communities").click()
    expect(page.locator(".offline-state")).to_contain_text("Cannot reach the server")
    expect(page.get_by_text("No communities yet")).to_be_hidden()
    page.get_by_role("link", name="Home", exact=True).click()
    expect(page.locator(".feed-status").first).to_contain_text("Cannot reach the server")
    expect(page.get_by_text("Your feed is quiet")).to_be_hidden()
    # Many different messages: at most three at once.
    page.evaluate("""async () => {
        const { toast } = await import("/js/components.js");
        for (const m of ["one", "two", "three", "four", "five"]) toast(m);
    }""")
    expect(page.locator(".toast")).to_have_count(3)
    expect(page.locator(".toast").last).to_have_text("five")
    # Back online: the feed loads by itself once the socket is back.
    aki.context.set_offline(False)
    expect(page.locator("#conn")).to_have_text("Live")
    expect(page.locator(".feed .echo", has_text="mine to like")).to_be_visible()
    # The lists opened offline load by themselves too, without leaving the page.
    aki.api("POST", "/api/communities",
            {"name": "Back online club", "description": "", "join_policy": "open"})  # fmt: skip
    for name, gone, shown in (("Events", "Cannot reach the server", None),
                              ("Communities", "Cannot reach the server", "Back online club")):
        aki.context.set_offline(True)
        expect(page.locator("#conn")).to_have_text("Offline")
        page.get_by_role("link", name=name).click()
        expect(page.locator(".offline-state")).to_contain_text(gone)
        aki.context.set_offline(False)
        expect(page.locator(".offline-state")).to_be_hidden()
        if shown:
            expect(page.get_by_text(shown)).to_be_visible()


def test_a_phone_reaches_friends_latest_and_everything_in_the_bar(
    browser: Browser, echohub: EchoHubServer, member: MemberFactory
) -> None:
    mia, rin = member("Mia", **PHONE), member("Rin")
    set_role(browser, echohub, mia, "moderator")
    for a, b in ((mia, rin), (rin, mia)):
        a.api("POST", f"/api/users/{b.handle}/follow")
    rin.api("POST", "/api/echoes", {"text": "from a friend"})
    mia.goto()
    page = mia.page
    friends = page.get_by_role("complementary", name="Friends' latest")
    expect(friends.get_by_text("from a friend")).to_be_in_viewport()
    # Four places and More fit the bar: nothing cut short, nothing scrolls sideways.
    bar = page.get_by_role("navigation", name="Main")
    visible = bar.locator(":scope > a:visible, :scope > .nav-more > button")
    expect(visible).to_have_count(5)
    assert (
        page.evaluate("""() => [...document.querySelectorAll('.mainnav .label')]
        .filter((el) => el.offsetParent && el.scrollWidth > el.clientWidth).length""")
        == 0
    )
    more = bar.get_by_role("button", name="More")
    more.focus()
    page.keyboard.press("Enter")
    expect(more).to_have_attribute("aria-expanded", "true")
    menu = page.locator("#more-menu")
    for name in ("Footprints", "Profile", "Moderation", "Invite"):
        expect(menu.get_by_role("link", name=name)).to_be_visible()
    # The top bar has no room for Sign out on a phone: it is in More.
    expect(menu.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.locator("#signout")).to_be_hidden()
    box = page.locator("#conn").bounding_box()
    assert box is not None and box["height"] < 32, box  # "Live" on one line
    page.keyboard.press("Escape")
    expect(menu).to_be_hidden()
    expect(more).to_be_focused()
    more.click()
    menu.get_by_role("link", name="Moderation").click()
    expect(page).to_have_title("Moderation · Echo Hub")
    expect(menu).to_be_hidden()
    # A place inside More is the current page: More says so in the accent colour.
    expect(more).to_have_css("color", "rgb(194, 65, 12)")


def test_moderators_remove_posts_on_the_moderation_page_only(
    browser: Browser, echohub: EchoHubServer, member: MemberFactory
) -> None:
    mia, rin = member("Keeper"), member("Poster")
    set_role(browser, echohub, mia, "moderator")
    mia.api("POST", f"/api/users/{rin.handle}/follow")
    rin.api("POST", "/api/echoes", {"text": "an ordinary post"})
    mia.goto()
    card = mia.page.locator(".feed .echo", has_text="an ordinary post")
    expect(card.get_by_role("button", name="Report")).to_be_visible()
    expect(card.get_by_role("button", name="Remove")).to_have_count(0)
    mia.goto("#/mod")
    rin.api("POST", "/api/echoes", {"text": "seen by the moderator"})
    row = mia.page.locator(".mod-stream > li", has_text="seen by the moderator")
    expect(row.get_by_role("button", name="Remove…")).to_be_visible()


def followers(n: int) -> str:
    return f"{n} follower" if n == 1 else f"{n} followers"


def test_counts_use_plurals_in_each_language(member: MemberFactory) -> None:
    aki, ben = member("Counted", locale="en-US"), member("Zahl", locale="ja-JP")
    club = aki.api(
        "POST", "/api/communities", {"name": f"Solo {aki.handle}", "join_policy": "open"}
    )
    aki.goto(f"#/c/{club['id']}")
    expect(aki.page.locator(".member-count")).to_have_text("1 member")
    before = aki.api("GET", f"/api/users/{aki.handle}")["followers"]
    assert before in (0, 1)  # so one of the two profiles below shows the singular
    aki.goto("#/me")
    expect(aki.page.locator("[data-stat=followers]")).to_have_text(followers(before))
    ben.api("POST", f"/api/users/{aki.handle}/follow")
    ben.api("POST", f"/api/communities/{club['id']}/join")
    aki.goto(f"#/c/{club['id']}")
    expect(aki.page.locator(".member-count")).to_have_text("2 members")
    aki.goto("#/me")
    expect(aki.page.locator("[data-stat=followers]")).to_have_text(followers(before + 1))
    ben.goto(f"#/c/{club['id']}")
    expect(ben.page.locator(".member-count")).to_have_text("メンバー 2 人")
    ben_followers = ben.api("GET", f"/api/users/{ben.handle}")["followers"]
    ben.goto("#/me")
    expect(ben.page.locator("[data-stat=followers]")).to_have_text(f"フォロワー {ben_followers} 人")


def test_a_full_event_says_so_and_going_is_disabled(member: MemberFactory) -> None:
    host, first, late = member("Host"), member("First"), member("Late")
    soon = "2099-01-01T10:00:00Z"
    ev = host.api("POST", "/api/events", {"title": "one seat", "starts_at": soon, "capacity": 1})
    first.api("PUT", f"/api/events/{ev['id']}/rsvp", {"status": "going"})
    late.goto(f"#/events/{ev['id']}")
    going = late.page.get_by_role("button", name="Going")
    expect(going).to_be_disabled()
    expect(going).to_have_accessible_description("This event is full.")
    expect(late.page.locator(".live-counts .tag.full")).to_have_text("full")
    expect(late.page.get_by_role("button", name="Interested")).to_be_enabled()
    # The one going may still step back; then the seat is free for the others, live.
    first.goto(f"#/events/{ev['id']}")
    mine = first.page.get_by_role("button", name="Going")
    expect(mine).to_be_enabled()
    mine.click()
    expect(mine).to_have_attribute("aria-pressed", "false")
    expect(going).to_be_enabled()
    late.goto("#/events")
    expect(late.page.locator(f"[data-event-id='{ev['id']}'] .tag.full")).to_have_count(0)


def test_the_mod_filter_takes_a_community_by_name(
    browser: Browser, echohub: EchoHubServer, member: MemberFactory
) -> None:
    mia, rin = member("Sieve"), member("Clubber")
    set_role(browser, echohub, mia, "moderator")
    club = rin.api(
        "POST", "/api/communities", {"name": f"Cats {rin.handle}", "join_policy": "open"}
    )
    frames: list[dict[str, Any]] = []

    def on_socket(ws: WebSocket) -> None:
        ws.on("framesent", lambda p: frames.append(json.loads(p)))

    mia.page.on("websocket", on_socket)
    mia.goto("#/mod")
    page = mia.page
    field = page.get_by_label("Community")
    field.fill("no such club")
    page.get_by_role("button", name="Apply filter").click()
    expect(page.locator(".filter-error")).to_have_text(
        "There is no community called “no such club”."
    )
    field.fill(f"cats {rin.handle}")  # by name, whatever the case
    page.get_by_role("button", name="Apply filter").click()
    expect(page.locator(".mod-live")).to_have_text(f"Live: showing community Cats {rin.handle}")
    subs = [f for f in frames if f.get("op") == "sub" and f.get("topic") == "mod"]
    assert subs[-1]["filter"] == {"community": club["id"]}, subs
    rin.api("POST", "/api/echoes", {"text": "in the club", "community": club["id"]})
    rin.api("POST", "/api/echoes", {"text": "outside"})
    stream = page.locator(".mod-stream > li")
    expect(stream.filter(has_text="in the club")).to_have_count(1)
    expect(stream.filter(has_text="outside")).to_have_count(0)


def test_the_title_follows_the_route_and_focus_moves_to_the_page(member: MemberFactory) -> None:
    aki = member("Titled")
    aki.goto()
    page = aki.page
    expect(page).to_have_title("Home · Echo Hub")
    page.get_by_role("link", name="Events").click()
    expect(page).to_have_title("Events · Echo Hub")
    expect(page.get_by_role("heading", name="Events", level=1)).to_be_focused()
    page.get_by_role("link", name="Profile").click()
    expect(page).to_have_title("Titled · Echo Hub")
    page.get_by_label("Language").select_option("ja")
    expect(page).to_have_title("Titled · Echo Hub")
    page.get_by_role("link", name="イベント").click()
    expect(page).to_have_title("イベント · Echo Hub")
    # A language switch keeps focus where it was (on the switch).
    page.get_by_label("言語").focus()
    page.get_by_label("言語").select_option("en")
    expect(page.get_by_role("link", name="Events")).to_be_visible()
    expect(page.get_by_label("Language")).to_be_focused()


# Controls a keyboard must reach (one taken out of the order on purpose, like a file
# input behind its button, says so with tabindex="-1").
REACHABLE = """() => [...document.querySelectorAll(
    'a[href], button, input:not([type=hidden]), select, textarea, [tabindex="0"]'
)].filter((el) => el.checkVisibility() && !el.disabled && el.tabIndex >= 0)
 .map((el) => el.dataset.kbd)"""


def test_every_control_is_reached_by_tab(member: MemberFactory) -> None:
    aki, ben = member("Keyboard"), member("Friend")
    for a, b in ((aki, ben), (ben, aki)):
        a.api("POST", f"/api/users/{b.handle}/follow")
    ben.api("POST", "/api/echoes", {"text": "something to like"})
    soon = "2099-01-01T10:00:00Z"
    ev = ben.api("POST", "/api/events", {"title": "tabbing", "starts_at": soon, "capacity": 3})
    for route in ("#/", f"#/events/{ev['id']}", f"#/u/{ben.handle}"):
        aki.goto(route)
        page = aki.page
        page.evaluate(
            "() => document.querySelectorAll('*').forEach((el, i) => { el.dataset.kbd = i; })"
        )
        want = set(page.evaluate(REACHABLE))
        reached: set[str] = set()
        page.locator("body").focus()
        for _ in range(len(want) + 10):  # bounded: every control once, and a few to spare
            page.keyboard.press("Tab")
            kbd = page.evaluate("() => document.activeElement?.dataset.kbd")
            if kbd is not None:
                reached.add(kbd)
        missed = page.evaluate(
            "(ids) => ids.map((i) => document.querySelector(`[data-kbd='${i}']`).outerHTML)",
            sorted(want - reached),
        )
        assert missed == [], route
