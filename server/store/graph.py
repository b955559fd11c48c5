"""The social graph: follows, blocks, mutes.

Keys (sets of user ids):
  eh:following:{id}  eh:followers:{id}
  eh:blocking:{id}   eh:blocked_by:{id}
  eh:muting:{id}     eh:muted_by:{id}
and eh:gv:{id}, a counter bumped by every change to what `reach(id)` returns, in the
same transaction as the change: a reach loaded with its version holds for exactly as
long as the counter still has that value (publishing checks it, see server.bus).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis
from redis.asyncio.client import Pipeline

from server.domain.visibility import Relation
from server.store.resp import EngineClient

# A follow is refused atomically when a block stands between the two.
_FOLLOW = """
if redis.call('SISMEMBER', KEYS[3], ARGV[2]) == 1
   or redis.call('SISMEMBER', KEYS[4], ARGV[2]) == 1 then
  return -1
end
local added = redis.call('SADD', KEYS[1], ARGV[2])
redis.call('SADD', KEYS[2], ARGV[1])
if added == 1 then redis.call('INCR', KEYS[5]); redis.call('INCR', KEYS[6]) end
return added
"""

_BLOCK = """
redis.call('SREM', KEYS[1], ARGV[2]); redis.call('SREM', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1]); redis.call('SREM', KEYS[4], ARGV[2])
local added = redis.call('SADD', KEYS[5], ARGV[2])
redis.call('SADD', KEYS[6], ARGV[1])
redis.call('INCR', KEYS[7]); redis.call('INCR', KEYS[8])
return added
"""


def version_key(user: str) -> str:
    return f"eh:gv:{user}"


def with_versions(keys: list[str], *authors: str) -> list[str]:
    """A reach-changing script's `keys`, then the version key of each of `authors`
    (the script bumps those last keys with its change)."""
    return [*keys, *(version_key(author) for author in authors)]


@dataclass(frozen=True, slots=True)
class Circle:
    """One member's whole neighbourhood, loaded at once for feed and audience decisions."""

    following: frozenset[str]
    followers: frozenset[str]
    blocking: frozenset[str]
    blocked_by: frozenset[str]
    muting: frozenset[str]
    muted_by: frozenset[str]

    @property
    def friends(self) -> frozenset[str]:
        return self.following & self.followers

    @property
    def blocked_either_way(self) -> frozenset[str]:
        return self.blocking | self.blocked_by

    def relation_to(self, other: str) -> Relation:
        return Relation(
            follows=other in self.following,
            followed_by=other in self.followers,
            blocks=other in self.blocking,
            blocked_by=other in self.blocked_by,
            mutes=other in self.muting,
        )


@dataclass(frozen=True, slots=True)
class Reach:
    """An author's relations that shape a post's audience."""

    blocked_either_way: frozenset[str]
    muted_by: frozenset[str]
    friends: frozenset[str] | None  # loaded only for a friends-only post
    # (key, value): this reach holds while the engine's `key` still has `value`.
    guard: tuple[str, str] = ("", "")


# The id behind a handle, and whether that member blocked the viewer: what subscribing
# to `user:{handle}` needs, in one round trip.
_HANDLE_FOR_VIEWER = """
local id = redis.call('GET', KEYS[1])
if not id then return nil end
return {id, redis.call('SISMEMBER', KEYS[2], id)}
"""


_CIRCLE = ("following", "followers", "blocking", "blocked_by", "muting", "muted_by")


class GraphStore:
    def __init__(self, client: redis.Redis, engine: EngineClient) -> None:
        self.r = client
        # Posting (circle) and subscribing (handle_for_viewer) are hot: the lean client.
        self.engine = engine
        self._follow = client.register_script(_FOLLOW)
        self._block = client.register_script(_BLOCK)
        self._handle_for_viewer = engine.script(_HANDLE_FOR_VIEWER)

    async def _change_reach(
        self, authors: tuple[str, ...], change: Callable[[Pipeline], object]
    ) -> list[Any]:
        """Queue `change` in one transaction that also bumps the reach version of each of
        `authors`; the replies, the change's first. The way every pipelined change to
        what `reach` returns goes (the scripts take `with_versions` keys)."""
        async with self.r.pipeline(transaction=True) as pipe:
            change(pipe)
            for author in authors:
                pipe.incr(version_key(author))
            replies: list[Any] = await pipe.execute()
        return replies

    async def relation(self, viewer: str, other: str) -> Relation:
        async with self.r.pipeline(transaction=False) as pipe:
            pipe.sismember(f"eh:following:{viewer}", other)
            pipe.sismember(f"eh:followers:{viewer}", other)
            pipe.sismember(f"eh:blocking:{viewer}", other)
            pipe.sismember(f"eh:blocked_by:{viewer}", other)
            pipe.sismember(f"eh:muting:{viewer}", other)
            follows, followed_by, blocks, blocked_by, mutes = await pipe.execute()
        return Relation(bool(follows), bool(followed_by), bool(blocks), bool(blocked_by),
                        bool(mutes))  # fmt: skip

    async def handle_for_viewer(self, viewer: str, handle: str) -> tuple[str, bool] | None:
        """(id of `handle`, whether they blocked `viewer`), or None for no such member."""
        found = await self._handle_for_viewer(
            keys=[f"eh:handle:{handle}", f"eh:blocked_by:{viewer}"]
        )
        return (str(found[0]), bool(int(found[1]))) if found else None

    async def circle(self, user: str) -> Circle:
        sets = await self.engine.calls([("SMEMBERS", f"eh:{name}:{user}") for name in _CIRCLE])
        return Circle(*(frozenset(s) for s in sets))

    async def reach(self, author: str, *, friends: bool) -> Reach:
        """What a post's audience needs of its author: O(blocks + mutes), not O(followers),
        read in one transaction with the version that guards it."""
        commands: list[tuple[str, ...]] = [
            ("GET", version_key(author)),
            ("SUNION", f"eh:blocking:{author}", f"eh:blocked_by:{author}"),
            ("SMEMBERS", f"eh:muted_by:{author}"),
        ]
        if friends:
            commands.append(("SINTER", f"eh:following:{author}", f"eh:followers:{author}"))
        replies = await self.engine.transaction(commands)
        return Reach(
            frozenset(replies[1]),
            frozenset(replies[2]),
            frozenset(replies[3]) if friends else None,
            (version_key(author), replies[0] or "0"),
        )

    async def follow(self, viewer: str, target: str) -> int:
        """1 added, 0 already following, -1 refused because of a block."""
        keys = with_versions([f"eh:following:{viewer}", f"eh:followers:{target}",
                              f"eh:blocking:{viewer}", f"eh:blocked_by:{viewer}"],
                             viewer, target)  # fmt: skip
        return int(await self._follow(keys=keys, args=[viewer, target]))

    async def unfollow(self, viewer: str, target: str) -> bool:
        def change(pipe: Pipeline) -> None:
            pipe.srem(f"eh:following:{viewer}", target)
            pipe.srem(f"eh:followers:{target}", viewer)

        removed, *_ = await self._change_reach((viewer, target), change)
        return bool(removed)

    async def block(self, viewer: str, target: str) -> bool:
        keys = with_versions([f"eh:following:{viewer}", f"eh:followers:{target}",
                              f"eh:following:{target}", f"eh:followers:{viewer}",
                              f"eh:blocking:{viewer}", f"eh:blocked_by:{target}"],
                             viewer, target)  # fmt: skip
        return bool(await self._block(keys=keys, args=[viewer, target]))

    async def unblock(self, viewer: str, target: str) -> None:
        def change(pipe: Pipeline) -> None:
            pipe.srem(f"eh:blocking:{viewer}", target)
            pipe.srem(f"eh:blocked_by:{target}", viewer)

        await self._change_reach((viewer, target), change)

    async def set_mute(self, viewer: str, target: str, on: bool) -> None:
        def change(pipe: Pipeline) -> None:
            if on:
                pipe.sadd(f"eh:muting:{viewer}", target)
                pipe.sadd(f"eh:muted_by:{target}", viewer)
            else:
                pipe.srem(f"eh:muting:{viewer}", target)
                pipe.srem(f"eh:muted_by:{target}", viewer)

        await self._change_reach((target,), change)  # its muted_by changed

    async def sampled_following(self, users: list[str], count: int) -> list[list[str]]:
        """Whom each of `users` follows: all of it, or `count` of it drawn at random
        (SRANDMEMBER: bounded whatever a member follows)."""
        replies = await self.engine.calls([("SRANDMEMBER", f"eh:following:{u}", count)
                                           for u in users])  # fmt: skip
        return [[str(uid) for uid in reply] for reply in replies]

    async def counts(self, user: str) -> tuple[int, int]:
        async with self.r.pipeline(transaction=False) as pipe:
            pipe.scard(f"eh:followers:{user}")
            pipe.scard(f"eh:following:{user}")
            followers, following = await pipe.execute()
        return int(followers), int(following)
