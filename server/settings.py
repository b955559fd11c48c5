"""Settings: one frozen value built from flags and the environment, nothing global."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A token bucket: `count` tokens per `seconds`, holding at most `burst`."""

    count: int
    seconds: float
    burst: int

    @property
    def per_second(self) -> float:
        return self.count / self.seconds


DEFAULT_RATE_LIMITS: Mapping[str, RateLimit] = {
    "posts": RateLimit(10, 60, 5),
    "invites": RateLimit(10, 3600, 5),
    "reports": RateLimit(20, 3600, 10),
    "socket": RateLimit(20, 1, 40),
    # Every password change attempt: guessing the current password stays slow.
    "passwords": RateLimit(5, 900, 5),
    # Search as you type (the page waits for a pause in typing before asking).
    "searches": RateLimit(60, 60, 30),
    # A post takes up to four: twenty at once, sixty an hour.
    "uploads": RateLimit(60, 3600, 20),
}


class SettingsError(ValueError):
    pass


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class LoginLimit:
    """Exponential backoff on login attempts (see domain.accounts.login_backoff).

    Every attempt is counted when it starts (so a flood of simultaneous guesses is
    bounded too); a successful login gives its count back. Past `free` counted
    attempts, the next waits `base * 2**(n - free)` seconds, at most `cap`.
    """

    free_per_handle: int = 5
    free_per_address: int = 20
    base: float = 1.0
    cap: float = 900.0
    # Seconds of quiet after which a handle's or an address's count is forgotten.
    forget_handle: int = 24 * 3600
    forget_address: int = 3600


def parse_networks(name: str, raw: str | None) -> tuple[Network, ...]:
    """`127.0.0.1, 10.0.0.0/8, ::1` → networks (a bare address is a /32 or /128)."""
    networks = []
    for part in (raw or "").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError as exc:
            raise SettingsError(f"{name}: {part!r} is not an address or network") from exc
    return tuple(networks)


def address_in(address: str | None, networks: tuple[Network, ...]) -> bool:
    if not address or not networks:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    return any(ip in net for net in networks)


def parse_rate_limits(raw: str | None) -> dict[str, RateLimit]:
    """`off` disables every limit; `posts=10/60:5,socket=20/1:40` overrides named ones."""
    if raw is None or raw.strip() == "":
        return dict(DEFAULT_RATE_LIMITS)
    if raw.strip().lower() in ("off", "0", "false", "none"):
        return {}
    limits = dict(DEFAULT_RATE_LIMITS)
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            name, spec = part.split("=", 1)
            rate, _, burst = spec.partition(":")
            count, seconds = rate.split("/", 1)
            limit = RateLimit(int(count), float(seconds), int(burst) if burst else int(count))
        except ValueError as exc:
            raise SettingsError(
                f"ECHOHUB_RATE_LIMITS: cannot read {part!r}; expected name=count/seconds:burst"
            ) from exc
        name = name.strip()
        if name not in DEFAULT_RATE_LIMITS:
            known = ", ".join(DEFAULT_RATE_LIMITS)
            raise SettingsError(f"ECHOHUB_RATE_LIMITS: unknown limit {name!r} (known: {known})")
        if limit.count <= 0 or limit.seconds <= 0 or limit.burst <= 0:
            raise SettingsError(f"ECHOHUB_RATE_LIMITS: {part!r} must be positive")
        limits[name] = limit
    return limits


def parse_restart_limit(raw: str) -> tuple[int, float]:
    """`count/seconds`, e.g. `5/60`: more exits than `count` within `seconds` is a crash
    loop."""
    try:
        count, seconds = raw.split("/", 1)
        limit = int(count), float(seconds)
    except ValueError as exc:
        raise SettingsError(
            f"ECHOHUB_RESTART_LIMIT: cannot read {raw!r}; expected count/seconds"
        ) from exc
    if limit[0] < 0 or limit[1] <= 0:
        raise SettingsError(f"ECHOHUB_RESTART_LIMIT: {raw!r} must not be negative")
    return limit


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: str = "./var"
    redis_url: str | None = None
    workers: int = 1
    allowed_origins: tuple[str, ...] = ()
    rate_limits: Mapping[str, RateLimit] = field(default_factory=lambda: dict(DEFAULT_RATE_LIMITS))
    # Events kept per topic for resume with `since`.
    history_size: int = 1000
    # scrypt work factor; tests and load tests may lower it, never below 2**10.
    password_cost: int = 2**14
    heartbeat: float = 20.0
    # Bytes that may wait for one socket before it is closed as too slow (4008).
    send_queue_limit: int = 4 * 1024 * 1024
    max_frame_size: int = 16 * 1024
    max_body_size: int = 64 * 1024
    session_ttl: int = 30 * 24 * 3600
    # Where links printed or returned point (invite URLs); None: derived from host/port.
    public_url: str | None = None
    web_dir: str | None = None
    # Seconds between checks for events that have started (tests shorten it).
    scheduler_interval: float = 1.0
    # A worker or the embedded engine exiting more than this many times within this many
    # seconds is a crash loop: `echohub serve` then stops with status 1.
    restart_limit: tuple[int, float] = (5, 60.0)
    # Media decoding: worker processes (0: half the cores, at least one), the address
    # space each may use, and the seconds one upload may take.
    media_workers: int = 0
    media_memory_limit: int = 1536 * 1024 * 1024
    media_job_seconds: float = 30.0
    # Seconds between sweeps of unattached and dropped media.
    media_sweep_interval: float = 60.0
    # Proxies whose X-Forwarded-Proto / X-Forwarded-For are believed (nobody's by default).
    trusted_proxies: tuple[Network, ...] = ()
    # Who may read /metrics: None = anyone who reaches the port; () = nobody.
    metrics_allow: tuple[Network, ...] | None = None
    # Seconds a request body may take to arrive in full (then 408 and the connection closes).
    body_timeout: float = 10.0
    # Login backoff; None turns it off (ECHOHUB_RATE_LIMITS=off does).
    login_limit: LoginLimit | None = field(default_factory=LoginLimit)
    # Password hashes computed at once, and how many more may wait before a login or
    # sign-up is refused with 503 (so a guessing flood cannot take every core).
    hash_workers: int = 1
    hash_queue: int = 16
    # The X-Echohub-Worker response header (the worker's pid), for tests and debugging.
    worker_header: bool = False

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise SettingsError(f"{name} must be an integer, not {raw!r}") from exc


def settings_from_env(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build settings from the environment; explicit (non-None) overrides win (CLI flags)."""
    env = os.environ if env is None else env
    origins = tuple(
        o.strip().rstrip("/")
        for o in env.get("ECHOHUB_ALLOWED_ORIGINS", "").split(",")
        if o.strip()
    )
    values: dict[str, Any] = {
        "host": env.get("HOST") or "127.0.0.1",
        "port": _int(env, "PORT", 8080),
        "data_dir": env.get("ECHOHUB_DATA_DIR") or "./var",
        "redis_url": env.get("REDIS_URL") or None,
        "workers": _int(env, "ECHOHUB_WORKERS", 1),
        "allowed_origins": origins,
        "rate_limits": parse_rate_limits(env.get("ECHOHUB_RATE_LIMITS")),
        "history_size": _int(env, "ECHOHUB_HISTORY_SIZE", 1000),
        "password_cost": _int(env, "ECHOHUB_PASSWORD_COST", 2**14),
        "public_url": env.get("ECHOHUB_PUBLIC_URL") or None,
        "trusted_proxies": parse_networks(
            "ECHOHUB_TRUSTED_PROXIES", env.get("ECHOHUB_TRUSTED_PROXIES")
        ),
        "worker_header": env.get("ECHOHUB_WORKER_HEADER", "").lower() in ("1", "true", "yes"),
    }
    metrics = env.get("ECHOHUB_METRICS_ALLOW")
    if metrics is not None and metrics.strip():
        off = metrics.strip().lower() in ("off", "none")
        values["metrics_allow"] = () if off else parse_networks("ECHOHUB_METRICS_ALLOW", metrics)
    if not values["rate_limits"] and env.get("ECHOHUB_RATE_LIMITS") is not None:
        values["login_limit"] = None
    if env.get("ECHOHUB_BODY_TIMEOUT"):
        try:
            values["body_timeout"] = float(env["ECHOHUB_BODY_TIMEOUT"])
        except ValueError as exc:
            raise SettingsError("ECHOHUB_BODY_TIMEOUT must be a number of seconds") from exc
    if env.get("ECHOHUB_HASH_WORKERS"):
        values["hash_workers"] = _int(env, "ECHOHUB_HASH_WORKERS", 1)
    if env.get("ECHOHUB_HEARTBEAT"):
        values["heartbeat"] = float(env["ECHOHUB_HEARTBEAT"])
    if env.get("ECHOHUB_SEND_QUEUE_LIMIT"):
        values["send_queue_limit"] = _int(env, "ECHOHUB_SEND_QUEUE_LIMIT", 4 * 1024 * 1024)
    if env.get("ECHOHUB_SCHEDULER_INTERVAL"):
        try:
            values["scheduler_interval"] = float(env["ECHOHUB_SCHEDULER_INTERVAL"])
        except ValueError as exc:
            raise SettingsError("ECHOHUB_SCHEDULER_INTERVAL must be a number of seconds") from exc
    if env.get("ECHOHUB_RESTART_LIMIT"):
        values["restart_limit"] = parse_restart_limit(env["ECHOHUB_RESTART_LIMIT"])
    if env.get("ECHOHUB_MEDIA_WORKERS"):
        values["media_workers"] = _int(env, "ECHOHUB_MEDIA_WORKERS", 0)
    values.update({k: v for k, v in overrides.items() if v is not None})
    settings = Settings(**values)
    if not 0 <= settings.port <= 65535:
        raise SettingsError(f"port must be 0..65535, not {settings.port}")
    if settings.workers < 1:
        raise SettingsError("workers must be at least 1")
    if settings.password_cost < 2**10 or settings.password_cost & (settings.password_cost - 1):
        raise SettingsError("ECHOHUB_PASSWORD_COST must be a power of two >= 1024")
    if not 0.01 <= settings.scheduler_interval <= 60:
        raise SettingsError("ECHOHUB_SCHEDULER_INTERVAL must be 0.01..60 seconds")
    if settings.media_workers < 0:
        raise SettingsError("ECHOHUB_MEDIA_WORKERS must be 0 (automatic) or more")
    if not 0.1 <= settings.body_timeout <= 600:
        raise SettingsError("ECHOHUB_BODY_TIMEOUT must be 0.1..600 seconds")
    if not 1 <= settings.hash_workers <= 64:
        raise SettingsError("ECHOHUB_HASH_WORKERS must be 1..64")
    if settings.history_size < 10:
        raise SettingsError("ECHOHUB_HISTORY_SIZE must be at least 10")
    return settings
