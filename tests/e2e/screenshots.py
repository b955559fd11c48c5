"""Screenshots of the main pages for docs/screenshots/, desktop and phone width.

    .venv/bin/python -m tests.e2e.screenshots [OUT_DIR]

Starts a private server on a temporary data dir, fills it with a few members, Echoes
(with effects, in Japanese and English), an event and a community, then saves
home, profile, events, communities (and a few more) as `<page>-<desktop|phone>.png`, in
English, and in Japanese as `<page>-<desktop|phone>-ja.png`.
"""

from __future__ import annotations

import itertools
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from playwright.sync_api import Browser, expect, sync_playwright

from tests.e2e.conftest import (
    CHROMIUM,
    CHROMIUM_ARGS,
    EchoHubServer,
    Member,
    _open_server,
    same_origin,
)
from tests.support import PASSWORD

if TYPE_CHECKING:
    from playwright._impl._api_structures import SetCookieParam

SIZES: dict[str, dict[str, Any]] = {
    "desktop": {"viewport": {"width": 1280, "height": 860}},
    "phone": {
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 2,
        "is_mobile": True,
        "has_touch": True,
    },
}


def seed(browser: Browser, hub: EchoHubServer) -> dict[str, Any]:
    from tests.e2e.conftest import make_members

    make, made = make_members(browser, hub)
    aki, ben, chika = make("秋 Aki", handle="aki"), make("Ben"), make("ちか", handle="chika")
    for a, b in ((aki, ben), (ben, aki), (aki, chika), (chika, aki), (ben, chika)):
        a.api("POST", f"/api/users/{b.handle}/follow")
    posts = [
        (chika, "おはよう！今日は $[big いい天気] ですね ☀️"),
        (ben, "Who's coming to the picnic on Saturday? 🧺"),
        (aki, "$[shake 地震]じゃなくて、ただの $[big $[shake 興奮]] です"),
        (chika, "新しいカメラを買いました📷 週末に写真部で試します"),
        (ben, "Just finished the $[big marathon] 🏃‍♂️ legs are $[shake jelly]"),
        (aki, "Echo Hub で足あとが見えるの、懐かしい感じ👣"),
    ]
    ids = []
    for who, text in posts:
        ids.append(who.api("POST", "/api/echoes", {"text": text})["id"])
    ben.api("POST", f"/api/echoes/{ids[2]}/like")
    chika.api("POST", f"/api/echoes/{ids[2]}/like")
    starts = (datetime.now(UTC) + timedelta(days=3)).replace(hour=3, minute=0, second=0)
    event = ben.api(
        "POST",
        "/api/events",
        {"title": "代々木公園でピクニック", "description": "Bring snacks. 雨天中止.",
         "starts_at": starts.isoformat().replace("+00:00", "Z"), "place": "Yoyogi Park",
         "capacity": 12},
    )  # fmt: skip
    aki.api("PUT", f"/api/events/{event['id']}/rsvp", {"status": "going"})
    chika.api("PUT", f"/api/events/{event['id']}/rsvp", {"status": "interested"})
    club = chika.api(
        "POST",
        "/api/communities",
        {"name": "写真部 Photo Club", "description": "毎週末の撮影会。Cats welcome.",
         "join_policy": "approval"},
    )  # fmt: skip
    runners = {"name": "Tokyo Runners", "join_policy": "open",
               "description": "Morning runs around the Imperial Palace."}  # fmt: skip
    chika.api("POST", "/api/communities", runners)
    for joiner in (ben, aki):
        joiner.api("POST", f"/api/communities/{club['id']}/join")
        chika.api("POST", f"/api/communities/{club['id']}/requests/{joiner.handle}/approve")
    aki.api("POST", "/api/echoes", {"text": "参加しました！よろしくお願いします $[shake 🙏]",
                                     "community": club["id"]})  # fmt: skip
    chika.api("POST", "/api/events", {"title": "猫カフェ撮影会", "community": club["id"],
              "starts_at": (starts + timedelta(days=4)).isoformat().replace("+00:00", "Z"),
              "place": "谷中"})  # fmt: skip
    chika.api(
        "POST",
        "/api/echoes",
        {"text": "今週の $[big テーマ] は「猫」です🐈", "community": club["id"]},
    )
    ben.api("GET", f"/api/users/{aki.handle}")
    chika.api("GET", f"/api/users/{aki.handle}")
    # A moderator, made by the root admin, and something for them to look at.
    mia = make("Mia", handle="mia")
    root = browser.new_context()
    login = root.request.post(
        f"{hub.base}/api/login",
        data={"handle": "root", "password": PASSWORD},
        headers=same_origin(hub.base),
    )
    assert login.ok, login.text()
    role = root.request.put(f"{hub.base}/api/admin/users/{mia.handle}/role",
                            data={"role": "moderator"}, headers=same_origin(hub.base))  # fmt: skip
    assert role.ok, role.text()
    root.close()
    spam = ben.api("POST", "/api/echoes", {"text": "$[big FREE] followers!!! click my profile"})
    aki.api("POST", "/api/reports", {"echo": spam["id"], "reason": "spam, posted many times"})
    chika.api("POST", "/api/reports", {"echo": spam["id"], "reason": "looks like a bot"})
    aki.api("POST", "/api/reports", {"user": ben.handle, "reason": "keeps sending the same link"})
    first = mia.api("GET", "/api/mod/reports")["items"][-1]
    mia.api("POST", f"/api/mod/reports/{first['id']}/resolve", {"reason": "warned by DM"})
    return {"aki": aki, "mod": mia, "event": event, "club": club, "members": made}


def member_pages(who: Member, data: dict[str, Any]) -> dict[str, str]:
    return {
        "home": "#/",
        "profile": f"#/u/{who.handle}",
        "events": f"#/events/{data['event']['id']}",
        "communities": f"#/c/{data['club']['id']}",
        "footprints": "#/footprints",
    }


# English keeps the plain names; other languages add their code (`home-desktop-ja.png`).
LOCALES = {"en-US": "", "ja-JP": "-ja"}


def shoot(browser: Browser, hub: EchoHubServer, who: Member, pages: dict[str, str],
          out: Path) -> None:  # fmt: skip
    for (size, options), (locale, suffix) in itertools.product(SIZES.items(), LOCALES.items()):
        context = browser.new_context(**options, color_scheme="light", locale=locale)
        # A read cookie is a cookie to set, field for field; Playwright types them apart.
        context.add_cookies(cast("list[SetCookieParam]", who.context.cookies()))
        page = context.new_page()
        for name, route in pages.items():
            page.goto(f"{hub.base}/{route}")
            expect(page.locator("#conn")).to_have_attribute("data-status", "open")
            expect(page.locator(".view").last).not_to_be_empty()
            page.wait_for_load_state("networkidle")
            page.screenshot(path=str(out / f"{name}-{size}{suffix}.png"), animations="disabled")
        context.close()


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        hub = _open_server(Path(tmp), browser)
        try:
            data = seed(browser, hub)
            shoot(browser, hub, data["aki"], member_pages(data["aki"], data), out)
            shoot(browser, hub, data["mod"], {"moderation": "#/mod"}, out)
            for m in data["members"]:
                m.context.close()
        finally:
            hub.stop()
            browser.close()
    print(f"screenshots in {out}")


if __name__ == "__main__":
    main()
