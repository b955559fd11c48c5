"""Moderation rules: reports, who may act on whom, and the `mod` topic's filter.

Owns SPEC "Moderation" minus storage: what a report must say, the reason a moderator
gives, which roles may suspend which, and whether an event on the `mod` stream matches
a moderator's filter (community, member, keyword). No I/O.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from server.domain.accounts import normalize_handle, require_object
from server.domain.echo import clean_text
from server.domain.errors import DomainError, Forbidden

__all__ = [
    "MAX_KEYWORD",
    "MAX_REASON",
    "REPORT_STATUSES",
    "ModFilter",
    "ReportRequest",
    "check_may_suspend",
    "event_filter",
    "parse_mod_filter",
    "validate_reason",
    "validate_report",
    "validate_report_status",
]

MAX_REASON = 500
MAX_KEYWORD = 100
_MAX_COMMUNITY_ID = 100
REPORT_STATUSES = ("open", "resolved", "all")
# Who outranks whom: a moderator acts on members, an admin on members and moderators,
# and nobody on an admin (admins are made and unmade with the CLI).
_RANK = {"member": 0, "moderator": 1, "admin": 2}


@dataclass(frozen=True, slots=True)
class ReportRequest:
    """A member's report: exactly one of a post (`echo` id) or a member (`user` handle)."""

    echo: str | None
    user: str | None
    reason: str


def validate_reason(raw: object, *, required: bool) -> str:
    """A report's or a moderator's reason: one line of at most 500 characters."""
    if raw is None and not required:
        return ""
    return clean_text(raw, field="reason", code="invalid_reason", label="reason",
                      max_graphemes=MAX_REASON, min_graphemes=1 if required else 0)  # fmt: skip


def validate_report(body: object) -> ReportRequest:
    """`{"echo": id, "reason"}` or `{"user": handle, "reason"}`; the reason is required."""
    data = require_object(body)
    echo, user = data.get("echo"), data.get("user")
    if (echo is None) == (user is None):
        raise DomainError("invalid_report", 'a report names either an "echo" or a "user"',
                          field="echo" if echo is not None else None)  # fmt: skip
    if echo is not None and (not isinstance(echo, str) or not 1 <= len(echo) <= 64):
        raise DomainError("invalid_report", "echo must be an echo id", field="echo")
    handle = None
    if user is not None:
        try:
            handle = normalize_handle(user)
        except DomainError as err:
            raise DomainError(err.code, err.message, field="user") from None
    return ReportRequest(echo, handle, validate_reason(data.get("reason"), required=True))


def validate_report_status(raw: str | None) -> str:
    """The `status` query of the reports list: open (default), resolved or all."""
    if raw is None or raw == "":
        return "open"
    if raw not in REPORT_STATUSES:
        raise DomainError("invalid_status", 'status must be "open", "resolved" or "all"',
                          field="status")  # fmt: skip
    return raw


def check_may_suspend(
    actor_id: str, actor_role: str, target_id: str, target_role: str, verb: str = "suspend"
) -> None:
    """Moderators suspend (and unsuspend) members; admins members and moderators;
    nobody themselves or an admin."""
    if actor_id == target_id:
        raise Forbidden("forbidden", f"you cannot {verb} yourself")
    if _RANK.get(actor_role, 0) < 1:
        raise Forbidden("forbidden", f"only moderators may {verb} members")
    if _RANK.get(target_role, 0) >= _RANK.get(actor_role, 0):
        raise Forbidden("forbidden", f"a {actor_role} cannot {verb} a {target_role}")


@dataclass(frozen=True, slots=True)
class ModFilter:
    """What a moderator narrows the `mod` stream to; every field given must match.

    `member` matches an event that involves that handle in any role (author, reporter,
    reported member, acting moderator); `keyword` matches, case-insensitively, in the
    text the event carries (a post's text, a report's or an action's reason, the
    reported post's text).
    """

    community: str | None = None
    member: str | None = None
    keyword: str | None = None

    def __call__(self, type_: str, data: Mapping[str, Any]) -> bool:
        if type_ == "post.deleted":
            # It carries only the post's id: every page that shows the post must hear
            # of it, and a page that does not show it ignores an unknown id.
            return True
        if not isinstance(data, Mapping):
            return False
        if self.community is not None and self.community not in set(_communities(data)):
            return False
        if self.member is not None and self.member not in set(_handles(data)):
            return False
        if self.keyword is not None:
            return any(self.keyword in text.casefold() for text in _texts(data))
        return True


def parse_mod_filter(raw: object) -> ModFilter | None:
    """The `filter` object of a `sub` to `mod`, or None for everything."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise DomainError("bad_filter", "filter must be an object", field="filter")
    data = raw
    unknown = sorted(set(data) - {"community", "member", "keyword"})
    if unknown:
        raise DomainError("bad_filter", f"unknown filter field {unknown[0][:40]!r}; use "
                          "community, member or keyword", field="filter")  # fmt: skip
    community = data.get("community")
    if community is not None and (
        not isinstance(community, str) or not 1 <= len(community) <= _MAX_COMMUNITY_ID
    ):
        raise DomainError("bad_filter", "community must be a community id", field="filter")
    member = None
    if data.get("member") is not None:
        try:
            member = normalize_handle(data["member"])
        except DomainError:
            raise DomainError("bad_filter", "member must be a handle", field="filter") from None
    keyword = None
    if data.get("keyword") is not None:
        raw_keyword = data["keyword"]
        if not isinstance(raw_keyword, str) or not raw_keyword.strip():
            raise DomainError("bad_filter", "keyword must be a non-empty string", field="filter")
        if len(raw_keyword) > MAX_KEYWORD:
            raise DomainError("bad_filter", f"keyword is longer than {MAX_KEYWORD} characters",
                              field="filter")  # fmt: skip
        keyword = unicodedata.normalize("NFC", raw_keyword.strip()).casefold()
    if community is None and member is None and keyword is None:
        return None
    return ModFilter(community, member, keyword)


def event_filter(flt: ModFilter | None) -> Callable[[Any], bool] | None:
    """The hub's per-subscription check (it sees an event with `type` and `data`)."""
    if flt is None:
        return None
    return lambda event: flt(event.type, event.data)


# --- what an event on the mod stream is about ------------------------------------------
# Posts (post.created, post.deleted), reports (report.created) and actions (mod.action)
# nest the same shapes: a post has `author` and `text`; a report has `reporter`, `user`
# and `echo`; an action has `actor`, `user` and `echo`.


def _nested(data: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield data
    echo = data.get("echo")
    if isinstance(echo, Mapping):
        yield echo


def _communities(data: Mapping[str, Any]) -> Iterator[str]:
    for part in _nested(data):
        community = part.get("community")
        if isinstance(community, str):
            yield community


def _handles(data: Mapping[str, Any]) -> Iterator[str]:
    for part in _nested(data):
        for role in ("author", "reporter", "user", "actor"):
            who = part.get(role)
            if isinstance(who, Mapping) and isinstance(who.get("handle"), str):
                yield who["handle"]


def _texts(data: Mapping[str, Any]) -> Iterator[str]:
    for part in _nested(data):
        for key in ("text", "reason"):
            text = part.get(key)
            if isinstance(text, str):
                yield text
