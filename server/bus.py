"""The Redis bus: pub/sub for live events, streams for per-channel history.

It implements the contract in `server.eventbus` (and passes its contract suite); here is
how, and what it adds for the publishing services (`along`, `settle`, control messages):
- `publish(entries)` publishes one event to one or more channels in ONE engine call: a Lua
  script assigns the event a cursor `seq` (the engine clock in microseconds, forced
  monotonic), appends it to each channel's history stream and PUBLISHes it once per channel.
  Cursor order is therefore publish order, across all channels. With a `guard` (key,
  value) nothing is published unless the key still holds the value (the audience the
  event carries was computed from data that has not changed since, or the process
  still holds the claim it published under); `settle` then sets the guard key to a new
  value in the same script (a claim marked done). `along` are writes applied in the
  same transaction, just before (storing what is published), so a post is stored and
  published in one round trip.
- One pub/sub connection per process (`subscribe`/`unsubscribe` by channel). Every batch of
  messages read from it in one socket read is dispatched to the sink and then flushed
  once: that is where write coalescing starts.
- `history(channels, after, upto)` returns the events with after < seq <= upto, in order,
  and whether the history still reached back to `after`.
- When the engine goes away the bus reconnects by itself, re-subscribes, and replays
  from the history what was published while it was gone, so no subscriber sees a gap.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import hiredis
import orjson
import redis.asyncio as redis

from server.eventbus import Event, Sink, decode_body
from server.eventbus import encode_body as encode_body  # re-exported for publishers
from server.store.resp import Arg, EngineClient, open_connection, plain_fd

log = logging.getLogger(__name__)

PREFIX = "eh:"
SEQ_KEY = PREFIX + "seq"
CONTROL_CHANNEL = PREFIX + "ctl"
_CONTROL_CHANNEL = CONTROL_CHANNEL.encode()


def channel_key(channel: str) -> str:
    """The engine's pub/sub channel for a bus channel (`channel_of_key` undoes it)."""
    return PREFIX + "ch:" + channel


def channel_of_key(key: bytes) -> str:
    """The bus channel of an engine pub/sub channel (`channel_key` undoes it)."""
    return key.decode()[len(PREFIX) + 3 :]


def stream_key(channel: str) -> str:
    return PREFIX + "hist:" + channel


_PUBLISH = """
if ARGV[2] ~= '' and (redis.call('GET', KEYS[2]) or '0') ~= ARGV[2] then
  return false
end
local t = redis.call('TIME')
local seq = tonumber(t[1]) * 1000000 + tonumber(t[2])
local last = tonumber(redis.call('GET', KEYS[1]) or '0')
if seq <= last then seq = last + 1 end
local s = string.format('%d', seq)
redis.call('SET', KEYS[1], s)
local id = s .. '-0'
for i = 3, #KEYS do
  local body = ARGV[i * 2 - 1]
  redis.call('XADD', KEYS[i], id, 'e', body)
  -- Trim by XDEL, not MAXLEN: only XDEL records max-deleted-entry-id, which is how a
  -- resume learns that history no longer reaches back to its cursor.
  if redis.call('XLEN', KEYS[i]) > tonumber(ARGV[1]) then
    local oldest = redis.call('XRANGE', KEYS[i], '-', '+', 'COUNT', 1)
    redis.call('XDEL', KEYS[i], oldest[1][1])
  end
  redis.call('PUBLISH', ARGV[i * 2 - 2], s .. ' ' .. body)
end
if ARGV[3] ~= '' then redis.call('SET', KEYS[2], ARGV[3]) end
return s
"""


class _PubSubProtocol(asyncio.Protocol):
    def __init__(self, bus: RedisBus) -> None:
        self.bus = bus
        self.reader = hiredis.Reader()
        self.transport: asyncio.Transport | None = None
        self.fd = -1
        self.closed = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.fd = plain_fd(transport)

    def data_received(self, data: bytes) -> None:
        if self._take(data):
            self.bus._end_of_batch()

    def _take(self, data: bytes) -> bool:
        self.reader.feed(data)
        bus = self.bus
        got = False
        while True:
            reply = self.reader.gets()
            if reply is False:
                break
            got = True
            bus._on_reply(reply)
        return got

    def read_now(self) -> None:
        """Take what the engine has sent and the loop has not read yet, without a flush."""
        fd = self.fd
        transport = self.transport
        if fd < 0 or transport is None or transport.is_closing():
            return
        for _ in range(16):
            try:
                data = os.read(fd, 262144)
            except OSError:  # nothing waiting (EAGAIN), or an error the loop will meet
                return
            if not data:
                return  # end of stream: the loop sees it too, and reconnects
            self._take(data)
            if len(data) < 262144:
                return

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)

    def send(self, *args: str | bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        parts = [b"*%d\r\n" % len(args)]
        for arg in args:
            raw = arg.encode() if isinstance(arg, str) else arg
            parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
        self.transport.write(b"".join(parts))


class RedisBus:
    """The Redis implementation of the bus. `start()` once, `stop()` at shutdown."""

    def __init__(
        self, url: str, client: redis.Redis, engine: EngineClient, *, history_size: int = 1000
    ) -> None:
        self.url = url
        self.client = client
        # Publishing and reading the head run on every post and subscribe: the lean client.
        self.engine = engine
        self.history_size = history_size
        self.sink: Sink | None = None
        self.on_control: Callable[[dict[str, Any]], None] | None = None
        self.reconnects = 0
        self.connected = False
        self._script = engine.script(_PUBLISH)
        self._channels: set[str] = set()
        self._waiting: dict[str, list[asyncio.Future[None]]] = {}
        self._proto: _PubSubProtocol | None = None
        self._runner: asyncio.Task[None] | None = None
        self._stopping = False
        self._watermark = 0
        # While catching up after a reconnect, live messages wait here.
        self._held: list[tuple[str, Event]] | None = None

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self._runner = asyncio.create_task(self._run())
        # Wait for the first connection, but never fail startup because of the engine.
        for _ in range(100):
            if self.connected:
                break
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        self._stopping = True
        if self._proto is not None and self._proto.transport is not None:
            self._proto.transport.close()
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
        for waiters in self._waiting.values():
            for fut in waiters:
                if not fut.done():
                    fut.set_exception(ConnectionError("bus stopped"))
                    fut.exception()

    async def _open(self) -> _PubSubProtocol:
        transport, proto, setup = await open_connection(
            self.url, lambda: _PubSubProtocol(self), timeout=2.0
        )
        if setup:
            # AUTH (and SELECT, harmless here): their replies are not pub/sub messages
            # and _on_reply passes them by.
            transport.write(b"".join(setup))
        assert isinstance(proto, _PubSubProtocol)
        return proto

    async def _run(self) -> None:
        delay = 0.05
        first = True
        while not self._stopping:
            try:
                mark = await self.head()
                if first:
                    self._watermark = mark
                proto = await self._open()
            except (TimeoutError, OSError, redis.RedisError) as exc:
                log.warning("bus: engine unreachable (%s); retrying in %.2fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            self._proto = proto
            reconnect = not first
            if reconnect:
                self._held = []
            proto.send("SUBSCRIBE", CONTROL_CHANNEL, *[channel_key(t) for t in self._channels])
            self.connected = True
            delay = 0.05
            if reconnect:
                self.reconnects += 1
                try:
                    await self._catch_up()
                except (OSError, redis.RedisError) as exc:
                    log.warning("bus: catch-up failed: %s", exc)
                    proto.transport.close()  # type: ignore[union-attr]
            first = False
            await proto.closed
            self.connected = False
            self._proto = None
            if not self._stopping:
                log.warning("bus: lost the engine connection; reconnecting")

    async def _catch_up(self) -> None:
        """Dispatch what was published while disconnected, then release held events."""
        channels = list(self._channels)
        after = self._watermark
        events: list[tuple[str, Event]] = []
        if channels:
            head = await self.head()
            async with self.client.pipeline(transaction=False) as pipe:
                for channel in channels:
                    pipe.xrange(stream_key(channel), f"({after}-0", f"{head}-0")
                results = await pipe.execute()
            for channel, entries in zip(channels, results, strict=True):
                for entry_id, fields in entries:
                    seq = int(entry_id.split("-", 1)[0])
                    events.append((channel, decode_body(seq, fields["e"])))
        held, self._held = self._held or [], None
        events.sort(key=lambda item: item[1].seq)
        seen = {(t, e.seq) for t, e in events}
        events.extend(item for item in held if (item[0], item[1].seq) not in seen)
        for channel, event in events:
            self._deliver(channel, event)
        self._end_of_batch()

    @property
    def watermark(self) -> int:
        return self._watermark

    # --- replies from the pub/sub connection -------------------------------------------

    def _on_reply(self, reply: Any) -> None:
        if not isinstance(reply, list) or len(reply) < 3:
            if isinstance(reply, hiredis.ReplyError):
                log.warning("bus: engine replied %s", reply)
            return
        kind = reply[0]
        if kind == b"message":
            key = reply[1]
            payload: bytes = reply[2]
            if key == _CONTROL_CHANNEL:
                if self.on_control is not None:
                    with contextlib.suppress(Exception):
                        self.on_control(orjson.loads(payload))
                return
            seq_raw, _, body = payload.partition(b" ")
            try:
                event = decode_body(int(seq_raw), body)
            except Exception:
                log.warning("bus: undecodable message on %r", key)
                return
            channel = channel_of_key(key)
            if self._held is not None:
                self._held.append((channel, event))
            else:
                self._deliver(channel, event)
        elif kind == b"subscribe":
            channel = channel_of_key(reply[1])
            for fut in self._waiting.pop(channel, ()):
                if not fut.done():
                    fut.set_result(None)

    def _deliver(self, channel: str, event: Event) -> None:
        if event.seq > self._watermark:
            self._watermark = event.seq
        if self.sink is not None:
            self.sink.dispatch(channel, event)

    def read_now(self) -> None:
        """Dispatch (without flushing) what has arrived but not been read yet.

        Run just before a fan-out flush (Hub.before_flush): what the engine published
        meanwhile goes out in this flush instead of waiting through it for the next.
        """
        if self._proto is not None and self._held is None:
            self._proto.read_now()

    def _end_of_batch(self) -> None:
        if self.sink is not None:
            self.sink.flush()

    # --- the interface -----------------------------------------------------------------

    async def subscribe(self, channels: Sequence[str]) -> None:
        """Subscribe and wait for the engine's confirmation (the subscription is live)."""
        loop = asyncio.get_running_loop()
        waits = []
        for channel in channels:
            self._channels.add(channel)
            fut = loop.create_future()
            self._waiting.setdefault(channel, []).append(fut)
            waits.append(fut)
        proto = self._proto
        if proto is None or not self.connected or self.engine.unresponsive:
            for channel, fut in zip(channels, waits, strict=True):
                self._channels.discard(channel)
                self._waiting.get(channel, []).remove(fut)
            raise ConnectionError("the engine is unavailable")
        proto.send("SUBSCRIBE", *[channel_key(t) for t in channels])
        try:
            await asyncio.wait_for(asyncio.gather(*waits), 5.0)
        except BaseException:
            for channel in channels:
                self._channels.discard(channel)
            raise

    def unsubscribe(self, channels: Sequence[str]) -> None:
        for channel in channels:
            self._channels.discard(channel)
        if self._proto is not None and channels:
            self._proto.send("UNSUBSCRIBE", *[channel_key(t) for t in channels])

    async def publish(
        self,
        entries: Sequence[tuple[str, bytes]],
        *,
        guard: tuple[str, str] | None = None,
        along: Sequence[Sequence[Arg]] = (),
        settle: str = "",
    ) -> int | None:
        """Publish one event: `entries` is (channel, encoded body) per channel. Returns its
        seq, or None when `guard` no longer held (then nothing was published; `along`
        was applied all the same). With `settle`, the guard key is set to it once
        published, in the same script."""
        guard_key, guard_value = guard if guard is not None else (SEQ_KEY, "")
        if settle and guard is None:
            raise ValueError("settle needs a guard")
        keys = [SEQ_KEY, guard_key, *[stream_key(t) for t, _ in entries]]
        args: list[Any] = [self.history_size, guard_value, settle]
        for channel, body in entries:
            args.append(channel_key(channel))
            args.append(body)
        if along:
            replies = await self.engine.transaction(
                [*along, self._script.command(keys, args)], raise_on_error=False
            )
            for reply in replies[:-1]:
                if isinstance(reply, Exception):
                    raise reply
            seq = replies[-1]
            if self._script.is_unknown(seq):
                seq = await self._script(keys=keys, args=args)  # `along` is applied
            elif isinstance(seq, Exception):
                raise seq
        else:
            seq = await self._script(keys=keys, args=args)
        return None if seq is None else int(seq)

    async def publish_control(self, message: dict[str, Any]) -> None:
        await self.client.publish(CONTROL_CHANNEL, orjson.dumps(message))

    async def head(self) -> int:
        raw = await self.engine.call("GET", SEQ_KEY)
        return int(raw) if raw else 0

    async def history(
        self, channels: Sequence[str], after: int, upto: int
    ) -> tuple[list[Event], bool]:
        async with self.client.pipeline(transaction=False) as pipe:
            for channel in channels:
                pipe.xinfo_stream(stream_key(channel))
                pipe.xrange(stream_key(channel), f"({after}-0", f"{upto}-0")
            results = await pipe.execute(raise_on_error=False)
        recovered = True
        events: list[Event] = []
        for i in range(len(channels)):
            info, entries = results[2 * i], results[2 * i + 1]
            if isinstance(entries, Exception):
                raise entries
            if isinstance(info, dict):
                deleted = str(info.get("max-deleted-entry-id") or "0-0")
                if int(deleted.split("-", 1)[0]) > after:
                    recovered = False
            elif not (isinstance(info, redis.ResponseError) and "no such key" in str(info)):
                if isinstance(info, Exception):
                    raise info
            for entry_id, fields in entries:
                events.append(decode_body(int(entry_id.split("-", 1)[0]), fields["e"]))
        events.sort(key=lambda e: e.seq)
        return events, recovered
