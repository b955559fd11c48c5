"""Profile rules: what a member may change about how they present themselves.

Owns the shape of `PATCH /api/me` (display name, bio, avatar) and of a password change,
and how a bio becomes segments (mentions and links, the same wire shape as a post's:
`{"text"}`, `{"mention": handle, "text"}`, `{"link": url, "text"}`, `{"tag"...}`,
made by server.domain.segments, the posts' own parser). Does no I/O: which
mentioned handles exist is asked by the caller and passed in.

Why a bio is one paragraph: it is shown on one line beside a name in lists and on the
profile header; line breaks would let one member's bio push a page around.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from server.domain.accounts import require_object, validate_display_name, validate_password
from server.domain.echo import clean_text
from server.domain.effects import Text
from server.domain.errors import DomainError
from server.domain.segments import annotate, mentioned_handles

__all__ = [
    "MAX_BIO",
    "Bio",
    "PasswordChange",
    "ProfilePatch",
    "bio_segments",
    "mention_candidates",
    "validate_bio",
    "validate_password_change",
    "validate_profile_patch",
]

MAX_BIO = 160
_FIELDS = frozenset({"display_name", "bio", "avatar"})
_MEDIA_ID = re.compile(r"[0-9a-f]{20}")


@dataclass(frozen=True, slots=True)
class Bio:
    """A validated bio: the text as kept (NFC, stripped; may be empty)."""

    text: str


@dataclass(frozen=True, slots=True)
class ProfilePatch:
    """What a `PATCH /api/me` asks to change; None means "leave as is".

    `avatar` is a media id (the media feature checks it is the member's own image),
    or "" to go back to the initial-letter avatar.
    """

    display_name: str | None = None
    bio: Bio | None = None
    avatar: str | None = None


@dataclass(frozen=True, slots=True)
class PasswordChange:
    old: str
    new: str


def validate_bio(raw: object) -> Bio:
    """At most 160 characters (grapheme clusters), one paragraph, no control characters;
    "" (or only spaces) clears it. Every refusal is `invalid_bio` with field `bio`."""
    text = clean_text(raw, field="bio", code="invalid_bio", label="bio", max_graphemes=MAX_BIO,
                      min_graphemes=0)  # fmt: skip
    return Bio(text)


def validate_profile_patch(body: object) -> ProfilePatch:
    """The changes of a `PATCH /api/me` body: at least one of display_name, bio, avatar,
    and nothing else (an unknown field is refused rather than silently ignored, so a
    typo never looks like a saved change)."""
    data = require_object(body)
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise DomainError("unknown_field", f"{unknown[0]!r} cannot be changed here",
                          field=unknown[0][:50])  # fmt: skip
    if not data:
        raise DomainError("nothing_to_change", "give display_name, bio or avatar")
    name = None
    if "display_name" in data:
        if data["display_name"] is None:
            raise DomainError("invalid_display_name", "display name is required",
                              field="display_name")  # fmt: skip
        name = validate_display_name(data["display_name"], "")
    bio = None
    if "bio" in data:
        bio = validate_bio("" if data["bio"] is None else data["bio"])
    avatar = None
    if "avatar" in data:
        raw = data["avatar"]
        if raw is None or raw == "":
            avatar = ""
        elif isinstance(raw, str) and _MEDIA_ID.fullmatch(raw):
            avatar = raw
        else:
            raise DomainError("invalid_avatar", "avatar must be the id of an image you "
                              "uploaded, or null", field="avatar")  # fmt: skip
    return ProfilePatch(name, bio, avatar)


def validate_password_change(body: object) -> PasswordChange:
    """`{old, new}`: old is any string (checked against the stored hash by the caller),
    new follows the password rule and differs from old."""
    data = require_object(body)
    old = data.get("old")
    if not isinstance(old, str) or not old:
        raise DomainError("invalid_password", "the current password is required", field="old")
    if len(old) > 1024:
        raise DomainError("wrong_password", "the current password is not right", field="old")
    try:
        new = validate_password(data.get("new"))
    except DomainError as err:
        raise DomainError(err.code, err.message, field="new") from None
    if new == old:
        raise DomainError("password_unchanged", "the new password is the same as the current "
                          "one", field="new")  # fmt: skip
    return PasswordChange(old, new)


def mention_candidates(text: str) -> frozenset[str]:
    """The lowercased handles `text` may mention (whether they exist is the caller's
    question)."""
    return frozenset(mentioned_handles(text))


def bio_segments(text: str, members: frozenset[str]) -> list[dict[str, object]]:
    """`text` as wire segments, exactly as a post's text would be
    (server.domain.segments): links, tags, mentions of the handles in `members`
    (lowercase), and plain text between."""
    return annotate([Text(text)], members).segments
