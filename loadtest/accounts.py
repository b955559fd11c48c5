"""Echo Hub accounts for a run, created through invites over the HTTP API.

Password hashing is deliberately slow on the server (scrypt), so sign-ups run with
bounded concurrency and sockets share accounts (a member may have many sockets).
Handles carry a per-run prefix so runs on the same server never collide. An
``--accounts-file`` keeps the tokens for the next run on the same server.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import string
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import aiohttp

MAX_INVITE_USES = 100


@dataclass(frozen=True, slots=True)
class Account:
    handle: str
    token: str


class ApiError(Exception):
    def __init__(self, status: int, body: Any, what: str) -> None:
        code = body.get("error", {}).get("code") if isinstance(body, dict) else None
        super().__init__(f"{what}: HTTP {status} {code or body!r}")
        self.status = status
        self.code = code


def run_prefix() -> str:
    """``lt`` + 4 random base-36 characters: short enough to leave room in a handle."""
    alphabet = string.ascii_lowercase + string.digits
    return "lt" + "".join(secrets.choice(alphabet) for _ in range(4))


class Api:
    """A thin JSON client of the Echo Hub HTTP API (what the scenarios need of it)."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession) -> None:
        self.base = base_url.rstrip("/")
        self.session = session

    async def call(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: Any = None,
        retries: int = 5,
    ) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        for attempt in range(retries + 1):
            async with self.session.request(
                method, self.base + path, json=body, headers=headers
            ) as resp:
                data = await resp.json(content_type=None) if resp.content_length != 0 else None
                if resp.status == 429 and attempt < retries:
                    await asyncio.sleep(min(5.0, float(resp.headers.get("Retry-After", "1"))))
                    continue
                if resp.status == 503 and attempt < retries:
                    await asyncio.sleep(0.5)
                    continue
                if resp.status >= 400:
                    raise ApiError(resp.status, data, f"{method} {path}")
                return data
        raise AssertionError("unreachable")

    async def signup(self, invite: str, handle: str) -> Account:
        body = {
            "invite": invite,
            "handle": handle,
            "password": secrets.token_urlsafe(12),
            "display_name": handle,
            "birthdate": "1990-01-01",
        }
        data = await self.call("POST", "/api/signup", body=body)
        return Account(handle, data["token"])

    async def create_invite(
        self, token: str, uses: int = MAX_INVITE_USES, *, befriend: bool | None = None
    ) -> str:
        body: dict[str, Any] = {"uses": uses, "expires_in_days": 1}
        if befriend is not None:
            body["befriend"] = befriend  # invites make friends unless told not to
        data = await self.call("POST", "/api/invites", token=token, body=body)
        return str(data["code"])

    async def follow(self, token: str, handle: str) -> None:
        await self.call("POST", f"/api/users/{handle}/follow", token=token)

    async def visit(self, token: str, handle: str) -> Any:
        return await self.call("GET", f"/api/users/{handle}", token=token, retries=0)

    async def post(self, token: str, text: str) -> Any:
        return await self.call("POST", "/api/echoes", token=token, body={"text": text}, retries=0)


async def create_accounts(
    api: Api,
    inviter_token: str,
    handles: list[str],
    *,
    concurrency: int = 8,
    progress: Any = None,
    befriend: bool | None = None,
) -> list[Account]:
    """Sign up ``handles`` with invites made by ``inviter_token`` (100 uses per invite)."""
    invites: list[str] = []
    for _ in range((len(handles) + MAX_INVITE_USES - 1) // MAX_INVITE_USES):
        invites.append(await api.create_invite(inviter_token, befriend=befriend))
    sem = asyncio.Semaphore(concurrency)
    done = 0

    async def one(i: int, handle: str) -> Account:
        nonlocal done
        async with sem:
            acc = await api.signup(invites[i // MAX_INVITE_USES], handle)
        done += 1
        if progress is not None and (done % 25 == 0 or done == len(handles)):
            progress(f"accounts: {done}/{len(handles)} signed up")
        return acc

    return list(await asyncio.gather(*(one(i, h) for i, h in enumerate(handles))))


async def inviter_token(
    api: Api,
    *,
    token: str | None,
    invite: str | None,
    prefix: str,
    data_dir: str | None = None,
    redis_url: str | None = None,
    log: Callable[[str], None] | None = None,
) -> str:
    """A token that may create invites.

    The given ``token``; else a new account signed up with ``invite``; else (or when that
    invite is used up) with a fresh admin invite from ``echohub invite --admin`` run on
    ``data_dir``/``redis_url``.
    """
    if token:
        return token
    if invite:
        try:
            return (await api.signup(invite, f"{prefix}adm")).token
        except ApiError as exc:
            if exc.status != 400 or not (data_dir or redis_url):
                raise
    if not (data_dir or redis_url):
        raise ValueError("need --token, --invite, or --data-dir/--redis-url to make an invite")
    if log is not None:
        log("accounts: asking `echohub invite --admin` for an invite")
    from loadtest.peer import echohub_admin_invite

    fresh = await asyncio.to_thread(
        echohub_admin_invite,
        data_dir=Path(data_dir) if data_dir else None,
        redis_url=redis_url,
    )
    return (await api.signup(fresh, f"{prefix}adm")).token


def load_accounts_file(path: Path, url: str) -> dict[str, list[Account]]:
    """Saved accounts by role (``subscribers``, ``posters``, ``inviter``) for ``url``."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if data.get("url") != url:
        return {}
    return {role: [Account(**a) for a in accs] for role, accs in data.get("roles", {}).items()}


def save_accounts_file(path: Path, url: str, roles: dict[str, list[Account]]) -> None:
    data = {"url": url, "roles": {r: [asdict(a) for a in accs] for r, accs in roles.items()}}
    path.write_text(json.dumps(data, indent=1) + "\n")
    path.chmod(0o600)  # tokens are credentials of the test accounts
