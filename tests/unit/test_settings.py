from __future__ import annotations

import pytest

from server.settings import DEFAULT_RATE_LIMITS, RateLimit, SettingsError, parse_rate_limits
from server.settings import settings_from_env as from_env


def test_rate_limits_default_and_off() -> None:
    assert parse_rate_limits(None) == DEFAULT_RATE_LIMITS
    assert parse_rate_limits("off") == {}
    assert DEFAULT_RATE_LIMITS["posts"] == RateLimit(10, 60, 5)


def test_rate_limits_override_one() -> None:
    limits = parse_rate_limits("posts=3/10:2")
    assert limits["posts"] == RateLimit(3, 10, 2)
    assert limits["invites"] == DEFAULT_RATE_LIMITS["invites"]


@pytest.mark.parametrize("raw", ["posts=abc", "posts=1/0:1", "nope=1/1:1", "posts=1/1:0"])
def test_rate_limits_bad(raw: str) -> None:
    with pytest.raises(SettingsError):
        parse_rate_limits(raw)


def test_env_and_flags() -> None:
    env = {"PORT": "9000", "HOST": "0.0.0.0", "ECHOHUB_WORKERS": "3",
           "ECHOHUB_ALLOWED_ORIGINS": "https://a.example, https://b.example/"}  # fmt: skip
    s = from_env(env)
    assert (s.port, s.host, s.workers) == (9000, "0.0.0.0", 3)
    assert s.allowed_origins == ("https://a.example", "https://b.example")
    assert from_env(env, port=1234).port == 1234


@pytest.mark.parametrize("env", [{"PORT": "x"}, {"PORT": "70000"}, {"ECHOHUB_WORKERS": "0"}])
def test_env_errors(env: dict[str, str]) -> None:
    with pytest.raises(SettingsError):
        from_env(env)
