"""Echo posts: create, delete, read, like, and the feeds.

A post is published once, on the topics that show it — `user:{author}` (which also feeds
every follower's `home`), `public` for public posts outside closed communities,
`community:{id}`, and `mod` — with the audience rules (friends only, blocks, mutes)
carried in the event so each process filters its local subscribers without asking the
engine anything.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, Protocol

import orjson

from server.domain.echo import validate_echo_text, validate_visibility
from server.domain.errors import DomainError, EngineUnavailable, Forbidden, NotFound
from server.domain.media import parse_post_media
from server.domain.replies import (
    MAX_CHAIN,
    Gate,
    gates_for_reply,
    gates_from_field,
    gates_to_field,
    sees_gates,
)
from server.domain.search import post_terms
from server.domain.segments import annotate, check_tag, mentioned_handles
from server.domain.visibility import CommunityAccess, can_see_post, shows_in_feed
from server.hub import Audience, Event, ReplayFilter
from server.services.accounts import AccountService
from server.services.common import Clock, User, iso, new_id
from server.services.graph import GraphService, user_channel
from server.services.publish import Note, Publisher, Target
from server.store.echoes import EchoStore, author_posts_key, community_posts_key, id_ms
from server.store.graph import Circle, Reach
from server.store.resp import Arg
from server.store.search import SearchStore

POST_ID = re.compile(r"[0-9a-f]{20}")
PAGE = 25
FRIENDS_LATEST = 5
DISCOVER_WINDOW_MS = 24 * 3600 * 1000
# Topics whose replay follows the feed rule (mutes hide); the others follow the rule of
# seeing a post at all, as their HTTP pages do.
FEED_TOPICS = frozenset({"home", "public"})
# Publishing gives up (503) after the author's graph changed this many times under it.
AUDIENCE_ATTEMPTS = 5


class CommunityGate(Protocol):
    """What posting needs to know of communities (provided by the communities feature)."""

    async def access(self, user_id: str, community_id: str) -> CommunityAccess: ...

    async def readers(self, community_id: str) -> frozenset[str] | None: ...

    async def owner(self, community_id: str) -> str: ...


class ModerationLog(Protocol):
    """Where a moderator's removal of a post is logged and shown (the moderation
    service)."""

    def removal(self, moderator: User, rec: dict[str, str], reason: str) -> dict[str, Any]:
        """The audit log entry of removing the post `rec`."""
        ...

    async def announce(self, action: dict[str, Any]) -> None:
        """Show a logged action live to moderators."""
        ...


def _author(rec: dict[str, str]) -> dict[str, str]:
    """A post's author as it was when posting (the avatar's URL serves their current
    one)."""
    if rec.get("author_avatar"):
        return {"handle": rec["author_handle"], "display_name": rec["author_name"],
                "avatar": rec["author_avatar"]}  # fmt: skip
    return {"handle": rec["author_handle"], "display_name": rec["author_name"]}


class MediaClaims(Protocol):
    """What posting needs of media: claiming items for a post, all or none."""

    async def claim(
        self, author: User, post_id: str, media_ids: tuple[str, ...]
    ) -> list[dict[str, Any]]:
        """Attach the items to the post and answer them on the wire (or raise)."""
        ...

    async def release(self, post_id: str, media_ids: tuple[str, ...]) -> None:
        """Give back items claimed for a post that was not published."""
        ...


def check_post_id(raw: object, field: str = "id") -> str:
    if not isinstance(raw, str) or not POST_ID.fullmatch(raw):
        raise NotFound("echo_not_found", "no such echo", field=field)
    return raw


def _created_post(event: Event) -> str | None:
    """The id of the post a `post.created` event carries (None for other events)."""
    if event.type != "post.created" or not isinstance(event.data, dict):
        return None
    pid = event.data.get("id")
    return pid if isinstance(pid, str) else None


def _answered_post(event: Event) -> str | None:
    """The id of the post a replayed `post.created` answers (None if it answers none)."""
    if event.type != "post.created" or not isinstance(event.data, dict):
        return None
    answered = event.data.get("reply_to")
    return answered if isinstance(answered, str) else None


def _narrow(only: frozenset[str] | None, to: frozenset[str]) -> frozenset[str]:
    """An audience's `only` set narrowed to `to` (None: anyone so far)."""
    return to if only is None else only & to


def check_cursor(raw: str | None) -> str | None:
    if raw is None:
        return None
    if not POST_ID.fullmatch(raw):
        raise DomainError("invalid_cursor", "the cursor is not one this server gave", "before")
    return raw


class EchoService:
    def __init__(
        self, accounts: AccountService, graph: GraphService, communities: CommunityGate,
        moderation: ModerationLog, media: MediaClaims, store: EchoStore, publisher: Publisher,
        clock: Clock,
    ) -> None:  # fmt: skip
        self.accounts = accounts
        self.graph = graph
        self.communities = communities
        # Logs and shows a moderator's deletion (see `delete`).
        self.moderation = moderation
        # Claims the media a post carries (the media feature).
        self.media = media
        self.store = store
        self.publisher = publisher
        self.clock = clock

    # --- shape -------------------------------------------------------------------------

    @staticmethod
    def wire(
        rec: dict[str, str], segments: list[dict[str, object]] | None = None
    ) -> dict[str, Any]:
        """A post on the wire; `segments` are the record's, already in their JSON form.

        `reply_to` and `in_reply_to` name the answered post: whoever is shown a reply
        may see that post (its gates), so neither leaks it. A reply stored before
        replies had gates could answer anything: it is shown without them."""
        answered = rec.get("reply_to") if rec.get("gates") else None
        return {
            "id": rec["id"],
            "author": _author(rec),
            "text": rec["text"],
            "segments": orjson.loads(rec["segments"]) if segments is None else segments,
            "visibility": rec["visibility"],
            "community": rec.get("community") or None,
            "reply_to": answered or None,
            "in_reply_to": {
                "id": answered,
                "author": {"handle": rec.get("reply_handle", ""),
                           "display_name": rec.get("reply_name", "")},
            } if answered else None,
            "reply_count": 0,
            "media": orjson.loads(rec["media"]) if rec.get("media") else [],
            "created_at": rec["created_at"],
        }  # fmt: skip

    async def for_viewer(self, viewer: User, recs: list[dict[str, str]]) -> list[dict[str, Any]]:
        """Posts on the wire as `viewer` sees them (liked, and like counts of their own)."""
        return await self._for_viewer(viewer, recs)

    async def visible_posts(
        self, viewer: User, recs: list[dict[str, str]], circle: Circle
    ) -> list[dict[str, str]]:
        """The records `viewer` may see (as reading each one would allow)."""
        return await self._visible(viewer, recs, circle, feed=False)

    async def _for_viewer(self, viewer: User, recs: list[dict[str, str]]) -> list[dict[str, Any]]:
        """Posts as this viewer sees them: their like, the replies they may see, and no
        `reply_to` for an answered post since deleted."""
        states = await self.store.read_state(recs, viewer.id)
        circle = None
        if any(state.replies for state in states):
            circle = await self.graph.circle(viewer.id)
        access_of: dict[str, CommunityAccess | None] = {}
        out = []
        for rec, state in zip(recs, states, strict=True):
            post = self.wire(rec)
            post["liked"] = state.liked
            if rec["author"] == viewer.id:
                post["like_count"] = state.like_count  # likes are private to the author
            if not state.answered_exists:
                post["reply_to"] = post["in_reply_to"] = None
            if state.replies:
                assert circle is not None
                # The viewer sees this post, so of each reply only its own rule is left.
                count = 0
                for reply in state.replies:
                    if reply.community and reply.community not in access_of:
                        access_of[reply.community] = await self._community_access(
                            viewer.id, reply.community)  # fmt: skip
                    if can_see_post(viewer.id, reply.author, reply.visibility,
                                    circle.relation_to(reply.author),
                                    access_of.get(reply.community)):  # fmt: skip
                        count += 1
                post["reply_count"] = count
            out.append(post)
        return out

    # --- visibility --------------------------------------------------------------------

    async def _community_access(self, viewer: str, community: str) -> CommunityAccess | None:
        if not community:
            return None
        try:
            return await self.communities.access(viewer, community)
        except NotFound:
            return CommunityAccess("approval", False)

    async def _visible(
        self, viewer: User, recs: list[dict[str, str]], circle: Circle, *, feed: bool
    ) -> list[dict[str, str]]:
        rule = shows_in_feed if feed else can_see_post
        out = []
        # One look-up per community, not per post.
        access_of: dict[str, CommunityAccess | None] = {}
        for rec in recs:
            gates = gates_from_field(rec.get("gates"))
            for community in [rec.get("community", ""), *(g.community for g in gates)]:
                if community not in access_of:
                    access_of[community] = await self._community_access(viewer.id, community)
            author, community = rec["author"], rec.get("community", "")
            own = rule(viewer.id, author, rec["visibility"], circle.relation_to(author),
                       access_of[community])  # fmt: skip
            if own and (not gates or sees_gates(viewer.id, gates, circle.relation_to, access_of)):
                out.append(rec)
        return out

    def replay_rule(self, viewer: User, topic: str) -> ReplayFilter:
        """What a resume of `topic` may still replay of posts: what HTTP would show now.

        History keeps a post's `post.created` with the audience it had when published.
        A resume drops those of posts since deleted or removed (their `post.deleted`
        stays), and of posts the viewer may no longer see (a block, an unfriending, a
        mute on the feeds, a community left), a reply's gates included: the posts above
        it are judged by today's graph too. A reply whose answered post was deleted
        since loses `reply_to` and `in_reply_to`, as on HTTP. Per resume: one engine
        call for the posts and one for the viewer's graph, whatever the number of events.
        """
        feed = topic in FEED_TOPICS

        async def keep(events: list[Event]) -> list[Event]:
            ids = {pid for e in events if (pid := _created_post(e)) is not None}
            if not ids:
                return events
            answered = {a for e in events if (a := _answered_post(e)) is not None}
            standing, existing = await self.store.standing(ids, answered)
            if topic == "mod":  # moderators see every post that still exists
                shown = set(standing)
            else:
                circle = await self.graph.circle(viewer.id)
                recs = list(standing.values())
                shown = {r["id"] for r in await self._visible(viewer, recs, circle, feed=feed)}
            kept = []
            for e in events:
                if e.type == "post.created":
                    if _created_post(e) not in shown:
                        continue
                    if (a := _answered_post(e)) is not None and a not in existing:
                        e = replace(e, data={**e.data, "reply_to": None, "in_reply_to": None})
                kept.append(e)
            return kept

        return keep

    async def visible_post(
        self, viewer: User, post_id: object, field: str = "id"
    ) -> dict[str, str]:
        """The post record if it exists and the viewer may see it; else 404 (never 403:
        a hidden post's existence is not revealed)."""
        rec = await self.store.get(check_post_id(post_id, field))
        if rec is None:
            raise NotFound("echo_not_found", "no such echo", field=field)
        circle = await self.graph.circle(viewer.id)
        if not await self._visible(viewer, [rec], circle, feed=False):
            raise NotFound("echo_not_found", "no such echo", field=field)
        return rec

    async def records(self, post_ids: list[str]) -> list[dict[str, str]]:
        """The stored records of these posts (those that exist), for the other services."""
        return await self.store.get_many(post_ids)

    async def can_see(self, viewer: User, post_id: str) -> bool:
        """Whether the post exists and the viewer may see it (its media too)."""
        try:
            await self.visible_post(viewer, post_id)
        except NotFound:
            return False
        return True

    async def get(self, viewer: User, post_id: str) -> dict[str, Any]:
        """One post as this viewer sees it (404 when missing or not visible)."""
        rec = await self.visible_post(viewer, post_id)
        return (await self._for_viewer(viewer, [rec]))[0]

    # --- write -------------------------------------------------------------------------

    async def create(self, author: User, body: object, limit: Any = None) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise DomainError("invalid_body", "request body must be a JSON object")
        echo = validate_echo_text(body.get("text"))
        visibility = validate_visibility(body.get("visibility"))
        community = body.get("community")
        if community is not None:
            if not isinstance(community, str) or not community or len(community) > 64:
                raise DomainError("invalid_community", "community must be an id", "community")
            access = await self.communities.access(author.id, community)
            if not access.is_member:
                raise Forbidden("not_a_member", "only members post in a community", "community")
        answered: dict[str, str] | None = None
        gates: tuple[Gate, ...] = ()
        if body.get("reply_to") is not None:
            if not isinstance(body["reply_to"], str):
                # A wrong type is a malformed request, not a post that may not exist.
                raise DomainError("invalid_reply_to", "reply_to is a post's id (a string)",
                                  "reply_to")  # fmt: skip
            answered = await self.visible_post(author, body["reply_to"], "reply_to")
            gates = gates_for_reply(
                Gate(answered["author"], answered["visibility"], answered.get("community", "")),
                gates_from_field(answered.get("gates")),
            )
        media_ids = parse_post_media(body.get("media"))
        if limit is not None:
            await limit("posts", author.id)
        # Only a text with an `@` costs a lookup: which of its handles are members.
        handles = mentioned_handles(echo.text)
        members = await self.accounts.ids_by_handle(handles)
        found = annotate(echo.segments, members)
        segments = found.segments
        now = self.clock()
        rec = {
            "id": new_id(), "author": author.id, "author_handle": author.handle,
            "author_name": author.display_name, "text": echo.text, "markup": echo.markup,
            "segments": orjson.dumps(segments).decode(),
            "visibility": visibility, "community": community or "",
            "tags": " ".join(found.tags), "created_at": iso(now),
        }  # fmt: skip
        if author.avatar:
            rec["author_avatar"] = author.avatar
        if answered is not None:
            rec.update(reply_to=answered["id"], reply_author=answered["author"],
                       reply_handle=answered["author_handle"],
                       reply_name=answered["author_name"], gates=gates_to_field(gates))  # fmt: skip
        items: list[dict[str, Any]] = []
        if media_ids:
            # All or none, in one engine script; given back below if the post fails.
            items = await self.media.claim(author, rec["id"], media_ids)
            rec["media"] = orjson.dumps(items).decode()
            rec["media_ids"] = " ".join(media_ids)
        post = self.wire(rec, segments)
        mentioned = [members[handle] for handle in found.mentions]

        def notes(audience: Audience, reach: Reach) -> list[Note]:
            return self._conversation_notes(author, rec, answered, mentioned, audience, reach)

        # Indexed for search by the same transaction: one more command, no round trip.
        rec["terms"] = " ".join(post_terms(echo.text))
        along = self.store.creation(rec)
        indexing = SearchStore.post_indexing(rec["id"], rec["terms"])
        if indexing is not None:
            along.append(indexing)
        told = notes if answered is not None or mentioned else None
        try:
            await self._publish("post.created", post, rec, along=along, notes=told)
        except BaseException:
            if media_ids:
                await asyncio.shield(self.media.release(rec["id"], media_ids))
            raise
        return post

    def _conversation_notes(
        self, author: User, rec: dict[str, str], answered: dict[str, str] | None,
        mentioned: list[str], audience: Audience, reach: Reach,
    ) -> list[Note]:  # fmt: skip
        """The `reply` to the answered post's author and the `mention`s a new post
        sends: each member once (a reply, not also a mention), only to members who may
        see the post (`audience`: friends-only, communities, blocks either way, the
        thread's gates), never to its author, nor to one who muted the author."""
        by, at = author.brief(), rec["created_at"]
        notes: list[Note] = []
        told = {author.id}

        def may_tell(uid: str) -> bool:
            return uid not in told and audience.admits(uid) and uid not in reach.muted_by

        if answered is not None and may_tell(answered["author"]):
            told.add(answered["author"])
            notes.append((answered["author"], "reply", {
                "echo": rec["id"], "text": rec["text"], "reply_to": answered["id"],
                "reply_to_text": answered["text"], "by": by, "at": at}))  # fmt: skip
        for uid in mentioned:
            if may_tell(uid):
                told.add(uid)
                notes.append((uid, "mention", {"echo": rec["id"], "text": rec["text"],
                                               "by": by, "at": at}))  # fmt: skip
        return notes

    async def _publish(
        self, type_: str, data: dict[str, Any], rec: dict[str, str],
        along: Sequence[Sequence[Arg]] = (),
        notes: Callable[[Audience, Reach], list[Note]] | None = None,
    ) -> None:  # fmt: skip
        """Publish an event about post `rec` to its audience, with `along` (its storing)
        in the same engine transaction, and the notifications `notes` gives for the
        audience (on the author's own channel) in the same publication.

        The audience comes from the author's reach as this process last saw it, guarded:
        if the author's blocks, mutes or friends changed since, nothing is published and
        it is computed afresh. A post is then one engine round trip, not two.
        """
        friends_only = rec["visibility"] == "friends"
        reach = await self.graph.reach(rec["author"], friends=friends_only)
        for _ in range(AUDIENCE_ATTEMPTS):
            targets = await self._targets(rec, reach)
            audience = targets[0][1]
            assert audience is not None
            told = notes(audience, reach) if notes is not None else []
            seq = await self.publisher.publish_guarded(type_, data, targets, reach.guard, along,
                                                       notes=told)  # fmt: skip
            if seq is not None:
                return
            along = ()  # applied
            reach = await self.graph.reach(rec["author"], friends=friends_only, fresh=True)
        # The socket and HTTP map this like any engine failure: 503 engine_unavailable
        # (a builtin TimeoutError was answered 504 with an empty body).
        raise EngineUnavailable("the author's audience kept changing while publishing")

    async def _targets(self, rec: dict[str, str], reach: Reach) -> list[Target]:
        author = rec["author"]
        blocked = reach.blocked_either_way
        only: frozenset[str] | None = None
        if reach.friends is not None:
            only = reach.friends | {author}
        community = rec.get("community")
        readers = None
        if community:
            readers = await self.communities.readers(community)
            if readers is not None:
                only = _narrow(only, readers | {author})
        gates = gates_from_field(rec.get("gates"))
        if gates:
            only, blocked = await self._gated(gates, only, blocked)
            if only is not None:
                only |= {author}
        audience = Audience(only, blocked)
        targets: list[Target] = [(user_channel(author), audience)]
        if rec["visibility"] == "public" and readers is None:
            targets.append(("public", Audience(only, blocked | reach.muted_by)))
        if community:
            targets.append((f"community:{community}", audience))
        targets.append(("mod", None))
        return targets

    async def _gated(
        self, gates: tuple[Gate, ...], only: frozenset[str] | None, blocked: frozenset[str]
    ) -> tuple[frozenset[str] | None, frozenset[str]]:
        """`only` and `blocked` narrowed to those who may see every post above a reply.

        The reaches of the authors above are loaded fresh (not from the cache, which only
        their own posts' guard keeps current): once per reply, not per recipient."""
        reaches = await asyncio.gather(*(
            self.graph.reach(g.author, friends=g.visibility == "friends", fresh=True)
            for g in gates
        ))  # fmt: skip
        for gate, reach in zip(gates, reaches, strict=True):
            blocked = blocked | reach.blocked_either_way
            if gate.visibility == "friends":
                only = _narrow(only, (reach.friends or frozenset()) | {gate.author})
            elif gate.visibility != "public":
                only = frozenset()
            if gate.community:
                readers = await self.communities.readers(gate.community)
                if readers is not None:
                    only = _narrow(only, readers | {gate.author})
        return only, blocked

    async def delete(
        self, actor: User, post_id: str, *, reason: str = "", audit: bool = False
    ) -> dict[str, Any]:
        """Delete a post (its author, its community's owner, or a moderator). A deletion
        only a moderator may make, or any with `audit`, is a moderation action: its
        audit log entry is written by the same engine script as the deletion, shown on
        the mod topic, and carried by the answer as `action`."""
        rec = await self.store.get(check_post_id(post_id))
        if rec is None:
            raise NotFound("echo_not_found", "no such echo")
        allowed = rec["author"] == actor.id
        if not allowed and rec.get("community"):
            allowed = await self.communities.owner(rec["community"]) == actor.id
        moderation = audit or (not allowed and actor.is_moderator)
        if not allowed and not actor.is_moderator:
            circle = await self.graph.circle(actor.id)
            if not await self._visible(actor, [rec], circle, feed=False):
                raise NotFound("echo_not_found", "no such echo")
            raise Forbidden("forbidden", "only the author, the community owner or a moderator "
                                         "may delete this echo")  # fmt: skip
        action = None
        if moderation:
            action = self.moderation.removal(actor, rec, reason)
        if not await self.store.delete(rec["id"], action):
            # Deleted by someone else since it was read: only one delete counts.
            raise NotFound("echo_not_found", "no such echo")
        deleted = {"id": rec["id"], "community": rec.get("community") or None}
        await self._publish("post.deleted", deleted, rec)
        result: dict[str, Any] = {"id": rec["id"], "deleted": True}
        if action is not None:
            await self.moderation.announce(action)
            result["action"] = action
            if rec["author"] != actor.id:
                # The author's notice: what was removed and why, not by whom.
                await self.publisher.notify(rec["author"], "mod.action", {
                    "action": "remove_echo", "echo": rec["id"], "reason": reason,
                    "at": iso(self.clock())})  # fmt: skip
        return result

    # --- likes -------------------------------------------------------------------------

    async def like(self, viewer: User, post_id: str) -> dict[str, Any]:
        rec = await self.visible_post(viewer, post_id)
        now = self.clock()
        if await self.store.like(rec["id"], viewer.id, int(now * 1000)) and (
            rec["author"] != viewer.id
        ):
            await self.publisher.notify(rec["author"], "like", {
                "echo": rec["id"], "text": rec["text"], "by": viewer.brief(),
                "at": iso(now)})  # fmt: skip
        return {"id": rec["id"], "liked": True}

    async def unlike(self, viewer: User, post_id: str) -> dict[str, Any]:
        rec = await self.visible_post(viewer, post_id)
        await self.store.unlike(rec["id"], viewer.id)
        return {"id": rec["id"], "liked": False}

    async def likes(self, viewer: User, post_id: str) -> dict[str, Any]:
        rec = await self.visible_post(viewer, post_id)
        if rec["author"] != viewer.id:
            raise Forbidden("forbidden", "only the author sees who liked an echo")
        likers = await self.store.likers(rec["id"])
        users = await self.accounts.records([uid for uid, _ in likers])
        items = [{"user": {"handle": u["handle"], "display_name": u["display_name"]},
                  "at": iso(ms / 1000)}
                 for (_, ms), u in zip(likers, users, strict=True) if u]  # fmt: skip
        return {"items": items, "count": len(items), "next": None}

    # --- feeds -------------------------------------------------------------------------

    async def _page(
        self, viewer: User, keys: list[str], before: str | None, limit: int, *, feed: bool
    ) -> dict[str, Any]:
        circle = await self.graph.circle(viewer.id)
        chosen: list[dict[str, str]] = []
        cursor = before
        for _ in range(8):  # bounded: a page full of hidden posts cannot loop forever
            ids = await self.store.page_ids(keys, cursor, limit)
            if not ids:
                break
            recs = await self.store.get_many(ids)
            chosen.extend(await self._visible(viewer, recs, circle, feed=feed))
            cursor = ids[-1]
            if len(chosen) >= limit:
                break
        page = chosen[:limit]
        more = len(chosen) > limit or (len(page) == limit and cursor is not None)
        nxt = page[-1]["id"] if page and more else None
        return {"items": await self._for_viewer(viewer, page), "next": nxt}

    async def home(self, viewer: User, before: str | None, limit: int = PAGE) -> dict[str, Any]:
        circle = await self.graph.circle(viewer.id)
        authors = {viewer.id} | (circle.following - circle.muting - circle.blocked_either_way)
        keys = [author_posts_key(a) for a in sorted(authors)]
        return await self._page(viewer, keys, check_cursor(before), limit, feed=True)

    async def friends_latest(self, viewer: User) -> dict[str, Any]:
        circle = await self.graph.circle(viewer.id)
        friends = circle.friends - circle.muting - circle.blocked_either_way
        keys = [author_posts_key(a) for a in sorted(friends)]
        page = await self._page(viewer, keys, None, FRIENDS_LATEST, feed=True)
        return {"items": page["items"], "next": None}

    async def archive(
        self, viewer: User, handle: str, before: str | None, limit: int = PAGE
    ) -> dict[str, Any]:
        await self.graph.profile(viewer, handle, visit=False)  # 404 / 403 when blocked
        target = await self.accounts.user_by_handle(handle)
        return await self._page(viewer, [author_posts_key(target.id)], check_cursor(before), limit,
                                feed=False)  # fmt: skip

    async def community_page(
        self, viewer: User, community: str, before: str | None, limit: int = PAGE
    ) -> dict[str, Any]:
        return await self._page(viewer, [community_posts_key(community)], check_cursor(before),
                                limit,
                                feed=False)  # fmt: skip

    async def thread(
        self, viewer: User, post_id: str, before: str | None, limit: int = PAGE
    ) -> dict[str, Any]:
        """A post's thread: `post`, the chain of posts it answers (`ancestors`, oldest
        first, at most `MAX_CHAIN`, stopping at one deleted), and a page of its direct
        replies the viewer may see, oldest first. The cursor (`before`, as on every list)
        is the last reply shown; pages move forward in time."""
        rec = await self.visible_post(viewer, post_id)
        cursor = check_cursor(before)
        circle = await self.graph.circle(viewer.id)
        chain: list[dict[str, str]] = []
        above = rec
        for _ in range(MAX_CHAIN):
            parent_id = above.get("reply_to") if above.get("gates") else None
            parent = await self.store.get(parent_id) if parent_id else None
            if parent is None or not await self._visible(viewer, [parent], circle, feed=False):
                break
            chain.append(parent)
            above = parent
        chain.reverse()
        chosen: list[dict[str, str]] = []
        exhausted = False
        for _ in range(8):  # bounded: a page full of hidden replies cannot loop forever
            entries = await self.store.replies_after(rec["id"], cursor, limit + 1)
            recs = await self.store.get_many([e.id for e in entries])
            chosen.extend(await self._visible(viewer, recs, circle, feed=False))
            if len(entries) < limit + 1:
                exhausted = True
                break
            cursor = entries[-1].id
            if len(chosen) > limit:
                break
        page = chosen[:limit]
        if len(chosen) > limit:
            nxt: str | None = page[-1]["id"]
        else:
            nxt = None if exhausted else cursor
        shown = await self._for_viewer(viewer, [rec, *chain, *page])
        return {"post": shown[0], "ancestors": shown[1 : 1 + len(chain)],
                "items": shown[1 + len(chain) :], "next": nxt}  # fmt: skip

    async def tag_page(
        self, viewer: User, raw_tag: str, before: str | None, limit: int = PAGE
    ) -> dict[str, Any]:
        """Posts tagged `raw_tag` (any of its written forms) the viewer may see, newest
        first."""
        tag = check_tag(raw_tag)
        page = await self._page(viewer, [self.store.tag_key(tag)], check_cursor(before), limit,
                                feed=False)  # fmt: skip
        return {"tag": tag, **page}

    async def discover(self, viewer: User, before: str | None, limit: int = PAGE) -> dict[str, Any]:
        """Posts of the last 24 h most liked by the members the viewer follows.

        Only posts and their order are shown; who liked them never is. The cursor is an
        offset into that ranking.
        """
        if before is not None and (not before.isdigit() or len(before) > 6):
            raise DomainError("invalid_cursor", "the cursor is not one this server gave", "before")
        offset = int(before or 0)
        circle = await self.graph.circle(viewer.id)
        now_ms = int(self.clock() * 1000)
        since = now_ms - DISCOVER_WINDOW_MS
        counts = await self.store.liked_since(circle.following - circle.blocked_either_way, since)
        fresh = [pid for pid in counts if POST_ID.fullmatch(pid) and id_ms(pid) >= since]
        recs = await self.store.get_many(fresh)
        visible = await self._visible(viewer, recs, circle, feed=True)
        visible.sort(key=lambda r: (counts[r["id"]], r["id"]), reverse=True)
        page = visible[offset : offset + limit]
        nxt = str(offset + limit) if len(visible) > offset + limit else None
        return {"items": await self._for_viewer(viewer, page), "next": nxt}
