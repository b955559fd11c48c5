"""Footprints (mixi's ashiato): who leaves one, and when the owner hears about it.

Owns the rules of SPEC "Footprints". The store keeps the latest visit per visitor
and the time of the last notification; callers pass `now`.
"""

from __future__ import annotations

from server.domain.visibility import Relation

__all__ = ["FOOTPRINT_NOTIFY_WINDOW", "MAX_VISITORS", "leaves_footprint", "should_notify"]

FOOTPRINT_NOTIFY_WINDOW = 3600.0  # at most one live notification per visitor per hour
MAX_VISITORS = 50  # the owner sees this many recent visitors, newest first


def leaves_footprint(visitor_id: str, owner_id: str, rel: Relation) -> bool:
    """Whether viewing `owner_id`'s profile leaves a footprint.

    `rel` is seen from the visitor. No footprint on one's own profile, nor across a
    block in either direction (a blocked member cannot leave one, and a blocker's
    visits do not reveal them to the member they blocked).
    """
    return visitor_id != owner_id and not (rel.blocks or rel.blocked_by)


def should_notify(
    last_notified_at: float | None, now: float, window: float = FOOTPRINT_NOTIFY_WINDOW
) -> bool:
    """Whether to send a live `footprint` notification for this visitor now.

    True the first time, then once `window` seconds have passed since the last one.
    A clock that went backwards does not cause a repeat.
    """
    return last_notified_at is None or now - last_notified_at >= window
