"""redis-py's replies, typed as what they are with our client.

redis-py annotates every reply as `bytes | str`, since a client may be made either way.
Ours is always made with decode_responses=True (see `server.store.connect`), so every
value it returns is a `str`. These helpers tell the type checker so, in one place.
They are casts: nothing is checked, copied or converted at run time.

redis-py's reply types are imported for the type checker only (older redis-py releases,
which the dependency range allows, do not define them), so the casts name them as strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from redis.typing import EncodableT, ZSetRangeResponse


def str_list(reply: ZSetRangeResponse) -> list[str]:
    """The members from a sorted-set range read without scores (ZRANGE, ZRANGEBYSCORE,
    ZREVRANGEBYLEX...)."""
    return cast("list[str]", reply)


def scored(reply: ZSetRangeResponse) -> list[tuple[str, float]]:
    """The (member, score) pairs from a sorted-set range read with `withscores=True`."""
    return cast("list[tuple[str, float]]", reply)


def str_set(reply: set[bytes | str]) -> set[str]:
    """The members from SMEMBERS."""
    return cast("set[str]", reply)


def hash_or_none(reply: dict[bytes | str, bytes | str]) -> dict[str, str] | None:
    """A hash from HGETALL, or None when there is no such key (HGETALL answers {})."""
    return cast("dict[str, str]", reply) or None


def hash_fields(fields: Mapping[str, str]) -> Mapping[EncodableT, EncodableT]:
    """`fields` as HSET's `mapping` argument. redis-py types it with invariant keys, so a
    `dict[str, str]` does not fit although every str is an EncodableT and HSET only
    reads the mapping."""
    return cast("Mapping[EncodableT, EncodableT]", fields)
