"""Reports, moderators' actions and the audit log; the `mod` topic's filter.

Every report and every action goes live on the `mod` topic (`report.created`,
`mod.action`), next to the posts the echo service already publishes there. Every
action (removing a post, suspending or unsuspending a member, resolving a report) is
kept in the audit log with who, what, when and why.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from server.domain import moderation as rules
from server.domain.accounts import require_object
from server.domain.errors import Conflict, DomainError, Forbidden, NotFound
from server.protocol import CloseCode
from server.services.accounts import AccountService
from server.services.common import Clock, User, iso, new_id
from server.services.echoes import EchoService, check_cursor
from server.services.publish import Publisher
from server.services.topics import Resolution
from server.store.moderation import ModerationStore

REPORT_ID = re.compile(r"[0-9a-f]{20}")
# Closes a member's sockets on every process with a close code and reason.
UserCloser = Callable[[str, int, str], Awaitable[None]]


def require_moderator(user: User) -> None:
    if not user.is_moderator:
        raise Forbidden("forbidden", "only moderators may do this")


def _page(items: list[dict[str, Any]], limit: int) -> dict[str, Any]:
    """A page from `limit + 1` items: the extra one only says there is a next page."""
    page = items[:limit]
    return {"items": page, "next": page[-1]["id"] if len(items) > limit else None}


class AuditLog:
    """Moderation actions as audit log entries, and their showing on the `mod` topic:
    built before the echo service, which logs a moderator's removal of a post."""

    def __init__(self, publisher: Publisher, clock: Clock) -> None:
        self.publisher = publisher
        self.clock = clock

    def action(
        self, moderator: User, action: str, reason: str, *,
        echo: dict[str, Any] | None = None, user: dict[str, Any] | None = None,
        report: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """An audit log entry: who, what, when, why."""
        return {"id": new_id(), "actor": moderator.brief(), "action": action,
                "reason": reason, "at": iso(self.clock()), "echo": echo, "user": user,
                "report": report}  # fmt: skip

    def removal(self, moderator: User, rec: dict[str, str], reason: str) -> dict[str, Any]:
        """The audit entry of a post a moderator removes (through either endpoint); the
        echo store writes it with the deletion."""
        author = {"handle": rec["author_handle"], "display_name": rec["author_name"]}
        return self.action(moderator, "remove_echo", reason, echo=EchoService.wire(rec),
                           user=author)  # fmt: skip

    async def announce(self, action: dict[str, Any]) -> None:
        await self.publisher.publish("mod.action", action, [("mod", None)])


class ModerationService:
    def __init__(
        self, accounts: AccountService, echoes: EchoService, log: AuditLog,
        store: ModerationStore, publisher: Publisher, clock: Clock, close_user: UserCloser,
    ) -> None:  # fmt: skip
        self.accounts = accounts
        self.echoes = echoes
        self.log = log
        self.store = store
        self.publisher = publisher
        self.clock = clock
        self.close_user = close_user

    # --- reports -----------------------------------------------------------------------

    async def report(self, reporter: User, body: object, limit: Any = None) -> dict[str, Any]:
        """A member reports a post they can see, or another member; `limit` takes from
        the `reports` limit once the report is valid."""
        request = rules.validate_report(body)
        echo = user = None
        if request.echo is not None:
            rec = await self.echoes.visible_post(reporter, request.echo, field="echo")
            if rec["author"] == reporter.id:
                raise DomainError("cannot_report_self", "you cannot report your own echo",
                                  field="echo")  # fmt: skip
            echo, about = EchoService.wire(rec), f"echo:{rec['id']}"
        else:
            assert request.user is not None
            target = await self.accounts.user_by_handle(request.user)
            if target.id == reporter.id:
                raise DomainError("cannot_report_self", "you cannot report yourself",
                                  field="user")  # fmt: skip
            user, about = target.brief(), f"user:{target.id}"
        if limit is not None:
            await limit("reports", reporter.id)
        report = {
            "id": new_id(), "reporter": reporter.brief(), "reason": request.reason,
            "created_at": iso(self.clock()), "status": "open", "echo": echo, "user": user,
            "resolved_by": None, "resolved_at": None, "resolution": None,
        }  # fmt: skip
        stored = await self.store.add_report(report, reporter.id, about)
        if stored != report["id"]:
            raise Conflict("already_reported", "you have already reported this; a moderator "
                           "will look at it", field="echo" if echo else "user")  # fmt: skip
        await self.publisher.publish("report.created", report, [("mod", None)])
        if user is not None:
            # The reporter may be blocked by the member: their name is not theirs to see.
            return {**report, "user": {"handle": user["handle"]}}
        return report

    async def reports(
        self, moderator: User, status: str | None, before: str | None, limit: int
    ) -> dict[str, Any]:
        require_moderator(moderator)
        wanted = rules.validate_report_status(status)
        return _page(await self.store.reports(wanted, check_cursor(before), limit + 1), limit)

    async def resolve(self, moderator: User, report_id: str, body: object) -> dict[str, Any]:
        require_moderator(moderator)
        reason = self._reason(body)
        report = await self.store.report(report_id) if REPORT_ID.fullmatch(report_id) else None
        if report is None:
            raise NotFound("report_not_found", "no such report")
        if report["status"] != "open":
            raise Conflict("already_resolved", "this report is already resolved")
        now = iso(self.clock())
        report.update(status="resolved", resolved_by=moderator.brief(), resolved_at=now,
                      resolution=reason)  # fmt: skip
        action = self.log.action(moderator, "resolve_report", reason, echo=report["echo"],
                              user=report["user"], report=report["id"])  # fmt: skip
        if not await self.store.resolve(report, action):
            raise Conflict("already_resolved", "this report is already resolved")
        await self.log.announce(action)
        return report

    # --- actions -----------------------------------------------------------------------

    async def remove_echo(self, moderator: User, post_id: str, body: object) -> dict[str, Any]:
        """Remove a post: it disappears from every open page (post.deleted)."""
        require_moderator(moderator)
        reason = self._reason(body)
        result = await self.echoes.delete(moderator, post_id, reason=reason, audit=True)
        action: dict[str, Any] = result["action"]  # an audited deletion always has one
        return action

    async def suspend(self, moderator: User, handle: str, body: object) -> dict[str, Any]:
        """Suspend a member: their sessions end and their sockets close with 4003."""
        require_moderator(moderator)
        reason = self._reason(body)
        target = await self.accounts.user_by_handle(handle)
        rules.check_may_suspend(moderator.id, moderator.role, target.id, target.role)
        action = self.log.action(moderator, "suspend", reason, user=target.brief())
        changed = await self.store.set_suspended(target.id, True, action)
        # Also when it was suspended already: a suspension that failed half-way (the
        # engine went away) is completed by trying again.
        await self.accounts.end_all_sessions(target.id)
        await self.close_user(target.id, int(CloseCode.SUSPENDED), "suspended")
        if not changed:
            raise Conflict("already_suspended", f"@{target.handle} is already suspended")
        await self.log.announce(action)
        return {"user": {**target.to_wire(), "suspended": True}, "action": action}

    async def unsuspend(self, moderator: User, handle: str, body: object) -> dict[str, Any]:
        require_moderator(moderator)
        reason = self._reason(body)
        target = await self.accounts.user_by_handle(handle)
        rules.check_may_suspend(moderator.id, moderator.role, target.id, target.role,
                                verb="unsuspend")  # fmt: skip
        action = self.log.action(moderator, "unsuspend", reason, user=target.brief())
        if not await self.store.set_suspended(target.id, False, action):
            raise Conflict("not_suspended", f"@{target.handle} is not suspended")
        await self.log.announce(action)
        return {"user": {**target.to_wire(), "suspended": False}, "action": action}

    async def audit(self, moderator: User, before: str | None, limit: int) -> dict[str, Any]:
        require_moderator(moderator)
        return _page(await self.store.actions(check_cursor(before), limit + 1), limit)

    @staticmethod
    def _reason(body: object) -> str:
        return rules.validate_reason(require_object(body).get("reason"), required=False)

    # --- the mod topic -----------------------------------------------------------------

    async def resolve_mod(self, user: User, _topic: str, flt: dict[str, Any] | None) -> Resolution:
        # The role as it is now, not as it was when the socket opened: a moderator
        # demoted since must not subscribe again on a socket opened before.
        record = await self.accounts.record(user.id) if user.is_moderator else None
        if record is None or not User.from_record(record).is_moderator:
            raise Forbidden("forbidden", "the mod topic is for moderators")
        return ["mod"], rules.event_filter(rules.parse_mod_filter(flt))
