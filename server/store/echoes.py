"""Echo posts and their private likes.

Keys:
  eh:post:{id}            hash  id author text segments visibility community reply_to
                                created_at terms (its search terms, space-separated:
                                server.store.search skips a post whose hash is gone), and
                                with media: media (the items on the wire, JSON)
                                media_ids (space-separated)
  eh:posts:{user}         zset  post id -> created ms (the archive; feeds merge these)
  eh:cposts:{community}   zset  post id -> created ms
  eh:tag:{tag}            zset  post id -> created ms (tags in their filed form,
                                server.domain.segments.normal_tag; the post's `tags`
                                field lists them, space-separated)
  eh:replies:{post}       zset  "reply-id author visibility community" -> 0, the replies
                                to a post in id (= time) order by lex range; what a
                                reader needs to count the replies they may see
  eh:likes:{post}         zset  liker id -> liked ms (only the author may read it)
  eh:liked:{user}         zset  post id -> liked ms (what a member liked; discover)
A moderator's removal also writes its audit log entry (see server.store.moderation);
a deletion marks the post's media dropped (eh:media:dropped, see server.store.media).
Post ids start with 12 hex digits of creation milliseconds, so id order is time order.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as redis

from server.store.moderation import AUDIT, audit_key
from server.store.replies import hash_or_none, scored
from server.store.resp import Arg, EngineClient

_DELETE = """
local post = redis.call('HGETALL', KEYS[1])
if #post == 0 then return 0 end
local fields = {}
for i = 1, #post, 2 do fields[post[i]] = post[i + 1] end
redis.call('DEL', KEYS[1])
redis.call('ZREM', 'eh:posts:' .. fields['author'], ARGV[1])
if fields['community'] and fields['community'] ~= '' then
  redis.call('ZREM', 'eh:cposts:' .. fields['community'], ARGV[1])
end
if fields['tags'] then
  for tag in string.gmatch(fields['tags'], '%S+') do
    redis.call('ZREM', 'eh:tag:' .. tag, ARGV[1])
  end
end
if fields['reply_to'] and fields['reply_to'] ~= '' then
  redis.call('ZREM', 'eh:replies:' .. fields['reply_to'], ARGV[1] .. ' ' .. fields['author']
             .. ' ' .. fields['visibility'] .. ' ' .. (fields['community'] or ''))
end
redis.call('DEL', 'eh:replies:' .. ARGV[1])
local likers = redis.call('ZRANGE', 'eh:likes:' .. ARGV[1], 0, -1)
for _, liker in ipairs(likers) do redis.call('ZREM', 'eh:liked:' .. liker, ARGV[1]) end
redis.call('DEL', 'eh:likes:' .. ARGV[1])
if fields['media_ids'] and fields['media_ids'] ~= '' then
  local t = redis.call('TIME')
  local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  for id in string.gmatch(fields['media_ids'], '%x+') do
    redis.call('ZADD', 'eh:media:dropped', ms, id)
  end
end
if #KEYS > 1 then
  redis.call('SET', KEYS[2], ARGV[3])
  redis.call('ZADD', KEYS[3], 0, ARGV[2])
end
return 1
"""


def author_posts_key(author: str) -> str:
    """The zset of an author's posts (their archive; feeds merge these)."""
    return f"eh:posts:{author}"


def community_posts_key(community: str) -> str:
    return f"eh:cposts:{community}"


def id_ms(post_id: str) -> int:
    return int(post_id[:12], 16)


# Replies counted per post at most (a reader's `reply_count` stops there).
MAX_COUNTED_REPLIES = 1000


@dataclass(frozen=True, slots=True)
class ReplyEntry:
    """A reply as its post's reply index knows it: enough to decide who sees it, given
    they see the post it answers."""

    id: str
    author: str
    visibility: str
    community: str


def reply_member(post: dict[str, str]) -> str:
    """The member of `eh:replies:{answered}` for reply `post` (the delete script builds
    the same string)."""
    return f"{post['id']} {post['author']} {post['visibility']} {post.get('community', '')}"


def _reply_entry(member: str) -> ReplyEntry:
    pid, author, visibility, community = [*member.split(" ", 3), "", "", ""][:4]
    return ReplyEntry(pid, author, visibility, community)


@dataclass(frozen=True, slots=True)
class ReadState:
    """What a page shows of one post beyond its record, for one reader."""

    liked: bool
    like_count: int
    replies: tuple[ReplyEntry, ...]
    answered_exists: bool


class EchoStore:
    def __init__(self, client: redis.Redis, engine: EngineClient) -> None:
        self.r = client
        self.engine = engine  # create() is on the posting hot path
        self._delete = client.register_script(_DELETE)

    @staticmethod
    def creation(post: dict[str, str]) -> list[tuple[Arg, ...]]:
        """The engine commands that store a new post (applied with its publication)."""
        ms = id_ms(post["id"])
        fields = [part for item in post.items() for part in item]
        commands: list[tuple[Arg, ...]] = [
            ("HSET", f"eh:post:{post['id']}", *fields),
            ("ZADD", author_posts_key(post["author"]), ms, post["id"]),
        ]
        if post.get("community"):
            commands.append(("ZADD", community_posts_key(post["community"]), ms, post["id"]))
        if post.get("reply_to"):
            commands.append(("ZADD", f"eh:replies:{post['reply_to']}", 0, reply_member(post)))
        for tag in post.get("tags", "").split():
            commands.append(("ZADD", EchoStore.tag_key(tag), ms, post["id"]))
        return commands

    @staticmethod
    def tag_key(tag: str) -> str:
        return f"eh:tag:{tag}"

    async def get(self, post_id: str) -> dict[str, str] | None:
        return hash_or_none(await self.r.hgetall(f"eh:post:{post_id}"))

    async def get_many(self, post_ids: Iterable[str]) -> list[dict[str, str]]:
        ids = list(post_ids)
        if not ids:
            return []
        async with self.r.pipeline(transaction=False) as pipe:
            for pid in ids:
                pipe.hgetall(f"eh:post:{pid}")
            return [p for p in await pipe.execute() if p]

    async def standing(
        self, post_ids: Iterable[str], answered_ids: Iterable[str] = ()
    ) -> tuple[dict[str, dict[str, str]], frozenset[str]]:
        """The fields deciding who may see each post (id, author, visibility, community,
        and a reply's gates), by id, with which of `answered_ids` still exist, in one
        round trip (a pipeline: each post's key is in its own cluster slot, so not a
        script); a deleted or removed post is absent."""
        ids = list(dict.fromkeys(post_ids))
        answered = list(dict.fromkeys(answered_ids))
        if not ids and not answered:
            return {}, frozenset()
        fields = ("author", "visibility", "community", "gates")
        commands: list[tuple[Arg, ...]] = [("HMGET", f"eh:post:{pid}", *fields) for pid in ids]
        commands += [("EXISTS", f"eh:post:{pid}") for pid in answered]
        rows = await self.engine.calls(commands)
        posts, exists = rows[: len(ids)], rows[len(ids) :]
        standing = {
            pid: {"id": pid, "author": author, "visibility": visibility or "",
                  "community": community or "", "gates": gates or ""}
            for pid, (author, visibility, community, gates) in zip(ids, posts, strict=True)
            if author is not None
        }  # fmt: skip
        existing = frozenset(pid for pid, n in zip(answered, exists, strict=True) if n)
        return standing, existing

    async def delete(self, post_id: str, action: dict[str, Any] | None = None) -> bool:
        """Delete the post (False if it was already gone); with `action`, log it in the
        moderators' audit log in the same script, so a removal is never unlogged."""
        keys, args = [f"eh:post:{post_id}"], [post_id]
        if action is not None:
            keys += [audit_key(action["id"]), AUDIT]
            args += [action["id"], orjson.dumps(action).decode()]
        return bool(await self._delete(keys=keys, args=args))

    async def page_ids(self, zset_keys: list[str], before: str | None, limit: int) -> list[str]:
        """Newest first across several id zsets, strictly older than `before`."""
        if not zset_keys:
            return []
        top = id_ms(before) if before else "+inf"
        async with self.r.pipeline(transaction=False) as pipe:
            for key in zset_keys:
                # One extra page guards against ties within one millisecond.
                pipe.zrevrangebyscore(key, top, "-inf", start=0, num=limit * 2 + 10)
            results = await pipe.execute()
        ids = {pid for ids in results for pid in ids if before is None or pid < before}
        return sorted(ids, reverse=True)

    async def like(self, post_id: str, user: str, ms: int) -> bool:
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.zadd(f"eh:likes:{post_id}", {user: ms}, nx=True)
            pipe.zadd(f"eh:liked:{user}", {post_id: ms}, nx=True)
            added, _ = await pipe.execute()
        return bool(added)

    async def unlike(self, post_id: str, user: str) -> bool:
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.zrem(f"eh:likes:{post_id}", user)
            pipe.zrem(f"eh:liked:{user}", post_id)
            removed, _ = await pipe.execute()
        return bool(removed)

    async def likers(self, post_id: str) -> list[tuple[str, float]]:
        return scored(await self.r.zrevrange(f"eh:likes:{post_id}", 0, -1, withscores=True))

    async def read_state(self, posts: list[dict[str, str]], viewer: str) -> list[ReadState]:
        """Per post, in one round trip: the viewer's like and the like count, the first
        `MAX_COUNTED_REPLIES` replies, and whether the post it answers still exists."""
        if not posts:
            return []
        commands: list[tuple[str | int, ...]] = []
        for post in posts:
            pid = post["id"]
            commands.append(("ZSCORE", f"eh:likes:{pid}", viewer))
            commands.append(("ZCARD", f"eh:likes:{pid}"))
            commands.append(("ZRANGE", f"eh:replies:{pid}", 0, MAX_COUNTED_REPLIES - 1))
            commands.append(("EXISTS", f"eh:post:{post.get('reply_to') or pid}"))
        res = await self.engine.calls(commands)
        return [
            ReadState(res[4 * i] is not None, int(res[4 * i + 1]),
                      tuple(_reply_entry(m) for m in res[4 * i + 2]), bool(res[4 * i + 3]))
            for i in range(len(posts))
        ]  # fmt: skip

    async def replies_after(self, post_id: str, after: str | None, count: int) -> list[ReplyEntry]:
        """Replies to `post_id`, oldest first, strictly after reply id `after`."""
        low = f"({after}~" if after else "-"
        members = await self.engine.call(
            "ZRANGEBYLEX", f"eh:replies:{post_id}", low, "+", "LIMIT", 0, count
        )
        return [_reply_entry(m) for m in members]

    async def like_state(self, post_ids: list[str], viewer: str) -> dict[str, tuple[bool, int]]:
        """(viewer liked it, like count) per post id."""
        if not post_ids:
            return {}
        async with self.r.pipeline(transaction=False) as pipe:
            for pid in post_ids:
                pipe.zscore(f"eh:likes:{pid}", viewer)
                pipe.zcard(f"eh:likes:{pid}")
            res = await pipe.execute()
        return {pid: (res[2 * i] is not None, int(res[2 * i + 1]))
                for i, pid in enumerate(post_ids)}  # fmt: skip

    async def liked_since(self, users: Iterable[str], since_ms: int) -> dict[str, int]:
        """How many of `users` liked each post since `since_ms`."""
        counts: dict[str, int] = {}
        users = list(users)
        if not users:
            return counts
        async with self.r.pipeline(transaction=False) as pipe:
            for uid in users:
                pipe.zrangebyscore(f"eh:liked:{uid}", since_ms, "+inf")
            for ids in await pipe.execute():
                for pid in ids:
                    counts[pid] = counts.get(pid, 0) + 1
        return counts
