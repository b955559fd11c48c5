"""Event rules: the fields of an announcement, edits, times on the wire, and RSVPs.

Owns SPEC "Events" minus storage: validating a new event or a partial edit, parsing
and formatting wire times (ISO 8601, UTC, `Z`), and whether an RSVP change may take
a seat. The seat count itself is enforced atomically by the store; these checks give
the same answer up front and name the error. Callers pass `now` (aware UTC).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from server.domain.echo import clean_text, is_forbidden_character
from server.domain.errors import Conflict, DomainError

__all__ = [
    "CLOCK_SKEW",
    "MAX_CAPACITY",
    "RSVP_STATUSES",
    "EventFields",
    "check_rsvp_allowed",
    "format_time",
    "parse_time",
    "rsvp_seat_delta",
    "validate_event_patch",
    "validate_new_event",
    "validate_rsvp",
]

RSVP_STATUSES = ("going", "interested", "none")
MAX_TITLE = 100
MAX_DESCRIPTION = 2000
MAX_PLACE = 200
MAX_CAPACITY = 100_000
_MAX_COMMUNITY_ID = 100
# A start a minute in the past is a slow client or clock, not a mistake.
CLOCK_SKEW = timedelta(seconds=60)

_TIME = re.compile(
    r"(?P<y>[0-9]{4})-(?P<mo>[0-9]{2})-(?P<d>[0-9]{2})[Tt ]"
    r"(?P<h>[0-9]{2}):(?P<mi>[0-9]{2})(?::(?P<s>[0-9]{2})(?:[.,](?P<f>[0-9]{1,9}))?)?"
    r"(?:(?P<z>[Zz])|(?P<sign>[+-])(?P<oh>[0-9]{2}):?(?P<om>[0-9]{2}))"
)


@dataclass(frozen=True, slots=True)
class EventFields:
    """What a member says about an event. Times are aware UTC."""

    title: str
    description: str
    starts_at: datetime
    ends_at: datetime | None
    place: str | None
    community: str | None
    capacity: int | None


def parse_time(raw: object, field: str) -> datetime:
    """An ISO 8601 date and time with `Z` or an offset, as an aware UTC datetime.

    Naive times are refused (whose clock would they be on?). Fractions beyond
    microseconds are truncated. Raises `DomainError("invalid_time", field=field)`.
    """
    match = _TIME.fullmatch(raw) if isinstance(raw, str) else None
    if match is None:
        raise DomainError(
            "invalid_time",
            f"{field} must be an ISO 8601 time with a zone, like 2026-11-22T10:00:00Z",
            field=field,
        )
    try:
        if match["z"]:
            zone = UTC
        else:
            offset = timedelta(hours=int(match["oh"]), minutes=int(match["om"]))
            zone = timezone(-offset if match["sign"] == "-" else offset)
        parsed = datetime(
            int(match["y"]),
            int(match["mo"]),
            int(match["d"]),
            int(match["h"]),
            int(match["mi"]),
            int(match["s"] or 0),
            int((match["f"] or "0").ljust(6, "0")[:6]),
            tzinfo=zone,
        )
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise DomainError("invalid_time", f"{field} is not a real time", field=field) from None


def format_time(dt: datetime) -> str:
    """Wire form of an aware time: UTC, milliseconds, `Z` (`2026-11-22T10:00:00.123Z`)."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError("format_time needs an aware datetime")
    u = dt.astimezone(UTC)
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:"
        f"{u.second:02d}.{u.microsecond // 1000:03d}Z"
    )


def _title(raw: object) -> str:
    return clean_text(
        raw, field="title", code="invalid_title", label="title", max_graphemes=MAX_TITLE
    )


def _description(raw: object) -> str:
    if raw is None:
        return ""
    return clean_text(
        raw,
        field="description",
        code="invalid_description",
        label="description",
        max_graphemes=MAX_DESCRIPTION,
        min_graphemes=0,
        multiline=True,
    )


def _place(raw: object) -> str | None:
    if raw is None:
        return None
    place = clean_text(
        raw,
        field="place",
        code="invalid_place",
        label="place",
        max_graphemes=MAX_PLACE,
        min_graphemes=0,
    )
    return place or None


def _community(raw: object) -> str | None:
    """A community id as given (existence is the service's business)."""
    if raw is None:
        return None
    if (
        not isinstance(raw, str)
        or not 1 <= len(raw) <= _MAX_COMMUNITY_ID
        or any(ch.isspace() or is_forbidden_character(ch) for ch in raw)
    ):
        raise DomainError("invalid_community", "community must be a community id", "community")
    return raw


def _capacity(raw: object) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or not 1 <= raw <= MAX_CAPACITY:
        raise DomainError(
            "invalid_capacity",
            f"capacity must be a whole number from 1 to {MAX_CAPACITY}, or null",
            field="capacity",
        )
    return raw


def _start(raw: object, now: datetime) -> datetime:
    if raw is None:
        raise DomainError("invalid_time", "starts_at is required", field="starts_at")
    starts_at = parse_time(raw, "starts_at")
    if starts_at < now - CLOCK_SKEW:
        raise DomainError("starts_in_past", "starts_at is in the past", field="starts_at")
    return starts_at


def _check_order(starts_at: datetime, ends_at: datetime | None, field: str) -> None:
    if ends_at is not None and ends_at <= starts_at:
        raise DomainError("ends_before_start", "ends_at must be after starts_at", field=field)


def validate_new_event(body: Mapping[str, object], now: datetime) -> EventFields:
    """The fields of a new event; unknown keys are ignored.

    title 1-100 characters; description 0-2000 (may be multi-line; missing = "");
    starts_at required, not more than 60 s in the past; ends_at optional, after
    starts_at; place optional, at most 200; community optional id; capacity null or
    1-100000. Codes: `invalid_title`, `invalid_description`, `invalid_time`,
    `starts_in_past`, `ends_before_start`, `invalid_place`, `invalid_community`,
    `invalid_capacity`, each with the offending field.
    """
    title = _title(body.get("title"))
    description = _description(body.get("description"))
    starts_at = _start(body.get("starts_at"), now)
    raw_end = body.get("ends_at")
    ends_at = None if raw_end is None else parse_time(raw_end, "ends_at")
    _check_order(starts_at, ends_at, "ends_at")
    return EventFields(
        title=title,
        description=description,
        starts_at=starts_at,
        ends_at=ends_at,
        place=_place(body.get("place")),
        community=_community(body.get("community")),
        capacity=_capacity(body.get("capacity")),
    )


def validate_event_patch(
    body: Mapping[str, object], current: EventFields, going: int, now: datetime
) -> EventFields:
    """`current` with the keys present in `body` replaced; unknown keys are ignored.

    `null` clears ends_at, place and capacity (capacity null = unlimited) and empties
    the description. Same rules as `validate_new_event`, plus: the start may stay
    where it is (even if past) but not move into the past; capacity below the
    `going` count is `Conflict("capacity_below_attendance")`; the community cannot
    change (`invalid_community`).
    """
    title = _title(body["title"]) if "title" in body else current.title
    description = (
        _description(body["description"]) if "description" in body else current.description
    )
    starts_at = current.starts_at
    if "starts_at" in body:
        raw = body["starts_at"]
        moved = None if raw is None else parse_time(raw, "starts_at")
        if moved != current.starts_at:
            starts_at = _start(raw, now)
    ends_at = current.ends_at
    if "ends_at" in body:
        raw = body["ends_at"]
        ends_at = None if raw is None else parse_time(raw, "ends_at")
    _check_order(starts_at, ends_at, "ends_at" if "ends_at" in body else "starts_at")
    place = _place(body["place"]) if "place" in body else current.place
    if "community" in body and _community(body["community"]) != current.community:
        raise DomainError(
            "invalid_community", "an event cannot move to another community", "community"
        )
    capacity = current.capacity
    if "capacity" in body:
        capacity = _capacity(body["capacity"])
        if capacity is not None and capacity < going:
            raise Conflict(
                "capacity_below_attendance",
                f"{going} members are going; capacity cannot be lower",
                field="capacity",
            )
    return EventFields(
        title=title,
        description=description,
        starts_at=starts_at,
        ends_at=ends_at,
        place=place,
        community=current.community,
        capacity=capacity,
    )


def validate_rsvp(raw: object) -> str:
    """One of `RSVP_STATUSES`; else `invalid_rsvp` (field `status`)."""
    if not isinstance(raw, str) or raw not in RSVP_STATUSES:
        raise DomainError(
            "invalid_rsvp", 'status must be "going", "interested" or "none"', field="status"
        )
    return raw


def rsvp_seat_delta(old: str, new: str) -> int:
    """Change in `going` seats when an RSVP moves from `old` to `new`: +1, -1 or 0."""
    return int(new == "going") - int(old == "going")


def check_rsvp_allowed(
    old: str, new: str, going: int, capacity: int | None, cancelled: bool
) -> None:
    """Raise `Conflict("event_cancelled")` for any RSVP on a cancelled event, and
    `Conflict("event_full", field="status")` when taking a seat would exceed capacity.

    Leaving a seat or switching between non-seat statuses is always allowed.
    """
    if cancelled:
        raise Conflict("event_cancelled", "this event was cancelled")
    if rsvp_seat_delta(old, new) > 0 and capacity is not None and going + 1 > capacity:
        raise Conflict("event_full", "this event is full", field="status")
