"""Running the aiohttp app in a process: the single-process server and each worker.

Kept out of `__main__` so that worker processes (multiprocessing spawn) can import it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from server.settings import Settings
from server.supervisor import TICK, EngineKeeper

# Liveness: None while the process can recover, else why it cannot.
Liveness = Callable[[], str | None]


def _die_with_parent() -> None:
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


# glibc's mallopt parameter number (malloc.h).
_M_MMAP_THRESHOLD = -3


def _return_big_buffers_to_the_os() -> None:
    """Serve every allocation of 1 MiB or more with its own mmap, returned when freed.

    Each password hash (scrypt, N=2**14) takes a 16 MiB buffer in an executor thread.
    glibc's default threshold is dynamic: once such a buffer is freed it rises to
    16 MiB, later buffers come from the thread's arena, and every thread then keeps
    ~16 MiB resident for good (~100 MB of an idle server after a few sign-ins). A fixed
    threshold turns that off; an mmap per hash costs little next to the hash itself.
    """
    with contextlib.suppress(Exception):  # not glibc: nothing to do
        ctypes.CDLL("libc.so.6").mallopt(_M_MMAP_THRESHOLD, 1 << 20)


# Allocations of container objects between two young-generation collections (CPython:
# 700). See _collect_garbage_for_a_server.
GC_YOUNG_THRESHOLD = 10_000


def _collect_garbage_for_a_server() -> None:
    """Fewer, cheaper cyclic garbage collections on a server's heap.

    A server holds a large long-lived heap (its modules, and per socket a connection,
    its subscriptions, its session) and turns over many short-lived objects per
    request. With CPython's defaults, a young collection every 700 allocations catches
    the objects of requests in flight, promotes them, and so triggers full collections
    over the whole heap: on the social load test (2,000 sockets connecting, then 1,000
    posts/s for 10 s) 6-10 full collections of ~60-95 ms CPU each, and 13% of the
    server's CPU in the collector (perf). A young generation of 10,000 lets in-flight
    objects die first, and freezing what exists once the app has started (gc.freeze:
    never scanned again) takes the static heap out of every collection: 2 full
    collections of ~20 ms in the same run, and 11-37% less server CPU per post
    (interleaved pairs: 270 -> 239, 351 -> 279, 230 -> 192, 412 -> 258 us).
    Nothing is leaked by it: reference counting still frees everything acyclic, cycles
    are still collected, and the frozen objects live as long as the process anyway.
    """
    gc.set_threshold(GC_YOUNG_THRESHOLD, 10, 10)


async def _freeze_startup_heap(_app: Any) -> None:
    gc.collect()
    gc.freeze()


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover
        return asyncio.new_event_loop()


def run_worker(
    settings: Settings, url: str, sock: socket.socket | None, *,
    keeper: EngineKeeper | None = None, liveness: Liveness | None = None,
) -> None:  # fmt: skip
    """Serve until stopped. `keeper`: the embedded engine this process supervises itself
    (a single process); on giving up it makes /healthz fail and stops the server."""
    from aiohttp import web

    from server.app import create_app
    from server.handlers.ops import LIVENESS
    from server.handlers.security import RedactingAccessLogger

    _return_big_buffers_to_the_os()
    _collect_garbage_for_a_server()
    loop = _new_loop()
    asyncio.set_event_loop(loop)
    app = create_app(settings, url)
    if keeper is not None:
        app[LIVENESS] = lambda: keeper.failure
        app.cleanup_ctx.append(_keeping(keeper))
    elif liveness is not None:
        app[LIVENESS] = liveness
    app.on_startup.append(_freeze_startup_heap)  # after the services have started
    print(f"Echo Hub listening on {settings.base_url} (pid {os.getpid()})", flush=True)
    web.run_app(
        app,
        host=None if sock else settings.host,
        port=None if sock else settings.port,
        sock=sock,
        reuse_port=settings.workers > 1 or None,
        print=None,
        loop=loop,
        shutdown_timeout=5.0,
        # aiohttp's default of 128 drops SYNs when thousands of sockets connect at once;
        # the kernel caps this at net.core.somaxconn.
        backlog=4096,
        handle_signals=True,
        # Invite codes in paths and tokens in query strings never reach the log.
        access_log_class=RedactingAccessLogger,
        # After an answer to a request whose body was not read (refused: too slow, too
        # big), aiohttp keeps reading it so the client sees the answer before a reset;
        # 2 s, not its default 10 s, so a slow-body client is gone soon after its 408.
        lingering_time=2.0,
    )


def _keeping(keeper: EngineKeeper) -> Callable[[Any], AsyncIterator[None]]:
    """The app's supervision of its own engine, stepped on the event loop (the main
    thread, which the engine's death signal follows)."""

    async def keep(_app: Any) -> AsyncIterator[None]:
        async def loop() -> None:
            while keeper.failure is None:
                await asyncio.sleep(TICK)
                keeper.tick(time.monotonic())
            # Liveness now fails; stop like on SIGTERM (sockets closed with 1001).
            os.kill(os.getpid(), signal.SIGTERM)

        task = asyncio.create_task(loop())
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return keep


def worker_main(settings: Settings, url: str, unrecoverable: Any) -> None:
    """A worker of `--workers N` (spawned by the master, server.supervisor)."""
    _die_with_parent()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    def liveness() -> str | None:
        return "the embedded engine cannot be restarted" if unrecoverable.value else None

    try:
        run_worker(settings, url, None, liveness=liveness)
    except KeyboardInterrupt:
        # Ctrl-C reaches the whole process group; a worker still starting has no signal
        # handlers yet. The master stops everything: nothing to report here.
        pass
