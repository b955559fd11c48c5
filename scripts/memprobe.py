"""Where an idle socket's memory goes: Echo Hub in this process, sockets from the load tester.

    .venv/bin/python scripts/memprobe.py 1000 --rate 200 --trace 25

Starts an embedded engine and the app (as server/runner.py wires it) on a loopback
port, warms up with 200 sockets, then has `python -m loadtest connect` open N
authenticated, subscribed sockets and hold them. Once all N are subscribed it prints
RSS per socket, gc-tracked objects per socket by type and, with --trace, the
tracemalloc difference per socket grouped by the two innermost frames of each
allocation's traceback. Tracing makes a connection storm slow: use --rate and a few
thousand sockets at most. Loopback only; everything it starts it stops.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import ctypes
import gc
import os
import shutil
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import IO

import uvloop
from aiohttp import web

from server.app import create_app
from server.engine import EmbeddedEngine
from server.services.container import SERVICES
from server.settings import settings_from_env


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def type_counts() -> collections.Counter[str]:
    return collections.Counter(type(o).__qualname__ for o in gc.get_objects())


def where(frame: tracemalloc.Frame) -> str:
    name = frame.filename.split("site-packages/")[-1]
    return f"{name.replace(str(Path.cwd()) + '/', '')}:{frame.lineno}"


async def probe(args: argparse.Namespace, tmp: Path, errors: IO[str]) -> None:
    engine = EmbeddedEngine(tmp / "data")
    (tmp / "data").mkdir()
    url = engine.start()
    runner = None
    try:
        os.environ["ECHOHUB_RATE_LIMITS"] = "off"  # as the load tester's own server
        settings = settings_from_env(host="127.0.0.1", port=0, data_dir=str(tmp / "data"))
        app = create_app(settings, url)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
        await site.start()
        port = runner.addresses[0][1]
        base = f"http://127.0.0.1:{port}"
        svc = app[SERVICES]
        link = await svc.accounts.admin_invite_if_empty(base)
        assert link is not None
        invite = link.rsplit("/", 1)[1]

        async def load(n: int, hold: float, rate: float) -> asyncio.subprocess.Process:
            argv = [sys.executable, "-m", "loadtest", "connect", "--url", base,
                    "--invite", invite, "--clients", str(n), "--sources", str(args.sources),
                    "--hold", str(hold), "--accounts-file", str(tmp / "accounts.json"),
                    "--quiet"]  # fmt: skip
            if rate:
                argv += ["--connect-rate", str(rate)]
            return await asyncio.create_subprocess_exec(
                *argv, stdout=asyncio.subprocess.DEVNULL, stderr=errors
            )

        # Warm-up: accounts, sign-ins, the channel, every code path once.
        await (await load(200, 1, 0)).wait()
        while svc.hub.connection_count:  # noqa: ASYNC110 (the load tester's sockets going)
            await asyncio.sleep(0.2)
        gc.collect()
        if args.trim:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        if args.trace:
            tracemalloc.start(args.trace)
        types0, rss0 = type_counts(), rss_kib()
        snap0 = tracemalloc.take_snapshot() if args.trace else None
        hold = args.n / (args.rate or 500) + 60
        proc = await load(args.n, hold, args.rate)
        started = time.monotonic()
        while svc.hub.subscription_count < args.n and proc.returncode is None:  # noqa: ASYNC110
            await asyncio.sleep(0.5)
        took = time.monotonic() - started
        await asyncio.sleep(2)
        n = max(1, svc.hub.connection_count)
        rss1 = rss_kib()
        print(f"{n} sockets in {took:.1f} s: RSS {rss0} -> {rss1} KiB, "
              f"{(rss1 - rss0) / n:.2f} KiB per socket")  # fmt: skip
        gc.collect()
        types1 = type_counts()
        print("gc-tracked objects per socket:")
        for name, count in (types1 - types0).most_common():
            if count >= n // 2:
                print(f"  {count / n:6.2f}  {name}")
        if snap0 is not None:
            ignore = [tracemalloc.Filter(False, tracemalloc.__file__)]
            snap1 = tracemalloc.take_snapshot().filter_traces(ignore)
            stats = snap1.compare_to(snap0.filter_traces(ignore), "traceback")
            total = sum(s.size_diff for s in stats)
            print(f"tracemalloc: {total / n:.0f} B per socket; by the two innermost frames:")
            grouped: collections.Counter[str] = collections.Counter()
            blocks: collections.Counter[str] = collections.Counter()
            for s in stats:
                key = " < ".join(where(f) for f in list(s.traceback)[::-1][:2])
                grouped[key] += s.size_diff
                blocks[key] += s.count_diff
            for key, size in grouped.most_common(args.top):
                print(f"  {size / n:6.0f} B {blocks[key] / n:6.2f} blocks  {key}")
        proc.terminate()
        await proc.wait()
    finally:
        if runner is not None:
            await runner.cleanup()
        engine.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("n", type=int, help="sockets")
    parser.add_argument("--rate", type=float, default=0.0, help="connects/s (0: a storm)")
    parser.add_argument("--trace", type=int, default=0, help="tracemalloc frames (0: off)")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--sources", type=int, default=4)
    parser.add_argument("--trim", action="store_true", help="malloc_trim(0) before measuring")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="memprobe-"))
    try:
        with open(tmp / "loadtest.err", "a") as errors:
            uvloop.run(probe(args, tmp, errors))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
