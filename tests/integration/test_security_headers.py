"""Headers on every answer (issue 13, item 6): pages, API answers, static files and
errors all carry the CSP and friends, none names the server's software, and the
session cookie is Secure over TLS and behind a trusted proxy that says it was TLS."""

from __future__ import annotations

import ipaddress
import ssl
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from server.app import create_app
from tests.support import PASSWORD, signup


def check_headers(headers: Any, what: str) -> None:
    csp = headers.get("Content-Security-Policy", "")
    directives = {d.strip().split(" ", 1)[0]: d.strip() for d in csp.split(";") if d.strip()}
    assert directives.get("frame-ancestors") == "frame-ancestors 'none'", (what, csp)
    assert directives.get("script-src") == "script-src 'self'", (what, csp)
    assert directives.get("style-src") == "style-src 'self'", (what, csp)
    assert directives.get("object-src") == "object-src 'none'", (what, csp)
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, what
    assert headers.get("X-Content-Type-Options") == "nosniff", what
    assert headers.get("Referrer-Policy") == "same-origin", what
    assert headers.get("X-Frame-Options") == "DENY", what
    assert "Server" not in headers, (what, headers.get("Server"))
    assert "X-Echohub-Worker" not in headers, what


async def test_every_kind_of_answer_carries_them(app_client: Any, rdb: Any) -> None:
    aki = await signup(app_client, rdb, "aki")
    app_client.session.cookie_jar.clear()
    answers = [
        ("GET", "/", {}, 200), ("GET", "/join/somecode", {}, 200),
        ("GET", "/js/api.js", {}, 200), ("GET", "/css/app.css", {}, 200),
        ("GET", "/img/icon.svg", {}, 200), ("GET", "/js/missing.js", {}, 404),
        ("GET", "/no/such/page", {}, 404), ("GET", "/healthz", {}, 200),
        ("GET", "/api/me", {}, 401), ("GET", "/api/me", aki.auth, 200),
        ("GET", "/api/echoes/nope", aki.auth, 404), ("PUT", "/healthz", {}, 405),
        ("POST", "/api/echoes", {**aki.auth, "Content-Type": "text/plain"}, 415),
        ("POST", "/api/echoes", {"Origin": "https://evil.example"}, 403),
        ("GET", "/ws", {}, 401),
    ]  # fmt: skip
    for method, path, headers, status in answers:
        resp = await app_client.request(method, path, headers=headers, data=b"x" if
                                        status == 415 else None)  # fmt: skip
        assert resp.status == status, (method, path, await resp.text())
        check_headers(resp.headers, f"{method} {path}")


async def test_the_worker_header_only_when_asked(
    aiohttp_client: Any, engine_url: str, rdb: Any, settings: Any
) -> None:
    client = await aiohttp_client(create_app(settings.with_(worker_header=True), engine_url))
    resp = await client.get("/healthz")
    assert resp.headers["X-Echohub-Worker"].isdigit()


def set_cookie(resp: Any) -> str:
    return str(resp.headers.get("Set-Cookie", ""))


async def test_cookie_is_secure_only_behind_a_trusted_proxy_that_says_https(
    aiohttp_client: Any, engine_url: str, rdb: Any, settings: Any
) -> None:
    login = {"handle": "aki", "password": PASSWORD}
    https = {"X-Forwarded-Proto": "https"}
    plain = await aiohttp_client(create_app(settings, engine_url))
    await signup(plain, rdb, "aki")
    resp = await plain.post("/api/login", json=login, headers=https)
    assert resp.status == 200 and "Secure" not in set_cookie(resp)  # nobody trusted

    loopback = (ipaddress.ip_network("127.0.0.0/8"),)
    proxied = await aiohttp_client(create_app(settings.with_(trusted_proxies=loopback),
                                              engine_url))  # fmt: skip
    resp = await proxied.post("/api/login", json=login, headers=https)
    assert resp.status == 200 and "; Secure" in set_cookie(resp)
    resp = await proxied.post("/api/login", json=login)
    assert resp.status == 200 and "Secure" not in set_cookie(resp)
    # The page's own https origin is the one its changes must come from.
    token = (await resp.json())["token"]
    proxied.session.cookie_jar.clear()
    cookie = {"Cookie": f"echohub_session={token}"}
    resp = await proxied.post("/api/echoes", json={"text": "via the proxy"},
                              headers={**cookie, **https, "Origin": f"https://{proxied.host}:"
                                       f"{proxied.port}"})  # fmt: skip
    assert resp.status == 201, await resp.text()


@pytest.fixture(scope="module")
def tls_context(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    folder: Path = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


async def test_cookie_is_secure_over_tls(
    aiohttp_client: Any, engine_url: str, rdb: Any, settings: Any, tls_context: ssl.SSLContext
) -> None:
    server = TestServer(create_app(settings, engine_url))
    await server.start_server(ssl=tls_context)
    # Our own self-signed certificate: this client does not verify it.
    client = await aiohttp_client(server, connector=aiohttp.TCPConnector(ssl=False))
    assert client.make_url("/").scheme == "https"
    await signup(client, rdb, "aki")
    resp = await client.post("/api/login", json={"handle": "aki", "password": PASSWORD})
    assert resp.status == 200 and "; Secure" in set_cookie(resp)
    check_headers(resp.headers, "login over TLS")


async def test_an_unexpected_error_is_a_500_in_the_error_shape(
    aiohttp_client: Any, engine_url: str, rdb: Any, settings: Any
) -> None:
    async def boom(request: Any) -> Any:
        raise RuntimeError("a bug")

    app = create_app(settings, engine_url)
    app.router.add_get("/api/test-boom", boom)
    client = await aiohttp_client(app)
    resp = await client.get("/api/test-boom")
    assert resp.status == 500
    assert (await resp.json())["error"]["code"] == "internal_error"
    check_headers(resp.headers, "a 500")


async def test_every_error_is_in_the_error_shape(app_client: Any, rdb: Any) -> None:
    """aiohttp's own refusals too (a method a route lacks, a file not there, a socket
    asked for without an upgrade), not its text/plain pages."""
    aki = await signup(app_client, rdb, "aki")
    app_client.session.cookie_jar.clear()
    bad_key = {**aki.auth, "Upgrade": "websocket", "Connection": "Upgrade",
               "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "not-sixteen-bytes"}  # fmt: skip
    answers = [
        ("PATCH", "/healthz", {}, 405, "method_not_allowed"),
        ("PUT", "/", {}, 405, "method_not_allowed"),
        ("GET", "/no/such/page", {}, 404, "not_found"),
        ("GET", "/ws", aki.auth, 400, "websocket_upgrade_required"),
        ("GET", "/ws", bad_key, 400, "websocket_upgrade_required"),
        ("GET", "/ws", {}, 401, "unauthenticated"),
    ]  # fmt: skip
    for method, path, headers, status, code in answers:
        resp = await app_client.request(method, path, headers=headers)
        what = f"{method} {path}"
        assert resp.status == status, (what, await resp.text())
        assert resp.content_type == "application/json", (what, await resp.text())
        error = (await resp.json())["error"]
        assert error["code"] == code and error["message"], (what, error)
        assert "not-sixteen-bytes" not in error["message"]  # the client's bytes stay theirs
        check_headers(resp.headers, what)
        if status == 405:
            assert "GET" in resp.headers["Allow"], what
    # A real upgrade still goes through.
    async with app_client.session.ws_connect(app_client.make_url("/ws"), headers=aki.auth) as ws:
        assert not ws.closed
