"""Times on the wire: `iso` gives what datetime would, digit for digit."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from server.services.common import iso


def datetime_iso(ts: float) -> str:
    moment = dt.datetime.fromtimestamp(ts, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@pytest.mark.parametrize(
    ("ts", "wire"),
    [
        (0.0, "1970-01-01T00:00:00.000Z"),
        (1_795_341_600.123, "2026-11-22T10:00:00.123Z"),
        (1_795_341_600.9999996, "2026-11-22T10:00:01.000Z"),  # rounds up into the next second
        (1_795_341_600.0009994, "2026-11-22T10:00:00.000Z"),
        (-0.25, "1969-12-31T23:59:59.750Z"),
    ],
)
def test_iso(ts: float, wire: str) -> None:
    assert iso(ts) == wire == datetime_iso(ts)


@given(st.floats(min_value=-1e9, max_value=4e9, allow_nan=False))
@example(1_795_341_600.0000005)  # half a microsecond: to even, as datetime rounds
@example(1_795_341_600.9999995)
def test_iso_matches_datetime(ts: float) -> None:
    assert iso(ts) == datetime_iso(ts)
