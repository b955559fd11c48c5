"""axe-core in the real page: load it (from var/node, installed by scripts/test) and
report the WCAG 2.2 A/AA violations of what the page shows now.

Evaluated through the DevTools protocol, so the page's Content-Security-Policy (no
inline scripts) stays as it is for the page itself."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

AXE_VERSION = "4.14.1"
NODE_MODULES = Path(__file__).resolve().parents[2] / "var" / "node" / "node_modules"
AXE_JS = NODE_MODULES / "axe-core" / "axe.min.js"
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22a", "wcag22aa", "best-practice"]


@cache
def axe_source() -> str:
    # Never skip: without axe the sweep would pass by checking nothing.
    assert AXE_JS.is_file(), f"axe-core is missing; scripts/test installs it ({AXE_JS.name})"
    return AXE_JS.read_text(encoding="utf-8")


def violations(page: Page) -> list[dict[str, Any]]:
    """axe's violations on the page as shown (one line per rule, with its targets)."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(axe_source())
    result = page.evaluate(
        """async (tags) => {
            const r = await axe.run(document, { runOnly: { type: "tag", values: tags } });
            return r.violations.map((v) => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map((n) => ({
                    target: n.target.join(" "), summary: n.failureSummary,
                })),
            }));
        }""",
        WCAG_AA,
    )
    return list(result)
