"""Every screen of the page, in one list, and a scene that gives each something to show.

The accessibility sweep (test_accessibility.py) opens each screen in Japanese and
English, light and dark, desktop and phone, and runs axe-core on it. A new screen joins
the sweep by adding a `Screen` here (and, if it needs data, a line in `build_scene`).

The scene's own content (posts, names, titles) is emoji and digits only, so whatever
words a screen shows come from the catalogues: a page in one language can then be
checked for words of the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.sync_api import Browser

from tests import media_files as mf
from tests.e2e.conftest import EchoHubServer, Member, make_members, same_origin
from tests.support import PASSWORD


@dataclass(frozen=True)
class Screen:
    name: str
    # `#/…` (a hash route of the signed-in page) or `/…` (a path, signed out);
    # `{placeholders}` come from the scene's ids.
    route: str
    signed_in: bool = True


SCREENS = [
    Screen("sign-in", "/", signed_in=False),
    Screen("join", "/join/{invite}", signed_in=False),
    Screen("home", "#/"),
    Screen("discover", "#/discover"),
    Screen("profile", "#/u/{friend}"),
    Screen("me", "#/me"),
    Screen("footprints", "#/footprints"),
    Screen("notifications", "#/notifications"),
    Screen("events", "#/events"),
    Screen("event", "#/events/{event}"),
    Screen("full-event", "#/events/{full_event}"),
    Screen("communities", "#/communities"),
    Screen("community", "#/c/{community}"),
    Screen("invite", "#/invite"),
    Screen("settings", "#/settings"),
    Screen("search", "#/search/1"),
    Screen("thread", "#/e/{thread}"),
    Screen("tag", "#/t/x42"),
    Screen("moderation", "#/mod"),
    Screen("no-such-page", "#/nowhere"),
]


@dataclass
class Scene:
    viewer: Member  # a moderator, so the moderation screen is the real one
    ids: dict[str, str] = field(default_factory=dict)
    made: list[Member] = field(default_factory=list)

    def url(self, base: str, screen: Screen) -> str:
        return base + (screen.route if screen.route.startswith("/") else "/" + screen.route).format(
            **self.ids
        )

    def close(self) -> None:
        for m in self.made:
            m.context.close()


def _as_admin(browser: Browser, hub: EchoHubServer, method: str, path: str, data: Any) -> Any:
    context = browser.new_context()
    try:
        login = {"handle": "root", "password": PASSWORD}
        headers = same_origin(hub.base)
        resp = context.request.post(f"{hub.base}/api/login", data=login, headers=headers)
        assert resp.status == 200, resp.text()
        resp = context.request.fetch(f"{hub.base}{path}", method=method, data=data, headers=headers)
        assert resp.ok, resp.text()
        return resp.json()
    finally:
        context.close()


def _upload(member: Member, data: bytes, alt: str) -> str:
    """Upload a picture as the member (multipart, like the page) and answer its id."""
    resp = member.context.request.post(
        f"{member.base}/api/media", headers=same_origin(member.base),
        multipart={"file": {"name": "p.jpg", "mimeType": "image/jpeg", "buffer": data},
                   "alt": alt},
    )  # fmt: skip
    assert resp.status == 201, resp.text()
    return str(resp.json()["id"])


def build_scene(browser: Browser, hub: EchoHubServer) -> Scene:
    make, made = make_members(browser, hub)
    mia, rin, sora = make("Mia"), make("Rin"), make("Sora")
    _as_admin(browser, hub, "PUT", f"/api/admin/users/{mia.handle}/role", {"role": "moderator"})
    for a, b in ((mia, rin), (rin, mia), (sora, mia)):
        a.api("POST", f"/api/users/{b.handle}/follow")
    mine = mia.api("POST", "/api/echoes", {"text": "🍙 $[big 🍙] 2026"})
    rin.api("POST", "/api/echoes", {"text": "🎉 $[shake 🎉] 42 #x42"})
    rin.api("POST", "/api/echoes", {"text": "🍙 1", "reply_to": mine["id"]})
    sora.api("POST", "/api/echoes", {"text": "☕ 7", "visibility": "friends"})
    rin.api("POST", f"/api/echoes/{mine['id']}/like")
    # Pictures on a post (the grid, blurhash, alt) and avatars beside names.
    pictures = [_upload(rin, mf.photo((400 + i * 10, 300)), f"🐱 {i}") for i in range(2)]
    rin.api("POST", "/api/echoes", {"text": "📸 2", "media": pictures})
    rin.api("PATCH", "/api/me", {"avatar": _upload(rin, mf.photo((300, 300)), "")})
    rin.api("GET", f"/api/users/{mia.handle}")  # a footprint
    soon = (datetime.now(UTC) + timedelta(days=2)).replace(microsecond=0)
    when = soon.isoformat().replace("+00:00", "Z")
    event = rin.api("POST", "/api/events", {"title": "🏃 10K", "description": "🍙 🍙",
                    "starts_at": when, "place": "🗼 3", "capacity": 12})  # fmt: skip
    full = rin.api("POST", "/api/events", {"title": "🍣 2", "starts_at": when, "capacity": 1})
    sora.api("PUT", f"/api/events/{full['id']}/rsvp", {"status": "going"})
    club = rin.api("POST", "/api/communities", {"name": "📷 35", "description": "📷 📷",
                                                 "join_policy": "approval"})  # fmt: skip
    mia.api("POST", f"/api/communities/{club['id']}/join")
    rin.api("POST", f"/api/communities/{club['id']}/requests/{mia.handle}/approve")
    mia.api("POST", "/api/echoes", {"text": "📷 1", "community": club["id"]})
    sora.api("POST", "/api/reports", {"echo": mine["id"], "reason": "🙈 🙈"})
    ids = {"invite": hub.invite, "friend": rin.handle, "event": event["id"],
           "full_event": full["id"], "community": club["id"], "thread": mine["id"]}  # fmt: skip
    return Scene(viewer=mia, ids=ids, made=made)
