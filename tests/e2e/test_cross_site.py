"""Cross-site requests that carry the session cookie (issue 13, items 4 and 5), made by
Chromium from a page on another loopback port: the same *site* as the hub, so the
cookie's SameSite=Lax lets it through, and only the server's own checks stand between
that page and the member's account."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.sync_api import Browser

from tests.e2e.conftest import TIMEOUT_MS, EchoHubServer, same_origin
from tests.support import PASSWORD


class Attacker:
    """A plain web server on another loopback port, serving pages we write per test."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        pages = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path, "").encode()
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def attacker() -> Iterator[Attacker]:
    site = Attacker()
    yield site
    site.close()


class Account:
    """A member signed in inside a browser context (cookie), plus a bearer token to
    look at what happened to their account without any browser involved."""

    def __init__(self, browser: Browser, hub: EchoHubServer, name: str) -> None:
        self.handle = hub.handle(name)
        self.hub = hub
        self.context = browser.new_context()
        self.context.set_default_timeout(TIMEOUT_MS)
        resp = self.context.request.post(
            f"{hub.base}/api/signup",
            data={"invite": hub.invite, "handle": self.handle, "password": PASSWORD,
                  "display_name": name, "birthdate": "1990-05-01"},
            headers=same_origin(hub.base),
        )  # fmt: skip
        assert resp.status == 201, resp.text()
        self.token = resp.json()["token"]
        # The shared server's log before this account: other tests' requests to the
        # same paths (a POST /api/echoes elsewhere) are not this account's answers.
        self.log_start = len(hub.server.read_output())

    def get(self, path: str) -> Any:
        resp = self.context.request.get(
            f"{self.hub.base}{path}", headers={"Authorization": f"Bearer {self.token}"}
        )
        assert resp.ok, resp.text()
        return resp.json()

    def answers(self, method: str, path: str, count: int) -> list[int]:
        """The statuses the hub gave `method path`, from its access log, once there are
        `count` of them (the browser may refuse to show a page the answer itself, so
        the server's log is where the answer is seen)."""
        line = re.compile(rf'"{method} {re.escape(path)} HTTP/1.1" (\d+) ')
        for _ in range(100):  # polls of 50 ms: the page's requests are already under way
            log = self.hub.server.read_output()[self.log_start :]
            statuses = [int(s) for s in line.findall(log)]
            if len(statuses) >= count:
                return statuses
            time.sleep(0.05)
        raise AssertionError(f"the hub never answered {count} × {method} {path}")


@pytest.fixture
def victim(browser: Browser, echohub: EchoHubServer) -> Iterator[Account]:
    account = Account(browser, echohub, "victim")
    yield account
    account.context.close()


def test_a_text_plain_form_from_another_port_posts_nothing(
    victim: Account, attacker: Attacker
) -> None:
    # The classic trick: a text/plain form whose one field reads as a JSON object.
    field = json.dumps({"text": "posted by a form elsewhere", "pad": ""})[:-2]
    attacker.pages["/form"] = f"""<!doctype html>
        <form method="POST" action="{victim.hub.base}/api/echoes" enctype="text/plain">
          <input type="hidden" name='{field}' value='"}}'></form>
        <script>document.forms[0].submit()</script>"""
    victim.context.new_page().goto(f"{attacker.base}/form")
    assert victim.answers("POST", "/api/echoes", 1) == [403]
    assert victim.get(f"/api/users/{victim.handle}/echoes")["items"] == []


def test_a_no_cors_fetch_with_credentials_posts_nothing(
    victim: Account, attacker: Attacker
) -> None:
    attacker.pages["/fetch"] = f"""<!doctype html><script>
        fetch("{victim.hub.base}/api/echoes", {{
          method: "POST", mode: "no-cors", credentials: "include",
          headers: {{"Content-Type": "application/json"}},
          body: JSON.stringify({{text: "posted by a fetch elsewhere"}}),
        }});
        fetch("{victim.hub.base}/api/logout", {{
          method: "POST", mode: "no-cors", credentials: "include"}});
        </script>"""
    before = victim.answers("POST", "/api/echoes", 0)
    victim.context.new_page().goto(f"{attacker.base}/fetch")
    assert victim.answers("POST", "/api/echoes", len(before) + 1)[len(before) :] == [403]
    assert victim.answers("POST", "/api/logout", 1)[-1] == 403
    assert victim.get(f"/api/users/{victim.handle}/echoes")["items"] == []
    assert victim.get("/api/me")["handle"] == victim.handle  # the session still holds


def test_an_urlencoded_post_blocks_nobody(
    browser: Browser, echohub: EchoHubServer, victim: Account, attacker: Attacker
) -> None:
    target = Account(browser, echohub, "target")
    try:
        attacker.pages["/block"] = f"""<!doctype html>
            <form method="POST" action="{victim.hub.base}/api/users/{target.handle}/block">
              <input type="hidden" name="x" value="1"></form>
            <script>document.forms[0].submit()</script>"""
        victim.context.new_page().goto(f"{attacker.base}/block")
        assert victim.answers("POST", f"/api/users/{target.handle}/block", 1) == [403]
        relation = victim.get(f"/api/users/{target.handle}")["relationship"]
        assert relation["blocking"] is False
    finally:
        target.context.close()


def test_the_app_does_not_load_inside_another_sites_frame(
    victim: Account, attacker: Attacker
) -> None:
    attacker.pages["/frame"] = f"""<!doctype html>
        <iframe id="app" src="{victim.hub.base}/" width="800" height="600"></iframe>"""
    page = victim.context.new_page()
    page.goto(f"{attacker.base}/frame")
    # goto waited for the load event, which waits for the frame: the app's document
    # (whose #main is static HTML) would be there by now.
    assert page.frame_locator("#app").locator("#main").count() == 0


def test_only_the_apps_own_profile_view_leaves_a_footprint(
    browser: Browser, echohub: EchoHubServer, victim: Account, attacker: Attacker
) -> None:
    """Any site could otherwise reveal a visitor to a chosen member by navigating to
    (or embedding) their profile's API URL."""
    owner = Account(browser, echohub, "owner")
    try:
        profile = f"{victim.hub.base}/api/users/{owner.handle}"
        attacker.pages["/embed"] = f'<!doctype html><img src="{profile}"><iframe src="{profile}">'
        page = victim.context.new_page()
        page.goto(f"{attacker.base}/embed")
        assert victim.answers("GET", f"/api/users/{owner.handle}", 2) == [200, 200]
        page.goto(profile)  # a top-level cross-site navigation: the cookie goes along (Lax)
        assert page.locator("body").inner_text().find(owner.handle) >= 0  # it was served
        assert owner.get("/api/footprints")["items"] == []

        # The app's own view of the profile (a fetch from the page) does count.
        app = victim.context.new_page()
        app.goto(f"{victim.hub.base}/#/u/{owner.handle}")
        app.locator("main[aria-busy='false']").wait_for()
        deadline = 50
        while not owner.get("/api/footprints")["items"] and deadline:
            app.wait_for_timeout(100)
            deadline -= 1
        visitors = [f["visitor"]["handle"] for f in owner.get("/api/footprints")["items"]]
        assert visitors == [victim.handle]
    finally:
        owner.context.close()
