"""Replies: who may see one, and what a reply's record keeps to decide it without I/O.

SPEC "Conversations": a reply is seen only by those who may see both it and the post it
answers, and that post may itself be a reply. So a reply carries its **gates**: the
(author, visibility, community) of every post above it in the thread, each once. A
viewer sees a reply when `can_see_post` holds for the reply itself and for every gate,
all decided from the viewer's graph (one load per page) with no read of the posts
above. The gates are fixed when the reply is written: a post above it deleted later
does not change who sees the reply (the thread shows the gap).

A thread can have many participants but its gates stay few: they are distinct
(author, visibility, community) triples, and at most `MAX_GATES` of them; a reply that
would need more is refused (`thread_too_wide`), which no conversation among people
who know each other reaches.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import orjson

from server.domain.errors import DomainError
from server.domain.visibility import CommunityAccess, Relation, can_see_post

__all__ = [
    "MAX_CHAIN",
    "MAX_GATES",
    "Gate",
    "gates_for_reply",
    "gates_from_field",
    "gates_to_field",
    "sees_gates",
]

MAX_GATES = 50
# Posts shown above a post on its thread page.
MAX_CHAIN = 20


@dataclass(frozen=True, slots=True)
class Gate:
    """One post above a reply, as far as who may see it goes."""

    author: str
    visibility: str
    community: str = ""  # "" for a post outside communities


def gates_for_reply(answered: Gate, answered_gates: Iterable[Gate]) -> tuple[Gate, ...]:
    """The gates of a new reply to a post: that post's gates and the post itself, each
    once, in thread order. Raises `thread_too_wide` (field `reply_to`) past
    `MAX_GATES`."""
    gates = tuple(dict.fromkeys([*answered_gates, answered]))
    if len(gates) > MAX_GATES:
        raise DomainError(
            "thread_too_wide",
            f"this thread has more than {MAX_GATES} audiences; start a new echo instead",
            field="reply_to",
        )
    return gates


def gates_to_field(gates: Iterable[Gate]) -> str:
    """The stored form (a JSON list of [author, visibility, community]); "" for none."""
    rows = [[g.author, g.visibility, g.community] for g in gates]
    return orjson.dumps(rows).decode() if rows else ""


def gates_from_field(raw: str | None) -> tuple[Gate, ...]:
    """The gates of a stored post; a malformed field is read as one gate no one
    passes, so damage hides a reply rather than showing it."""
    if not raw:
        return ()
    try:
        rows = orjson.loads(raw)
        return tuple(Gate(str(a), str(v), str(c)) for a, v, c in rows)
    except (orjson.JSONDecodeError, TypeError, ValueError):
        return (Gate("", "unknown"),)


def sees_gates(
    viewer_id: str,
    gates: Iterable[Gate],
    relation_to: Callable[[str], Relation],
    access: Mapping[str, CommunityAccess | None],
) -> bool:
    """Whether the viewer may see every post above a reply. `relation_to(author)` is
    the viewer's relation to that author; `access[community]` the viewer's standing in
    each gate's community (missing: treated as a closed community they are not in)."""
    for gate in gates:
        standing = None
        if gate.community:
            standing = access.get(gate.community) or CommunityAccess("approval", False)
        if not can_see_post(viewer_id, gate.author, gate.visibility,
                            relation_to(gate.author), standing):  # fmt: skip
            return False
    return True
