"""Moderation in Chromium: members report posts and members, moderators watch the live
`mod` stream (and filter it), remove posts (they leave every open page), resolve
reports, suspend members (whose page then says so) and read the audit log."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, WebSocket, expect

from tests.e2e.conftest import (
    EchoHubServer,
    Member,
    MemberFactory,
    _open_server,
    make_members,
    same_origin,
)
from tests.support import PASSWORD

PHONE = {"width": 390, "height": 844}


def set_role(browser: Browser, hub: EchoHubServer, who: Member, role: str) -> None:
    """The admin (`root`, from the admin invite) gives `who` a role."""
    context = browser.new_context()
    try:
        login = {"handle": "root", "password": PASSWORD}
        resp = context.request.post(
            f"{hub.base}/api/login", data=login, headers=same_origin(hub.base)
        )
        assert resp.status == 200, resp.text()
        resp = context.request.put(
            f"{hub.base}/api/admin/users/{who.handle}/role",
            data={"role": role},
            headers=same_origin(hub.base),
        )
        assert resp.status == 200, resp.text()
        assert resp.json()["role"] == role
    finally:
        context.close()


@pytest.fixture
def moderator(browser: Browser, echohub: EchoHubServer, member: MemberFactory) -> MemberFactory:
    """`moderator("Mia")`: a member made moderator by the admin."""

    def make(name: str, **kw: Any) -> Member:
        who = member(name, **kw)
        set_role(browser, echohub, who, "moderator")
        return who

    return make


def mod_frames(page: Page) -> list[dict[str, Any]]:
    """Every `sub`/`unsub` frame for the `mod` topic the page sends, on any socket,
    from now on, each with the index of its socket."""
    frames: list[dict[str, Any]] = []
    sockets: list[WebSocket] = []

    def on_socket(ws: WebSocket) -> None:
        sockets.append(ws)
        index = len(sockets) - 1

        def sent(payload: str | bytes) -> None:
            frame = json.loads(payload)
            if frame.get("topic") == "mod" and frame.get("op") in ("sub", "unsub"):
                frames.append({**frame, "socket": index})

        ws.on("framesent", sent)

    page.on("websocket", on_socket)
    return frames


def open_moderation(mod: Member) -> None:
    mod.goto("#/mod")
    expect(mod.page.get_by_role("heading", name="Moderation", exact=True)).to_be_visible()
    expect(mod.page.locator(".mod-live")).to_have_text("Live: showing everything")


def report_row(mod: Member, text: str) -> Any:
    return mod.page.locator(".mod-reports > li", has_text=text)


def test_a_reported_post_reaches_the_moderator_live(
    member: MemberFactory, moderator: MemberFactory
) -> None:
    mia, aki, ben = moderator("Mia"), member("Aki"), member("Ben")
    ben.api("POST", f"/api/users/{aki.handle}/follow")
    open_moderation(mia)
    ben.goto()

    # Every new post streams to the moderator as it is made.
    aki.api("POST", "/api/echoes", {"text": "cheap $[shake pills] here"})
    posts = mia.page.locator(".mod-stream > li[data-type='post.created']")
    streamed = posts.filter(has_text="cheap pills")
    expect(streamed).to_have_count(1)
    expect(streamed.locator(".fx-shake")).to_have_text("pills")
    expect(streamed).to_contain_text(aki.handle)

    card = ben.page.locator(".feed .echo", has_text="cheap pills")
    expect(card).to_have_count(1)
    card.get_by_role("button", name="Report").click()
    reason = card.get_by_label("Why are you reporting this Echo?")
    expect(reason).to_be_focused()
    reason.fill("spam: selling pills")
    card.get_by_role("button", name="Send report").click()
    expect(card.locator(".report-sent")).to_have_text(
        "Thanks. Your report was sent to the moderators."
    )

    # Live, on the moderator's open page: in the stream and in the open reports.
    row = report_row(mia, "spam: selling pills")
    expect(row).to_have_count(1)
    expect(row.locator("header")).to_contain_text(f"@{ben.handle} reported an Echo by")
    expect(row.locator(".mod-echo")).to_contain_text("cheap pills")
    expect(row.locator(".tag", has_text="open")).to_be_visible()
    event = mia.page.locator(".mod-stream > li[data-type='report.created']")
    expect(event).to_contain_text("spam: selling pills")
    expect(mia.page.locator(".mod-stream > li").first).to_have_attribute(
        "data-type", "report.created"
    )  # newest on top
    # And over HTTP after a reload.
    mia.page.reload()
    mia.wait_ready()
    expect(report_row(mia, "spam: selling pills")).to_have_count(1)


def test_members_report_others_but_not_themselves(member: MemberFactory) -> None:
    aki, ben = member("Own"), member("Other")
    ben.api("POST", f"/api/users/{aki.handle}/follow")
    aki.api("POST", "/api/echoes", {"text": "my own words"})
    ben.api("POST", "/api/echoes", {"text": "words of another"})
    ben.goto()
    own = ben.page.locator(".echo", has_text="words of another")
    expect(own.get_by_role("button", name="Delete")).to_be_visible()
    expect(own.get_by_role("button", name="Report")).to_have_count(0)
    # A member cannot remove someone else's post: only moderators get that button.
    other = ben.page.locator(".echo", has_text="my own words")
    expect(other.get_by_role("button", name="Report")).to_be_visible()
    expect(other.get_by_role("button", name="Remove")).to_have_count(0)

    # A member's profile: Report, with a reason; one's own profile has none.
    ben.goto(f"#/u/{aki.handle}")
    ben.page.get_by_role("button", name="Report member").click()
    form = ben.page.get_by_role("form", name="Send report")
    form.get_by_label(f"Why are you reporting @{aki.handle}?").fill("pretends to be me")
    form.get_by_role("button", name="Send report").click()
    expect(ben.page.locator(".report-sent")).to_be_visible()
    ben.goto("#/me")
    expect(ben.page.get_by_role("heading", name="Other", exact=True)).to_be_visible()
    expect(ben.page.get_by_role("button", name="Report")).to_have_count(0)


def test_a_refused_report_shows_the_servers_message(member: MemberFactory) -> None:
    aki, ben = member("Gone"), member("Late")
    aki.api("POST", "/api/echoes", {"text": "about to vanish"})
    ben.goto(f"#/u/{aki.handle}")
    card = ben.page.locator(".echo", has_text="about to vanish")
    card.get_by_role("button", name="Report").click()
    reason = card.get_by_label("Why are you reporting this Echo?")
    # Blank (spaces pass the browser's `required`): the server's message by the field.
    reason.fill("   ")
    card.get_by_role("button", name="Send report").click()
    expect(card.locator(".field-error")).to_contain_text("reason")
    expect(reason).to_have_attribute("aria-invalid", "true")
    # Meanwhile the author blocks the reporter: the post is no longer theirs to see.
    aki.api("POST", f"/api/users/{ben.handle}/block")
    reason.fill("too late")
    card.get_by_role("button", name="Send report").click()
    # The server's code, in the member's language (echo_not_found).
    expect(card.locator(".form-error[role=alert]")).to_have_text("That Echo is gone.")
    expect(card.locator(".report-sent")).to_have_count(0)


def test_the_moderator_removes_a_post_and_it_leaves_every_open_page(
    member: MemberFactory, moderator: MemberFactory
) -> None:
    mia, aki, ben, cho = moderator("Mod"), member("Author"), member("Follower"), member("Browser")
    ben.api("POST", f"/api/users/{aki.handle}/follow")
    cho.api("POST", f"/api/users/{ben.handle}/follow")
    post = aki.api("POST", "/api/echoes", {"text": "against rule three"})
    aki.api("POST", "/api/echoes", {"text": "a harmless one"})
    ben.api("POST", f"/api/echoes/{post['id']}/like")  # so it is on cho's discover
    ben.api("POST", "/api/reports", {"echo": post["id"], "reason": "breaks rule 3"})

    pages = {
        "author's profile": (aki, f"#/u/{aki.handle}"),
        "follower's home": (ben, "#/"),
        "discover": (cho, "#/discover"),
    }
    for who, route in pages.values():
        who.goto(route)
        expect(who.page.locator(".echo", has_text="against rule three")).to_have_count(1)
    open_moderation(mia)
    row = report_row(mia, "breaks rule 3")
    row.get_by_label("Note for the audit log (optional)").fill("rule 3: no spam")
    row.get_by_role("button", name="Remove Echo").click()

    for name, (who, _route) in pages.items():
        gone = who.page.locator(".echo", has_text="against rule three")
        expect(gone, f"still on the {name}").to_have_count(0)
    expect(aki.page.locator(".echo", has_text="a harmless one")).to_have_count(1)
    assert mia.dialogs == ["confirm:Remove this Echo for everyone?"]

    # The moderator's page: the report says the post is gone, the audit log says why.
    expect(row.locator(".removed-tag")).to_be_visible()
    expect(row.get_by_role("button", name="Remove Echo")).to_be_hidden()
    entry = mia.page.locator(".mod-audit > li[data-action='remove_echo']")
    expect(entry).to_have_count(1)
    expect(entry).to_contain_text(f"@{mia.handle} removed an Echo by")
    expect(entry).to_contain_text("rule 3: no spam")
    expect(entry.locator(".mod-echo")).to_contain_text("against rule three")
    stream = mia.page.locator(".mod-stream > li")
    expect(stream.filter(has_text="was deleted")).to_contain_text("against rule three")
    expect(mia.page.locator(".mod-stream > li[data-type='mod.action']")).to_contain_text("removed")

    # Resolving the report: it is marked, logged, and listed under "Resolved".
    row.get_by_label("Note for the audit log (optional)").fill("handled")
    row.get_by_role("button", name="Resolve").click()
    expect(row).to_have_attribute("data-status", "resolved")
    expect(row.locator(".resolution")).to_contain_text(f"Resolved by Mod @{mia.handle}")
    expect(row.locator(".resolution")).to_contain_text("handled")
    resolved = mia.page.locator(".mod-audit > li[data-action='resolve_report']")
    expect(resolved).to_contain_text("handled")
    mia.page.get_by_role("button", name="Resolved", exact=True).click()
    expect(report_row(mia, "breaks rule 3")).to_have_count(1)
    mia.page.get_by_role("button", name="Open", exact=True).click()
    expect(mia.page.locator(".mod-reports + .empty")).to_have_text("No open reports.")
    expect(report_row(mia, "breaks rule 3")).to_have_count(0)


def test_a_suspended_member_is_told_and_not_reconnected(
    member: MemberFactory, moderator: MemberFactory
) -> None:
    mia, aki, ben = moderator("Judge"), member("Reporter"), member("Troll")
    ben.goto()
    sockets: list[WebSocket] = []
    ben.page.on("websocket", lambda ws: sockets.append(ws))
    # A member reports another from the profile page.
    aki.goto(f"#/u/{ben.handle}")
    aki.page.get_by_role("button", name="Report member").click()
    aki.page.get_by_label(f"Why are you reporting @{ben.handle}?").fill("harassing people")
    aki.page.get_by_role("button", name="Send report").click()
    expect(aki.page.locator(".report-sent")).to_be_visible()

    open_moderation(mia)
    row = report_row(mia, "harassing people")
    expect(row.locator("header")).to_contain_text(f"reported Troll @{ben.handle}")
    expect(row.get_by_role("button", name="Remove Echo")).to_have_count(0)  # not a post
    row.get_by_label("Note for the audit log (optional)").fill("repeated harassment")
    row.get_by_role("button", name=f"Suspend @{ben.handle}").click()

    notice = ben.page.locator(".banner.signed-out")
    expect(notice).to_have_text(
        "Your account is suspended. A moderator suspended it, and you have been signed out."
    )
    expect(ben.page.get_by_role("heading", name="Sign in to Echo Hub")).to_be_visible()
    expect(ben.page.locator("#topbar")).to_be_hidden()
    assert ben.page.evaluate("echohub.hub") is None  # no client left to reconnect
    assert sockets == []  # and no new socket was opened
    # Signing in again is refused with the server's reason.
    ben.page.get_by_label("Handle").fill(ben.handle)
    ben.page.get_by_label("Password").fill(PASSWORD)
    ben.page.get_by_role("button", name="Sign in").click()
    expect(ben.page.locator(".form-error")).to_contain_text("suspended")

    expect(row.locator(".tag", has_text="suspended")).to_be_visible()
    entry = mia.page.locator(".mod-audit > li[data-action='suspend']")
    expect(entry).to_contain_text(f"suspended Troll @{ben.handle}")
    expect(entry).to_contain_text("repeated harassment")
    # Lifting it from the audit log: logged too, and the member can sign in again.
    entry.get_by_role("button", name=f"Lift suspension of @{ben.handle}").click()
    expect(mia.page.locator(".mod-audit > li[data-action='unsuspend']")).to_contain_text(
        f"lifted the suspension of Troll @{ben.handle}"
    )
    expect(row.locator(".tag", has_text="suspended")).to_be_hidden()
    ben.page.get_by_role("button", name="Sign in").click()
    expect(ben.page.locator("#conn")).to_have_attribute("data-status", "open")
    expect(ben.page.locator(".banner.signed-out")).to_have_count(0)


def test_only_moderators_see_moderation(
    browser: Browser, echohub: EchoHubServer, member: MemberFactory, moderator: MemberFactory
) -> None:
    aki, mia = member("Plain"), moderator("Keeper")
    aki.goto()
    expect(aki.page.get_by_role("navigation", name="Main")).to_be_visible()
    expect(aki.page.get_by_role("link", name="Home", exact=True)).to_be_visible()
    expect(aki.page.get_by_role("link", name="Moderation")).to_have_count(0)
    aki.goto("#/mod")
    expect(aki.page.get_by_text("Only moderators can open this page.")).to_be_visible()
    expect(aki.page.locator(".mod-stream")).to_have_count(0)

    mia.goto()
    link = mia.page.get_by_role("link", name="Moderation")
    expect(link).to_be_visible()
    link.click()
    expect(mia.page).to_have_url(re.compile(r"#/mod$"))
    expect(link).to_have_attribute("aria-current", "page")
    expect(mia.page.get_by_role("heading", name="Reports")).to_be_visible()
    expect(mia.page.get_by_role("heading", name="Audit log")).to_be_visible()
    mia.wait_ready()

    # Demoted while the page is open: the server ends the stream, the page says so.
    set_role(browser, echohub, mia, "member")
    expect(mia.page.locator(".mod-revoked")).to_contain_text("no longer a moderator")
    expect(mia.page.locator(".mod-live")).to_have_text("Stopped")
    expect(link).to_be_hidden()


def test_the_stream_filter_resubscribes_and_explains_a_bad_filter(
    member: MemberFactory, moderator: MemberFactory
) -> None:
    mia, aki, ben, cho = moderator("Filterer"), member("Aki"), member("Ben"), member("Cho")
    open_moderation(mia)
    frames = mod_frames(mia.page)
    page = mia.page
    stream = page.locator(".mod-stream > li")

    page.get_by_label("Member").fill(f"@{aki.handle}")
    page.get_by_role("button", name="Apply filter").click()
    expect(page.locator(".mod-live")).to_have_text(f"Live: showing member @{aki.handle}")
    ben.api("POST", "/api/echoes", {"text": "ben says hi"})
    aki.api("POST", "/api/echoes", {"text": "aki says hi"})
    expect(stream.filter(has_text="aki says hi")).to_have_count(1)
    # Ben's came first on the same subscription: had it passed the filter, it would be here.
    expect(stream.filter(has_text="ben says hi")).to_have_count(0)
    assert {"op": "sub", "topic": "mod", "filter": {"member": aki.handle}} in [
        {k: v for k, v in f.items() if k in ("op", "topic", "filter")} for f in frames
    ], frames

    # While the stream is filtered, the reports list stays live with everything.
    ben_post = ben.api("POST", "/api/echoes", {"text": "ben again"})
    cho.api("POST", "/api/reports", {"echo": ben_post["id"], "reason": "ben is noisy"})
    expect(report_row(mia, "ben is noisy")).to_have_count(1)
    expect(stream.filter(has_text="ben is noisy")).to_have_count(0)

    # A second filter: the old subscription is dropped first, then the new one made.
    page.get_by_label("Member").fill("")
    page.get_by_label("Keyword").fill("Hello")
    page.get_by_role("button", name="Apply filter").click()
    expect(page.locator(".mod-live")).to_have_text("Live: showing keyword “Hello”")
    expect(stream.filter(has_text="aki says hi")).to_have_count(0)  # a fresh list
    hello = ben.api("POST", "/api/echoes", {"text": "ben says HELLO"})
    expect(stream.filter(has_text="ben says HELLO")).to_have_count(1)
    ops = [(f["op"], f.get("filter"), f["socket"]) for f in frames]
    second = ops.index(("sub", {"keyword": "Hello"}, ops[0][2]))
    assert ops[second - 1][0] == "unsub" and ops[second - 1][2] == ops[second][2], ops

    # A filter the server refuses: its message, and the stream keeps its filter.
    page.get_by_label("Member").fill("not a handle!")
    page.get_by_role("button", name="Apply filter").click()
    expect(page.locator(".filter-error")).to_contain_text("That filter is not valid")
    expect(page.locator(".mod-live")).to_have_text("Live: showing keyword “Hello”")
    aki.api("POST", "/api/echoes", {"text": "aki says hello too"})
    expect(stream.filter(has_text="aki says hello too")).to_have_count(1)
    expect(stream.filter(has_text="ben says HELLO")).to_have_count(1)

    # Deletions pass every filter; the stream shows those of posts it shows.
    ben.api("DELETE", f"/api/echoes/{ben_post['id']}")
    ben.api("DELETE", f"/api/echoes/{hello['id']}")
    deleted = page.locator(".mod-stream > li[data-type='post.deleted']")
    expect(deleted.filter(has_text="ben says HELLO")).to_have_count(1)
    expect(deleted).to_have_count(1)  # the other one came first: it would be here
    expect(stream.filter(has_text="ben says HELLO").locator(".removed-tag")).to_be_visible()

    # Clearing it: everything again.
    page.get_by_role("button", name="Clear").click()
    expect(page.locator(".mod-live")).to_have_text("Live: showing everything")
    expect(page.locator(".filter-error")).to_be_empty()
    ben.api("POST", "/api/echoes", {"text": "ben unfiltered"})
    expect(stream.filter(has_text="ben unfiltered")).to_have_count(1)


def test_reports_and_audit_log_page_and_switch_status(
    member: MemberFactory, moderator: MemberFactory
) -> None:
    mia, aki, ben = moderator("Pager"), member("Subject"), member("Busy")
    tag = f"case-{aki.handle}"  # other tests' reports share the server: count only these
    for n in range(27):  # one open report per reporter and member: each resolved first
        report = ben.api("POST", "/api/reports", {"user": aki.handle, "reason": f"{tag} #{n}"})
        if n < 26:
            mia.api("POST", f"/api/mod/reports/{report['id']}/resolve",
                    {"reason": f"{tag} done {n}"})  # fmt: skip
    mia.goto("#/mod")
    page = mia.page
    reports = page.locator(".mod-reports > li", has_text=tag)
    more_reports = page.locator(".mod-reports ~ .more")
    audit = page.locator(".mod-audit > li", has_text=tag)
    more_audit = page.locator(".mod-audit ~ .more")

    expect(reports).to_have_count(1)  # open: only the last one
    expect(reports.first).to_contain_text(f"{tag} #26")
    expect(audit).to_have_count(25)  # newest first, a page of 25
    expect(audit.first).to_contain_text(f"{tag} done 25")
    more_audit.click()
    expect(audit).to_have_count(26)
    expect(audit.last).to_contain_text(f"{tag} done 0")

    page.get_by_role("button", name="Resolved", exact=True).click()
    expect(page.get_by_role("button", name="Resolved", exact=True)).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(reports).to_have_count(25)
    expect(reports.first).to_contain_text(f"{tag} #25")
    expect(reports.first).to_have_attribute("data-status", "resolved")
    more_reports.click()
    expect(reports).to_have_count(26)
    expect(reports.last).to_contain_text(f"{tag} #0")

    page.get_by_role("button", name="All", exact=True).click()
    expect(reports).to_have_count(25)
    expect(reports.first).to_contain_text(f"{tag} #26")
    more_reports.click()
    expect(reports).to_have_count(27)
    texts = reports.locator(".mod-reason").all_inner_texts()
    assert texts == [f"Reason: {tag} #{n}" for n in range(26, -1, -1)], texts


def test_moderation_fits_a_phone(member: MemberFactory, moderator: MemberFactory) -> None:
    mia = moderator("Pocket", viewport=PHONE, is_mobile=True, has_touch=True)
    aki, ben = member("Long"), member("Reporter")
    post = aki.api("POST", "/api/echoes", {"text": "$[big とても長い単語] " + "あ" * 140})
    ben.api("POST", "/api/reports", {"echo": post["id"], "reason": "長い" * 200})
    mia.goto("#/mod")
    expect(report_row(mia, "長い長い")).to_have_count(1)
    width = mia.page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{width}px wide"
    expect(mia.page.get_by_role("navigation", name="Main")).to_be_in_viewport()


# --- a server with a low report limit --------------------------------------------------


@pytest.fixture(scope="module")
def limited_server(
    tmp_path_factory: pytest.TempPathFactory, browser: Browser
) -> Iterator[EchoHubServer]:
    data_dir: Path = tmp_path_factory.mktemp("e2e-limits")
    hub = _open_server(data_dir, browser, env={"ECHOHUB_RATE_LIMITS": "reports=1/3600:1"})
    yield hub
    hub.stop()


def test_a_rate_limited_report_says_so(browser: Browser, limited_server: EchoHubServer) -> None:
    make, made = make_members(browser, limited_server)
    try:
        aki, ben = make("Loud"), make("Eager")
        aki.api("POST", "/api/echoes", {"text": "first"})
        aki.api("POST", "/api/echoes", {"text": "second"})
        ben.goto(f"#/u/{aki.handle}")
        for text in ("first", "second"):
            card = ben.page.locator(".echo", has_text=text)
            card.get_by_role("button", name="Report").click()
            card.get_by_label("Why are you reporting this Echo?").fill(f"{text} is spam")
            card.get_by_role("button", name="Send report").click()
        expect(ben.page.locator(".echo", has_text="first").locator(".report-sent")).to_be_visible()
        refused = ben.page.locator(".echo", has_text="second")
        expect(refused.locator(".form-error[role=alert]")).to_contain_text("Too many at once")
        expect(refused.locator(".report-sent")).to_have_count(0)
        assert not [e for m in made for e in m.errors]
    finally:
        for m in made:
            m.context.close()
