"""Event rules: wire times, new events, edits, RSVPs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.domain.errors import Conflict, DomainError
from server.domain.events import (
    RSVP_STATUSES,
    EventFields,
    check_rsvp_allowed,
    format_time,
    parse_time,
    rsvp_seat_delta,
    validate_event_patch,
    validate_new_event,
    validate_rsvp,
)

NOW = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0, us: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, us, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-11-22T10:00:00Z", utc(2026, 11, 22, 10)),
        ("2026-11-22T10:00Z", utc(2026, 11, 22, 10)),
        ("2026-11-22t10:00:00z", utc(2026, 11, 22, 10)),
        ("2026-11-22 10:00:00Z", utc(2026, 11, 22, 10)),
        ("2026-11-22T10:00:00.123Z", utc(2026, 11, 22, 10, 0, 0, 123000)),
        ("2026-11-22T10:00:00.123456789Z", utc(2026, 11, 22, 10, 0, 0, 123456)),
        ("2026-11-22T10:00:00,5Z", utc(2026, 11, 22, 10, 0, 0, 500000)),
        ("2026-11-22T19:00:00+09:00", utc(2026, 11, 22, 10)),
        ("2026-11-22T19:00:00+0900", utc(2026, 11, 22, 10)),
        ("2026-11-22T05:30:00-04:30", utc(2026, 11, 22, 10)),
        ("2026-11-22T00:30:00+01:00", utc(2026, 11, 21, 23, 30)),
        ("2028-02-29T00:00:00Z", utc(2028, 2, 29)),
    ],
)
def test_parse_time(raw: str, expected: datetime) -> None:
    parsed = parse_time(raw, "starts_at")
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "raw",
    [
        None,
        1700000000,
        "",
        "2026-11-22T10:00:00",  # naive
        "2026-11-22",
        "2026-11-22T10Z",
        "10:00Z",
        "2026-11-22T10:00:00 Z",
        "2026-11-22T10:00:00+9",
        "2026-11-22T25:00:00Z",
        "2026-11-22T10:61:00Z",
        "2026-11-22T10:00:60Z",
        "2026-02-30T10:00:00Z",
        "2026-11-22T10:00:00+24:00",
        "0001-01-01T00:00:00+01:00",  # before datetime.min in UTC
        "9999-12-31T23:59:59-01:00",  # after datetime.max in UTC
        "2026-11-22T10:00:00Z\n",
        "\uff12026-11-22T10:00:00Z",  # fullwidth digit
        "2026-W47-7T10:00:00Z",
    ],
)
def test_parse_time_rejects(raw: object) -> None:
    with pytest.raises(DomainError) as excinfo:
        parse_time(raw, "ends_at")
    assert (excinfo.value.code, excinfo.value.field) == ("invalid_time", "ends_at")


@pytest.mark.parametrize(
    ("dt", "text"),
    [
        (utc(2026, 11, 22, 10, 0, 0, 123456), "2026-11-22T10:00:00.123Z"),
        (utc(2026, 11, 22, 10), "2026-11-22T10:00:00.000Z"),
        (
            datetime(2026, 11, 22, 19, tzinfo=timezone(timedelta(hours=9))),
            "2026-11-22T10:00:00.000Z",
        ),
        (utc(999, 1, 2, 3, 4, 5, 999999), "0999-01-02T03:04:05.999Z"),
    ],
)
def test_format_time(dt: datetime, text: str) -> None:
    assert format_time(dt) == text


def test_format_time_refuses_naive() -> None:
    with pytest.raises(ValueError):
        format_time(datetime(2026, 11, 22))


@given(
    st.datetimes(
        timezones=st.just(UTC), min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)
    )
)
def test_format_parse_round_trip_to_the_millisecond(dt: datetime) -> None:
    assert parse_time(format_time(dt), "at") == dt.replace(
        microsecond=dt.microsecond // 1000 * 1000
    )


BASE: dict[str, object] = {
    "title": "Hanami",
    "description": "Picnic under the cherry trees.\nBring a mat.",
    "starts_at": "2026-11-23T10:00:00Z",
}


def new(**changes: object) -> EventFields:
    return validate_new_event({**BASE, **changes}, NOW)


def test_new_event_minimal() -> None:
    assert validate_new_event({"title": " Hanami ", "starts_at": "2026-11-23T10:00:00Z"}, NOW) == (
        EventFields(
            title="Hanami",
            description="",
            starts_at=utc(2026, 11, 23, 10),
            ends_at=None,
            place=None,
            community=None,
            capacity=None,
        )
    )


def test_new_event_full() -> None:
    fields = new(
        ends_at="2026-11-23T12:00:00+00:00",
        place="Ueno Park",
        community="c_123",
        capacity=20,
        unknown="ignored",
    )
    assert fields == EventFields(
        title="Hanami",
        description="Picnic under the cherry trees.\nBring a mat.",
        starts_at=utc(2026, 11, 23, 10),
        ends_at=utc(2026, 11, 23, 12),
        place="Ueno Park",
        community="c_123",
        capacity=20,
    )


@pytest.mark.parametrize(
    ("changes", "attr", "value"),
    [
        ({"title": "x" * 100}, "title", "x" * 100),
        ({"title": "🎉" * 100}, "title", "🎉" * 100),
        ({"description": None}, "description", ""),
        ({"description": "  "}, "description", ""),
        ({"description": "d" * 2000}, "description", "d" * 2000),
        ({"description": "a\r\nb"}, "description", "a\nb"),
        ({"starts_at": "2026-11-22T09:59:01Z"}, "starts_at", utc(2026, 11, 22, 9, 59, 1)),
        ({"starts_at": "2026-11-22T09:59:00Z"}, "starts_at", utc(2026, 11, 22, 9, 59)),
        ({"place": ""}, "place", None),
        ({"place": "p" * 200}, "place", "p" * 200),
        ({"capacity": 1}, "capacity", 1),
        ({"capacity": 100000}, "capacity", 100000),
        ({"capacity": None}, "capacity", None),
    ],
)
def test_new_event_accepts(changes: dict[str, object], attr: str, value: object) -> None:
    assert getattr(new(**changes), attr) == value


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"title": None}, "invalid_title", "title"),
        ({"title": ""}, "invalid_title", "title"),
        ({"title": "   "}, "invalid_title", "title"),
        ({"title": "x" * 101}, "invalid_title", "title"),
        ({"title": "a\nb"}, "invalid_title", "title"),
        ({"title": 5}, "invalid_title", "title"),
        ({"description": "d" * 2001}, "invalid_description", "description"),
        ({"description": "a\x00b"}, "invalid_description", "description"),
        ({"description": ["x"]}, "invalid_description", "description"),
        ({"starts_at": None}, "invalid_time", "starts_at"),
        ({"starts_at": "tomorrow"}, "invalid_time", "starts_at"),
        ({"starts_at": "2026-11-23T10:00:00"}, "invalid_time", "starts_at"),
        ({"starts_at": "2026-11-22T09:58:59Z"}, "starts_in_past", "starts_at"),
        ({"starts_at": "2020-01-01T00:00:00Z"}, "starts_in_past", "starts_at"),
        ({"ends_at": "2026-11-23T10:00:00Z"}, "ends_before_start", "ends_at"),
        ({"ends_at": "2026-11-23T09:00:00Z"}, "ends_before_start", "ends_at"),
        ({"ends_at": "soon"}, "invalid_time", "ends_at"),
        ({"place": "p" * 201}, "invalid_place", "place"),
        ({"place": 3}, "invalid_place", "place"),
        ({"community": ""}, "invalid_community", "community"),
        ({"community": 12}, "invalid_community", "community"),
        ({"community": "a b"}, "invalid_community", "community"),
        ({"community": "c" * 101}, "invalid_community", "community"),
        ({"capacity": 0}, "invalid_capacity", "capacity"),
        ({"capacity": -1}, "invalid_capacity", "capacity"),
        ({"capacity": 100001}, "invalid_capacity", "capacity"),
        ({"capacity": True}, "invalid_capacity", "capacity"),
        ({"capacity": 10.0}, "invalid_capacity", "capacity"),
        ({"capacity": "10"}, "invalid_capacity", "capacity"),
    ],
)
def test_new_event_rejects(changes: dict[str, object], code: str, field: str) -> None:
    with pytest.raises(DomainError) as excinfo:
        new(**changes)
    assert type(excinfo.value) is DomainError
    assert (excinfo.value.code, excinfo.value.field) == (code, field)


CURRENT = EventFields(
    title="Hanami",
    description="Picnic",
    starts_at=utc(2026, 11, 23, 10),
    ends_at=utc(2026, 11, 23, 12),
    place="Ueno Park",
    community="c_1",
    capacity=10,
)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, CURRENT),
        ({"unknown": 1}, CURRENT),
        (
            {"title": "Yozakura"},
            EventFields(
                "Yozakura", "Picnic", CURRENT.starts_at, CURRENT.ends_at, "Ueno Park", "c_1", 10
            ),
        ),
        (
            {"description": None},
            EventFields("Hanami", "", CURRENT.starts_at, CURRENT.ends_at, "Ueno Park", "c_1", 10),
        ),
        (
            {"ends_at": None},
            EventFields("Hanami", "Picnic", CURRENT.starts_at, None, "Ueno Park", "c_1", 10),
        ),
        (
            {"place": None},
            EventFields("Hanami", "Picnic", CURRENT.starts_at, CURRENT.ends_at, None, "c_1", 10),
        ),
        (
            {"capacity": None},
            EventFields(
                "Hanami", "Picnic", CURRENT.starts_at, CURRENT.ends_at, "Ueno Park", "c_1", None
            ),
        ),
        (
            {"capacity": 4},
            EventFields(
                "Hanami", "Picnic", CURRENT.starts_at, CURRENT.ends_at, "Ueno Park", "c_1", 4
            ),
        ),
        ({"community": "c_1"}, CURRENT),
        (
            {"starts_at": "2026-11-23T11:00:00Z", "ends_at": "2026-11-23T13:00:00Z"},
            EventFields(
                "Hanami",
                "Picnic",
                utc(2026, 11, 23, 11),
                utc(2026, 11, 23, 13),
                "Ueno Park",
                "c_1",
                10,
            ),
        ),
    ],
)
def test_patch(body: dict[str, object], expected: EventFields) -> None:
    assert validate_event_patch(body, CURRENT, going=4, now=NOW) == expected


def test_patch_keeps_a_start_already_in_the_past() -> None:
    started = EventFields("Live", "", utc(2026, 11, 22, 9), None, None, None, None)
    body = {"starts_at": "2026-11-22T18:00:00+09:00", "title": "Live!"}
    assert validate_event_patch(body, started, going=0, now=NOW).title == "Live!"


@pytest.mark.parametrize(
    ("body", "error", "code", "field"),
    [
        ({"capacity": 3}, Conflict, "capacity_below_attendance", "capacity"),
        ({"capacity": 0}, DomainError, "invalid_capacity", "capacity"),
        ({"starts_at": "2026-11-22T09:00:00Z"}, DomainError, "starts_in_past", "starts_at"),
        ({"starts_at": None}, DomainError, "invalid_time", "starts_at"),
        ({"starts_at": "2026-11-23T12:30:00Z"}, DomainError, "ends_before_start", "starts_at"),
        ({"ends_at": "2026-11-23T09:00:00Z"}, DomainError, "ends_before_start", "ends_at"),
        ({"title": None}, DomainError, "invalid_title", "title"),
        ({"title": ""}, DomainError, "invalid_title", "title"),
        ({"community": "c_2"}, DomainError, "invalid_community", "community"),
        ({"community": None}, DomainError, "invalid_community", "community"),
    ],
)
def test_patch_rejects(
    body: dict[str, object], error: type[DomainError], code: str, field: str
) -> None:
    with pytest.raises(DomainError) as excinfo:
        validate_event_patch(body, CURRENT, going=4, now=NOW)
    assert type(excinfo.value) is error
    assert (excinfo.value.code, excinfo.value.field) == (code, field)


@pytest.mark.parametrize("raw", RSVP_STATUSES)
def test_rsvp_accepted(raw: str) -> None:
    assert validate_rsvp(raw) == raw


@pytest.mark.parametrize("raw", [None, "", "Going", "maybe", "not_going", 1, ["going"]])
def test_rsvp_rejected(raw: object) -> None:
    with pytest.raises(DomainError) as excinfo:
        validate_rsvp(raw)
    assert (excinfo.value.code, excinfo.value.field) == ("invalid_rsvp", "status")


@pytest.mark.parametrize(
    ("old", "new", "delta"),
    [
        ("none", "going", 1),
        ("interested", "going", 1),
        ("going", "going", 0),
        ("going", "interested", -1),
        ("going", "none", -1),
        ("none", "interested", 0),
        ("interested", "none", 0),
        ("none", "none", 0),
    ],
)
def test_rsvp_seat_delta(old: str, new: str, delta: int) -> None:
    assert rsvp_seat_delta(old, new) == delta


@pytest.mark.parametrize(
    ("old", "new", "going", "capacity", "cancelled", "code"),
    [
        ("none", "going", 9, 10, False, None),
        ("none", "going", 10, 10, False, "event_full"),
        ("interested", "going", 10, 10, False, "event_full"),
        ("none", "going", 11, 10, False, "event_full"),  # already over (capacity lowered)
        ("going", "going", 10, 10, False, None),  # keeps their seat
        ("going", "none", 10, 10, False, None),
        ("none", "interested", 10, 10, False, None),
        ("none", "going", 100000, None, False, None),  # unlimited
        ("none", "going", 0, 1, False, None),
        ("none", "going", 0, 10, True, "event_cancelled"),
        ("going", "none", 5, 10, True, "event_cancelled"),
    ],
)
def test_check_rsvp_allowed(
    old: str, new: str, going: int, capacity: int | None, cancelled: bool, code: str | None
) -> None:
    if code is None:
        check_rsvp_allowed(old, new, going, capacity, cancelled)
        return
    with pytest.raises(Conflict) as excinfo:
        check_rsvp_allowed(old, new, going, capacity, cancelled)
    assert excinfo.value.code == code
    assert excinfo.value.field == ("status" if code == "event_full" else None)
