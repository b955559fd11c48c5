"""Which bus channels feed a client topic, and whether a member may subscribe to it.

Client topics (SPEC section 6) map to bus channels:
  me              -> me:{user id} (notifications) + read:{user id} (read marks)
  public          -> public
  user:{handle}   -> user:{user id}
  home            -> user:{own id} + user:{id} of every followed, unmuted member
  mod             -> mod (moderators only; registered by the moderation service)
Feature services register further resolvers (community:, event:) by prefix.

A `sub` with `since` replays history whose events carry the audience they had when
published; replay rules (registered by the services that publish the events) drop what
the rules in force now no longer show the member.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from server.domain.errors import DomainError
from server.hub import Event, EventFilter, ReplayFilter
from server.services.common import User

Resolution = tuple[list[str], EventFilter | None]
Resolver = Callable[[User, str, dict[str, Any] | None], Awaitable[Resolution]]
# The replay filter a member's resume of a topic needs, if this rule has one.
ReplayRule = Callable[[User, str], ReplayFilter | None]


class TopicResolver:
    def __init__(self) -> None:
        self._exact: dict[str, Resolver] = {}
        self._prefixed: dict[str, Resolver] = {}
        self._replay_rules: list[ReplayRule] = []

    def register(self, name: str, resolver: Resolver, *, prefix: bool = False) -> None:
        (self._prefixed if prefix else self._exact)[name] = resolver

    def add_replay_rule(self, rule: ReplayRule) -> None:
        self._replay_rules.append(rule)

    def replay_filter(self, user: User, topic: str) -> ReplayFilter | None:
        """What a resume of `topic` by `user` may replay: every rule's filter in turn."""
        filters = [f for rule in self._replay_rules if (f := rule(user, topic)) is not None]
        if len(filters) <= 1:
            return filters[0] if filters else None

        async def each(events: list[Event]) -> list[Event]:
            for keep in filters:
                if not events:
                    break
                events = await keep(events)
            return events

        return each

    async def resolve(self, user: User, topic: str, flt: dict[str, Any] | None) -> Resolution:
        """Channels for `topic`, or DomainError: `forbidden`, `unknown_topic`, not found."""
        if topic in self._exact:
            return await self._exact[topic](user, topic, flt)
        name, sep, rest = topic.partition(":")
        if sep and rest and name in self._prefixed:
            return await self._prefixed[name](user, rest, flt)
        raise DomainError("unknown_topic", f"there is no topic {topic[:60]!r}", field="topic")


async def resolve_me(user: User, _topic: str, _flt: dict[str, Any] | None) -> Resolution:
    return [f"me:{user.id}", f"read:{user.id}"], None


async def resolve_public(user: User, _topic: str, _flt: dict[str, Any] | None) -> Resolution:
    return ["public"], None
