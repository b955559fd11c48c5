"""Running the aiohttp app in a process: the single-process server and each worker.

Kept out of `__main__` so that worker processes (multiprocessing spawn) can import it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket

from server.settings import Settings


def _die_with_parent() -> None:
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # pragma: no cover
        return asyncio.new_event_loop()


def run_worker(settings: Settings, url: str, sock: socket.socket | None) -> None:
    from aiohttp import web

    from server.app import create_app

    loop = _new_loop()
    asyncio.set_event_loop(loop)
    app = create_app(settings, url)
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
    )


def worker_main(settings: Settings, url: str) -> None:
    _die_with_parent()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run_worker(settings, url, None)
