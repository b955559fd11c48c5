"""The sign-in backoff rule."""

from __future__ import annotations

import pytest

from server.domain.logins import backoff_table, backoff_wait


@pytest.mark.parametrize(
    ("attempts", "expected"),
    [(0, 0.0), (4, 0.0), (5, 1.0), (6, 2.0), (7, 4.0), (12, 128.0), (14, 512.0), (15, 900.0),
     (40, 900.0), (10**6, 900.0)],
)  # fmt: skip
def test_free_attempts_then_doubling_up_to_the_cap(attempts: int, expected: float) -> None:
    assert backoff_wait(attempts, free=5, base=1.0, cap=900.0) == expected


def test_the_table_ends_at_the_cap() -> None:
    assert backoff_table(5, 1.0, 900.0) == (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900)
    assert backoff_table(0, 0.5, 2.0) == (0.5, 1.0, 2.0)
    assert backoff_table(3, 5.0, 1.0) == (1.0,)
    assert len(backoff_table(0, 1e-30, 1.0)) == 64  # bounded however small the base
