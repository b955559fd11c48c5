"""Events: announce, read, edit, cancel, RSVP, and `event.starting` exactly once.

Who sees an event: anyone signed in, except across a block with the host; a community
event follows `can_read_community`. Hidden events answer 404, as hidden posts do.

Live:
  event.announced  once, on `user:{host}` (so it reaches followers' `home` and the
                   host's page) and, for a community event, on `community:{id}`
  event.updated, event.cancelled, event.starting
                   once, on `event:{id}` and on each attendee's `me` (going or
                   interested), in one engine call
  event.rsvp       once, on `event:{id}` and on the host's `me`
Every publication carries the event's audience (community readers, blocks), so a
process filters its own subscribers without asking the engine.

The start is scheduled in the zset `eh:events:pending`. Every process runs
`run_scheduler`; a due event is claimed by the one process whose ZREM of it succeeds
(moving it to `eh:events:firing` under a token), so it is sent once however many
processes run, and late by at most one poll after a restart that missed the moment.
The announcement is published only while that token holds and marks the claim done in
the same script; a claim that lapses unannounced (`LEASE_MS`, its process died
or stalled) is taken over by another process. Exactly once, crashes included.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import UTC, datetime
from typing import Any

from redis.exceptions import RedisError

from server.domain.errors import Conflict, DomainError, Forbidden, NotFound
from server.domain.events import (
    EventFields,
    check_rsvp_allowed,
    format_time,
    validate_event_patch,
    validate_new_event,
    validate_rsvp,
)
from server.domain.visibility import can_post_in_community, can_read_community
from server.hub import Audience
from server.services.common import Clock, User, iso, new_id, new_secret
from server.services.communities import CommunityService
from server.services.graph import GraphService, user_channel
from server.services.publish import Publisher, Target
from server.services.topics import Resolution
from server.store.events import START_DONE, EventStore, community_events_key, start_key

log = logging.getLogger(__name__)

EVENT_ID = re.compile(r"[0-9a-f]{20}")
# How long (ms) a process has between claiming a start and announcing it before another
# process takes the start over (only a dead or stalled one takes that long).
LEASE_MS = 30_000


def event_not_found() -> NotFound:
    return NotFound("event_not_found", "no such event")


def _moment(ms: str) -> datetime | None:
    return datetime.fromtimestamp(int(ms) / 1000, UTC) if ms else None


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def fields_of(rec: dict[str, str]) -> EventFields:
    starts_at = _moment(rec["starts_ms"])
    assert starts_at is not None
    return EventFields(
        title=rec["title"], description=rec["description"], starts_at=starts_at,
        ends_at=_moment(rec["ends_ms"]), place=rec["place"] or None,
        community=rec["community"] or None,
        capacity=int(rec["capacity"]) if rec["capacity"] else None,
    )  # fmt: skip


def record_fields(fields: EventFields) -> dict[str, str]:
    """The editable part of an event record."""
    return {
        "title": fields.title, "description": fields.description,
        "starts_ms": str(_ms(fields.starts_at)),
        "ends_ms": str(_ms(fields.ends_at)) if fields.ends_at else "",
        "place": fields.place or "",
        "capacity": "" if fields.capacity is None else str(fields.capacity),
    }  # fmt: skip


class EventService:
    def __init__(
        self, graph: GraphService, communities: CommunityService, store: EventStore,
        publisher: Publisher, clock: Clock,
    ) -> None:  # fmt: skip
        self.graph = graph
        self.communities = communities
        self.store = store
        self.publisher = publisher
        self.clock = clock

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    # --- shape -------------------------------------------------------------------------

    @staticmethod
    def wire(rec: dict[str, str], going: int, interested: int) -> dict[str, Any]:
        """The event as every live publication carries it (no per-viewer `my_rsvp`)."""
        f = fields_of(rec)
        return {
            "id": rec["id"],
            "host": {"handle": rec["host_handle"], "display_name": rec["host_name"]},
            "title": f.title, "description": f.description,
            "starts_at": format_time(f.starts_at),
            "ends_at": format_time(f.ends_at) if f.ends_at else None,
            "place": f.place, "community": f.community, "capacity": f.capacity,
            "going": going, "interested": interested,
            "cancelled": rec["cancelled"] == "1", "created_at": rec["created_at"],
        }  # fmt: skip

    async def _for_viewer(self, viewer: User, rec: dict[str, str]) -> dict[str, Any]:
        going, interested, mine = await self.store.counts(rec["id"], viewer.id)
        return {**self.wire(rec, going, interested), "my_rsvp": mine}

    async def _public_wire(self, rec: dict[str, str]) -> dict[str, Any]:
        going, interested, _ = await self.store.counts(rec["id"], "")
        return self.wire(rec, going, interested)

    # --- visibility --------------------------------------------------------------------

    async def _may_see(self, viewer: User, rec: dict[str, str]) -> bool:
        if rec["host"] != viewer.id:
            rel = await self.graph.relation(viewer.id, rec["host"])
            if rel.blocked_either_way:
                return False
        if rec["community"]:
            try:
                access = await self.communities.access(viewer.id, rec["community"])
            except NotFound:
                return False
            return can_read_community(access)
        return True

    async def visible_event(self, viewer: User, event_id: str) -> dict[str, str]:
        """The event record if it exists and the viewer may see it; else 404."""
        if not EVENT_ID.fullmatch(event_id):
            raise event_not_found()
        rec = await self.store.get(event_id)
        if rec is None or not await self._may_see(viewer, rec):
            raise event_not_found()
        return rec

    async def _audience(self, rec: dict[str, str]) -> Audience:
        circle = await self.graph.circle(rec["host"])
        only = None
        if rec["community"]:
            readers = await self.communities.readers(rec["community"])
            if readers is not None:
                only = readers | {rec["host"]}
        return Audience(only, circle.blocked_either_way)

    async def _to_attendees(
        self, type_: str, rec: dict[str, str], skip: str | None,
        claim: tuple[str, str] | None = None,
    ) -> bool:  # fmt: skip
        """`type_` with the event on `event:{id}` and on each attendee's `me`, in one call.
        With `claim` (key, token): only while the claim holds, and marked done with it;
        False if it no longer held."""
        attendees = await self.store.attendees(rec["id"])
        targets: list[Target] = [(f"event:{rec['id']}", await self._audience(rec))]
        targets += [(f"me:{uid}", None) for uid in attendees if uid != skip]
        data = await self._public_wire(rec)
        if claim is None:
            await self.publisher.publish(type_, data, targets)
            return True
        seq = await self.publisher.publish_guarded(type_, data, targets, claim,
                                                   settle=START_DONE)  # fmt: skip
        return seq is not None

    # --- use cases ---------------------------------------------------------------------

    async def create(self, host: User, body: object, limit: Any = None) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise DomainError("invalid_body", "request body must be a JSON object")
        fields = validate_new_event(body, self._now())
        if fields.community is not None:
            access = await self.communities.access(host.id, fields.community)
            if not can_post_in_community(access):
                raise Forbidden("not_a_member", "only members announce events in a community",
                                field="community")  # fmt: skip
        if limit is not None:
            await limit("posts", host.id)
        rec = {
            "id": new_id(), "host": host.id, "host_handle": host.handle,
            "host_name": host.display_name, "community": fields.community or "",
            "cancelled": "0", "created_at": iso(self.clock()), **record_fields(fields),
        }  # fmt: skip
        await self.store.create(rec, _ms(fields.starts_at))
        event = self.wire(rec, 0, 0)
        audience = await self._audience(rec)
        targets: list[Target] = [(user_channel(host.id), audience)]
        if rec["community"]:
            targets.append((f"community:{rec['community']}", audience))
        await self.publisher.publish("event.announced", event, targets)
        return {**event, "my_rsvp": "none"}

    async def get(self, viewer: User, event_id: str) -> dict[str, Any]:
        return await self._for_viewer(viewer, await self.visible_event(viewer, event_id))

    async def _hosted(self, host: User, event_id: str) -> dict[str, str]:
        rec = await self.visible_event(host, event_id)
        if rec["host"] != host.id:
            raise Forbidden("forbidden", "only the host changes an event")
        if rec["cancelled"] == "1":
            raise Conflict("event_cancelled", "this event was cancelled")
        return rec

    async def update(self, host: User, event_id: str, body: object) -> dict[str, Any]:
        rec = await self._hosted(host, event_id)
        if not isinstance(body, dict):
            raise DomainError("invalid_body", "request body must be a JSON object")
        going, _, _ = await self.store.counts(event_id, host.id)
        fields = validate_event_patch(body, fields_of(rec), going, self._now())
        outcome, going = await self.store.update(
            event_id, record_fields(fields), fields.capacity, _ms(fields.starts_at)
        )
        if outcome == "missing":
            raise event_not_found()
        if outcome == "cancelled":
            raise Conflict("event_cancelled", "this event was cancelled")
        if outcome == "below":  # seats were taken since we read the count
            validate_event_patch(body, fields_of(rec), going, self._now())
            raise Conflict("capacity_below_attendance", "capacity is below attendance",
                           field="capacity")  # fmt: skip
        rec = await self.visible_event(host, event_id)
        await self._to_attendees("event.updated", rec, host.id)
        return await self._for_viewer(host, rec)

    async def cancel(self, host: User, event_id: str) -> dict[str, Any]:
        await self._hosted(host, event_id)
        outcome = await self.store.cancel(event_id)
        if outcome == "missing":
            raise event_not_found()
        if outcome == "cancelled":
            raise Conflict("event_cancelled", "this event was already cancelled")
        rec = await self.visible_event(host, event_id)
        await self._to_attendees("event.cancelled", rec, host.id)
        return await self._for_viewer(host, rec)

    async def rsvp(self, user: User, event_id: str, body: object) -> dict[str, Any]:
        rec = await self.visible_event(user, event_id)
        if not isinstance(body, dict):
            raise DomainError("invalid_body", "request body must be a JSON object")
        status = validate_rsvp(body.get("status"))
        result = await self.store.rsvp(event_id, user.id, status, int(self.clock() * 1000))
        if result.outcome == "missing":
            raise event_not_found()
        if result.outcome == "refused":
            check_rsvp_allowed(result.old, status, result.going, result.capacity,
                               result.cancelled)  # fmt: skip
            raise Conflict("event_full", "this event is full", field="status")
        if result.old != status:
            data = {"event": event_id, "user": user.brief(), "status": status,
                    "going": result.going, "interested": result.interested}  # fmt: skip
            targets: list[Target] = [(f"event:{event_id}", await self._audience(rec))]
            if rec["host"] != user.id:
                targets.append((f"me:{rec['host']}", None))
            await self.publisher.publish("event.rsvp", data, targets)
        return {"going": result.going, "interested": result.interested, "status": status}

    async def upcoming(self, viewer: User, before: str | None, limit: int = 25) -> dict[str, Any]:
        """Events that have not started, soonest first, that the viewer may see.

        The cursor is an offset into the schedule (like discover's).
        """
        if before is not None and (not before.isdigit() or len(before) > 7):
            raise DomainError("invalid_cursor", "the cursor is not one this server gave", "before")
        offset = int(before or 0)
        now_ms = int(self.clock() * 1000)
        items: list[dict[str, Any]] = []
        # Bounded: a schedule full of hidden events cannot make one request loop forever.
        for _ in range(10):
            ids = await self.store.upcoming_ids(now_ms, offset, limit)
            if not ids:
                break
            for rec in await self.store.get_many(ids):
                offset += 1
                if await self._may_see(viewer, rec):
                    items.append(await self._for_viewer(viewer, rec))
                    if len(items) == limit:
                        break
            if len(items) == limit or len(ids) < limit:
                break
        more = len(items) == limit and bool(await self.store.upcoming_ids(now_ms, offset, 1))
        return {"items": items, "next": str(offset) if more else None}

    async def community_events(
        self, viewer: User, community: str, before: str | None, limit: int = 25
    ) -> dict[str, Any]:
        """A community's events, newest announced first (readable per the community)."""
        await self.communities.check_readable(viewer, community)
        if before is not None and not EVENT_ID.fullmatch(before):
            raise DomainError("invalid_cursor", "the cursor is not one this server gave", "before")
        ids = await self.store.page_ids(community_events_key(community), before, limit)
        more, ids = len(ids) > limit, ids[:limit]
        recs = await self.store.get_many(ids)
        items = [await self._for_viewer(viewer, r) for r in recs if await self._may_see(viewer, r)]
        return {"items": items, "next": ids[-1] if more and ids else None}

    # --- topics ------------------------------------------------------------------------

    async def resolve_event(self, user: User, event_id: str, _flt: Any) -> Resolution:
        if not EVENT_ID.fullmatch(event_id) or await self.store.get(event_id) is None:
            raise NotFound("event_not_found", "no such event", field="topic")
        try:
            await self.visible_event(user, event_id)
        except NotFound:
            raise Forbidden("forbidden", "you may not follow this event") from None
        return [f"event:{event_id}"], None

    # --- the start -----------------------------------------------------------------------

    async def fire_due(self) -> int:
        """Announce `event.starting` for every due event this process claims, and for
        every claim that lapsed unannounced (its process died or stalled)."""
        sent = 0
        for event_id in await self.store.due(self._now_ms()):
            token, now = new_secret(), self._now_ms()
            if await self.store.claim_start(event_id, token, now + LEASE_MS, now):
                sent += await self._announce_start(event_id, token)
        for event_id in await self.store.lapsed_starts(self._now_ms()):
            token, now = new_secret(), self._now_ms()
            if await self.store.reclaim_start(event_id, token, now + LEASE_MS, now):
                log.warning("event %s: taking over a start claim that lapsed", event_id)
                sent += await self._announce_start(event_id, token)
        return sent

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    async def _announce_start(self, event_id: str, token: str) -> bool:
        """Publish `event.starting` under the claim `token`: the publication marks the
        claim done in the same engine script, so a process that dies before it leaves
        the start to be taken over, and one that dies after leaves nothing to resend.
        A stalled claimant whose claim was taken over publishes nothing."""
        rec = await self.store.get(event_id)
        sent = False
        if rec is not None and rec["cancelled"] != "1":
            sent = await self._to_attendees("event.starting", rec, None,
                                            claim=(start_key(event_id), token))  # fmt: skip
            if not sent:
                return False  # taken over: the process that holds the claim finishes it
        await self.store.finish_start(event_id)
        return sent

    async def run_scheduler(self, interval: float, stopping: asyncio.Event) -> None:
        """Until `stopping` is set: fire what is due, then wait for the next start (at
        most `interval`, since another process may schedule an earlier one). A claim
        and its publication are never interrupted by a stop."""
        while not stopping.is_set():
            delay = interval
            try:
                await self.fire_due()
                nxt = await self.store.next_due_ms()
                if nxt is not None:
                    delay = min(interval, max(0.01, nxt / 1000 - self.clock()))
            except (RedisError, OSError) as exc:
                log.warning("event scheduler: %s", exc)
            except Exception:
                # Never let one bad event stop this process's schedule (its claim lapses
                # and another process, or this one next time, tries again).
                log.exception("event scheduler")
            try:
                await asyncio.wait_for(stopping.wait(), delay)
            except TimeoutError:
                pass
