"""Community rules: new communities, name keys, joining."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.domain.communities import (
    JOIN_POLICIES,
    CommunityFields,
    community_name_key,
    join_outcome,
    validate_new_community,
)
from server.domain.errors import Conflict, DomainError


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"name": "Tokyo Cats", "description": "Cats of Tokyo", "join_policy": "open"},
            CommunityFields("Tokyo Cats", "Cats of Tokyo", "open"),
        ),
        (
            {"name": "  猫の会  ", "join_policy": "approval"},
            CommunityFields("猫の会", "", "approval"),
        ),
        ({"name": "Cafe\u0301", "join_policy": "open"}, CommunityFields("Caf\u00e9", "", "open")),
        ({"name": "n" * 50, "join_policy": "open"}, CommunityFields("n" * 50, "", "open")),
        ({"name": "🐈‍⬛" * 50, "join_policy": "open"}, CommunityFields("🐈‍⬛" * 50, "", "open")),
        (
            {"name": "x", "description": "line 1\r\nline 2", "join_policy": "open", "extra": 1},
            CommunityFields("x", "line 1\nline 2", "open"),
        ),
        (
            {"name": "x", "description": "d" * 1000, "join_policy": "open"},
            CommunityFields("x", "d" * 1000, "open"),
        ),
        (
            {"name": "x", "description": None, "join_policy": "open"},
            CommunityFields("x", "", "open"),
        ),
    ],
)
def test_new_community(body: dict[str, object], expected: CommunityFields) -> None:
    assert validate_new_community(body) == expected


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"join_policy": "open"}, "invalid_name", "name"),
        ({"name": None, "join_policy": "open"}, "invalid_name", "name"),
        ({"name": "", "join_policy": "open"}, "invalid_name", "name"),
        ({"name": "   ", "join_policy": "open"}, "invalid_name", "name"),
        ({"name": "n" * 51, "join_policy": "open"}, "invalid_name", "name"),
        ({"name": "a\nb", "join_policy": "open"}, "invalid_name", "name"),
        ({"name": "a\x07b", "join_policy": "open"}, "invalid_name", "name"),
        ({"name": "a\u202eb", "join_policy": "open"}, "invalid_name", "name"),
        ({"name": 7, "join_policy": "open"}, "invalid_name", "name"),
        (
            {"name": "x", "description": "d" * 1001, "join_policy": "open"},
            "invalid_description",
            "description",
        ),
        (
            {"name": "x", "description": "a\x00", "join_policy": "open"},
            "invalid_description",
            "description",
        ),
        (
            {"name": "x", "description": 1, "join_policy": "open"},
            "invalid_description",
            "description",
        ),
        ({"name": "x"}, "invalid_join_policy", "join_policy"),
        ({"name": "x", "join_policy": None}, "invalid_join_policy", "join_policy"),
        ({"name": "x", "join_policy": "Open"}, "invalid_join_policy", "join_policy"),
        ({"name": "x", "join_policy": "invite"}, "invalid_join_policy", "join_policy"),
        ({"name": "x", "join_policy": ["open"]}, "invalid_join_policy", "join_policy"),
    ],
)
def test_new_community_rejects(body: dict[str, object], code: str, field: str) -> None:
    with pytest.raises(DomainError) as excinfo:
        validate_new_community(body)
    assert type(excinfo.value) is DomainError
    assert (excinfo.value.code, excinfo.value.field) == (code, field)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Tokyo Cats", "tokyo cats"),
        ("TOKYO CATS", "tokyo cats"),
        ("Straße", "STRASSE"),
        ("Caf\u00e9", "CAFE\u0301"),
        ("ΣΊΣΥΦΟΣ", "σίσυφος"),
    ],
)
def test_name_keys_collide(a: str, b: str) -> None:
    assert community_name_key(a) == community_name_key(b)


@pytest.mark.parametrize(("a", "b"), [("Tokyo Cats", "Tokyo Dogs"), ("ねこ", "ネコ")])
def test_name_keys_differ(a: str, b: str) -> None:
    assert community_name_key(a) != community_name_key(b)


@given(st.text(max_size=30))
def test_name_key_is_idempotent(name: str) -> None:
    key = community_name_key(name)
    assert community_name_key(key) == key


@pytest.mark.parametrize(
    ("policy", "is_member", "pending", "outcome"),
    [
        ("open", False, False, "joined"),
        ("approval", False, False, "requested"),
        ("open", True, False, "already_member"),
        ("approval", True, False, "already_member"),
        ("approval", True, True, "already_member"),
        ("approval", False, True, "request_pending"),
        ("open", False, True, "request_pending"),  # policy changed while pending
    ],
)
def test_join_outcome(policy: str, is_member: bool, pending: bool, outcome: str) -> None:
    if outcome in ("joined", "requested"):
        assert join_outcome(policy, is_member, pending) == outcome
        return
    with pytest.raises(Conflict) as excinfo:
        join_outcome(policy, is_member, pending)
    assert excinfo.value.code == outcome


def test_join_outcome_unknown_policy_is_a_bug() -> None:
    with pytest.raises(ValueError):
        join_outcome("secret", False, False)


def test_policies() -> None:
    assert JOIN_POLICIES == ("open", "approval")
