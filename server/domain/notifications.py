"""Notification history: its cursors and how a kept notification is shown.

A notification's id is its cursor on the member's `me` topic (the bus seq, a decimal
integer), so a page, a live event and a read marker all speak the same cursor. A kept
notification is shown with the context it was sent with (the post's text, the event,
the community, who did it), except the text of a post deleted since: a deleted post's
words do not outlive it in anyone's history.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Container
from typing import Any

from server.domain.errors import DomainError

__all__ = ["MAX_CURSOR_DIGITS", "about_posts", "parse_cursor", "shown"]

MAX_CURSOR_DIGITS = 19  # a bus seq is microseconds since 1970: 16 digits until 2286
# Data fields that carry a post's words, by the field naming that post.
_TEXT_OF = {"echo": "text", "reply_to": "reply_to_text"}


def parse_cursor(raw: object, field: str) -> int:
    """A cursor this server gave (a decimal seq), or `invalid_cursor` (400, `field`)."""
    if (
        not isinstance(raw, str)
        or not raw.isascii()
        or not raw.isdigit()
        or not 1 <= len(raw) <= MAX_CURSOR_DIGITS
    ):
        raise DomainError("invalid_cursor", "the cursor is not one this server gave", field)
    return int(raw)


def about_posts(data: Any) -> list[str]:
    """The ids of the posts a notification's data names (to check they still exist)."""
    if not isinstance(data, dict):
        return []
    return [v for k in _TEXT_OF if isinstance(v := data.get(k), str)]


def shown(
    cursor: int, type_: str, data: Any, at: str, read_until: int, existing: Container[str]
) -> dict[str, Any]:
    """A kept notification on the wire: `{id, type, data, at, read}`; the words of a post
    no longer in `existing` are dropped and the post marked `deleted`."""
    if isinstance(data, dict):
        gone = [k for k in _TEXT_OF if isinstance(data.get(k), str) and data[k] not in existing]
        if gone:
            data = {k: v for k, v in data.items() if k not in {_TEXT_OF[g] for g in gone}}
            data["deleted"] = sorted(gone)
    return {"id": str(cursor), "type": type_, "data": data, "at": at,
            "read": cursor <= read_until}  # fmt: skip
