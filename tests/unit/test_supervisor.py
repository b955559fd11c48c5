"""The restart policy: backoff that doubles, and a crash loop after `limit` exits."""

from __future__ import annotations

import pytest

from server.settings import SettingsError, parse_restart_limit, settings_from_env
from server.supervisor import RestartPolicy


def test_delays_double_up_to_the_cap_then_the_crash_loop_gives_up() -> None:
    policy = RestartPolicy(limit=5, window=60, first_delay=0.25, max_delay=2.0)
    delays = [policy.on_exit(float(t)) for t in range(6)]
    assert delays == [0.25, 0.5, 1.0, 2.0, 2.0, None]


def test_exits_older_than_the_window_are_forgotten() -> None:
    policy = RestartPolicy(limit=2, window=10, first_delay=1.0)
    assert policy.on_exit(0.0) == 1.0
    assert policy.on_exit(5.0) == 2.0
    # The exit at 0 is out of the window at 10: two exits in it, not three.
    assert policy.on_exit(10.0) == 2.0
    assert policy.on_exit(11.0) is None


def test_a_limit_of_zero_never_restarts() -> None:
    assert RestartPolicy(limit=0).on_exit(0.0) is None


def test_restart_limit_setting() -> None:
    assert settings_from_env({}).restart_limit == (5, 60.0)
    assert settings_from_env({"ECHOHUB_RESTART_LIMIT": "3/30"}).restart_limit == (3, 30.0)
    assert parse_restart_limit("0/1") == (0, 1.0)
    for bad in ("3", "x/60", "3/0", "-1/60", "3/-5", "/"):
        with pytest.raises(SettingsError, match="ECHOHUB_RESTART_LIMIT"):
            parse_restart_limit(bad)
