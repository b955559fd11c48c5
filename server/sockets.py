"""Sockets under asyncio transports: what the hub, the bus and the engine client share."""

from __future__ import annotations

import asyncio


def plain_fd(transport: asyncio.BaseTransport) -> int:
    """The socket's fd if it may be read or written directly (no TLS), else -1."""
    if transport.get_extra_info("sslcontext") is not None:
        return -1
    sock = transport.get_extra_info("socket")
    try:
        return int(sock.fileno()) if sock is not None else -1
    except (AttributeError, OSError, ValueError):
        return -1
