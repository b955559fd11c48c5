"""Small things every service needs: the clock, ids, times on the wire, users on the wire."""

from __future__ import annotations

import datetime as dt
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], float]


def system_clock() -> float:
    return time.time()


def iso(ts: float) -> str:
    """ISO 8601 UTC with milliseconds and `Z`, as every time on the wire."""
    moment = dt.datetime.fromtimestamp(ts, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


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
            rand = secrets.randbits(31)
        else:
            ms = self._last_ms
            rand = self._last_rand + 1 + secrets.randbits(16)
            if rand > 0xFFFFFFFF:
                ms += 1
                rand = secrets.randbits(31)
        self._last_ms, self._last_rand = ms, rand
        return f"{ms:012x}{rand:08x}"


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

    @classmethod
    def from_record(cls, rec: dict[str, str]) -> User:
        return cls(rec["id"], rec["handle"], rec["display_name"], rec.get("role", "member"),
                   rec.get("created_at", ""), rec.get("suspended") == "1")  # fmt: skip

    @property
    def is_moderator(self) -> bool:
        return self.role in ("moderator", "admin")

    def brief(self) -> dict[str, str]:
        return {"handle": self.handle, "display_name": self.display_name}

    def to_wire(self) -> dict[str, object]:
        return {"id": self.id, "handle": self.handle, "display_name": self.display_name,
                "role": self.role, "created_at": self.created_at}  # fmt: skip
