"""Account rules: handles, passwords, display names, age, invites, roles.

Owns the validation of everything a sign-up, login, invite or role change carries,
and the password hash format. Does no I/O and never reads the clock: callers pass
`today` / `now`. Storage of accounts, sessions and invites belongs to the store.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import hmac
import re
import secrets
import unicodedata

from server.domain.echo import clean_text
from server.domain.errors import DomainError

__all__ = [
    "DEFAULT_INVITE_DAYS",
    "DEFAULT_INVITE_USES",
    "MAX_DISPLAY_NAME",
    "MAX_PASSWORD",
    "MIN_AGE",
    "MIN_PASSWORD",
    "ROLES",
    "check_invite_usable",
    "hash_password",
    "invite_befriends",
    "normalize_handle",
    "require_object",
    "validate_befriend",
    "validate_birthdate",
    "validate_display_name",
    "validate_invite_request",
    "validate_password",
    "validate_role_change",
    "verify_password",
]

ROLES = ("member", "moderator", "admin")
# Roles an admin may grant or revoke over HTTP; `admin` is granted only by the CLI.
_GRANTABLE_ROLES = ("member", "moderator")

MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # bounds the work an attacker can make scrypt do per request
MAX_DISPLAY_NAME = 50
MIN_AGE = 18
# A birth date further back than this is a typo, not a member.
_MAX_AGE = 150

DEFAULT_INVITE_USES = 5
DEFAULT_INVITE_DAYS = 14
_MAX_INVITE_USES = 100
_MAX_INVITE_DAYS = 365

_HANDLE = re.compile(r"[A-Za-z0-9_]{3,20}")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")

# scrypt parameters accepted from a stored hash; anything outside is "malformed",
# so a corrupted or hostile record cannot make verification allocate gigabytes.
_SCRYPT_R = 8
_SCRYPT_P = 1
_MAX_COST = 2**20
_MAX_R = 32
_MAX_P = 16
_SALT_BYTES = 16
_HASH_BYTES = 32


def require_object(body: object) -> dict[str, object]:
    """Return `body` if it is a JSON object (a dict), else raise `invalid_body`."""
    if not isinstance(body, dict):
        raise DomainError("invalid_body", "request body must be a JSON object")
    return body


def normalize_handle(raw: object) -> str:
    """A handle is 3 to 20 ASCII letters, digits or `_`; returned lowercased.

    Handles are unique case-insensitively, so the lowercase form is the key.
    """
    if not isinstance(raw, str) or _HANDLE.fullmatch(raw) is None:
        raise DomainError(
            "invalid_handle",
            "handle must be 3 to 20 characters of a-z, 0-9 and _",
            field="handle",
        )
    return raw.lower()


def validate_password(raw: object) -> str:
    """A password is a string of 8 to 1024 characters (code points), kept as given."""
    if not isinstance(raw, str):
        raise DomainError("invalid_password", "password must be a string", field="password")
    if len(raw) < MIN_PASSWORD:
        raise DomainError(
            "invalid_password",
            f"password must be at least {MIN_PASSWORD} characters",
            field="password",
        )
    if len(raw) > MAX_PASSWORD:
        raise DomainError(
            "invalid_password",
            f"password must be at most {MAX_PASSWORD} characters",
            field="password",
        )
    return raw


def validate_display_name(raw: object, default: str) -> str:
    """None means `default`; else NFC, stripped, 1 to 50 characters (grapheme clusters).

    Line breaks, control characters and bidi overrides are refused (the character
    policy of `server.domain.echo`).
    """
    if raw is None:
        return default
    return clean_text(
        raw,
        field="display_name",
        code="invalid_display_name",
        label="display name",
        max_graphemes=MAX_DISPLAY_NAME,
    )


def _adult_on(birth: datetime.date, years: int) -> datetime.date:
    """The day someone born on `birth` turns `years` old (Feb 29 -> Mar 1)."""
    try:
        return birth.replace(year=birth.year + years)
    except ValueError:  # Feb 29 in a non-leap year, or past year 9999
        if birth.year + years > datetime.MAXYEAR:
            return datetime.date.max
        return datetime.date(birth.year + years, 3, 1)


def validate_birthdate(raw: object, today: datetime.date) -> datetime.date:
    """An ISO `YYYY-MM-DD` date, real, not in the future, and at least 18 years ago.

    Someone born on Feb 29 turns 18 on Mar 1 of a non-leap year. Dates more than
    150 years back are refused as impossible (`invalid_birthdate`).
    """
    if not isinstance(raw, str) or _ISO_DATE.fullmatch(raw) is None:
        raise DomainError(
            "invalid_birthdate", "birthdate must be a date like 1990-04-01", field="birthdate"
        )
    try:
        birth = datetime.date.fromisoformat(raw)
    except ValueError:
        raise DomainError(
            "invalid_birthdate", f"{raw} is not a real date", field="birthdate"
        ) from None
    if birth > today:
        raise DomainError("invalid_birthdate", "birthdate is in the future", field="birthdate")
    if _adult_on(birth, _MAX_AGE) <= today:
        raise DomainError(
            "invalid_birthdate", "birthdate is too far in the past", field="birthdate"
        )
    if _adult_on(birth, MIN_AGE) > today:
        raise DomainError("underage", "members must be 18 or older", field="birthdate")
    return birth


def _bounded_int(raw: object, default: int, low: int, high: int) -> int | None:
    if raw is None:
        return default
    if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
        return None
    return raw


def validate_invite_request(uses: object, expires_in_days: object) -> tuple[int, int]:
    """`(uses, days)` for a new invite: defaults 5 and 14; uses 1 to 100, days 1 to 365."""
    checked_uses = _bounded_int(uses, DEFAULT_INVITE_USES, 1, _MAX_INVITE_USES)
    if checked_uses is None:
        raise DomainError(
            "invalid_uses", f"uses must be a whole number from 1 to {_MAX_INVITE_USES}", "uses"
        )
    days = _bounded_int(expires_in_days, DEFAULT_INVITE_DAYS, 1, _MAX_INVITE_DAYS)
    if days is None:
        raise DomainError(
            "invalid_expiry",
            f"expires_in_days must be a whole number from 1 to {_MAX_INVITE_DAYS}",
            "expires_in_days",
        )
    return checked_uses, days


def validate_befriend(raw: object) -> bool:
    """Whether sign-ups through a new invite befriend its maker: true unless given false."""
    if raw is None:
        return True
    if not isinstance(raw, bool):
        raise DomainError("invalid_befriend", "befriend must be true or false", "befriend")
    return raw


def invite_befriends(record: dict[str, str]) -> str:
    """The member a sign-up through this invite befriends ("" for none): its maker,
    unless it was made with befriend false or is an admin invite from the CLI."""
    if record.get("admin") == "1" or record.get("befriend", "0") != "1":
        return ""
    return record.get("created_by", "")


def check_invite_usable(uses_left: int, expires_at: float, now: float) -> None:
    """Raise `invite_used_up` or `invite_expired` (field `invite`) if it cannot be used.

    An invite expires at `expires_at` exactly (epoch seconds).
    """
    if uses_left <= 0:
        raise DomainError("invite_used_up", "this invite has been used up", field="invite")
    if now >= expires_at:
        raise DomainError("invite_expired", "this invite has expired", field="invite")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    # surrogatepass: any str hashes, even one a JSON decoder let a lone surrogate into.
    secret = unicodedata.normalize("NFC", password).encode("utf-8", "surrogatepass")
    return hashlib.scrypt(
        secret, salt=salt, n=n, r=r, p=p, maxmem=128 * n * r * p + 2**20, dklen=dklen
    )


def hash_password(password: str, *, cost: int = 2**14) -> str:
    """A salted scrypt hash: `scrypt$<n>$<r>$<p>$<salt b64>$<hash b64>`.

    The password is NFC-normalised first, so the same typed text verifies whatever
    form a keyboard produced. `cost` (scrypt N) must be a power of two >= 2.
    """
    if cost < 2 or cost & (cost - 1) or cost > _MAX_COST:
        raise ValueError(f"scrypt cost must be a power of two from 2 to {_MAX_COST}")
    salt = secrets.token_bytes(_SALT_BYTES)
    digest = _scrypt(password, salt, cost, _SCRYPT_R, _SCRYPT_P, _HASH_BYTES)
    return f"scrypt${cost}${_SCRYPT_R}${_SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """True if `password` matches `stored`; False for any malformed `stored` value.

    The comparison is constant-time.
    """
    try:
        scheme, n_text, r_text, p_text, salt_text, hash_text = stored.split("$")
        if scheme != "scrypt" or not all(
            t.isascii() and t.isdigit() for t in (n_text, r_text, p_text)
        ):
            return False
        n, r, p = int(n_text), int(r_text), int(p_text)
        if n < 2 or n & (n - 1) or n > _MAX_COST or not 1 <= r <= _MAX_R or not 1 <= p <= _MAX_P:
            return False
        salt, expected = _unb64(salt_text), _unb64(hash_text)
        if not salt or not 16 <= len(expected) <= 64:
            return False
        actual = _scrypt(password, salt, n, r, p, len(expected))
    except (AttributeError, ValueError, binascii.Error, MemoryError):
        return False
    return hmac.compare_digest(actual, expected)


def validate_role_change(raw: object) -> str:
    """The role an admin may set over HTTP: `member` or `moderator`."""
    if not isinstance(raw, str) or raw not in _GRANTABLE_ROLES:
        raise DomainError("invalid_role", 'role must be "member" or "moderator"', field="role")
    return raw
