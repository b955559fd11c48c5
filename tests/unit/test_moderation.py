"""Moderation rules: reports, reasons, who may suspend whom, the mod stream's filter."""

from __future__ import annotations

from typing import Any

import pytest

from server.domain.errors import DomainError, Forbidden
from server.domain.moderation import (
    ModFilter,
    ReportRequest,
    check_may_suspend,
    parse_mod_filter,
    validate_reason,
    validate_report,
    validate_report_status,
)


def test_a_report_names_a_post_or_a_member_and_says_why() -> None:
    assert validate_report({"echo": "e1", "reason": " spam "}) == ReportRequest("e1", None, "spam")
    assert validate_report({"user": "Aki", "reason": "rude"}) == ReportRequest(None, "aki", "rude")


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ("spam", "invalid_body", None),
        ({"reason": "spam"}, "invalid_report", None),
        ({"echo": "e1", "user": "aki", "reason": "x"}, "invalid_report", "echo"),
        ({"echo": "", "reason": "x"}, "invalid_report", "echo"),
        ({"echo": "e" * 65, "reason": "x"}, "invalid_report", "echo"),
        ({"user": "a", "reason": "x"}, "invalid_handle", "user"),
        ({"user": "aki"}, "invalid_reason", "reason"),
        ({"user": "aki", "reason": ""}, "invalid_reason", "reason"),
        ({"user": "aki", "reason": "\u200b"}, "invalid_reason", "reason"),
        ({"user": "aki", "reason": "a\x00b"}, "invalid_reason", "reason"),
        ({"user": "aki", "reason": "x" * 501}, "invalid_reason", "reason"),
    ],
)
def test_bad_reports(body: Any, code: str, field: str | None) -> None:
    with pytest.raises(DomainError) as err:
        validate_report(body)
    assert err.value.code == code and err.value.field == field


def test_a_moderators_reason_is_optional_but_checked() -> None:
    assert validate_reason(None, required=False) == ""
    assert validate_reason("", required=False) == ""
    assert validate_reason("  rule 3 ", required=False) == "rule 3"
    assert validate_reason("あ" * 500, required=False) == "あ" * 500
    for bad in ("x" * 501, "two\nlines", 3, ["x"]):
        with pytest.raises(DomainError) as err:
            validate_reason(bad, required=False)
        assert err.value.field == "reason"
    with pytest.raises(DomainError):
        validate_reason(None, required=True)


def test_report_status_query() -> None:
    assert validate_report_status(None) == "open"
    assert validate_report_status("") == "open"
    for status in ("open", "resolved", "all"):
        assert validate_report_status(status) == status
    with pytest.raises(DomainError) as err:
        validate_report_status("closed")
    assert err.value.field == "status"


@pytest.mark.parametrize(
    ("actor", "target", "allowed"),
    [
        ("moderator", "member", True),
        ("admin", "member", True),
        ("admin", "moderator", True),
        ("moderator", "moderator", False),
        ("moderator", "admin", False),
        ("admin", "admin", False),
        ("member", "member", False),
    ],
)
def test_who_may_suspend_whom(actor: str, target: str, allowed: bool) -> None:
    if allowed:
        check_may_suspend("a", actor, "b", target)
    else:
        with pytest.raises(Forbidden):
            check_may_suspend("a", actor, "b", target)


def test_nobody_suspends_themselves() -> None:
    with pytest.raises(Forbidden):
        check_may_suspend("a", "admin", "a", "member")


POST = {"id": "p1", "author": {"handle": "aki", "display_name": "Aki"},
        "text": "Big SALE today", "community": "c1"}  # fmt: skip
REPORT = {"id": "r1", "reporter": {"handle": "ben", "display_name": "Ben"},
          "reason": "spam", "echo": POST, "user": None}  # fmt: skip
ACTION = {"id": "a1", "actor": {"handle": "mia", "display_name": "Mia"},
          "action": "suspend", "reason": "abuse", "echo": None,
          "user": {"handle": "cho", "display_name": "Cho"}}  # fmt: skip
DELETED = {"id": "p1", "community": None}


@pytest.mark.parametrize(
    ("flt", "matches"),
    [
        ({"member": "aki"}, {"post": True, "report": True, "action": False, "deleted": True}),
        ({"member": "BEN"}, {"post": False, "report": True, "action": False, "deleted": True}),
        ({"member": "cho"}, {"post": False, "report": False, "action": True, "deleted": True}),
        ({"member": "mia"}, {"post": False, "report": False, "action": True, "deleted": True}),
        ({"keyword": "sale"}, {"post": True, "report": True, "action": False, "deleted": True}),
        ({"keyword": " SPAM "}, {"post": False, "report": True, "action": False, "deleted": True}),
        ({"community": "c1"}, {"post": True, "report": True, "action": False, "deleted": True}),
        (
            {"community": "c1", "member": "ben"},
            {"post": False, "report": True, "action": False, "deleted": True},
        ),
        (
            {"keyword": "abuse", "member": "aki"},
            {"post": False, "report": False, "action": False, "deleted": True},
        ),
    ],  # fmt: skip
)
def test_the_filter_matches_what_an_event_is_about(
    flt: dict[str, str], matches: dict[str, bool]
) -> None:
    check = parse_mod_filter(flt)
    assert check is not None
    events: dict[str, tuple[str, dict[str, Any]]] = {
        "post": ("post.created", POST), "report": ("report.created", REPORT),
        "action": ("mod.action", ACTION), "deleted": ("post.deleted", DELETED),
    }  # fmt: skip
    assert {name: check(*event) for name, event in events.items()} == matches


def test_a_deletion_passes_every_filter() -> None:
    # It names only the post: a page showing that post must hear of it.
    for flt in ({"member": "zed"}, {"keyword": "nothing"}, {"community": "c9"}):
        check = parse_mod_filter(flt)
        assert check is not None and check("post.deleted", DELETED)


def test_keywords_match_whatever_the_normal_form() -> None:
    check = parse_mod_filter({"keyword": "Cafe\u0301"})  # e + combining acute
    assert check is not None
    assert check("post.created", {**POST, "text": "the CAF\u00c9 opens"})


def test_no_filter_or_an_empty_one_is_everything() -> None:
    assert parse_mod_filter(None) is None
    assert parse_mod_filter({}) is None
    assert parse_mod_filter({"member": None}) is None
    assert ModFilter()("post.created", POST)
    assert not ModFilter(member="aki")("post.created", "not a mapping")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "flt",
    [
        ["aki"],
        "aki",
        {"member": "x!"},
        {"member": 3},
        {"keyword": ""},
        {"keyword": "  "},
        {"keyword": "k" * 101},
        {"keyword": 3},
        {"community": ""},
        {"community": 5},
        {"community": "c" * 101},
        {"colour": "red"},
    ],  # fmt: skip
)
def test_bad_filters(flt: Any) -> None:
    with pytest.raises(DomainError) as err:
        parse_mod_filter(flt)
    assert err.value.code == "bad_filter" and err.value.field == "filter"
