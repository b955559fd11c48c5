"""Community rules: what a new community carries, name uniqueness, joining.

Owns SPEC "Communities" minus storage and reading rights (those are
`visibility.can_read_community` / `can_post_in_community`). Does no I/O.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from server.domain.echo import clean_text
from server.domain.errors import Conflict, DomainError

__all__ = [
    "JOIN_POLICIES",
    "MAX_DESCRIPTION",
    "MAX_NAME",
    "CommunityFields",
    "community_name_key",
    "join_outcome",
    "validate_new_community",
]

JOIN_POLICIES = ("open", "approval")
MAX_NAME = 50
MAX_DESCRIPTION = 1000


@dataclass(frozen=True, slots=True)
class CommunityFields:
    """What a member says about a new community."""

    name: str
    description: str
    join_policy: str


def validate_new_community(body: Mapping[str, object]) -> CommunityFields:
    """name 1-50 characters (NFC, stripped, one line, no control characters);
    description 0-1000 (may be multi-line; missing = ""); join_policy required,
    `open` or `approval`. Codes: `invalid_name`, `invalid_description`,
    `invalid_join_policy`, each with its field. Unknown keys are ignored.
    """
    name = clean_text(
        body.get("name"), field="name", code="invalid_name", label="name", max_graphemes=MAX_NAME
    )
    raw_description = body.get("description")
    description = (
        ""
        if raw_description is None
        else clean_text(
            raw_description,
            field="description",
            code="invalid_description",
            label="description",
            max_graphemes=MAX_DESCRIPTION,
            min_graphemes=0,
            multiline=True,
        )
    )
    policy = body.get("join_policy")
    if not isinstance(policy, str) or policy not in JOIN_POLICIES:
        raise DomainError(
            "invalid_join_policy",
            'join_policy must be "open" or "approval"',
            field="join_policy",
        )
    return CommunityFields(name=name, description=description, join_policy=policy)


def community_name_key(name: str) -> str:
    """The uniqueness key of a community name: NFC, casefolded, NFC again.

    `Tokyo Cats`, `TOKYO CATS` and `tokyo cats` collide; so do `Straße` and
    `STRASSE`. Casefolding can un-normalise text, hence the second NFC.
    """
    folded = unicodedata.normalize("NFC", name).casefold()
    return unicodedata.normalize("NFC", folded)


def join_outcome(policy: str, is_member: bool, has_pending_request: bool) -> str:
    """`joined` for an open community, `requested` for an approval one.

    Raises `Conflict("already_member")` or `Conflict("request_pending")`.
    """
    if is_member:
        raise Conflict("already_member", "you are already a member of this community")
    if has_pending_request:
        raise Conflict("request_pending", "your request to join is waiting for the owner")
    if policy == "open":
        return "joined"
    if policy == "approval":
        return "requested"
    raise ValueError(f"unknown join policy {policy!r}")
