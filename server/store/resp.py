"""A lean, pipelined RESP client for the hot paths: posting, publishing, subscribing.

redis-py's asyncio client spends ~80 µs of CPU per command on this machine (a pool
checkout, a timeout context per read, packing in Python); this client spends ~15. It
keeps one connection per process; every command issued in one event-loop iteration,
from any coroutine, goes out in one write (auto-pipelining); hiredis parses the
replies, which come back in order and resolve the callers' futures.

Errors keep redis-py's types, so callers and the HTTP/socket error mapping treat both
clients alike: an error reply raises `ResponseError`; a lost or unreachable engine
raises `ConnectionError`; a command unanswered for `timeout` seconds raises
`TimeoutError` and drops the connection (the next command reconnects).

A hung engine (stopped, or stuck in a long script) answers nothing: once one command
has waited `timeout`, the engine is known unresponsive and every command fails at once
with `TimeoutError` (a 503 for the caller, rather than a wait of `timeout` each) until
a probe on a separate connection gets an answer again.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import ssl
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol, cast, final
from urllib.parse import parse_qs, unquote, urlparse

import hiredis
from redis.exceptions import ConnectionError as EngineConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as EngineTimeoutError

from server.sockets import plain_fd as plain_fd  # re-exported: the bus reads its fd

Arg = str | bytes | int | float

# hiredis's stub types its argument as a 1-tuple; it takes any tuple of these.
_pack = cast(Callable[[tuple[Arg, ...]], bytes], hiredis.pack_command)
_PING = _pack(("PING",))
_MULTI = _pack(("MULTI",))
# While the engine is known unresponsive: how often, and how patiently, it is probed.
PROBE_INTERVAL = 0.25
PROBE_TIMEOUT = 0.5
_EXEC = _pack(("EXEC",))


async def open_connection(
    url: str,
    factory: Callable[[], asyncio.Protocol],
    *,
    timeout: float = 1.0,
) -> tuple[asyncio.Transport, asyncio.Protocol, list[bytes]]:
    """Connect to the engine at `url` (redis://, rediss://, unix://).

    Returns the transport, the protocol, and the commands that must be sent first
    (AUTH, SELECT) — already packed; the caller writes them and accounts for their
    replies.
    """
    parsed = urlparse(url)
    loop = asyncio.get_running_loop()
    if parsed.scheme == "unix":
        coro = loop.create_unix_connection(factory, unquote(parsed.path))
    elif parsed.scheme in ("redis", "rediss"):
        ctx = ssl.create_default_context() if parsed.scheme == "rediss" else None
        coro = loop.create_connection(
            factory, parsed.hostname or "127.0.0.1", parsed.port or 6379, ssl=ctx
        )
    else:
        raise ValueError(f"unsupported engine URL scheme {parsed.scheme!r}")
    try:
        transport, protocol = await asyncio.wait_for(coro, timeout)
    except (OSError, TimeoutError) as exc:
        raise EngineConnectionError(f"cannot reach the engine: {exc}") from exc
    setup: list[bytes] = []
    if parsed.password:
        user = unquote(parsed.username) if parsed.username else "default"
        setup.append(_pack(("AUTH", user, unquote(parsed.password))))
    db = _db_of(parsed.path if parsed.scheme != "unix" else "", parsed.query)
    if db:
        setup.append(_pack(("SELECT", db)))
    return transport, protocol, setup


class _Probe(asyncio.Protocol):
    def __init__(self) -> None:
        self.data = b""
        self.answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.data += data
        if b"+PONG\r\n" in self.data and not self.answered.done():
            self.answered.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.answered.done():
            self.answered.set_exception(EngineConnectionError("probe connection lost"))


async def answers(url: str, timeout: float) -> bool:
    """Whether the engine at `url` answers a PING within `timeout`, on a new connection."""
    try:
        async with asyncio.timeout(timeout):
            transport, proto, setup = await open_connection(url, _Probe, timeout=timeout)
            try:
                transport.write(b"".join([*setup, _PING]))
                assert isinstance(proto, _Probe)
                await proto.answered
            finally:
                transport.close()
    except (TimeoutError, OSError, EngineConnectionError):
        return False
    return True


def _db_of(path: str, query: str) -> int:
    raw = parse_qs(query).get("db", [""])[0] or path.strip("/")
    return int(raw) if raw.isdigit() else 0


_CALLS, _CALLS_KEEP_ERRORS, _TRANSACTION, _TRANSACTION_KEEP_ERRORS = 0, 1, 2, 3


@final  # so that `type(target) is _Batch` failing tells mypy it is a Future
class _Batch:
    """The replies of several commands, gathered into one future.

    One future resolved when the last reply arrives, rather than a future per command
    and `asyncio.gather`: gather resolves through two more rounds of callbacks, and
    each round can wait behind a whole fan-out flush.
    """

    __slots__ = ("fut", "kind", "left", "replies")

    def __init__(self, count: int, kind: int, loop: asyncio.AbstractEventLoop) -> None:
        self.fut: asyncio.Future[list[Any]] = loop.create_future()
        self.kind = kind
        self.left = count
        self.replies: list[Any] = []

    def add(self, reply: Any) -> None:
        self.replies.append(reply)
        self.left -= 1
        if self.left or self.fut.done():
            return
        replies = self.replies
        if self.kind >= _TRANSACTION:
            # An error before EXEC (a command the engine would not queue) aborts it;
            # EXEC's own reply lists each command's reply, errors included.
            failed = next((r for r in replies if isinstance(r, ResponseError)), None)
            if failed is None:
                replies = replies[-1] or []
                if self.kind == _TRANSACTION:
                    failed = next((r for r in replies if isinstance(r, ResponseError)), None)
            if failed is not None:
                self.fut.set_exception(failed)
                return
        elif self.kind == _CALLS:
            failed = next((r for r in replies if isinstance(r, ResponseError)), None)
            if failed is not None:
                self.fut.set_exception(failed)
                return
        self.fut.set_result(replies)


_Target = asyncio.Future[Any] | _Batch | None


class _Protocol(asyncio.Protocol):
    __slots__ = ("client", "reader", "transport")

    def __init__(self, client: EngineClient) -> None:
        self.client = client
        self.reader = hiredis.Reader(encoding="utf-8", errors="replace", replyError=ResponseError)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        reader.feed(data)
        waiting = self.client._waiting
        while True:
            reply = reader.gets()
            if reply is False:
                return
            if not waiting:  # nobody asked: the stream is out of step
                self.client._drop(self, EngineConnectionError("unexpected reply"))
                return
            target = waiting.popleft()[0]
            if target is None:  # AUTH / SELECT sent at connect
                if isinstance(reply, ResponseError):
                    self.client._drop(self, EngineConnectionError(f"engine setup: {reply}"))
                    return
                continue
            if type(target) is _Batch:
                target.add(reply)
            elif target.done():
                continue
            elif isinstance(reply, ResponseError):
                target.set_exception(reply)
            else:
                target.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client._drop(self, EngineConnectionError(f"engine connection lost: {exc or 'EOF'}"))


class EngineClient:
    """One pipelined connection to the engine; `call` is safe from any coroutine."""

    def __init__(self, url: str, *, timeout: float = 5.0, connect_timeout: float = 1.0) -> None:
        self.url = url
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._proto: _Protocol | None = None
        # The loop of `_proto`'s transport, which is the running loop whenever a command
        # is sent on it: asyncio.get_running_loop() costs a getpid call on Python 3.11.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connecting = False
        # (where the reply goes, monotonic time sent), one per command, in send order.
        self._waiting: collections.deque[tuple[_Target, float]] = collections.deque()
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._watchdog: asyncio.TimerHandle | None = None
        self._closed = False
        # Set when a command went unanswered for `timeout`; cleared by the probe.
        self._prober: asyncio.Task[None] | None = None

    @property
    def unresponsive(self) -> bool:
        """Known not to answer: commands fail at once (see the module docstring)."""
        return self._prober is not None

    # --- commands ------------------------------------------------------------------------

    def call(self, *args: Arg) -> asyncio.Future[Any]:
        """Send one command; the future resolves with its reply."""
        fut: asyncio.Future[Any] = self._running_loop().create_future()
        self._send([_pack(args)], fut)
        return fut

    def calls(
        self, commands: Sequence[Sequence[Arg]], *, raise_on_error: bool = True
    ) -> asyncio.Future[list[Any]]:
        """Several commands in one write; one future for every reply, in order. An error
        reply raises, unless `raise_on_error` is False: then it stands in its place as a
        `ResponseError` instance, so one failing command does not hide the others.

        Sent at once (not when awaited), like `call`."""
        kind = _CALLS if raise_on_error else _CALLS_KEEP_ERRORS
        batch = _Batch(len(commands), kind, self._running_loop())
        self._send([_pack(tuple(c)) for c in commands], batch)
        return batch.fut

    def transaction(
        self, commands: Sequence[Sequence[Arg]], *, raise_on_error: bool = True
    ) -> asyncio.Future[list[Any]]:
        """MULTI ... EXEC: one future for the replies of EXEC. A command the engine
        refuses to queue aborts them all; one that fails as it runs (the engine does not
        roll back) raises, or with `raise_on_error` False stands in its place."""
        packed = [_MULTI]
        packed += [_pack(tuple(c)) for c in commands]
        packed.append(_EXEC)
        kind = _TRANSACTION if raise_on_error else _TRANSACTION_KEEP_ERRORS
        batch = _Batch(len(packed), kind, self._running_loop())
        self._send(packed, batch)
        return batch.fut

    def script(self, source: str) -> Script:
        return Script(self, source)

    # --- connection ----------------------------------------------------------------------

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None or self._proto is None:
            return asyncio.get_running_loop()
        return loop

    def _send(self, packed: list[bytes], target: _Target) -> None:
        """Queue `packed` for the next write; each reply goes to `target`."""
        if self._closed:
            raise EngineConnectionError("the engine client is closed")
        if self._prober is not None:
            _fail(target, EngineTimeoutError("the engine is not answering"))
            return
        proto = self._proto
        if proto is None:
            # Queue behind the connection attempt; a failed attempt fails them all.
            self._ensure_connected(asyncio.get_running_loop())
        entry = (target, time.monotonic())
        waiting = self._waiting
        for _ in packed:
            waiting.append(entry)
        self._out.extend(packed)
        if proto is not None and not self._flush_scheduled:
            self._flush_scheduled = True
            self._running_loop().call_soon(self._flush)

    def flush(self) -> None:
        """Write what is queued now rather than at the end of this loop iteration."""
        if self._out:
            self._flush()

    def _flush(self) -> None:
        self._flush_scheduled = False
        proto = self._proto
        if proto is None or not self._out:
            return
        out, self._out = self._out, []
        proto.transport.write(b"".join(out))  # type: ignore[union-attr]
        if self._watchdog is None:
            self._watchdog = asyncio.get_running_loop().call_later(1.0, self._check_stall)

    def _ensure_connected(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._connecting:
            return
        self._connecting = True
        task = loop.create_task(self._connect())
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    async def _connect(self) -> None:
        try:
            transport, proto, setup = await open_connection(
                self.url, lambda: _Protocol(self), timeout=self.connect_timeout
            )
        except Exception as exc:
            self._connecting = False
            self._fail_all(
                exc if isinstance(exc, EngineConnectionError) else EngineConnectionError(str(exc))
            )
            return
        assert isinstance(proto, _Protocol)
        if self._closed:
            transport.close()
            return
        # The setup commands go first: their replies come before the queued commands'.
        now = time.monotonic()
        for _ in setup:
            self._waiting.appendleft((None, now))
        self._out[:0] = setup
        self._loop = asyncio.get_running_loop()
        self._proto = proto
        self._connecting = False
        self._flush()

    def _drop(self, proto: _Protocol, exc: Exception) -> None:
        """Forget `proto` and fail everything sent on it."""
        if self._proto is not proto:
            return
        self._proto = None
        if proto.transport is not None and not proto.transport.is_closing():
            proto.transport.abort()
        self._fail_all(exc)

    def _fail_all(self, exc: Exception) -> None:
        waiting, self._waiting = self._waiting, collections.deque()
        self._out = []
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        for target, _ in waiting:
            _fail(target, exc)

    def _check_stall(self) -> None:
        self._watchdog = None
        if not self._waiting or self._proto is None:
            return
        _, sent = self._waiting[0]
        if time.monotonic() - sent > self.timeout:
            self._drop(self._proto, EngineTimeoutError("the engine did not answer in time"))
            if self._prober is None and not self._closed:
                self._prober = asyncio.get_running_loop().create_task(self._probe())
            return
        self._watchdog = asyncio.get_running_loop().call_later(1.0, self._check_stall)

    async def _probe(self) -> None:
        """Until the engine answers again (then commands reconnect and go through)."""
        try:
            while True:
                if await answers(self.url, PROBE_TIMEOUT):
                    return
                await asyncio.sleep(PROBE_INTERVAL)
        finally:
            self._prober = None

    async def aclose(self) -> None:
        self._closed = True
        if self._prober is not None:
            self._prober.cancel()
        proto = self._proto
        self._proto = None
        if proto is not None and proto.transport is not None:
            proto.transport.close()
        self._fail_all(EngineConnectionError("the engine client is closed"))


def _fail(target: _Target, exc: Exception) -> None:
    fut = target.fut if type(target) is _Batch else target
    if fut is not None and not fut.done():
        fut.set_exception(exc)
        fut.exception()  # the caller may be gone


class Caller(Protocol):
    """What a script runs on: one engine, or a cluster routing by the keys' slot."""

    def call(self, *args: Arg) -> asyncio.Future[Any]: ...


class Script:
    """A Lua script run by its SHA1, loaded on first use (or after the engine restarts;
    on a cluster each primary has its own script cache, and NOSCRIPT is per node)."""

    __slots__ = ("client", "sha", "source")

    def __init__(self, client: Caller, source: str) -> None:
        self.client = client
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    def command(self, keys: Sequence[Arg] = (), args: Sequence[Arg] = ()) -> tuple[Arg, ...]:
        """The EVALSHA command, to send along with others (see `is_unknown`)."""
        return ("EVALSHA", self.sha, len(keys), *keys, *args)

    @staticmethod
    def is_unknown(reply: Any) -> bool:
        """Whether `reply` says the engine does not know the script (then call it)."""
        return isinstance(reply, ResponseError) and str(reply).startswith("NOSCRIPT")

    async def __call__(self, keys: Sequence[Arg] = (), args: Sequence[Arg] = ()) -> Any:
        try:
            return await self.client.call("EVALSHA", self.sha, len(keys), *keys, *args)
        except ResponseError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        return await self.client.call("EVAL", self.source, len(keys), *keys, *args)
