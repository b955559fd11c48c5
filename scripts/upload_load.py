"""Upload load: N members upload a large JPEG over and over for a while, and the peak
RSS of the server's process tree (its media workers included) is sampled meanwhile.

Run it beside `echohub-loadtest fanout` to see what decoding costs the hub:

    python scripts/upload_load.py --url http://127.0.0.1:8080 --data-dir ./var \
        --clients 10 --megapixels 12 --duration 30 --server-pid PID

Accounts come from a fresh admin invite (`echohub invite --admin --data-dir ...`).
The server must run with `ECHOHUB_RATE_LIMITS=off` (or a large `uploads` limit).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
from PIL import Image


def big_jpeg(megapixels: float) -> bytes:
    """A photo-like JPEG (noise over a gradient) of about `megapixels`."""
    width = int((megapixels * 1_000_000 * 4 / 3) ** 0.5)
    height = int(width * 3 / 4)
    noise = Image.effect_noise((width, height), 40).convert("RGB")
    gradient = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    buf = io.BytesIO()
    Image.blend(noise, gradient, 0.5).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def invite_code(data_dir: str) -> str:
    command = [sys.executable, "-m", "server", "invite", "--admin", "--data-dir", data_dir]
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60)
    match = re.search(r"/join/(\S+)", out.stdout + out.stderr)
    if match is None:
        raise SystemExit(f"no invite printed: {out.stdout} {out.stderr}")
    return match.group(1)


def tree_rss(pid: int) -> int:
    """RSS in bytes of `pid` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


async def uploader(session: aiohttp.ClientSession, url: str, token: str, data: bytes,
                   until: float, stats: dict[str, list[float]]) -> None:  # fmt: skip
    headers = {"Authorization": f"Bearer {token}"}
    while time.monotonic() < until:
        form = aiohttp.FormData()
        form.add_field("file", io.BytesIO(data), filename="big.jpg", content_type="image/jpeg")
        started = time.monotonic()
        async with session.post(f"{url}/api/media", data=form, headers=headers) as resp:
            await resp.read()
            key = "ok" if resp.status == 201 else f"status {resp.status}"
        stats.setdefault(key, []).append(time.monotonic() - started)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--data-dir", required=True, help="the server's, for an invite")
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--megapixels", type=float, default=12.0)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--server-pid", type=int, default=0)
    args = parser.parse_args()
    if not 1 <= args.clients <= 100 or not 1 <= args.duration <= 600:
        raise SystemExit("clients 1..100, duration 1..600 s")
    data = big_jpeg(args.megapixels)
    code = invite_code(args.data_dir)
    async with aiohttp.ClientSession() as session:
        inviter = await signup(session, args.url, code, "up_root")
        resp = await session.post(f"{args.url}/api/invites", json={"uses": args.clients},
                                  headers={"Authorization": f"Bearer {inviter}"})  # fmt: skip
        member_code = (await resp.json())["code"]
        tokens = [await signup(session, args.url, member_code, f"up{i}")
                  for i in range(args.clients)]  # fmt: skip
        stats: dict[str, list[float]] = {}
        until = time.monotonic() + args.duration
        peak = 0
        tasks = [asyncio.create_task(uploader(session, args.url, t, data, until, stats))
                 for t in tokens]  # fmt: skip
        while not all(t.done() for t in tasks):
            if args.server_pid:
                peak = max(peak, await asyncio.to_thread(tree_rss, args.server_pid))
            await asyncio.sleep(0.5)
        for task in tasks:
            task.result()
    size = len(data) / 1e6
    print(f"file {size:.1f} MB, {args.megapixels:.0f} MP, {args.clients} clients, "
          f"{args.duration:.0f} s")  # fmt: skip
    for key, times in sorted(stats.items()):
        times.sort()
        print(f"{key}: {len(times)} uploads ({len(times) / args.duration:.2f}/s), "
              f"p50 {times[len(times) // 2]:.2f} s, max {times[-1]:.2f} s")  # fmt: skip
    if args.server_pid:
        print(f"peak RSS of the server and its workers: {peak / 2**20:.0f} MiB")


async def signup(session: aiohttp.ClientSession, url: str, code: str, prefix: str) -> str:
    handle = f"{prefix}_{secrets.token_hex(3)}"
    body = {"invite": code, "handle": handle, "password": "correct horse battery",
            "display_name": handle, "birthdate": "1990-01-01"}  # fmt: skip
    async with session.post(f"{url}/api/signup", json=body) as resp:
        if resp.status != 201:
            raise SystemExit(f"sign-up failed: {resp.status} {await resp.text()}")
        return str((await resp.json())["token"])


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    asyncio.run(main())
