"""Who sees a reply (server.domain.replies): its gates, as tables and properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.domain.errors import DomainError
from server.domain.replies import (
    MAX_GATES,
    Gate,
    gates_for_reply,
    gates_from_field,
    gates_to_field,
    sees_gates,
)
from server.domain.visibility import CommunityAccess, Relation

FRIEND = Relation(follows=True, followed_by=True)
FOLLOWER = Relation(follows=True)
STRANGER = Relation()
BLOCKED = Relation(blocked_by=True)
BLOCKING = Relation(blocks=True)
MUTING = Relation(follows=True, followed_by=True, mutes=True)

OPEN = CommunityAccess("open", False)
CLOSED_OUT = CommunityAccess("approval", False)
CLOSED_IN = CommunityAccess("approval", True)


@pytest.mark.parametrize(
    ("gate", "relation", "access", "sees"),
    [
        (Gate("b", "public"), STRANGER, None, True),
        (Gate("b", "public"), FOLLOWER, None, True),
        (Gate("b", "public"), BLOCKED, None, False),
        (Gate("b", "public"), BLOCKING, None, False),
        (Gate("b", "public"), MUTING, None, True),  # a mute hides from feeds, not threads
        (Gate("b", "friends"), FRIEND, None, True),
        (Gate("b", "friends"), MUTING, None, True),
        (Gate("b", "friends"), FOLLOWER, None, False),
        (Gate("b", "friends"), STRANGER, None, False),
        (Gate("b", "friends"), BLOCKED, None, False),
        (Gate("b", "public", "c"), STRANGER, OPEN, True),
        (Gate("b", "public", "c"), STRANGER, CLOSED_OUT, False),
        (Gate("b", "public", "c"), STRANGER, CLOSED_IN, True),
        (Gate("b", "public", "c"), STRANGER, None, False),  # unknown standing: closed
        (Gate("b", "friends", "c"), FRIEND, CLOSED_OUT, False),
        (Gate("b", "nonsense"), FRIEND, None, False),
    ],
)
def test_one_gate(gate: Gate, relation: Relation, access: CommunityAccess | None,
                  sees: bool) -> None:  # fmt: skip
    assert sees_gates("v", [gate], lambda _author: relation, {"c": access}) is sees


def test_the_author_above_always_passes_their_own_gate() -> None:
    assert sees_gates("b", [Gate("b", "friends", "c")], lambda _a: STRANGER, {})


def test_every_gate_must_pass() -> None:
    relations = {"b": FRIEND, "c": STRANGER}
    gates = [Gate("b", "friends"), Gate("c", "public")]
    assert sees_gates("v", gates, relations.__getitem__, {})
    gates.append(Gate("c", "friends"))
    assert not sees_gates("v", gates, relations.__getitem__, {})


def test_gates_accumulate_once_each_in_thread_order() -> None:
    first = gates_for_reply(Gate("a", "friends"), ())
    second = gates_for_reply(Gate("b", "public"), first)
    third = gates_for_reply(Gate("a", "friends"), second)
    assert first == (Gate("a", "friends"),)
    assert third == second == (Gate("a", "friends"), Gate("b", "public"))


def test_a_thread_too_wide_is_refused() -> None:
    gates = tuple(Gate(f"u{i}", "public") for i in range(MAX_GATES))
    with pytest.raises(DomainError) as err:
        gates_for_reply(Gate("late", "public"), gates)
    assert (err.value.code, err.value.field) == ("thread_too_wide", "reply_to")
    assert len(gates_for_reply(gates[0], gates)) == MAX_GATES


@given(st.lists(st.tuples(st.text(max_size=8), st.sampled_from(["public", "friends"]),
                          st.text(max_size=8)), max_size=10))  # fmt: skip
def test_field_round_trip(rows: list[tuple[str, str, str]]) -> None:
    gates = tuple(Gate(*row) for row in rows)
    assert gates_from_field(gates_to_field(gates)) == gates


@pytest.mark.parametrize("raw", ["{", "[1]", '[["a"]]', "[[1,2,3,4]]", "null", '"x"'])
def test_a_damaged_field_hides_rather_than_shows(raw: str) -> None:
    gates = gates_from_field(raw)
    assert gates and not sees_gates("v", gates, lambda _a: FRIEND, {})
