"""The pure rules of the browser surface: provenance, CSRF tokens, log redaction,
forwarded addresses, and the settings that drive them."""

from __future__ import annotations

import ipaddress

import pytest

from server.handlers.security import (
    Provenance,
    _forwarded_client,
    csrf_token_for,
    csrf_token_matches,
    provenance,
    redact_target,
)
from server.settings import Settings, SettingsError, address_in, parse_networks
from server.settings import settings_from_env as from_env

OWN = "http://127.0.0.1:8080"
APP, FOREIGN, UNKNOWN = Provenance.APP, Provenance.FOREIGN, Provenance.UNKNOWN


@pytest.mark.parametrize(
    ("origin", "fetch_site", "allowed", "expected"),
    [
        (OWN, None, (), APP), (OWN + "/", None, (), APP), ("HTTP://127.0.0.1:8080", None, (), APP),
        ("http://127.0.0.1:8081", None, (), FOREIGN), ("https://127.0.0.1:8080", None, (), FOREIGN),
        ("null", None, (), FOREIGN), ("", None, (), FOREIGN),
        # Origin names the page exactly; it wins over Sec-Fetch-Site either way.
        ("http://evil.example", "same-origin", (), FOREIGN), (OWN, "cross-site", (), APP),
        (None, "same-origin", (), APP), (None, "Same-Origin", (), APP),
        (None, "same-site", (), FOREIGN), (None, "cross-site", (), FOREIGN),
        (None, "none", (), FOREIGN), (None, None, (), UNKNOWN),
        # The allowed list replaces the own origin.
        ("https://app.example", None, ("https://app.example",), APP),
        (OWN, None, ("https://app.example",), FOREIGN),
    ],
)  # fmt: skip
def test_provenance(origin: str | None, fetch_site: str | None, allowed: tuple[str, ...],
                    expected: Provenance) -> None:  # fmt: skip
    assert provenance(origin, fetch_site, OWN, allowed) is expected


def test_csrf_token_is_a_stable_one_way_function_of_the_session() -> None:
    token = csrf_token_for("session-a")
    assert token == csrf_token_for("session-a") != csrf_token_for("session-b")
    assert "session-a" not in token and len(token) == 43
    assert csrf_token_matches("session-a", token)
    assert csrf_token_matches("session-a", f" {token} ")
    for wrong in (None, "", token[:-1], csrf_token_for("session-b"), "session-a"):
        assert not csrf_token_matches("session-a", wrong)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/join/AbC-123_x", "/join/[redacted]"),
        ("/api/invites/AbC-123", "/api/invites/[redacted]"),
        ("/api/invites", "/api/invites"),
        ("/ws?token=s3cret", "/ws?token=[redacted]"),
        ("/api/me?access_token=s3cret&limit=5", "/api/me?access_token=[redacted]&limit=5"),
        ("/api/feed/home?before=123&limit=25", "/api/feed/home?before=123&limit=25"),
        ("/api/x?TOKEN=a&Session=b&password=c", "/api/x?TOKEN=[redacted]&Session=[redacted]"
                                                "&password=[redacted]"),
        ("http://127.0.0.1:8080/join/secret?x=1", "http://127.0.0.1:8080/join/[redacted]?x=1"),
        ("/api/users/aki", "/api/users/aki"),
    ],
)  # fmt: skip
def test_secrets_never_reach_the_log(target: str, expected: str) -> None:
    assert redact_target(target) == expected
    for secret in ("s3cret", "AbC-123"):
        assert secret not in redact_target(target)


def test_the_client_behind_trusted_proxies_is_the_rightmost_untrusted_hop() -> None:
    settings = Settings(trusted_proxies=parse_networks("x", "10.0.0.0/8, 127.0.0.1"))
    assert _forwarded_client(["203.0.113.9"], settings) == "203.0.113.9"
    # A client may send its own X-Forwarded-For: only what our proxies appended counts.
    assert _forwarded_client(["1.2.3.4, 203.0.113.9, 10.0.0.2"], settings) == "203.0.113.9"
    assert _forwarded_client(["1.2.3.4", "203.0.113.9"], settings) == "203.0.113.9"
    assert _forwarded_client(["10.0.0.3, 10.0.0.2"], settings) == "10.0.0.3"
    assert _forwarded_client([], settings) is None


def test_networks_and_addresses() -> None:
    nets = parse_networks("X", " 127.0.0.1, 10.0.0.0/8 ,::1, 192.168.1.7/24")
    assert nets[0] == ipaddress.ip_network("127.0.0.1/32")
    assert address_in("10.2.3.4", nets) and address_in("::1", nets)
    assert address_in("192.168.1.200", nets)
    assert not address_in("11.0.0.1", nets) and not address_in(None, nets)
    assert not address_in("not an address", nets) and not address_in("127.0.0.1", ())
    with pytest.raises(SettingsError):
        parse_networks("X", "10.0.0.0/33")
    with pytest.raises(SettingsError):
        parse_networks("X", "example.com")


def test_surface_settings_from_the_environment() -> None:
    default = from_env({})
    assert default.trusted_proxies == () and default.metrics_allow is None
    assert default.login_limit is not None and not default.worker_header
    s = from_env({"ECHOHUB_TRUSTED_PROXIES": "10.0.0.1", "ECHOHUB_METRICS_ALLOW": "127.0.0.1",
                  "ECHOHUB_WORKER_HEADER": "1", "ECHOHUB_BODY_TIMEOUT": "2.5"})  # fmt: skip
    assert address_in("10.0.0.1", s.trusted_proxies) and s.metrics_allow is not None
    assert address_in("127.0.0.1", s.metrics_allow) and s.worker_header
    assert s.body_timeout == 2.5
    assert from_env({"ECHOHUB_METRICS_ALLOW": "off"}).metrics_allow == ()
    assert from_env({"ECHOHUB_RATE_LIMITS": "off"}).login_limit is None
    for bad in ({"ECHOHUB_BODY_TIMEOUT": "soon"}, {"ECHOHUB_BODY_TIMEOUT": "0"},
                {"ECHOHUB_TRUSTED_PROXIES": "proxy"}, {"ECHOHUB_METRICS_ALLOW": "x"}):  # fmt: skip
        with pytest.raises(SettingsError):
            from_env(bad)
