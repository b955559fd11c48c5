"""Footprints: who leaves one and when the owner is notified."""

from __future__ import annotations

import pytest

from server.domain.footprints import (
    FOOTPRINT_NOTIFY_WINDOW,
    MAX_VISITORS,
    leaves_footprint,
    should_notify,
)
from server.domain.visibility import Relation


@pytest.mark.parametrize(
    ("visitor", "owner", "rel", "leaves"),
    [
        ("a", "b", Relation(), True),
        ("a", "b", Relation(follows=True, followed_by=True), True),
        ("a", "b", Relation(mutes=True), True),
        ("a", "a", Relation(), False),  # self-visit
        ("a", "b", Relation(blocked_by=True), False),  # owner blocked the visitor
        ("a", "b", Relation(blocks=True), False),  # visitor blocked the owner
    ],
)
def test_leaves_footprint(visitor: str, owner: str, rel: Relation, leaves: bool) -> None:
    assert leaves_footprint(visitor, owner, rel) is leaves


@pytest.mark.parametrize(
    ("last", "now", "notify"),
    [
        (None, 0.0, True),
        (None, 1e9, True),
        (1000.0, 1000.0, False),
        (1000.0, 1000.0 + 3599.999, False),
        (1000.0, 1000.0 + 3600.0, True),
        (1000.0, 1000.0 + 86400.0, True),
        (1000.0, 500.0, False),  # clock went backwards
    ],
)
def test_should_notify(last: float | None, now: float, notify: bool) -> None:
    assert should_notify(last, now) is notify


def test_should_notify_custom_window() -> None:
    assert should_notify(100.0, 110.0, window=10.0)
    assert not should_notify(100.0, 109.0, window=10.0)


def test_constants() -> None:
    assert FOOTPRINT_NOTIFY_WINDOW == 3600.0
    assert MAX_VISITORS == 50
