"""Accounts over HTTP: sign-up, login, logout, me, invites, roles."""

from __future__ import annotations

from aiohttp import web

from server.domain.accounts import require_object
from server.handlers.common import (
    SESSION_COOKIE,
    TOKEN_KEY,
    current_user,
    json_response,
    read_json,
)
from server.handlers.security import CSRF_HEADER, csrf_token_for
from server.services.common import User
from server.services.container import FEATURES, SERVICES, Services

routes = web.RouteTableDef()


def _signed_in(request: web.Request, user: User, token: str, status: int) -> web.Response:
    response = json_response({"user": user.to_wire(), "token": token}, status=status)
    svc: Services = request.app[SERVICES]
    response.set_cookie(
        SESSION_COOKIE, token, httponly=True, samesite="Lax", path="/",
        max_age=svc.settings.session_ttl, secure=request.secure,
    )  # fmt: skip
    response.headers[CSRF_HEADER] = csrf_token_for(token)
    return response


@routes.post("/api/signup")
async def signup(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    user, token = await svc.accounts.signup(await read_json(request))
    return _signed_in(request, user, token, 201)


@routes.post("/api/login")
async def login(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    # The client's address (behind a trusted proxy, the one it forwarded) is counted
    # by the sign-in limits.
    user, token = await svc.accounts.login(await read_json(request), request.remote)
    return _signed_in(request, user, token, 200)


@routes.post("/api/logout")
async def logout(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    user = current_user(request)
    await svc.end_session(request[TOKEN_KEY], user)
    response = json_response({"ok": True})
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


@routes.get("/api/me")
async def me(request: web.Request) -> web.Response:
    user = current_user(request)
    me = user.to_wire()
    me["unread_notifications"] = await request.app[FEATURES].notifications.unread(user)
    # The page learns its CSRF token here after a reload (see handlers/security.py).
    return json_response(me, headers={CSRF_HEADER: csrf_token_for(request[TOKEN_KEY])})


@routes.post("/api/invites")
async def create_invite(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    user = current_user(request)
    body = require_object(await read_json(request))
    await svc.limit("invites", user.id)
    invite = await svc.accounts.create_invite(
        user,
        body.get("uses"),
        body.get("expires_in_days"),
        svc.base_url(request),
        befriend=body.get("befriend"),
    )
    return json_response(invite, status=201)


@routes.get("/api/invites")
async def my_invites(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    return json_response(await svc.accounts.invites(current_user(request), svc.base_url(request)))


@routes.delete("/api/invites/{code}")
async def revoke_invite(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    user = current_user(request)
    return json_response(await svc.accounts.revoke_invite(user, request.match_info["code"]))


@routes.put("/api/admin/users/{handle}/role")
async def set_role(request: web.Request) -> web.Response:
    svc = request.app[SERVICES]
    admin = current_user(request)
    user = await svc.accounts.set_role(
        admin, request.match_info["handle"], await read_json(request)
    )
    if not user.is_moderator:
        await svc.revoke_topic(user.id, "mod", "you are no longer a moderator")
    return json_response(user.to_wire())
