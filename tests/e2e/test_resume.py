"""Reconnect and resume: the server stops and starts again on the same data and port;
open pages reconnect by themselves and replay what they missed with `since`. A gap the
server cannot fill (`recovered: false`) makes the page reload its feed over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, WebSocket, expect

from tests.e2e.conftest import EchoHubServer, Member, MemberFactory, _open_server, make_members

# Hold this page's next reconnect until the test says go (the `online` event), so the
# post below surely lands while the page is away and must come back as a replay. The
# server probe is held too (it would reconnect as soon as the server answers).
HOLD_RECONNECTS = (
    "() => { echohub.hub.base = 600000; echohub.hub.max = 600000; echohub.hub.probeEvery = 1e9; }"
)
RELEASE = (
    "() => { echohub.hub.base = 500; echohub.hub.max = 15000; echohub.hub.probeEvery = 1000;"
    " dispatchEvent(new Event('online')); }"
)
# Backoff so long that only the probe can bring the page back within the test.
LONG_BACKOFF = "() => { echohub.hub.base = 600000; echohub.hub.max = 600000; }"


@pytest.fixture(scope="module")
def own_server(
    tmp_path_factory: pytest.TempPathFactory, browser: Browser
) -> Iterator[EchoHubServer]:
    hub = _open_server(tmp_path_factory.mktemp("e2e-resume"), browser)
    yield hub
    hub.stop()


@pytest.fixture
def member(browser: Browser, own_server: EchoHubServer) -> Iterator[MemberFactory]:
    make, made = make_members(browser, own_server)
    yield make
    for m in made:
        m.context.close()
    assert not [e for m in made for e in m.errors]


def record_subs(page: Page) -> list[dict[str, Any]]:
    """Every `sub` frame the page sends, from now on."""
    subs: list[dict[str, Any]] = []

    def on_socket(ws: WebSocket) -> None:
        def sent(payload: str | bytes) -> None:
            frame = json.loads(payload)
            if frame.get("op") == "sub":
                subs.append(frame)

        ws.on("framesent", sent)

    page.on("websocket", on_socket)
    return subs


def follow_and_open(aki: Member, ben: Member) -> None:
    ben.api("POST", f"/api/users/{aki.handle}/follow")
    aki.goto()
    ben.goto()
    aki.api("POST", "/api/echoes", {"text": "before the restart"})
    expect(ben.page.locator(".feed .echo", has_text="before the restart")).to_have_count(1)


def test_restart_then_resume_without_losing_a_post(
    member: MemberFactory, own_server: EchoHubServer
) -> None:
    aki, ben = member("Aki"), member("Ben")
    follow_and_open(aki, ben)
    subs = record_subs(ben.page)
    ben.page.evaluate("window.__sameDocument = true")
    ben.page.evaluate(HOLD_RECONNECTS)

    own_server.stop()  # sockets close with 1001
    # The quick retry after 1001 fails; the page now waits (held) to try again.
    ben.page.wait_for_function("() => echohub.hub.attempt >= 2")
    expect(ben.page.locator("#conn")).to_have_text("Reconnecting…")
    own_server.start_again()

    aki.api("POST", "/api/echoes", {"text": "posted while $[shake you] were away"})
    ben.page.evaluate(RELEASE)
    expect(ben.page.locator("#conn")).to_have_attribute("data-status", "open")
    card = ben.page.locator(".feed .echo", has_text="posted while you were away")
    expect(card).to_have_count(1)
    expect(card.locator(".fx-shake")).to_have_text("you")
    expect(ben.page.locator(".feed .echo", has_text="before the restart")).to_have_count(1)
    home = [s for s in subs if s["topic"] == "home"]
    assert home and "since" in home[-1], subs  # resumed, not started afresh
    assert ben.page.evaluate("window.__sameDocument") is True

    # The author's own page came back by itself (no hold) and is live again too.
    expect(aki.page.locator("#conn")).to_have_attribute("data-status", "open")
    expect(aki.page.locator(".feed .echo", has_text="posted while you were away")).to_have_count(1)
    aki.api("POST", "/api/echoes", {"text": "and live again"})
    expect(ben.page.locator(".feed .echo", has_text="and live again")).to_have_count(1)
    expect(ben.page.locator(".feed .echo").first).to_contain_text("and live again")


def test_unrecoverable_gap_reloads_the_feed_over_http(member: MemberFactory) -> None:
    aki, ben = member("Gap"), member("Reloader")
    follow_and_open(aki, ben)
    ben.page.evaluate("window.__sameDocument = true")
    ben.page.evaluate(HOLD_RECONNECTS)
    ben.page.evaluate("() => echohub.hub.ws.close()")
    expect(ben.page.locator("#conn")).to_have_text("Reconnecting…")

    aki.api("POST", "/api/echoes", {"text": "missed and not replayable"})
    # A cursor the server cannot resume from: it answers `recovered: false`.
    ben.page.evaluate("() => { echohub.hub.topics.get('home').cursor = '999999999999'; }")
    ben.page.evaluate(RELEASE)
    expect(ben.page.locator(".feed .echo", has_text="missed and not replayable")).to_have_count(1)
    expect(ben.page.locator(".feed .echo", has_text="before the restart")).to_have_count(1)
    assert ben.page.evaluate("window.__sameDocument") is True
    # Live again from the server's head.
    aki.api("POST", "/api/echoes", {"text": "after the reset"})
    expect(ben.page.locator(".feed .echo", has_text="after the reset")).to_have_count(1)


def test_reconnects_as_soon_as_the_server_answers_again(
    member: MemberFactory, own_server: EchoHubServer
) -> None:
    ben = member("Prober")
    ben.goto()
    ben.page.evaluate(LONG_BACKOFF)
    own_server.stop()
    ben.page.wait_for_function("() => echohub.hub.attempt >= 2")
    expect(ben.page.locator("#conn")).to_have_attribute("data-status", "waiting")
    # Minutes of backoff are due, yet the page is live within seconds of the server
    # answering /healthz again.
    own_server.start_again()
    expect(ben.page.locator("#conn")).to_have_attribute("data-status", "open", timeout=5000)
    assert ben.page.evaluate("echohub.hub.attempt") == 0
