"""Small things every service needs: the clock, ids, times on the wire, users on the wire."""

from __future__ import annotations

import datetime as dt
import functools
import math
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

Clock = Callable[[], float]


def system_clock() -> float:
    return time.time()


def iso(ts: float) -> str:
    """ISO 8601 UTC with milliseconds and `Z`, as every time on the wire."""
    # datetime.fromtimestamp's rounding (half to even, to the microsecond), then the
    # milliseconds it would show; the date and time of day only change once a second.
    fraction, whole = math.modf(ts)
    micros = round(fraction * 1e6)
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    elif micros < 0:
        whole, micros = whole - 1, micros + 1_000_000
    return f"{_iso_second(int(whole))}{micros // 1000:03d}Z"


@functools.lru_cache(maxsize=4)
def _iso_second(second: int) -> str:
    return dt.datetime.fromtimestamp(second, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.")


class _Entropy:
    """Random bits from the system (os.urandom, as `secrets`), drawn 256 bytes at a
    time: one getrandom call per 64 ids rather than one per id. A forked child starts
    afresh, so no two processes share them."""

    __slots__ = ("words",)

    def __init__(self) -> None:
        self.words: list[int] = []

    def bits(self, count: int) -> int:
        """`count` (at most 32) random bits, as `secrets.randbits(count)` gives them."""
        words = self.words
        if not words:
            words = self.words = memoryview(os.urandom(256)).cast("I").tolist()
        return words.pop() >> (32 - count)

    def forget(self) -> None:
        self.words = []


_entropy = _Entropy()
os.register_at_fork(after_in_child=_entropy.forget)


class IdGenerator:
    """Ids that sort in creation order: 12 hex of ms time + 8 hex of random.

    Feeds page by id, so two records made in the same millisecond by one process must
    still sort in creation order: the random part of a later id in the same millisecond
    is the previous one plus a random step (first ids in a millisecond start in the
    lower half, leaving room for 32k steps). The time part never goes backwards, even
    if the wall clock does. Across processes, ids of one millisecond are unordered —
    those records were made at the same time.
    """

    __slots__ = ("_clock", "_last_ms", "_last_rand")

    def __init__(self, clock: Clock = time.time) -> None:
        self._clock = clock
        self._last_ms = 0
        self._last_rand = 0

    def __call__(self) -> str:
        ms = int(self._clock() * 1000)
        if ms > self._last_ms:
            rand = _entropy.bits(31)
        else:
            ms = self._last_ms
            rand = self._last_rand + 1 + _entropy.bits(16)
            if rand > 0xFFFFFFFF:
                ms += 1
                rand = _entropy.bits(31)
        self._last_ms, self._last_rand = ms, rand
        # f"{ms:012x}{rand:08x}" through less machinery (ms fits 48 bits until 10889).
        return ((ms << 32) | rand).to_bytes(10, "big").hex()


new_id = IdGenerator()


def new_secret() -> str:
    """At least 128 bits of randomness, URL-safe (invite codes, session tokens)."""
    return secrets.token_urlsafe(24)


@dataclass(frozen=True, slots=True)
class User:
    id: str
    handle: str
    display_name: str
    role: str
    created_at: str
    suspended: bool
    bio: str = ""
    # The bio's segments as stored: JSON text, decoded only when a profile is shown.
    bio_segments: str = ""
    # Where the member's avatar is served ("" for none: the page shows an initial).
    avatar: str = ""

    @classmethod
    def from_record(cls, rec: dict[str, str]) -> User:
        avatar = rec.get("avatar")
        return cls(rec["id"], rec["handle"], rec["display_name"], rec.get("role", "member"),
                   rec.get("created_at", ""), rec.get("suspended") == "1",
                   rec.get("bio", ""), rec.get("bio_segments", ""),
                   str(orjson.loads(avatar).get("url", "")) if avatar else "")  # fmt: skip

    def presentation(self) -> dict[str, object]:
        """What a member shows of themselves on their profile: bio and its segments, and
        their avatar's URL (or null)."""
        segments = orjson.loads(self.bio_segments) if self.bio_segments else []
        return {"bio": self.bio, "bio_segments": segments, "avatar": self.avatar or None}

    @property
    def is_moderator(self) -> bool:
        return self.role in ("moderator", "admin")

    def brief(self) -> dict[str, str]:
        if self.avatar:
            return {"handle": self.handle, "display_name": self.display_name,
                    "avatar": self.avatar}  # fmt: skip
        return {"handle": self.handle, "display_name": self.display_name}

    def to_wire(self) -> dict[str, object]:
        return {"id": self.id, "handle": self.handle, "display_name": self.display_name,
                "role": self.role, "created_at": self.created_at,
                **self.presentation()}  # fmt: skip
