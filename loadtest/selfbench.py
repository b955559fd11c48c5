"""How much CPU the load generator's receive path costs per delivered frame.

    python -m loadtest.selfbench                     # the default shapes
    python -m loadtest.selfbench --sockets 1000 --events 200 --batch 1,20 --repeat 3

No network and no server: it builds what Echo Hub sends to its subscribers (unmasked
websocket text frames carrying ~360-byte ``post.created`` events, byte-identical for
every subscriber of the same post) and feeds them straight into ``data_received`` of
N real :class:`~loadtest.client.EchoHubSocket` objects, exactly as the event loop
would after a read: in reads of one frame, of ``K`` frames, and as a stream cut into
fixed-size reads (frames split across reads). It reports process CPU time per frame
(``time.process_time``, so another busy process on the machine matters less than for
a wall-clock figure), checks that every frame was counted exactly once per socket,
and that duplicates and gaps are still seen.

Only the parsing and accounting is measured, not the kernel's ``recv`` nor uvloop's
callback: those cost about the same per read whatever the client does.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
from collections.abc import Iterator
from typing import Any

import orjson

from loadtest import wsproto
from loadtest.client import Counters, EchoHubSocket
from loadtest.codec import CODECS, marker_text
from loadtest.stats import SeqTracker

HANDLE = "ltymk6p0"
T0_NS = 1_795_325_063_778_883_023


def event_payload(poster: int, seq: int, sent_ns: int, handle: str = HANDLE) -> bytes:
    """An Echo Hub ``post.created`` event as the server encodes it (JSON, ~360 bytes)."""
    text = marker_text(poster, seq, sent_ns)
    event = {
        "op": "event",
        "topic": f"user:{handle}",
        "cursor": str(1_795_325_063_780_419 + seq * 1531),
        "type": "post.created",
        "data": {
            "id": f"01a201b6726{seq * 7919:09x}",
            "author": {"handle": handle, "display_name": handle},
            "text": text,
            "segments": [{"text": text}],
            "visibility": "public",
            "community": None,
            "reply_to": None,
            "created_at": "2026-11-22T05:24:23.779Z",
        },
    }
    return orjson.dumps(event)


def event_frames(events: int, poster: int = 0) -> list[bytes]:
    """``events`` consecutive posts of ``poster``, each one unmasked server text frame."""
    return [
        wsproto.encode_frame(
            wsproto.OP_TEXT, event_payload(poster, s, T0_NS + s * 1_000_000), mask=False
        )
        for s in range(events)
    ]


def reads(frames: list[bytes], shape: str, batch: int) -> list[bytes]:
    """What one socket's reads look like: ``frames`` K at a time, or a stream cut in
    ``batch``-byte pieces (``shape == "stream"``)."""
    if shape == "frames":
        return [b"".join(frames[i : i + batch]) for i in range(0, len(frames), batch)]
    stream = b"".join(frames)
    return [stream[i : i + batch] for i in range(0, len(stream), batch)]


def make_sockets(n: int, counters: Counters) -> list[EchoHubSocket]:
    socks = []
    for _ in range(n):
        s = EchoHubSocket("127.0.0.1:1", CODECS["json"], counters, token=None)
        s._upgraded = True  # as after the handshake
        s.trackers = {0: SeqTracker()}
        socks.append(s)
    return socks


def run_shape(
    sockets: int, events: int, shape: str, batch: int, sample_every: int
) -> dict[str, Any]:
    """Feed ``events`` frames to each of ``sockets`` sockets; CPU µs per frame."""
    counters = Counters(sample_every)
    socks = make_sockets(sockets, counters)
    per_sock = reads(event_frames(events), shape, batch)
    # every socket gets its own bytes objects, as after a recv()
    plan: list[list[bytes]] = [[bytes(bytearray(r)) for r in per_sock] for _ in socks]
    gc.collect()
    gc.disable()
    try:
        t0 = time.process_time()
        # round robin over the sockets, one read each, as the event loop does
        for i in range(len(per_sock)):
            for s, mine in zip(socks, plan, strict=True):
                s.data_received(mine[i])
        samples = counters.take_hist().count  # what the worker's tick costs, too
        cpu = time.process_time() - t0
    finally:
        gc.enable()
    frames = sockets * events
    bad = sum(1 for s in socks if s.trackers is None or s.trackers[0].state() != (events, [], 0))
    if counters.delivered != frames or bad:
        raise AssertionError(f"miscounted: {counters.delivered} of {frames}, {bad} bad trackers")
    return {
        "shape": f"{shape} {batch}",
        "frames": frames,
        "cpu_s": cpu,
        "us_per_frame": cpu * 1e6 / frames,
        "frames_per_cpu_s": frames / cpu if cpu else 0.0,
        "samples": samples,
    }


def check_anomalies() -> None:
    """A duplicated frame and a missing one are still seen when the frames are cached."""
    counters = Counters(1)
    socks = make_sockets(2, counters)
    frames = event_frames(6)
    for s in socks:
        s.data_received(b"".join(frames[:3]))
    socks[0].data_received(frames[2] + frames[3] + frames[5])  # a duplicate, a gap
    socks[1].data_received(frames[3][:100])  # split across two reads
    socks[1].data_received(frames[3][100:] + frames[4] + frames[5])
    assert socks[0].trackers is not None and socks[1].trackers is not None
    assert socks[0].trackers[0].state() == (4, [5], 1), socks[0].trackers[0].state()
    assert socks[1].trackers[0].state() == (6, [], 0), socks[1].trackers[0].state()
    assert counters.delivered == 12  # frames counted, the duplicate too


def shapes(args: argparse.Namespace) -> Iterator[tuple[str, int]]:
    for b in args.batch.split(","):
        if b.strip():
            yield "frames", int(b)
    for b in args.stream.split(","):
        if b.strip():
            yield "stream", int(b)


async def main_async(args: argparse.Namespace) -> None:
    check_anomalies()
    size = len(event_frames(1)[0])
    print(
        f"{args.sockets} sockets x {args.events} frames of {size} bytes, "
        f"latency sampled 1 in {args.sample_every}; best of {args.repeat}"
    )
    print(f"{'reads':<14} {'µs/frame':>9} {'frames/CPU-s':>13}")
    for shape, batch in shapes(args):
        best = min(
            (
                run_shape(args.sockets, args.events, shape, batch, args.sample_every)
                for _ in range(args.repeat)
            ),
            key=lambda r: r["us_per_frame"],
        )
        label = f"{batch} frame/read" if shape == "frames" else f"{batch} B reads"
        print(f"{label:<14} {best['us_per_frame']:>9.3f} {best['frames_per_cpu_s']:>13,.0f}")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m loadtest.selfbench", description=__doc__)
    p.add_argument("--sockets", type=int, default=1000)
    p.add_argument("--events", type=int, default=200, help="frames per socket")
    p.add_argument("--batch", default="1,10,50", help="frames per read, comma-separated")
    p.add_argument("--stream", default="16384", help="stream cut in reads of these sizes")
    p.add_argument("--sample-every", type=int, default=20, help="latency sample 1 in N")
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    try:
        import uvloop

        uvloop.run(main_async(args))
    except ImportError:  # pragma: no cover
        asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
