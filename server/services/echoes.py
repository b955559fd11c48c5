"""Echo posts: create, delete, read, like, and the feeds.

A post is published once, on the topics that show it — `user:{author}` (which also feeds
every follower's `home`), `public` for public posts outside closed communities,
`community:{id}`, and `mod` — with the audience rules (friends only, blocks, mutes)
carried in the event so each process filters its local subscribers without asking the
engine anything.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol

import orjson

from server.domain.echo import validate_echo_text, validate_visibility
from server.domain.errors import DomainError, Forbidden, NotFound
from server.domain.segments import annotate, check_tag, mentioned_handles
from server.domain.visibility import CommunityAccess, can_see_post, shows_in_feed
from server.hub import Audience, Event, ReplayFilter
from server.services.accounts import AccountService
from server.services.common import Clock, User, iso, new_id
from server.services.graph import GraphService, user_channel
from server.services.publish import Publisher, Target
from server.store.echoes import EchoStore, id_ms
from server.store.graph import Circle, Reach
from server.store.resp import Arg

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


def check_cursor(raw: str | None) -> str | None:
    if raw is None:
        return None
    if not POST_ID.fullmatch(raw):
        raise DomainError("invalid_cursor", "the cursor is not one this server gave", "before")
    return raw


class EchoService:
    def __init__(
        self, accounts: AccountService, graph: GraphService, store: EchoStore,
        publisher: Publisher, clock: Clock,
    ) -> None:  # fmt: skip
        self.accounts = accounts
        self.graph = graph
        self.store = store
        self.publisher = publisher
        self.clock = clock
        self.communities: CommunityGate | None = None
        # Logs and shows a moderator's deletion (see `delete`).
        self.moderation: ModerationLog | None = None

    # --- shape -------------------------------------------------------------------------

    @staticmethod
    def wire(
        rec: dict[str, str], segments: list[dict[str, object]] | None = None
    ) -> dict[str, Any]:
        """A post on the wire; `segments` are the record's, already in their JSON form."""
        return {
            "id": rec["id"],
            "author": {"handle": rec["author_handle"], "display_name": rec["author_name"]},
            "text": rec["text"],
            "segments": orjson.loads(rec["segments"]) if segments is None else segments,
            "visibility": rec["visibility"],
            "community": rec.get("community") or None,
            "reply_to": rec.get("reply_to") or None,
            "created_at": rec["created_at"],
        }

    async def _for_viewer(self, viewer: User, recs: list[dict[str, str]]) -> list[dict[str, Any]]:
        state = await self.store.like_state([r["id"] for r in recs], viewer.id)
        out = []
        for rec in recs:
            post = self.wire(rec)
            liked, count = state.get(rec["id"], (False, 0))
            post["liked"] = liked
            if rec["author"] == viewer.id:
                post["like_count"] = count  # likes are private to the author
            out.append(post)
        return out

    # --- visibility --------------------------------------------------------------------

    async def _community_access(self, viewer: str, community: str) -> CommunityAccess | None:
        if not community:
            return None
        if self.communities is None:
            return CommunityAccess("approval", False)
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
            community = rec.get("community", "")
            if community not in access_of:
                access_of[community] = await self._community_access(viewer.id, community)
            if rule(viewer.id, rec["author"], rec["visibility"], circle.relation_to(rec["author"]),
                    access_of[community]):  # fmt: skip
                out.append(rec)
        return out

    def replay_rule(self, viewer: User, topic: str) -> ReplayFilter:
        """What a resume of `topic` may still replay of posts: what HTTP would show now.

        History keeps a post's `post.created` with the audience it had when published.
        A resume drops those of posts since deleted or removed (their `post.deleted`
        stays), and of posts the viewer may no longer see (a block, an unfriending, a
        mute on the feeds, a community left). Per resume: one engine call for the posts
        and one for the viewer's graph, whatever the number of events.
        """
        feed = topic in FEED_TOPICS

        async def keep(events: list[Event]) -> list[Event]:
            ids = {pid for e in events if (pid := _created_post(e)) is not None}
            if not ids:
                return events
            standing = await self.store.standing(ids)
            if topic == "mod":  # moderators see every post that still exists
                shown = set(standing)
            else:
                circle = await self.graph.circle(viewer.id)
                recs = list(standing.values())
                shown = {r["id"] for r in await self._visible(viewer, recs, circle, feed=feed)}
            return [e for e in events if e.type != "post.created" or _created_post(e) in shown]

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
            if self.communities is None:
                raise NotFound("community_not_found", "no such community", field="community")
            access = await self.communities.access(author.id, community)
            if not access.is_member:
                raise Forbidden("not_a_member", "only members post in a community", "community")
        reply_to = body.get("reply_to")
        if reply_to is not None:
            reply_to = (await self.visible_post(author, reply_to, "reply_to"))["id"]
        if limit is not None:
            await limit("posts", author.id)
        # Only a text with an `@` costs a lookup: which of its handles are members.
        handles = mentioned_handles(echo.text)
        members = await self.accounts.store.ids_by_handle(handles) if handles else {}
        found = annotate(echo.segments, members)
        segments = found.segments
        now = self.clock()
        rec = {
            "id": new_id(), "author": author.id, "author_handle": author.handle,
            "author_name": author.display_name, "text": echo.text, "markup": echo.markup,
            "segments": orjson.dumps(segments).decode(),
            "visibility": visibility, "community": community or "",
            "reply_to": reply_to or "", "tags": " ".join(found.tags), "created_at": iso(now),
        }  # fmt: skip
        post = self.wire(rec, segments)
        await self._publish("post.created", post, rec, along=self.store.creation(rec))
        return post

    async def _publish(
        self, type_: str, data: dict[str, Any], rec: dict[str, str],
        along: Sequence[Sequence[Arg]] = (),
    ) -> None:  # fmt: skip
        """Publish an event about post `rec` to its audience, with `along` (its storing)
        in the same engine transaction.

        The audience comes from the author's reach as this process last saw it, guarded:
        if the author's blocks, mutes or friends changed since, nothing is published and
        it is computed afresh. A post is then one engine round trip, not two.
        """
        friends_only = rec["visibility"] == "friends"
        reach = await self.graph.reach(rec["author"], friends=friends_only)
        for _ in range(AUDIENCE_ATTEMPTS):
            targets = await self._targets(rec, reach)
            seq = await self.publisher.publish_guarded(type_, data, targets, reach.guard, along)
            if seq is not None:
                return
            along = ()  # applied
            reach = await self.graph.reach(rec["author"], friends=friends_only, fresh=True)
        raise TimeoutError("the author's audience kept changing while publishing")

    async def _targets(self, rec: dict[str, str], reach: Reach) -> list[Target]:
        author = rec["author"]
        blocked = reach.blocked_either_way
        only: frozenset[str] | None = None
        if reach.friends is not None:
            only = reach.friends | {author}
        community = rec.get("community")
        readers = None
        if community and self.communities is not None:
            readers = await self.communities.readers(community)
            if readers is not None:
                only = (readers | {author}) if only is None else only & (readers | {author})
        audience = Audience(only, blocked)
        targets: list[Target] = [(user_channel(author), audience)]
        if rec["visibility"] == "public" and readers is None:
            targets.append(("public", Audience(None, blocked | reach.muted_by)))
        if community:
            targets.append((f"community:{community}", audience))
        targets.append(("mod", None))
        return targets

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
        if not allowed and rec.get("community") and self.communities is not None:
            allowed = await self.communities.owner(rec["community"]) == actor.id
        moderation = audit or (not allowed and actor.is_moderator)
        if not allowed and not actor.is_moderator:
            circle = await self.graph.circle(actor.id)
            if not await self._visible(actor, [rec], circle, feed=False):
                raise NotFound("echo_not_found", "no such echo")
            raise Forbidden("forbidden", "only the author, the community owner or a moderator "
                                         "may delete this echo")  # fmt: skip
        action = None
        if moderation and self.moderation is not None:
            action = self.moderation.removal(actor, rec, reason)
        if not await self.store.delete(rec["id"], action):
            # Deleted by someone else since it was read: only one delete counts.
            raise NotFound("echo_not_found", "no such echo")
        deleted = {"id": rec["id"], "community": rec.get("community") or None}
        await self._publish("post.deleted", deleted, rec)
        result: dict[str, Any] = {"id": rec["id"], "deleted": True}
        if action is not None:
            assert self.moderation is not None
            await self.moderation.announce(action)
            result["action"] = action
        return result

    # --- likes -------------------------------------------------------------------------

    async def like(self, viewer: User, post_id: str) -> dict[str, Any]:
        rec = await self.visible_post(viewer, post_id)
        now = self.clock()
        if await self.store.like(rec["id"], viewer.id, int(now * 1000)) and (
            rec["author"] != viewer.id
        ):
            await self.publisher.notify(rec["author"], "like", {
                "echo": rec["id"], "by": viewer.brief(), "at": iso(now)})  # fmt: skip
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
        users = await self.accounts.store.users([uid for uid, _ in likers])
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
        keys = [f"eh:posts:{a}" for a in sorted(authors)]
        return await self._page(viewer, keys, check_cursor(before), limit, feed=True)

    async def friends_latest(self, viewer: User) -> dict[str, Any]:
        circle = await self.graph.circle(viewer.id)
        friends = circle.friends - circle.muting - circle.blocked_either_way
        keys = [f"eh:posts:{a}" for a in sorted(friends)]
        page = await self._page(viewer, keys, None, FRIENDS_LATEST, feed=True)
        return {"items": page["items"], "next": None}

    async def archive(
        self, viewer: User, handle: str, before: str | None, limit: int = PAGE
    ) -> dict[str, Any]:
        await self.graph.profile(viewer, handle, visit=False)  # 404 / 403 when blocked
        target = await self.accounts.user_by_handle(handle)
        return await self._page(viewer, [f"eh:posts:{target.id}"], check_cursor(before), limit,
                                feed=False)  # fmt: skip

    async def community_page(
        self, viewer: User, community: str, before: str | None, limit: int = PAGE
    ) -> dict[str, Any]:
        return await self._page(viewer, [f"eh:cposts:{community}"], check_cursor(before), limit,
                                feed=False)  # fmt: skip

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
