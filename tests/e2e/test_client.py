"""Pure parts of web/js/echohub.js, run in Chromium: backoff and cursor order."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Browser, Page

from tests.e2e.conftest import EchoHubServer


@pytest.fixture(scope="module")
def page(browser: Browser, echohub: EchoHubServer) -> Any:
    context = browser.new_context()
    page = context.new_page()
    page.goto(echohub.base)
    yield page
    context.close()


def test_backoff_has_full_jitter_within_a_growing_cap(page: Page) -> None:
    bounds = page.evaluate(
        """async () => {
            const { backoffDelay } = await import("/js/echohub.js");
            const at = (attempt, r) =>
                backoffDelay(attempt, { base: 500, max: 15000, random: () => r });
            return [0, 1, 2, 3, 4, 5, 10, 40].map((n) => [at(n, 0), at(n, 0.999999)]);
        }"""
    )
    caps = [500, 1000, 2000, 4000, 8000, 15000, 15000, 15000]
    for (low, high), cap in zip(bounds, caps, strict=True):
        assert low == cap // 2 and high == cap


def test_cursors_compare_as_numbers(page: Page) -> None:
    result = page.evaluate(
        """async () => {
            const { compareCursors } = await import("/js/echohub.js");
            return [compareCursors("10", "9"), compareCursors("9", "10"),
                    compareCursors("18446744073709551617", "18446744073709551616"),
                    compareCursors("5", "5")];
        }"""
    )
    assert result == [1, -1, 1, 0]
