"""Notification history: a member's kept notifications, unread count and read marker.

Every notification is kept where the bus already stores it (server.store.notifications):
publishing one stores it, in the same engine call. Marking read moves one marker for
the member and announces it live (`notifications.read`) on every device and process,
on a channel of its own that also feeds the `me` topic, so read marks never take the
place of notifications in the capped history.
"""

from __future__ import annotations

from typing import Any

from server.domain.errors import DomainError
from server.domain.notifications import about_posts, parse_cursor, shown
from server.services.common import User, iso
from server.services.publish import Publisher
from server.store.notifications import NotificationStore

PAGE = 25


def read_channel(user_id: str) -> str:
    """The bus channel of a member's read marks (part of their `me` topic)."""
    return f"read:{user_id}"


class NotificationService:
    def __init__(self, store: NotificationStore, publisher: Publisher) -> None:
        self.store = store
        self.publisher = publisher

    async def page(self, user: User, before: str | None, limit: int = PAGE) -> dict[str, Any]:
        """Newest first: `{items, next, unread, read_until}`."""
        older_than = parse_cursor(before, "before") if before is not None else None
        notes = await self.store.page(user.id, older_than, limit + 1)
        marker, unread = await self.store.unread(user.id)
        page = notes[:limit]
        posts = sorted({pid for note in page for pid in about_posts(note.data)})
        existing = await self.store.existing_posts(posts)
        items = []
        for note in page:
            at = note.data.get("at") if isinstance(note.data, dict) else None
            when = at if isinstance(at, str) else iso(note.cursor / 1e6)
            items.append(shown(note.cursor, note.type, note.data, when, marker, existing))
        nxt = str(page[-1].cursor) if len(notes) > limit else None
        return {"items": items, "next": nxt, "unread": unread, "read_until": str(marker)}

    async def unread(self, user: User) -> int:
        return (await self.store.unread(user.id))[1]

    async def mark_read(self, user: User, body: object) -> dict[str, Any]:
        """Mark everything up to `until` read, on every device: `{read_until, unread}`."""
        if not isinstance(body, dict):
            raise DomainError("invalid_body", "request body must be a JSON object")
        until = parse_cursor(body.get("until"), "until")
        marker, unread = await self.store.mark_read(user.id, until)
        result = {"read_until": str(marker), "unread": unread}
        await self.publisher.publish("notifications.read", result,
                                     [(read_channel(user.id), None)])  # fmt: skip
        return result
