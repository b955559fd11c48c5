"""Notification history rules (server.domain.notifications): cursors and what is shown."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.domain.errors import DomainError
from server.domain.notifications import about_posts, parse_cursor, shown


@pytest.mark.parametrize("raw", ["1", "1733364000000000", "9" * 19])
def test_good_cursors(raw: str) -> None:
    assert parse_cursor(raw, "until") == int(raw)


@pytest.mark.parametrize(
    "raw", [None, 5, 1.5, [], "", "x", "-1", "+1", " 1", "1 ", "1e5", "9" * 20, "١", "²", "0x1"]
)
def test_bad_cursors(raw: object) -> None:
    with pytest.raises(DomainError) as err:
        parse_cursor(raw, "until")
    assert (err.value.code, err.value.field) == ("invalid_cursor", "until")


@given(st.text(max_size=25))
def test_a_cursor_is_digits_or_refused(raw: str) -> None:
    try:
        value = parse_cursor(raw, "before")
    except DomainError:
        assert not (raw.isascii() and raw.isdigit() and 1 <= len(raw) <= 19)
    else:
        assert str(value).zfill(len(raw)) == raw


def test_shown_keeps_context_and_read_state() -> None:
    data = {"echo": "p1", "text": "hi", "reply_to": "p0", "reply_to_text": "q", "by": {}}
    item = shown(7, "reply", data, "2026-01-01T00:00:00.000Z", 7, {"p0", "p1"})
    assert item == {"id": "7", "type": "reply", "data": data,
                    "at": "2026-01-01T00:00:00.000Z", "read": True}  # fmt: skip
    assert shown(8, "reply", data, "t", 7, {"p0", "p1"})["read"] is False


def test_a_deleted_posts_words_are_dropped() -> None:
    data = {"echo": "p1", "text": "hi", "reply_to": "p0", "reply_to_text": "q"}
    item = shown(7, "reply", data, "t", 0, {"p1"})
    assert item["data"] == {"echo": "p1", "text": "hi", "reply_to": "p0", "deleted": ["reply_to"]}
    assert data["reply_to_text"] == "q"  # the input is not changed
    assert shown(7, "follow", {"by": {}}, "t", 0, set())["data"] == {"by": {}}
    assert shown(7, "event.updated", ["not", "a", "dict"], "t", 0, set())["data"] == [
        "not", "a", "dict"]  # fmt: skip


def test_about_posts() -> None:
    assert about_posts({"echo": "a", "reply_to": "b", "text": "c"}) == ["a", "b"]
    assert about_posts({"echo": 5}) == [] and about_posts(None) == []
