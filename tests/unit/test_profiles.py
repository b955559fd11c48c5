"""Profile rules: the bio, display names on a patch, password changes, bio segments."""

from __future__ import annotations

from typing import Any

import pytest

from server.domain.errors import DomainError
from server.domain.profiles import (
    bio_segments,
    mention_candidates,
    validate_bio,
    validate_password_change,
    validate_profile_patch,
)


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        ("", ""),
        ("   ", ""),
        ("  hello  ", "hello"),
        ("a" * 160, "a" * 160),
        ("あ" * 160, "あ" * 160),
        ("👩‍👩‍👧" * 160, "👩‍👩‍👧" * 160),  # a ZWJ family is one character
        ("cafe\u0301", "café"),  # NFC
    ],
)
def test_bios_kept(raw: str, kept: str) -> None:
    assert validate_bio(raw).text == kept


@pytest.mark.parametrize(
    "raw",
    [
        "a" * 161,
        "あ" * 161,
        "one\ntwo",
        "one\r\ntwo",
        "one\u2028two",
        "tab\there",
        "bell\x07",
        "evil\u202etxt",
        "e" + "\u0301" * 6000,  # zalgo: one character, kilobytes of marks
        42,
        ["a"],
    ],
)
def test_bios_refused(raw: Any) -> None:
    with pytest.raises(DomainError) as err:
        validate_bio(raw)
    assert err.value.code == "invalid_bio" and err.value.field == "bio"


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({}, "nothing_to_change", None),
        ([], "invalid_body", None),
        ({"display_name": ""}, "invalid_display_name", "display_name"),
        ({"display_name": "   "}, "invalid_display_name", "display_name"),
        ({"display_name": None}, "invalid_display_name", "display_name"),
        ({"display_name": "x" * 51}, "invalid_display_name", "display_name"),
        ({"display_name": "a\nb"}, "invalid_display_name", "display_name"),
        ({"display_name": "nul\x00"}, "invalid_display_name", "display_name"),
        ({"display_name": 5}, "invalid_display_name", "display_name"),
        ({"bio": "x" * 161}, "invalid_bio", "bio"),
        ({"bio": "two\n\nparagraphs"}, "invalid_bio", "bio"),
        ({"avatar": "not-an-id"}, "invalid_avatar", "avatar"),
        ({"avatar": 7}, "invalid_avatar", "avatar"),
        ({"handle": "newname"}, "unknown_field", "handle"),
        ({"bio": "ok", "role": "admin"}, "unknown_field", "role"),
    ],
)
def test_profile_patches_refused(body: Any, code: str, field: str | None) -> None:
    with pytest.raises(DomainError) as err:
        validate_profile_patch(body)
    assert (err.value.code, err.value.field) == (code, field)


def test_profile_patches_kept() -> None:
    patch = validate_profile_patch({"display_name": "  Aki ", "bio": None})
    assert patch.display_name == "Aki" and patch.bio is not None and patch.bio.text == ""
    assert patch.avatar is None
    only_bio = validate_profile_patch({"bio": "hi @ben"})
    assert only_bio.display_name is None and only_bio.bio is not None
    assert validate_profile_patch({"avatar": None}).avatar == ""
    assert validate_profile_patch({"avatar": "0123456789abcdef0123"}).avatar == (
        "0123456789abcdef0123"
    )
    assert validate_profile_patch({"display_name": "x" * 50}).display_name == "x" * 50


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"new": "long enough 1"}, "invalid_password", "old"),
        ({"old": "", "new": "long enough 1"}, "invalid_password", "old"),
        ({"old": 5, "new": "long enough 1"}, "invalid_password", "old"),
        ({"old": "x" * 2000, "new": "long enough 1"}, "wrong_password", "old"),
        ({"old": "whatever1"}, "invalid_password", "new"),
        ({"old": "whatever1", "new": "short"}, "invalid_password", "new"),
        ({"old": "whatever1", "new": "x" * 1025}, "invalid_password", "new"),
        ({"old": "same as before", "new": "same as before"}, "password_unchanged", "new"),
        ("old=new", "invalid_body", None),
    ],
)
def test_password_changes_refused(body: Any, code: str, field: str | None) -> None:
    with pytest.raises(DomainError) as err:
        validate_password_change(body)
    assert (err.value.code, err.value.field) == (code, field)


def test_password_change_kept() -> None:
    change = validate_password_change({"old": "old secret", "new": "new secret"})
    assert (change.old, change.new) == ("old secret", "new secret")


@pytest.mark.parametrize(
    ("text", "members", "segments"),
    [
        ("plain", set(), [{"text": "plain"}]),
        (
            "hi @Ben and @nobody",
            {"ben"},
            [{"text": "hi "}, {"mention": "ben", "text": "@Ben"}, {"text": " and @nobody"}],
        ),
        ("mail me@ben.example", {"ben"}, [{"text": "mail me@ben.example"}]),
        (
            "see https://a.example/x?y=1.",
            set(),
            [
                {"text": "see "},
                {"link": "https://a.example/x?y=1", "text": "https://a.example/x?y=1"},
                {"text": "."},
            ],
        ),  # fmt: skip
        (
            "東京の@aki_01です",
            {"aki_01"},
            [{"text": "東京の"}, {"mention": "aki_01", "text": "@aki_01"}, {"text": "です"}],
        ),
        (
            "http://x.example/「括弧」 #東京",
            set(),
            [
                {"link": "http://x.example/", "text": "http://x.example/"},
                {"text": "「括弧」 "},
                {"tag": "東京", "text": "#東京"},
            ],
        ),
        ("javascript:alert(1)", set(), [{"text": "javascript:alert(1)"}]),
    ],
)
def test_bio_segments(text: str, members: set[str], segments: list[dict[str, str]]) -> None:
    assert bio_segments(text, frozenset(members)) == segments
    assert "".join(s["text"] for s in segments) == text


def test_mention_candidates() -> None:
    assert mention_candidates("@Aki, @ben_2 x@no @ab @" + "c" * 21) == {"aki", "ben_2"}
