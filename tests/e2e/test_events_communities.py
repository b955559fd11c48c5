"""Events (announce, RSVP with live counts, "starting now") and communities (browse,
request to join, approval, the community feed) in Chromium."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from playwright.sync_api import expect

from tests.e2e.conftest import MemberFactory


def iso_in(delta: timedelta) -> str:
    return (datetime.now(UTC) + delta).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def test_announce_rsvp_and_live_counts(member: MemberFactory) -> None:
    host, guest = member("Host"), member("Guest")
    guest.api("POST", f"/api/users/{host.handle}/follow")
    host.goto("#/events")
    guest.goto("#/events")

    host.page.get_by_text("Announce an event").click()
    host.page.get_by_label("Title").fill("花見 picnic")
    host.page.get_by_label("Starts").fill(
        (datetime.now() + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    )
    host.page.get_by_label("Place (optional)").fill("Ueno Park")
    host.page.get_by_label("Capacity (optional)").fill("10")
    host.page.get_by_role("button", name="Announce").click()
    expect(host.page.get_by_role("heading", name="花見 picnic")).to_be_visible()
    host.wait_ready()
    going = host.page.locator(".count-going strong")
    expect(going).to_have_text("0")

    # The follower's events page gets the announcement live.
    guest.page.get_by_role("link", name="花見 picnic").click()
    expect(guest.page.get_by_role("heading", name="花見 picnic")).to_be_visible()
    guest.page.get_by_role("button", name="Going").click()
    expect(guest.page.get_by_role("button", name="Going")).to_have_attribute("aria-pressed", "true")
    expect(going).to_have_text("1")  # on the host's page, without reload
    expect(host.page.locator(".live-counts")).to_contain_text("of 10 seats")

    guest.page.get_by_role("button", name="Interested").click()
    expect(going).to_have_text("0")
    expect(host.page.locator(".count-interested strong")).to_have_text("1")

    # The host hears of the RSVP on their notifications too.
    expect(host.page.locator("#notif-badge")).to_be_visible()
    host.page.get_by_role("link", name="Notifications").click()
    expect(host.page.locator(".notification[data-type='event.rsvp']").first).to_contain_text(
        guest.handle
    )
    expect(host.page.locator("#notif-badge")).to_be_hidden()


def test_event_starting_now_reaches_attendees(member: MemberFactory) -> None:
    host, guest = member("Starter"), member("Attendee")
    event = host.api(
        "POST", "/api/events", {"title": "Right now", "starts_at": iso_in(timedelta(seconds=2))}
    )
    guest.goto(f"#/events/{event['id']}")
    guest.page.get_by_role("button", name="Going").click()
    expect(guest.page.locator(".banner")).to_have_text("Starting now!")
    guest.page.get_by_role("link", name="Notifications").click()
    note = guest.page.locator(".notification[data-type='event.starting']")
    expect(note).to_contain_text("Right now is starting now")


def test_communities_request_approve_and_feed(member: MemberFactory) -> None:
    owner, fan = member("Chief"), member("Joiner")
    owner.goto("#/communities")
    owner.page.get_by_text("Create a community").click()
    owner.page.get_by_label("Name").fill("写真部")
    owner.page.get_by_label("Description").fill("Photos, mostly of cats")
    owner.page.get_by_label("Who can join").select_option("approval")
    owner.page.get_by_role("button", name="Create").click()
    expect(owner.page.get_by_role("heading", name="写真部")).to_be_visible()
    owner.wait_ready()
    expect(owner.page.get_by_role("heading", name="Join requests")).to_be_visible()

    fan.goto("#/communities")
    fan.page.get_by_role("link", name="写真部").click()
    fan.wait_ready()
    expect(fan.page.get_by_text("Join to see and post Echoes here.")).to_be_visible()
    fan.page.get_by_role("button", name="Request to join").click()
    expect(fan.page.get_by_text("Request pending")).to_be_visible()

    request = owner.page.locator(".requests li", has_text=fan.handle)
    expect(request).to_have_count(1)  # live, on the owner's open page
    request.get_by_role("button", name="Approve").click()
    expect(request).to_have_count(0)

    expect(fan.page.locator(".community-head .tag")).to_have_text("Member")  # live
    fan.page.get_by_role("textbox", name="Your Echo").fill("$[big にゃー] from the club")
    fan.page.get_by_role("button", name="Echo", exact=True).click()
    card = owner.page.locator(".feed .echo", has_text="from the club")
    expect(card.locator(".fx-big")).to_have_text("にゃー")
