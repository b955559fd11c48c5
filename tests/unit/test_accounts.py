"""Account rules: handles, passwords, display names, birthdates, invites, roles."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server.domain import accounts
from server.domain.accounts import (
    ROLES,
    check_invite_usable,
    hash_password,
    normalize_handle,
    require_object,
    validate_birthdate,
    validate_display_name,
    validate_invite_request,
    validate_password,
    validate_role_change,
    verify_password,
)
from server.domain.errors import DomainError

FAST = 2**4  # scrypt cost for tests: the format, not the slowness, is under test


def assert_error(excinfo: pytest.ExceptionInfo[DomainError], code: str, field: str | None) -> None:
    assert type(excinfo.value) is DomainError
    assert excinfo.value.code == code
    assert excinfo.value.field == field
    assert excinfo.value.message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("aki", "aki"),
        ("Aki_99", "aki_99"),
        ("ABC", "abc"),
        ("a" * 20, "a" * 20),
        ("___", "___"),
        ("0123456789", "0123456789"),
    ],
)
def test_handle_accepted_and_lowercased(raw: str, expected: str) -> None:
    assert normalize_handle(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        None,
        42,
        b"aki",
        ["aki"],
        "",
        "ak",
        "a" * 21,
        "aki-1",
        "aki.x",
        "a ki",
        "aki\n",
        " aki",
        "akí",  # non-ASCII letter
        "\uff41\uff4b\uff49",  # fullwidth
        "\uff41ki",
        "\u0430ki",  # Cyrillic a
        "aki٣",  # Arabic-Indic digit
        "K" * 3 + "\u212a",  # Kelvin sign lowercases to k
    ],
)
def test_handle_rejected(raw: object) -> None:
    with pytest.raises(DomainError) as excinfo:
        normalize_handle(raw)
    assert_error(excinfo, "invalid_handle", "handle")


@pytest.mark.parametrize("raw", ["12345678", "correct horse", "パスワードパスワード", "x" * 1024])
def test_password_accepted(raw: str) -> None:
    assert validate_password(raw) == raw


@pytest.mark.parametrize("raw", [None, 12345678, "", "1234567", "x" * 1025, ["password1"]])
def test_password_rejected(raw: object) -> None:
    with pytest.raises(DomainError) as excinfo:
        validate_password(raw)
    assert_error(excinfo, "invalid_password", "password")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, "aki"),
        ("Aki", "Aki"),
        ("  Aki  ", "Aki"),
        ("Aki\r\n", "Aki"),  # surrounding whitespace, line breaks included, is trimmed
        ("秋山 あき", "秋山 あき"),
        ("e\u0301", "\u00e9"),  # NFC composes
        ("👨‍👩‍👧‍👦" * 50, "👨‍👩‍👧‍👦" * 50),  # 50 graphemes
        ("x" * 50, "x" * 50),
        ("Aki\u200dZ", "Aki\u200dZ"),  # ZWJ is not a control character
    ],
)
def test_display_name_accepted(raw: object, expected: str) -> None:
    assert validate_display_name(raw, default="aki") == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "x" * 51,
        "👍🏽" * 51,
        "Aki\nBot",
        "Aki\rBot",
        "Aki\u2028Bot",
        "Aki\x00",
        "Aki\x1b[31m",
        "Aki\x85Bot",
        "Aki\u202egnp.exe",  # right-to-left override
        "Aki\u2066x\u2069",
        "Aki\ud800",
        42,
        ["Aki"],
    ],
)
def test_display_name_rejected(raw: object) -> None:
    with pytest.raises(DomainError) as excinfo:
        validate_display_name(raw, default="aki")
    assert_error(excinfo, "invalid_display_name", "display_name")


TODAY = datetime.date(2026, 11, 22)


@pytest.mark.parametrize(
    ("raw", "today", "expected"),
    [
        ("2008-11-22", TODAY, datetime.date(2008, 11, 22)),  # 18 today
        ("1990-04-01", TODAY, datetime.date(1990, 4, 1)),
        ("1900-01-01", TODAY, datetime.date(1900, 1, 1)),
        # Feb 29 births turn 18 on Mar 1 in a non-leap year...
        ("2008-02-29", datetime.date(2026, 3, 1), datetime.date(2008, 2, 29)),
        # ...and on Feb 29 in a leap year.
        ("2004-02-29", datetime.date(2022, 3, 1), datetime.date(2004, 2, 29)),
        ("2012-02-29", datetime.date(2030, 3, 1), datetime.date(2012, 2, 29)),
        ("2010-02-28", datetime.date(2028, 2, 28), datetime.date(2010, 2, 28)),
    ],
)
def test_birthdate_accepted(raw: str, today: datetime.date, expected: datetime.date) -> None:
    assert validate_birthdate(raw, today) == expected


@pytest.mark.parametrize(
    ("raw", "today"),
    [
        ("2008-11-23", TODAY),  # 18 tomorrow
        ("2010-01-01", TODAY),
        (TODAY.isoformat(), TODAY),
        ("2008-02-29", datetime.date(2026, 2, 28)),  # turns 18 on Mar 1
        ("2012-02-29", datetime.date(2030, 2, 28)),
        ("2028-02-29", datetime.date(2046, 2, 28)),
    ],
)
def test_birthdate_underage(raw: str, today: datetime.date) -> None:
    with pytest.raises(DomainError) as excinfo:
        validate_birthdate(raw, today)
    assert_error(excinfo, "underage", "birthdate")
    assert excinfo.value.message == "members must be 18 or older"


@pytest.mark.parametrize(
    "raw",
    [
        None,
        19900401,
        "",
        "1990-4-1",
        "1990/04/01",
        "19900401",
        "1990-04-01T00:00:00",
        " 1990-04-01",
        "1990-04-01\n",
        "1990-02-30",
        "1990-13-01",
        "1990-00-10",
        "2007-02-29",  # not a leap year
        "\uff11\uff19\uff19\uff10-04-01",  # fullwidth digits
        "2026-11-23",  # tomorrow
        "9999-12-31",
        "0001-01-01",  # impossible age
        "1870-01-01",
    ],
)
def test_birthdate_invalid(raw: object) -> None:
    with pytest.raises(DomainError) as excinfo:
        validate_birthdate(raw, TODAY)
    assert_error(excinfo, "invalid_birthdate", "birthdate")


@given(st.dates(max_value=datetime.date(2100, 1, 1)), st.dates(min_value=datetime.date(1990, 1, 1)))
def test_birthdate_adult_iff_18th_birthday_passed(
    birth: datetime.date, today: datetime.date
) -> None:
    """Property: accepted exactly when today >= the 18th birthday (Feb 29 -> Mar 1)."""
    try:
        eighteenth = birth.replace(year=birth.year + 18)
    except ValueError:
        eighteenth = datetime.date(birth.year + 18, 3, 1)
    try:
        validate_birthdate(birth.isoformat(), today)
    except DomainError as exc:
        if exc.code == "underage":
            assert birth <= today < eighteenth
        else:
            assert exc.code == "invalid_birthdate"
            assert birth > today or (today.year - birth.year) >= 149
    else:
        assert eighteenth <= today


@pytest.mark.parametrize(
    ("uses", "days", "expected"),
    [
        (None, None, (5, 14)),
        (1, 1, (1, 1)),
        (100, 365, (100, 365)),
        (3, None, (3, 14)),
        (None, 30, (5, 30)),
    ],
)
def test_invite_request_accepted(uses: object, days: object, expected: tuple[int, int]) -> None:
    assert validate_invite_request(uses, days) == expected


@pytest.mark.parametrize(
    ("uses", "days", "code", "field"),
    [
        (0, None, "invalid_uses", "uses"),
        (101, None, "invalid_uses", "uses"),
        (-1, None, "invalid_uses", "uses"),
        (True, None, "invalid_uses", "uses"),
        (2.0, None, "invalid_uses", "uses"),
        ("5", None, "invalid_uses", "uses"),
        (None, 0, "invalid_expiry", "expires_in_days"),
        (None, 366, "invalid_expiry", "expires_in_days"),
        (None, False, "invalid_expiry", "expires_in_days"),
        (None, 1.5, "invalid_expiry", "expires_in_days"),
        (None, "14", "invalid_expiry", "expires_in_days"),
    ],
)
def test_invite_request_rejected(uses: object, days: object, code: str, field: str) -> None:
    with pytest.raises(DomainError) as excinfo:
        validate_invite_request(uses, days)
    assert_error(excinfo, code, field)


@pytest.mark.parametrize(
    ("uses_left", "expires_at", "now", "code"),
    [
        (1, 1000.0, 999.9, None),
        (5, 1000.0, 0.0, None),
        (0, 1000.0, 10.0, "invite_used_up"),
        (-1, 1000.0, 10.0, "invite_used_up"),
        (1, 1000.0, 1000.0, "invite_expired"),
        (1, 1000.0, 2000.0, "invite_expired"),
        (0, 1000.0, 2000.0, "invite_used_up"),
    ],
)
def test_invite_usable(uses_left: int, expires_at: float, now: float, code: str | None) -> None:
    if code is None:
        check_invite_usable(uses_left, expires_at, now)
        return
    with pytest.raises(DomainError) as excinfo:
        check_invite_usable(uses_left, expires_at, now)
    assert_error(excinfo, code, "invite")


def test_password_hash_round_trip() -> None:
    stored = hash_password("correct horse", cost=FAST)
    assert stored.startswith(f"scrypt${FAST}$8$1$")
    assert verify_password("correct horse", stored)
    assert not verify_password("correct horsE", stored)
    assert not verify_password("", stored)


def test_password_hash_is_salted() -> None:
    assert hash_password("same password", cost=FAST) != hash_password("same password", cost=FAST)


def test_password_hash_default_cost() -> None:
    stored = hash_password("correct horse")
    assert stored.split("$")[1:4] == ["16384", "8", "1"]
    assert verify_password("correct horse", stored)


def test_password_hash_normalises_unicode() -> None:
    stored = hash_password("caf\u00e9 caf\u00e9", cost=FAST)
    assert verify_password("cafe\u0301 cafe\u0301", stored)


def test_password_hash_survives_lone_surrogate() -> None:
    stored = hash_password("pass\ud800word", cost=FAST)
    assert verify_password("pass\ud800word", stored)


@pytest.mark.parametrize("cost", [0, 1, 3, 1000, 2**21])
def test_password_hash_rejects_bad_cost(cost: int) -> None:
    with pytest.raises(ValueError):
        hash_password("correct horse", cost=cost)


def _tamper(stored: str, index: int, value: str) -> str:
    parts = stored.split("$")
    parts[index] = value
    return "$".join(parts)


GOOD = hash_password("correct horse", cost=FAST)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plaintext",
        "correct horse",
        "scrypt",
        "scrypt$16$8$1$$",
        GOOD + "$extra",
        GOOD.replace("scrypt", "bcrypt", 1),
        _tamper(GOOD, 1, "15"),  # not a power of two
        _tamper(GOOD, 1, str(2**30)),  # would allocate far too much
        _tamper(GOOD, 1, "-16"),
        _tamper(GOOD, 1, "١٦"),  # non-ASCII digits
        _tamper(GOOD, 2, "0"),
        _tamper(GOOD, 2, "999"),
        _tamper(GOOD, 3, "0"),
        _tamper(GOOD, 4, ""),
        _tamper(GOOD, 4, "!!!"),
        _tamper(GOOD, 5, ""),
        _tamper(GOOD, 5, "abc"),
        _tamper(GOOD, 5, "A" * 43),  # right length, wrong hash
        _tamper(GOOD, 3, "2"),  # different parameters give a different hash
    ],
)
def test_verify_password_malformed_is_false(stored: str) -> None:
    assert verify_password("correct horse", stored) is False


@given(st.text(max_size=80))
def test_verify_password_never_raises(stored: str) -> None:
    assert verify_password("correct horse", stored) is False


@pytest.mark.parametrize("raw", ["member", "moderator"])
def test_role_change_accepted(raw: str) -> None:
    assert validate_role_change(raw) == raw


@pytest.mark.parametrize("raw", ["admin", "Moderator", "", None, 1, ["member"], "owner"])
def test_role_change_rejected(raw: object) -> None:
    with pytest.raises(DomainError) as excinfo:
        validate_role_change(raw)
    assert_error(excinfo, "invalid_role", "role")


def test_roles() -> None:
    assert ROLES == ("member", "moderator", "admin")
    assert set(accounts.__all__) <= set(dir(accounts))


@pytest.mark.parametrize("body", [{}, {"handle": "aki"}])
def test_require_object_accepted(body: dict[str, object]) -> None:
    assert require_object(body) is body


@pytest.mark.parametrize("body", [None, [], [{"a": 1}], "x", 1, True])
def test_require_object_rejected(body: object) -> None:
    with pytest.raises(DomainError) as excinfo:
        require_object(body)
    assert_error(excinfo, "invalid_body", None)
