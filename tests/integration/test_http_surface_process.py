"""The HTTP surface of a real `python -m server serve` process (issue 13, items 8 and
14): slow and abandoned bodies, bodies sent to bodyless routes, what the access log
writes down, and who may read /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from server.app import create_app
from server.settings import settings_from_env
from tests.support import Server, signup, start_server, stop_server


@pytest.fixture(scope="module")
def server_process(engine_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = str(tmp_path_factory.mktemp("surface"))
    srv = start_server("--redis-url", engine_url, "--data-dir", data,
                       env={"ECHOHUB_BODY_TIMEOUT": "1"})  # fmt: skip
    yield srv
    stop_server(srv)


@pytest.fixture
async def server(server_process: Server, rdb: Any) -> AsyncIterator[Server]:
    yield server_process
    await server_process.close()  # its client session belongs to this test's loop


async def raw_request(server: Server, head: str, body: bytes = b"") -> tuple[
        asyncio.StreamReader, asyncio.StreamWriter]:  # fmt: skip
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
    await writer.drain()
    return reader, writer


async def read_answer(reader: asyncio.StreamReader, timeout: float) -> tuple[int, bytes]:
    """The status and everything until the server closes the connection."""
    async with asyncio.timeout(timeout):
        data = await reader.read(-1)
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0
    return status, data


async def wait_for_log(server: Server, text: str, timeout: float = 5) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = server.read_output()
        if text in out:
            return out
        await asyncio.sleep(0.05)
    raise AssertionError(f"{text!r} never logged:\n{server.read_output()[-3000:]}")


async def test_a_slow_body_times_out_and_closes(server: Server) -> None:
    head = ("POST /api/login HTTP/1.1\nHost: x\nContent-Type: application/json\n"
            "Content-Length: 1000\n")  # fmt: skip
    started = time.monotonic()
    sockets = [await raw_request(server, head, b'{"handle":') for _ in range(20)]
    for reader, writer in sockets:
        status, data = await read_answer(reader, timeout=10)
        assert status == 408 and b'"request_timeout"' in data
        writer.close()
    assert time.monotonic() - started < 8  # about the 1 s body timeout, not forever
    out = await wait_for_log(server, "slow body: POST /api/login")
    assert "Traceback" not in out
    # The server is fine afterwards.
    resp = await server.get("/healthz")
    assert resp.status == 200


async def test_a_client_that_hangs_up_mid_body_is_one_log_line(server: Server) -> None:
    head = ("POST /api/signup HTTP/1.1\nHost: x\nContent-Type: application/json\n"
            "Content-Length: 1000\n")  # fmt: skip
    for _ in range(3):
        _, writer = await raw_request(server, head, b'{"invite":')
        writer.close()  # hang up mid-body
        await writer.wait_closed()
    await wait_for_log(server, "client went away: POST /api/signup")
    lines = [ln for ln in server.read_output().splitlines() if "client went away" in ln]
    assert 1 <= len(lines) <= 3
    assert "Traceback" not in server.read_output()
    assert "Error handling request" not in server.read_output()


async def test_bodyless_routes_refuse_a_body_over_the_limit(server: Server, rdb: Any) -> None:
    aki = await signup(server, rdb, "aki")
    big = b"x" * (64 * 1024 + 1)
    json_type = {**aki.auth, "Content-Type": "application/json"}
    for path in ("/api/logout", f"/api/users/{aki.handle}/follow", "/api/notifications/read"):
        resp = await server.post(path, data=big, headers=json_type)
        assert resp.status == 413, (path, await resp.text())
        assert (await resp.json())["error"]["code"] == "payload_too_large"

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: read and counted
        for _ in range(20):
            yield b"y" * 4096

    resp = await server.post("/api/logout", data=chunks(), headers=json_type)
    assert resp.status == 413
    me = await server.get("/api/me", headers=aki.auth)
    assert me.status == 200  # nothing was done: the session is still there


async def test_secrets_stay_out_of_the_access_log(server: Server, rdb: Any) -> None:
    aki = await signup(server, rdb, "aki")
    async with aiohttp.ClientSession(server.base) as fresh:
        await (await fresh.get("/join/SECRETINVITE1")).read()
        await (await fresh.get("/api/me?token=SECRETTOKEN2")).read()
        await (await fresh.get(f"/ws?access_token={aki.token}")).read()
        referer = {"Referer": f"{server.base}/join/SECRETINVITE3"}
        await (await fresh.get("/css/app.css", headers=referer)).read()
        await (await fresh.delete("/api/invites/SECRETINVITE4", headers=aki.auth)).read()
    out = await wait_for_log(server, "/api/invites/[redacted]")
    for secret in ("SECRETINVITE1", "SECRETTOKEN2", aki.token, "SECRETINVITE3", "SECRETINVITE4"):
        assert secret not in out
    assert '"GET /join/[redacted] HTTP/1.1" 200' in out
    assert "/api/me?token=[redacted]" in out


@pytest.mark.parametrize(("allow", "status"), [
    (None, 200), ("10.0.0.0/8", 403), ("127.0.0.1", 200), ("::1, 127.0.0.0/8", 200), ("off", 403),
])  # fmt: skip
async def test_metrics_can_be_restricted(
    aiohttp_client: Any, engine_url: str, rdb: Any, allow: str | None, status: int
) -> None:
    env = {} if allow is None else {"ECHOHUB_METRICS_ALLOW": allow}
    client = await aiohttp_client(create_app(settings_from_env(env), engine_url))
    resp = await client.get("/metrics")
    assert resp.status == status, allow
    if status == 403:
        assert (await resp.json())["error"]["code"] == "forbidden"
    else:
        assert "echohub_connections" in await resp.text()


def png_bytes() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (16, 16), (20, 120, 200)).save(out, "PNG")
    return out.getvalue()


def multipart(boundary: str, data: bytes) -> tuple[bytes, bytes]:
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
            f'filename="a.png"\r\nContent-Type: image/png\r\n\r\n').encode()  # fmt: skip
    return head + data, f"\r\n--{boundary}--\r\n".encode()


async def test_an_upload_that_stops_arriving_times_out(server: Server, rdb: Any) -> None:
    aki = await signup(server, rdb, "aki")
    start, _ = multipart("xyzzy", png_bytes())
    head = (f"POST /api/media HTTP/1.1\nHost: x\nAuthorization: Bearer {aki.token}\n"
            f"Content-Type: multipart/form-data; boundary=xyzzy\n"
            f"Content-Length: {len(start) + 100000}\n")  # fmt: skip
    started = time.monotonic()
    reader, writer = await raw_request(server, head, start)
    status, data = await read_answer(reader, timeout=10)
    writer.close()
    assert status == 408 and b'"request_timeout"' in data
    assert time.monotonic() - started < 8
    await wait_for_log(server, "slow body: POST /api/media")


async def test_a_slow_but_steady_upload_is_not_cut(server: Server, rdb: Any) -> None:
    """The timeout is for a body that stops, not one that takes long: 2.4 s of a steady
    trickle with a 1 s body timeout goes through."""
    aki = await signup(server, rdb, "aki")
    start, end = multipart("xyzzy", png_bytes())
    body = start + end
    head = (f"POST /api/media HTTP/1.1\nHost: x\nAuthorization: Bearer {aki.token}\n"
            f"Content-Type: multipart/form-data; boundary=xyzzy\nConnection: close\n"
            f"Content-Length: {len(body)}\n")  # fmt: skip
    reader, writer = await raw_request(server, head)
    step = -(-len(body) // 8)  # eight pieces, 0.3 s apart
    for offset in range(0, len(body), step):
        await asyncio.sleep(0.3)  # the client's pace (what is under test), not a wait
        writer.write(body[offset : offset + step])
        await writer.drain()
    status, data = await read_answer(reader, timeout=20)
    writer.close()
    assert status == 201, data[-300:]


# --- answers made before any route: aiohttp's parser refusals -------------------------


def head_and_body(data: bytes) -> tuple[str, bytes]:
    head, _, body = data.partition(b"\r\n\r\n")
    return head.decode("latin-1"), body


def check_error_answer(data: bytes, status: int) -> dict[str, Any]:
    """The spec's error shape, short, no banner, the security headers."""
    import orjson

    head, body = head_and_body(data)
    assert int(head.split(" ", 2)[1]) == status, head
    lines = head.lower().splitlines()
    assert "content-type: application/json; charset=utf-8" in lines, head
    assert not any(ln.startswith("server:") for ln in lines), head
    assert "x-content-type-options: nosniff" in lines, head
    assert any(ln.startswith("content-security-policy:") for ln in lines), head
    assert len(body) < 300, body[:300]
    answer: dict[str, Any] = orjson.loads(body)
    assert set(answer) == {"error"} and answer["error"]["code"], answer
    return answer


async def test_a_token_in_an_overlong_url_never_reaches_the_log(server: Server) -> None:
    head = "GET /api/search?token=SECRETTOKEN123&q=" + "x" * 9000 + " HTTP/1.1\nHost: x\n"
    reader, writer = await raw_request(server, head)
    _, data = await read_answer(reader, timeout=10)
    writer.close()
    answer = check_error_answer(data, 400)
    assert answer["error"]["code"] == "request_too_long"
    assert b"SECRETTOKEN123" not in data and b"xxxxxxxx" not in data
    out = await wait_for_log(server, "unreadable request from")
    assert "SECRETTOKEN123" not in out
    assert "Traceback" not in out and "Error handling request" not in out


async def test_a_bad_request_line_is_a_short_json_error_in_one_log_line(server: Server) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"BAD\x01 /api/me?token=SECRETTOKEN456 HTTP/1.1\r\nHost: x\r\n\r\n")
    _, data = await read_answer(reader, timeout=10)
    writer.close()
    answer = check_error_answer(data, 400)
    assert answer["error"]["code"] == "bad_request"
    assert b"BAD" not in data and b"SECRETTOKEN456" not in data  # no echo of its bytes
    out = await wait_for_log(server, "unreadable request from")
    lines = [ln for ln in out.splitlines() if "unreadable request from" in ln]
    assert "SECRETTOKEN456" not in out
    assert "Traceback" not in out and "Error handling request" not in out
    assert all(len(ln) < 300 for ln in lines), lines


async def test_bytes_past_a_declared_body_are_refused_without_an_echo(server: Server) -> None:
    """Content-Length: 1000 then 20 MB: the rest parses as a new request, which is
    refused in a short JSON answer, not a text page echoing ~400 KB back."""
    head = ("POST /api/login HTTP/1.1\nHost: x\nContent-Type: application/json\n"
            "Content-Length: 1000\n")  # fmt: skip
    reader, writer = await raw_request(server, head, b"{" + b"z" * 999)
    junk = b"q" * (1 << 20)
    received = bytearray()

    async def collect() -> None:
        with contextlib.suppress(ConnectionError):
            while chunk := await reader.read(65536):
                received.extend(chunk)

    collecting = asyncio.create_task(collect())
    with contextlib.suppress(ConnectionError):
        for _ in range(20):  # 20 MB, or until the server closes
            writer.write(junk)
            await asyncio.wait_for(writer.drain(), timeout=10)
    await asyncio.wait_for(collecting, timeout=10)
    writer.close()
    data = bytes(received)
    answers = [a for a in re.split(rb"(?=HTTP/1\.[01] \d{3} )", data) if a]
    assert answers, data[:300]
    assert len(data) < 4000, len(data)
    check_error_answer(answers[-1], 400)
    assert b"qqqqqqqq" not in data
    out = server.read_output()
    assert "Traceback" not in out and "Error handling request" not in out


def media_access_lines(server: Server) -> list[str]:
    return [ln for ln in server.read_output().splitlines() if '"POST /api/media' in ln]


async def test_an_upload_stalled_after_three_bytes_times_out(server: Server, rdb: Any) -> None:
    """The audit's case: a multipart head and 3 bytes of a declared 100,000, then nothing."""
    aki = await signup(server, rdb, "aki")
    start, _ = multipart("xyzzy", b"\xff\xd8\xff")
    head = (f"POST /api/media HTTP/1.1\nHost: x\nAuthorization: Bearer {aki.token}\n"
            f"Content-Type: multipart/form-data; boundary=xyzzy\n"
            f"Content-Length: 100000\n")  # fmt: skip
    started = time.monotonic()
    reader, writer = await raw_request(server, head, start)
    status, data = await read_answer(reader, timeout=10)
    writer.close()
    assert status == 408 and b'"request_timeout"' in data
    assert time.monotonic() - started < 8
    await wait_for_log(server, "slow body: POST /api/media")
    assert "Traceback" not in server.read_output()
    assert not [ln for ln in media_access_lines(server) if '" 500 ' in ln]


async def test_a_client_that_hangs_up_mid_upload_is_one_log_line(server: Server,
                                                                  rdb: Any) -> None:  # fmt: skip
    aki = await signup(server, rdb, "aki")
    start, _ = multipart("xyzzy", png_bytes()[:40])
    head = (f"POST /api/media HTTP/1.1\nHost: x\nAuthorization: Bearer {aki.token}\n"
            f"Content-Type: multipart/form-data; boundary=xyzzy\n"
            f"Content-Length: 100000\n")  # fmt: skip
    before = len(server.read_output())
    for _ in range(3):
        _, writer = await raw_request(server, head, start)
        writer.close()  # hang up mid-upload
        await writer.wait_closed()
    await wait_for_log(server, "client went away: POST /api/media")
    # Every hang-up is over (three lines, or an access line each) before judging the log.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        out = server.read_output()[before:]
        if out.count("client went away: POST /api/media") >= 3:
            break
        await asyncio.sleep(0.05)
    out = server.read_output()[before:]
    assert out.count("client went away: POST /api/media") == 3, out[-3000:]
    assert "Traceback" not in out and "Error handling request" not in out, out[-3000:]
    assert not [ln for ln in media_access_lines(server) if '" 500 ' in ln]
