"""The lean engine client over a Valkey/Redis Cluster: one pipelined connection per primary.

Same interface as `EngineClient` (`call`, `calls`, `transaction`, `script`, `flush`,
`aclose`), and the same promise: a command is sent when it is issued, not when it is
awaited, and every command of one loop iteration to one node goes out in one write (each
node is an `EngineClient`, so its coalescing is kept). What this adds:

- Routing by hash slot (CRC16 of the key or of its `{hash tag}`), from the slot map of
  `CLUSTER SLOTS`, loaded at the first command and refreshed when the cluster says it
  moved on.
- `MOVED`: the command was not run; the slot's owner is remembered, a full refresh is
  scheduled, and the command is sent again to the owner. `ASK` (a slot being migrated):
  `ASKING` and the command go to the importing node, once, without changing the map.
  `TRYAGAIN` (a multi-key command during a migration) is retried after a short pause.
  Each command follows at most `max_redirects` redirections, then raises.
- A transaction or a script must keep its keys in one slot (`CrossSlotError`, raised
  before anything is sent: it is a bug in the caller, not an engine condition).
- A lost node, or `CLUSTERDOWN` during a failover, raises redis-py's `ConnectionError`
  at once (the HTTP layer answers 503) and schedules a slot-map refresh, so requests
  succeed again by themselves once a replica is promoted. Nothing that may have run is
  ever sent twice: only replies that say the command did not run are retried.

`WAIT` sent alone is keyless and reaches an arbitrary primary: durability on a replica
is `transaction(..., replicas=1)`, which sends it right after EXEC on the write's node.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlparse

from redis.crc import key_slot
from redis.exceptions import ConnectionError as EngineConnectionError
from redis.exceptions import ResponseError

from server.store.resp import Arg, EngineClient, Script

SLOTS = 16384

# Commands whose every argument after the name is a key.
_ALL_KEYS = frozenset({
    b"DEL", b"EXISTS", b"UNLINK", b"TOUCH", b"MGET", b"WATCH",
    b"SUNION", b"SINTER", b"SDIFF", b"PFCOUNT",
})  # fmt: skip
# Commands whose keys come after a numkeys argument at index 2 (EVAL-like) or 1.
_NUMKEYS_AT_2 = frozenset({b"EVAL", b"EVALSHA", b"EVAL_RO", b"EVALSHA_RO", b"FCALL", b"FCALL_RO"})
_NUMKEYS_AT_1 = frozenset({b"SINTERCARD", b"ZUNION", b"ZINTER", b"ZDIFF", b"LMPOP", b"ZMPOP"})
# Commands about no key: any primary answers them.
_NO_KEY = frozenset({
    b"PING", b"INFO", b"TIME", b"SCRIPT", b"CLUSTER", b"ECHO", b"COMMAND", b"DBSIZE",
    b"MULTI", b"EXEC", b"ASKING", b"READONLY", b"CLIENT", b"CONFIG", b"FLUSHALL",
    b"PUBLISH", b"PUBSUB", b"WAIT",
})  # fmt: skip


class CrossSlotError(ValueError):
    """The keys of one script, transaction or multi-key command span hash slots."""


def _as_bytes(value: Arg) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode()


def keys_of(command: Sequence[Arg]) -> list[bytes]:
    """The keys a command touches, by the rules of the commands Echo Hub sends.

    Any command not listed above takes its first argument as its key (GET, SET, HSET,
    ZADD, XADD, SADD, ...), which is the rule of every single-key command.
    """
    name = _as_bytes(command[0]).upper()
    if name in _NO_KEY or len(command) < 2:
        return []
    if name in _NUMKEYS_AT_2:
        count = int(command[2])
        return [_as_bytes(k) for k in command[3 : 3 + count]]
    if name in _NUMKEYS_AT_1:
        count = int(command[1])
        return [_as_bytes(k) for k in command[2 : 2 + count]]
    if name in _ALL_KEYS:
        return [_as_bytes(k) for k in command[1:]]
    if name in (b"MSET", b"MSETNX"):
        return [_as_bytes(k) for k in command[1::2]]
    if name in (b"SUNIONSTORE", b"SINTERSTORE", b"SDIFFSTORE"):
        return [_as_bytes(k) for k in command[1:]]
    if name in (b"RENAME", b"SMOVE", b"LMOVE", b"COPY"):
        return [_as_bytes(k) for k in command[1:3]]
    return [_as_bytes(command[1])]


def slot_of(commands: Sequence[Sequence[Arg]]) -> int | None:
    """The one slot every key of `commands` hashes to; None when they name no key."""
    slots = {key_slot(k) for c in commands for k in keys_of(c)}
    if len(slots) > 1:
        raise CrossSlotError(f"keys span {len(slots)} hash slots: {sorted(slots)[:4]}")
    return slots.pop() if slots else None


def parse_seeds(url: str) -> list[tuple[str, int]]:
    """`redis://h:p` or `redis://h1:p1,redis://h2:p2` (or `h2:p2`) -> [(host, port), ...]."""
    seeds: list[tuple[str, int]] = []
    for part in (p.strip() for p in url.split(",")):
        if not part:
            continue
        parsed = urlparse(part if "://" in part else f"redis://{part}")
        if parsed.scheme not in ("redis", "rediss") or not parsed.hostname:
            raise ValueError(f"a cluster seed must be redis://host:port, not {part!r}")
        seeds.append((parsed.hostname, parsed.port or 6379))
    if not seeds:
        raise ValueError("no cluster seed in the URL")
    return seeds


def _redirect(exc: BaseException) -> tuple[str, int, str] | None:
    """(kind, slot, 'host:port') of a MOVED or ASK reply, else None."""
    if not isinstance(exc, ResponseError):
        return None
    parts = str(exc).split()
    if len(parts) == 3 and parts[0] in ("MOVED", "ASK"):
        return parts[0], int(parts[1]), parts[2]
    return None


def _not_run(exc: BaseException) -> str | None:
    """'TRYAGAIN' or 'CLUSTERDOWN' when the reply says the command did not run."""
    if isinstance(exc, ResponseError):
        word = str(exc).split(" ", 1)[0]
        if word in ("TRYAGAIN", "CLUSTERDOWN"):
            return word
    return None


class ClusterEngineClient:
    """`EngineClient` over a cluster: commands routed by slot to one client per primary."""

    def __init__(
        self, url: str, *, timeout: float = 5.0, connect_timeout: float = 1.0,
        max_redirects: int = 5,
    ) -> None:  # fmt: skip
        self.url = url
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.max_redirects = max_redirects
        first = urlparse(url.split(",")[0].strip())
        # Every node is reached with the first seed's scheme and credentials.
        self._scheme = "rediss" if first.scheme == "rediss" else "redis"
        self._auth = f"{first.netloc.rsplit('@', 1)[0]}@" if "@" in first.netloc else ""
        self._seeds = [f"{h}:{p}" for h, p in parse_seeds(url)]
        self._nodes: dict[str, EngineClient] = {}
        self._owner: list[str | None] = [None] * SLOTS
        self._refreshing: asyncio.Task[None] | None = None
        self._refreshed_at = 0.0
        self._closing: set[asyncio.Future[None]] = set()
        # Writes acknowledged with fewer replicas than asked, as fewer were attached.
        self.degraded_writes = 0
        self._closed = False

    # --- commands --------------------------------------------------------------------

    def call(self, *args: Arg) -> asyncio.Future[Any]:
        """Send one command to its slot's primary; the future resolves with its reply."""
        slot = slot_of((args,))
        return self._dispatch(slot, lambda node: node.call(*args), (args,))

    def calls(
        self, commands: Sequence[Sequence[Arg]], *, raise_on_error: bool = True
    ) -> asyncio.Future[list[Any]]:
        """Several commands, each to its own slot's primary; replies in order. Commands
        for one node go out in one write. Errors as `EngineClient.calls`."""
        futures = [self.call(*c) for c in commands]
        return asyncio.ensure_future(self._gather(futures, raise_on_error))

    def transaction(
        self,
        commands: Sequence[Sequence[Arg]],
        *,
        raise_on_error: bool = True,
        replicas: int = 0,
        replica_timeout_ms: int = 1000,
    ) -> asyncio.Future[list[Any]]:
        """MULTI ... EXEC on the primary of the one slot all `commands` touch.

        With `replicas`, `WAIT replicas replica_timeout_ms` follows EXEC on the same
        connection, and fewer acknowledging replicas than are attached raise
        `ConnectionError` (503): an answer means the writes survive that primary's loss
        whenever it has a replica at all (see `_replicated`)."""
        slot = slot_of(commands)

        def send(node: EngineClient) -> Any:
            done = node.transaction(commands, raise_on_error=raise_on_error)
            if not replicas:
                return done
            return asyncio.ensure_future(
                _replicated(
                    self, node, done, node.call("WAIT", replicas, replica_timeout_ms), replicas
                )
            )

        return self._dispatch(slot, send, None)

    def script(self, source: str) -> Script:
        """The script runs on the primary of its keys' one slot (`call` routes it)."""
        return Script(self, source)

    @property
    def unresponsive(self) -> bool:
        """Some primary is known not to answer (see `EngineClient.unresponsive`); its
        commands fail at once, the others' go through."""
        return any(node.unresponsive for node in self._nodes.values())

    def flush(self) -> None:
        """Write what every node has queued now rather than at the end of the iteration."""
        for node in self._nodes.values():
            node.flush()

    async def aclose(self) -> None:
        self._closed = True
        if self._refreshing is not None:
            self._refreshing.cancel()
            with contextlib.suppress(BaseException):
                await self._refreshing
        for node in list(self._nodes.values()):
            await node.aclose()
        self._nodes.clear()

    # --- routing ---------------------------------------------------------------------

    def _node(self, address: str) -> EngineClient:
        node = self._nodes.get(address)
        if node is None:
            node = EngineClient(f"{self._scheme}://{self._auth}{address}", timeout=self.timeout,
                                connect_timeout=self.connect_timeout)  # fmt: skip
            self._nodes[address] = node
        return node

    def _dispatch(self, slot: int | None, send: Any, command: Any) -> asyncio.Future[Any]:
        """Send now when the slot's owner is known; else after loading the slot map.

        `command` (a one-command tuple) lets an ASK redirection send ASKING before it;
        transactions pass None and follow MOVED only (a slot being migrated refuses
        them with TRYAGAIN or a MOVED once done)."""
        owner = self._owner[slot] if slot is not None else next(
            (o for o in self._owner if o is not None), None
        )  # fmt: skip
        if owner is not None:
            first = send(self._node(owner))
            return asyncio.ensure_future(self._follow(first, slot, send, command))
        return asyncio.ensure_future(self._late(slot, send, command))

    async def _late(self, slot: int | None, send: Any, command: Any) -> Any:
        await self.refresh()
        owner = self._owner[slot] if slot is not None else next(
            (o for o in self._owner if o is not None), None
        )  # fmt: skip
        if owner is None:
            raise EngineConnectionError(f"no primary serves hash slot {slot}")
        return await self._follow(send(self._node(owner)), slot, send, command)

    async def _follow(self, pending: Any, slot: int | None, send: Any, command: Any) -> Any:
        for _ in range(self.max_redirects + 1):
            try:
                return await pending
            except ResponseError as exc:
                moved = _redirect(exc)
                if moved is None:
                    word = _not_run(exc)
                    if word == "TRYAGAIN" and slot is not None:
                        await asyncio.sleep(0.05)
                        pending = send(self._node(self._owner[slot] or self._seeds[0]))
                        continue
                    if word == "CLUSTERDOWN":
                        self._refresh_soon()
                        raise EngineConnectionError(f"the cluster is down: {exc}") from exc
                    raise
                kind, moved_slot, address = moved
                if kind == "MOVED":
                    self._owner[moved_slot] = address
                    self._refresh_soon()
                    pending = send(self._node(address))
                elif command is not None:
                    pending = self._node(address).calls(
                        [("ASKING",), *command], raise_on_error=False
                    )
                    pending = _second(pending)
                else:
                    raise
            except EngineConnectionError:
                # A primary is gone or unreachable: answer now (503), look again soon.
                self._refresh_soon()
                raise
        raise EngineConnectionError(f"more than {self.max_redirects} redirections for slot {slot}")

    async def _gather(self, futures: list[asyncio.Future[Any]], raise_on_error: bool) -> list[Any]:
        replies: list[Any] = []
        failure: BaseException | None = None
        for fut in futures:
            try:
                replies.append(await fut)
            except ResponseError as exc:
                if raise_on_error and failure is None:
                    failure = exc
                replies.append(exc)
            except BaseException as exc:
                failure = failure or exc
                replies.append(exc)
        if failure is not None and (raise_on_error or not isinstance(failure, ResponseError)):
            raise failure
        return replies

    # --- the slot map ----------------------------------------------------------------

    def _refresh_soon(self) -> None:
        if self._closed or (self._refreshing is not None and not self._refreshing.done()):
            return
        # At most one refresh per 100 ms: during a failover every request fails alike.
        if time.monotonic() - self._refreshed_at < 0.1:
            return
        self._refreshing = asyncio.ensure_future(self._refresh_quietly())

    async def _refresh_quietly(self) -> None:
        with contextlib.suppress(EngineConnectionError, ResponseError, OSError):
            await self._load_slots()

    async def refresh(self) -> None:
        """Load the slot map now (the first command does this by itself)."""
        if self._refreshing is not None and not self._refreshing.done():
            await asyncio.shield(self._refreshing)
            if any(o is not None for o in self._owner):
                return
        await self._load_slots()

    async def _load_slots(self) -> None:
        self._refreshed_at = time.monotonic()
        known = list(dict.fromkeys([*self._nodes, *self._seeds]))
        last: Exception | None = None
        for address in known:
            try:
                reply = await self._node(address).call("CLUSTER", "SLOTS")
            except (EngineConnectionError, ResponseError, OSError) as exc:
                last = exc
                continue
            owner: list[str | None] = [None] * SLOTS
            for entry in reply:
                first, last_slot, primary = int(entry[0]), int(entry[1]), entry[2]
                host = primary[0] or address.rsplit(":", 1)[0]
                address_of_primary = f"{host}:{int(primary[1])}"
                for slot in range(first, last_slot + 1):
                    owner[slot] = address_of_primary
            self._owner = owner
            self._drop_strangers()
            return
        raise EngineConnectionError(f"no cluster node answered CLUSTER SLOTS: {last}")

    def _drop_strangers(self) -> None:
        """Close connections to nodes that no longer own any slot (demoted primaries)."""
        owners = set(self._owner)
        for address in [a for a in self._nodes if a not in owners and a not in self._seeds]:
            closing = asyncio.ensure_future(self._nodes.pop(address).aclose())
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)


async def _replicated(client: ClusterEngineClient, node: EngineClient,
                      done: asyncio.Future[list[Any]], acked: asyncio.Future[Any],
                      replicas: int) -> list[Any]:  # fmt: skip
    """The transaction's replies, once `replicas` replicas hold its writes.

    A primary with fewer replicas attached than asked (its replica died, or it is a
    replica just promoted whose old primary has not rejoined) is held to the replicas it
    has: refusing every write until a replica returns would turn one lost node into an
    outage. `ROLE` says how many are attached; that case is counted in `degraded`."""
    try:
        replies = await done
    finally:
        # WAIT was sent behind EXEC: read its reply even when the transaction failed.
        count = int(await acked)
    if count < replicas:
        role = await node.call("ROLE")
        attached = len(role[2]) if isinstance(role, list) and len(role) > 2 else 0
        if count < min(replicas, attached):
            raise EngineConnectionError(f"written, but {count} of {replicas} replicas confirmed")
        client.degraded_writes += 1
    return replies


async def _second(pending: asyncio.Future[list[Any]]) -> Any:
    """The reply of the command sent after ASKING."""
    replies = await pending
    if isinstance(replies[1], ResponseError):
        raise replies[1]
    return replies[1]


async def is_cluster(url: str, *, timeout: float = 1.0) -> bool:
    """Whether the engine at (the first seed of) `url` runs in cluster mode."""
    if url.startswith("unix://"):
        probe = EngineClient(url, connect_timeout=timeout)
    else:
        host, port = parse_seeds(url)[0]
        scheme = "rediss" if url.startswith("rediss://") else "redis"
        probe = EngineClient(f"{scheme}://{host}:{port}", connect_timeout=timeout)
    try:
        info = await asyncio.wait_for(probe.call("INFO", "cluster"), timeout)
    finally:
        await probe.aclose()
    return "cluster_enabled:1" in str(info)
