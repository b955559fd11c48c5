"""End-to-end fixtures: a real `python -m server serve` on loopback (embedded engine in a
temporary data dir) and Debian's Chromium driven by Playwright, one browser context per
member so each has their own session cookie.

Never skips: a missing Chromium is a failure. No browser is ever downloaded.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Dialog,
    Page,
    ViewportSize,
    expect,
    sync_playwright,
)

from tests.support import PASSWORD, Server, start_server, stop_server

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
INVITE_LINE = re.compile(r"(https?://\S+/join/(\S+))")
TIMEOUT_MS = 10_000

expect.set_options(timeout=TIMEOUT_MS)


@dataclass
class EchoHubServer:
    """A server on a fixed port and data dir, so a restart keeps data and URL."""

    data_dir: Path
    server: Server
    admin_invite: str
    invite: str = ""  # a many-use member invite, made by the root member
    invite_uses_left: int = 0  # sign-ups `invite` still allows (a new one is made at 0)
    handles: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def base(self) -> str:
        return self.server.base

    @classmethod
    def start(cls, data_dir: Path, env: dict[str, str] | None = None) -> EchoHubServer:
        server = start_server("--data-dir", str(data_dir), env=env)
        # The admin link is printed before the server listens, so it is there by now.
        match = INVITE_LINE.search(server.read_output())
        assert match is not None, server.read_output()
        return cls(data_dir, server, match.group(2))

    def stop(self) -> None:
        if self.server.output is not None:
            stop_server(self.server)

    def start_again(self) -> None:
        """After `stop`: the same data dir and port (so open pages can come back)."""
        self.server = start_server("--data-dir", str(self.data_dir), port=self.server.port)

    def handle(self, name: str) -> str:
        return f"{name}{next(self.handles)}"


def same_origin(base: str) -> dict[str, str]:
    """What the page's own fetch would carry: API calls made beside the page (through
    the context's cookie jar) are cookie-authenticated changes, so they show it."""
    return {"Origin": base}


def signup(
    context: BrowserContext, base: str, invite: str, handle: str, name: str
) -> dict[str, Any]:
    """Sign up through the API from a browser context: its cookie jar gets the session."""
    resp = context.request.post(
        f"{base}/api/signup",
        data={"invite": invite, "handle": handle, "password": PASSWORD,
              "display_name": name, "birthdate": "1990-05-01"},
        headers=same_origin(base),
    )  # fmt: skip
    assert resp.status == 201, resp.text()
    return dict(resp.json()["user"])


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


INVITE_USES = 100  # the most one invite allows


def mint_invite(browser: Browser, hub: EchoHubServer) -> str:
    """A fresh many-use member invite, made by the root member."""
    context = browser.new_context()
    try:
        login = {"handle": "root", "password": PASSWORD}
        resp = context.request.post(
            f"{hub.base}/api/login", data=login, headers=same_origin(hub.base)
        )
        assert resp.status == 200, resp.text()
        resp = context.request.post(
            f"{hub.base}/api/invites", data={"uses": INVITE_USES, "befriend": False},
            headers=same_origin(hub.base),
        )  # fmt: skip
        assert resp.status == 201, resp.text()
        return str(resp.json()["code"])
    finally:
        context.close()


def _open_server(
    data_dir: Path, browser: Browser, env: dict[str, str] | None = None
) -> EchoHubServer:
    """A server with its root (admin) member and a many-use invite made by them."""
    hub = EchoHubServer.start(data_dir, env)
    context = browser.new_context()
    try:
        signup(context, hub.base, hub.admin_invite, "root", "Root")
        # Not befriending: the tests' members are not all the root member's friends.
        resp = context.request.post(
            f"{hub.base}/api/invites", data={"uses": 100, "befriend": False},
            headers=same_origin(hub.base),
        )  # fmt: skip
        assert resp.status == 201, resp.text()
        hub.invite = resp.json()["code"]
        hub.invite_uses_left = INVITE_USES
    finally:
        context.close()
    return hub


@pytest.fixture(scope="session")
def echohub(tmp_path_factory: pytest.TempPathFactory, browser: Browser) -> Iterator[EchoHubServer]:
    hub = _open_server(tmp_path_factory.mktemp("e2e-data"), browser)
    yield hub
    hub.stop()


@dataclass
class Member:
    handle: str
    name: str
    context: BrowserContext
    page: Page
    base: str
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def goto(self, route: str = "#/") -> None:
        """Load the app at a hash route and wait until its socket is live."""
        self.page.goto(f"{self.base}/{route}")
        expect(self.page.locator("#conn")).to_have_attribute("data-status", "open")
        self.wait_ready()

    def wait_ready(self) -> None:
        """Wait until the current view has loaded and its topics are subscribed."""
        expect(self.page.locator("main")).to_have_attribute("aria-busy", "false")

    def api(self, method: str, path: str, data: Any = None) -> Any:
        resp = self.context.request.fetch(
            f"{self.base}{path}", method=method, data=data, headers=same_origin(self.base)
        )
        assert resp.ok, f"{method} {path}: {resp.status} {resp.text()}"
        return resp.json()


MemberFactory = Callable[..., Member]


def make_members(browser: Browser, hub: EchoHubServer) -> tuple[MemberFactory, list[Member]]:
    made: list[Member] = []

    def make(
        name: str, *, handle: str = "", viewport: ViewportSize | None = None, **context_args: Any
    ) -> Member:
        handle = hub.handle(handle or name.lower())
        context = browser.new_context(
            viewport=viewport or {"width": 1280, "height": 800}, **context_args
        )
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        member = Member(handle, name, context, page, hub.base)
        page.on("pageerror", lambda err: member.errors.append(str(err)))
        # A blocked inline style or script is a broken page too (the CSP forbids both).
        page.on("console", lambda msg: member.errors.append(msg.text)
                if "Content Security Policy" in msg.text else None)  # fmt: skip

        def on_dialog(dialog: Dialog) -> None:
            member.dialogs.append(f"{dialog.type}:{dialog.message}")
            if dialog.type == "confirm":
                dialog.accept()
            else:
                dialog.dismiss()

        page.on("dialog", on_dialog)
        if hub.invite_uses_left <= 20:  # a margin for the tests that sign up directly
            # An invite serves at most 100 sign-ups: the root member makes another.
            hub.invite = mint_invite(browser, hub)
            hub.invite_uses_left = INVITE_USES
        hub.invite_uses_left -= 1
        signup(context, hub.base, hub.invite, handle, name)
        made.append(member)
        return member

    return make, made


@pytest.fixture
def member(browser: Browser, echohub: EchoHubServer) -> Iterator[MemberFactory]:
    """`member("Aki")`: a signed-up member with their own browser context and page."""
    make, made = make_members(browser, echohub)
    yield make
    for m in made:
        m.context.close()
    # No test may leave a script error behind.
    assert not [e for m in made for e in m.errors], [e for m in made for e in m.errors]
