"""The write path: every byte to a connection goes through `Writer.write`.

Events (the flush, and the fan-out's direct write for what the kernel did not take of a
chunk), acks and errors, pings, pongs, the close frame: the kernel first, then the
transport up to `TRANSPORT_BUDGET`, then the connection's own `held` list, moved into the
transport as it drains. A write reports a connection whose unsent bytes (transport +
held) passed the cap; the hub closes it 4008, dropping what is held, so the close
frame follows at most a budget of whole frames. One slow or hostile socket (a client
that pings and never reads) costs at most the cap.
"""

from __future__ import annotations

import asyncio
import os

from server.hub.connection import TRANSPORT_BUDGET, Connection

_write = os.write


class Writer:
    def __init__(self, limit: int) -> None:
        # Unsent bytes per connection beyond which it is too slow (4008).
        self.limit = limit
        self._tasks: set[asyncio.Future[None]] = set()

    def write(self, conn: Connection, data: bytes) -> bool:
        """The write path: `data` (whole frames, or the rest of a frame the kernel took
        the start of) to `conn`, after anything it holds.

        Straight to the socket while nothing waits in the transport; what the kernel
        does not take goes to the transport while it holds at most `TRANSPORT_BUDGET`,
        else to `conn.held`. True when `conn` is now too slow (unsent bytes over the
        cap): the caller closes it 4008, at once or after the fan-out it is inside.
        """
        transport = conn.transport
        if transport.is_closing():
            return False
        if conn.held is not None:
            # Not only when the drain task wakes: every write moves what the transport
            # has room for, so a busy loop (a long flush ahead of that task) does not
            # leave the socket idle while frames wait here.
            if transport.get_write_buffer_size() <= TRANSPORT_BUDGET:
                self._release(conn)
            if conn.held is not None:
                return self._hold(conn, data)
        queued = 0
        if conn.backlog:
            queued = transport.get_write_buffer_size()
            conn.backlog = queued > 0
        taken = 0
        if not queued and conn.fd >= 0:
            # Nothing waits in the transport, so order is kept by writing straight to
            # the socket: ~0.6 µs less per write than the transport's bookkeeping
            # (measured). An error the transport meets again on its own write, and
            # handles.
            try:
                taken = _write(conn.fd, data)
            except OSError:
                pass
            if taken == len(data):
                return False
        elif queued > TRANSPORT_BUDGET:
            return self._hold(conn, data)
        transport.write(data[taken:] if taken else data)
        conn.backlog = True
        return queued + len(data) - taken > self.limit

    def _hold(self, conn: Connection, data: bytes) -> bool:
        held = conn.held
        if held is None:
            held = conn.held = []
            task = asyncio.ensure_future(self._drain(conn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        held.append(data)
        conn.held_bytes += len(data)
        return conn.held_bytes + conn.transport.get_write_buffer_size() > self.limit

    async def _drain(self, conn: Connection) -> None:
        """Move what `conn` holds into its transport as the transport drains."""
        transport = conn.transport
        try:
            while conn.held and not conn.closed:
                await conn.closer.drained()
                held = conn.held
                if not held or conn.closed or transport.is_closing():
                    break
                self._release(conn)
        except Exception:  # the connection was lost: the adapter ends it
            return
        finally:
            if not conn.held:
                conn.held, conn.held_bytes = None, 0

    @staticmethod
    def _release(conn: Connection) -> None:
        """Move held frames, in order, into the transport while it is within budget (at
        least one: this always makes progress; the cap is on held + transport, which
        moving does not change)."""
        held, transport = conn.held, conn.transport
        if not held:
            return
        moved = 0
        while moved < len(held) and (
            not moved or transport.get_write_buffer_size() <= TRANSPORT_BUDGET
        ):
            transport.write(held[moved])
            conn.held_bytes -= len(held[moved])
            moved += 1
        del held[:moved]
        conn.backlog = True
        if not held:
            conn.held, conn.held_bytes = None, 0

    async def room(self, conn: Connection) -> None:
        """Return once `conn` holds nothing back and its transport is within budget, or
        it is closed (a replay writes its next slice then)."""
        transport = conn.transport
        while (
            not conn.closed
            and not transport.is_closing()
            and (conn.held or transport.get_write_buffer_size() > TRANSPORT_BUDGET)
        ):
            try:
                await conn.closer.drained()
            except Exception:
                return
