"""Control messages between server processes, on the bus's control channel: typed here,
encoded and decoded here, nowhere else.

The wire shape (a JSON object keyed by the message's kind) is unchanged, so processes of
the previous release and this one understand each other during a rolling restart.
Messages of kinds not listed here (a feature's own, e.g. profile changes) decode to
None and are left to that feature's hook.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from server.protocol import CloseCode


@dataclass(frozen=True, slots=True)
class CloseUser:
    """Close every socket of a member (suspended, account closed)."""

    user_id: str
    code: int
    reason: str = "account closed"


@dataclass(frozen=True, slots=True)
class CloseSession:
    """Close every socket of one session (logout, password change)."""

    session: str
    code: int = CloseCode.SESSION_ENDED


@dataclass(frozen=True, slots=True)
class Revoke:
    """End a member's subscriptions to a topic they lost the right to."""

    user_id: str
    topic: str
    why: str


@dataclass(frozen=True, slots=True)
class RebindHome:
    """Widen or narrow a member's live `home` subscriptions (a follow, an unfollow)."""

    user_id: str
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()


ControlMessage = CloseUser | CloseSession | Revoke | RebindHome


def encode(message: ControlMessage) -> dict[str, Any]:
    if isinstance(message, CloseUser):
        return {"close_user": message.user_id, "code": int(message.code),
                "reason": message.reason}  # fmt: skip
    if isinstance(message, CloseSession):
        return {"close_session": message.session, "code": int(message.code)}
    if isinstance(message, Revoke):
        return {"revoke": message.user_id, "topic": message.topic, "why": message.why}
    return {"home": message.user_id, "add": list(message.add), "remove": list(message.remove)}


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in value) if isinstance(value, list) else ()


def decode(raw: Any) -> ControlMessage | None:
    """The message in `raw` (what another process sent), or None if it is none of these;
    fields are coerced and bounded, never trusted."""
    if not isinstance(raw, dict):
        return None
    code = raw.get("code", CloseCode.SESSION_ENDED)
    code = int(code) if isinstance(code, int) and not isinstance(code, bool) else 4001
    if "revoke" in raw:
        return Revoke(str(raw["revoke"]), str(raw.get("topic", "")), str(raw.get("why", ""))[:200])
    if "home" in raw:
        return RebindHome(str(raw["home"]), _strings(raw.get("add")), _strings(raw.get("remove")))
    if "close_user" in raw:
        reason = str(raw.get("reason", "account closed"))[:100]
        return CloseUser(str(raw["close_user"]), code, reason)
    if "close_session" in raw:
        return CloseSession(str(raw["close_session"]), code)
    return None
