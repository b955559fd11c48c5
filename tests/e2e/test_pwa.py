"""The PWA shell: a manifest with real icons, a service worker that keeps the static
shell only (never an API answer or media), and an honest offline page from the cache."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.e2e.conftest import Member, MemberFactory

SHELL = re.compile(r"^/(|manifest\.webmanifest|(js|css|img)/.+)$")
CACHED_PATHS = """async () => {
    const paths = [];
    for (const name of await caches.keys()) {
        const cache = await caches.open(name);
        for (const req of await cache.keys()) paths.push(new URL(req.url).pathname);
    }
    return paths;
}"""


def controlled(member: Member) -> None:
    """Wait for the worker, then reload so it controls the page (and has the shell)."""
    member.page.evaluate("async () => { await navigator.serviceWorker.ready; }")
    member.goto()
    member.page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    # The page told the worker what it loaded: the whole shell is cached.
    member.page.wait_for_function(
        """async () => {
            const cache = await caches.open((await caches.keys())[0]);
            return !!(await cache.match('/js/views/events.js'));
        }"""
    )


def test_the_manifest_installs_with_real_icons(member: MemberFactory) -> None:
    aki = member("Installer")
    resp = aki.context.request.get(f"{aki.base}/manifest.webmanifest")
    assert resp.ok and resp.headers["content-type"].startswith("application/manifest+json")
    manifest = resp.json()
    assert manifest["start_url"] == "/#/" and manifest["display"] == "standalone"
    sizes = set()
    for icon in manifest["icons"]:
        got = aki.context.request.get(f"{aki.base}{icon['src']}")
        assert got.ok and got.headers["content-type"] == icon["type"], icon
        sizes.add(icon["sizes"])
    assert {"192x192", "512x512"} <= sizes
    aki.goto()
    expect(aki.page.locator("link[rel=manifest]")).to_have_attribute(
        "href", "/manifest.webmanifest"
    )


def test_offline_the_shell_opens_and_says_so_then_comes_back(member: MemberFactory) -> None:
    aki = member("Pocket", locale="ja-JP")
    aki.api("POST", "/api/echoes", {"text": "cached? never"})
    aki.goto()
    controlled(aki)
    aki.goto("#/events")  # an API answer and a view module the worker may not keep
    paths = aki.page.evaluate(CACHED_PATHS)
    assert paths and all(SHELL.match(p) for p in paths), paths
    assert "/" in paths and "/js/app.js" in paths

    aki.goto()
    aki.context.set_offline(True)
    aki.page.reload()
    page = aki.page
    expect(page.get_by_role("heading", name="オフラインです")).to_be_visible()
    expect(page).to_have_title("オフラインです · Echo Hub")
    expect(page.locator("html")).to_have_attribute("lang", "ja")
    # Nothing of the member's data came from the cache.
    expect(page.get_by_text("cached? never")).to_have_count(0)

    aki.context.set_offline(False)
    expect(page.locator("#conn")).to_have_attribute("data-status", "open")
    expect(page.locator(".feed .echo", has_text="cached? never")).to_be_visible()
