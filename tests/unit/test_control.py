"""Control messages between processes: typed, one encoding, and the wire shape kept."""

from __future__ import annotations

from typing import Any

import pytest

from server.services.control import (
    CloseSession,
    CloseUser,
    ControlMessage,
    RebindHome,
    Revoke,
    decode,
    encode,
)


@pytest.mark.parametrize(
    ("message", "wire"),
    [
        (
            CloseUser("u1", 4003, "suspended"),
            {"close_user": "u1", "code": 4003, "reason": "suspended"},
        ),
        (CloseSession("s1"), {"close_session": "s1", "code": 4001}),
        (
            Revoke("u1", "community:c", "left"),
            {"revoke": "u1", "topic": "community:c", "why": "left"},
        ),
        (RebindHome("u1", ("user:a",), ()), {"home": "u1", "add": ["user:a"], "remove": []}),
    ],
)
def test_each_message_round_trips_in_the_wire_shape(
    message: ControlMessage, wire: dict[str, Any]
) -> None:
    assert encode(message) == wire
    assert decode(wire) == message


@pytest.mark.parametrize(
    "raw",
    [None, [], "close_user", {}, {"profile": "u1", "display_name": "A"}, {"unknown": 1}],
)
def test_anything_else_is_none(raw: Any) -> None:
    assert decode(raw) is None


def test_fields_from_another_process_are_coerced_and_bounded() -> None:
    assert decode({"close_user": 7, "code": True, "reason": "x" * 500}) == CloseUser(
        "7", 4001, "x" * 100
    )
    assert decode({"home": "u", "add": "not a list", "remove": [1]}) == RebindHome("u", (), ("1",))
    assert decode({"revoke": "u"}) == Revoke("u", "", "")
