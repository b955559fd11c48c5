"""Small things every service needs: the clock, ids, times on the wire, users on the wire."""

from __future__ import annotations

import datetime as dt
import os
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


def new_id() -> str:
    """Time-ordered, unguessable enough for public ids: 12 hex of ms time + 8 random hex."""
    return f"{int(time.time() * 1000):012x}{os.urandom(4).hex()}"


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
