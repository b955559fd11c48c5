"""Latency of other requests while passwords are being guessed (issue 13, item 7).

    .venv/bin/python scripts/loginflood.py [--guessers 40] [--seconds 8] [--limits]

Starts `python -m server serve` (embedded engine in a temporary data dir, scrypt at
its default cost), signs up one member, then runs `--guessers` concurrent clients
posting wrong passwords as fast as they are answered while one client reads
`GET /api/me` in a loop. Prints that client's latency (p50/p99/max), the guesses
answered per second by status, and the server's CPU time. Without `--limits` the
sign-in limits are off (ECHOHUB_RATE_LIMITS=off), so what is measured is the hashing
pool alone. Loopback only; bounded in time.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import re
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support import PASSWORD, start_server, stop_server


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, clock ticks


async def run(guessers: int, seconds: float, limits: bool) -> None:
    env = {"ECHOHUB_PASSWORD_COST": str(2**14)}
    if not limits:
        env["ECHOHUB_RATE_LIMITS"] = "off"
    else:
        env["ECHOHUB_RATE_LIMITS"] = "posts=10/60:5"
    server = start_server("--data-dir", tempfile.mkdtemp(prefix="loginflood-"), env=env)
    try:
        code = re.search(r"/join/(\S+)", server.read_output())
        assert code is not None
        async with aiohttp.ClientSession(server.base) as http:
            body = {"invite": code.group(1), "handle": "target", "password": PASSWORD,
                    "display_name": "Target", "birthdate": "1990-05-01"}  # fmt: skip
            resp = await http.post("/api/signup", json=body)
            token = (await resp.json())["token"]
        stop_at = time.monotonic() + seconds
        statuses: collections.Counter[int] = collections.Counter()
        latencies: list[float] = []

        async def guesser() -> None:
            async with aiohttp.ClientSession(server.base) as http:
                while time.monotonic() < stop_at:
                    guess = {"handle": "target", "password": "wrong guess"}
                    resp = await http.post("/api/login", json=guess)
                    await resp.read()
                    statuses[resp.status] += 1

        async def reader() -> None:
            headers = {"Authorization": f"Bearer {token}"}
            async with aiohttp.ClientSession(server.base) as http:
                await asyncio.sleep(0.5)  # let the flood build up first
                while time.monotonic() < stop_at:
                    started = time.perf_counter()
                    resp = await http.get("/api/me", headers=headers)
                    await resp.read()
                    latencies.append(time.perf_counter() - started)

        cpu0 = cpu_seconds(server.proc.pid)
        wall0 = time.monotonic()
        await asyncio.gather(reader(), *(guesser() for _ in range(guessers)))
        wall = time.monotonic() - wall0
        cpu = cpu_seconds(server.proc.pid) - cpu0
    finally:
        await server.close()
        stop_server(server)
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    print(f"guessers {guessers}, {wall:.1f} s, limits {'on' if limits else 'off'}")
    print(f"GET /api/me: {len(latencies)} answered, p50 {pct(0.5):.1f} ms, "
          f"p99 {pct(0.99):.1f} ms, max {latencies[-1] * 1000:.1f} ms")  # fmt: skip
    print("guesses answered per second: "
          + ", ".join(f"{s}: {n / wall:.1f}" for s, n in sorted(statuses.items())))  # fmt: skip
    print(f"server CPU {cpu:.2f} s over {wall:.1f} s ({cpu / wall:.2f} cores)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--guessers", type=int, default=40)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--limits", action="store_true", help="leave the sign-in limits on")
    args = parser.parse_args()
    asyncio.run(run(args.guessers, args.seconds, args.limits))


if __name__ == "__main__":
    main()
