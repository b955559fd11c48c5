"""The counting fast path: frames fed to sockets as reads, every delivery accounted.

The parser counts marker events inline, parsing each distinct payload once for the
whole process; these tests pin down that the shortcut never changes the accounting:
every frame is counted on every socket, duplicates and gaps still show, frames cut by
reads, control frames, fragments and protocol errors behave as on the general path.
"""

from __future__ import annotations

import random

import orjson
import pytest

from loadtest import client, selfbench, wsproto
from loadtest.client import Counters, EchoHubSocket, SocketIOSocket
from loadtest.codec import CODECS, MARKER_RE, marker_text
from loadtest.stats import SeqTracker

T = selfbench.T0_NS


def frame(payload: bytes, op: int = wsproto.OP_TEXT, fin: bool = True) -> bytes:
    return wsproto.encode_frame(op, payload, mask=False, fin=fin)


def event(poster: int, seq: int, sent_ns: int = T) -> bytes:
    return frame(selfbench.event_payload(poster, seq, sent_ns))


def echohub(counters: Counters, posters: int = 1) -> EchoHubSocket:
    sock = EchoHubSocket("127.0.0.1:1", CODECS["json"], counters)
    sock._upgraded = True  # as after the handshake
    sock.trackers = {p: SeqTracker() for p in range(posters)}
    return sock


def state(sock: EchoHubSocket | SocketIOSocket, poster: int = 0) -> tuple[int, list[int], int]:
    assert sock.trackers is not None
    return sock.trackers[poster].state()


async def test_same_frames_on_many_sockets_are_each_counted() -> None:
    counters = Counters(sample_every=1)
    socks = [echohub(counters) for _ in range(5)]
    stream = b"".join(event(0, s, T + s) for s in range(10))
    for s in socks:
        s.data_received(stream)
    assert counters.delivered == 50
    assert [state(s) for s in socks] == [(10, [], 0)] * 5
    assert len(counters.markers) == 10  # each payload parsed once for all sockets
    assert counters.hist.count == 50
    assert all(sock.parser.frames == 10 for sock in socks)
    assert counters.reads == 5


async def test_a_duplicate_and_a_gap_are_seen_through_the_cache() -> None:
    counters = Counters()
    a, b = echohub(counters), echohub(counters)
    frames = [event(0, s) for s in range(6)]
    b.data_received(b"".join(frames))  # fills the cache
    a.data_received(b"".join(frames[:3]) + frames[2] + frames[3] + frames[5])
    assert state(a) == (4, [5], 1)  # 2 twice, 4 missing
    assert state(b) == (6, [], 0)
    assert counters.delivered == 12  # frames counted, the duplicate too
    a.data_received(frames[4])  # the gap filled late
    assert state(a) == (6, [], 1)


@pytest.mark.parametrize("cut", [1, 2, 3, 4, 5, 100, 367])
async def test_a_frame_cut_across_two_reads_hits_the_cache(cut: int) -> None:
    counters = Counters()
    first, second = echohub(counters), echohub(counters)
    frames = [event(0, s) for s in range(3)]
    first.data_received(b"".join(frames))
    assert len(counters.markers) == 3
    stream = b"".join(frames)
    at = len(frames[0]) + cut  # inside the second frame (or its header)
    second.data_received(stream[:at])
    assert state(second) == (1, [], 0)
    second.data_received(stream[at:])
    assert state(second) == (3, [], 0)
    assert len(counters.markers) == 3  # no new entry: the joined frame was a hit
    assert counters.delivered == 6


async def test_wrong_guesses_of_the_next_frame_cost_nothing_in_accuracy() -> None:
    counters = Counters()
    frames = [event(s % 2, s // 2, T + s) for s in range(12)]  # two posters interleaved
    a, b, c = (echohub(counters, posters=2) for _ in range(3))
    a.data_received(b"".join(frames))  # teaches the order 0, 1, 2, ...
    order = [1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10]
    b.data_received(b"".join(frames[i] for i in order))  # every guess wrong
    c.data_received(b"".join(frames[::2]))  # poster 0 only: the guesses skip ahead
    assert (state(a, 0), state(a, 1)) == ((6, [], 0), (6, [], 0))
    assert (state(b, 0), state(b, 1)) == ((6, [], 0), (6, [], 0))
    assert (state(c, 0), state(c, 1)) == ((6, [], 0), (0, [], 0))
    assert counters.delivered == 12 + 12 + 6
    # a frame that differs from the guessed one by a byte is not taken for it
    assert frames[1].count(b"lt 1 0 ") == 2
    altered = frames[1].replace(b"lt 1 0 ", b"lt 1 5 ", 1)
    d = echohub(counters, posters=2)
    d.data_received(frames[0] + altered)
    assert (state(d, 0), state(d, 1)) == ((1, [], 0), (0, [5], 0))


async def test_a_stream_in_one_byte_reads_counts_everything() -> None:
    counters = Counters()
    sock = echohub(counters, posters=2)
    stream = b"".join(event(s % 2, s // 2) for s in range(8))
    for i in range(len(stream)):
        sock.data_received(stream[i : i + 1])
    assert (state(sock, 0), state(sock, 1)) == ((4, [], 0), (4, [], 0))
    assert counters.delivered == 8


async def test_control_fragments_and_replies_between_counted_events() -> None:
    counters = Counters()
    sock = echohub(counters)
    sent: list[bytes] = []
    sock.transport = FakeTransport(sent)  # type: ignore[assignment]
    fut = sock.request_nowait({"op": "ping"})  # id 1
    payload = selfbench.event_payload(0, 1, T)
    stream = (
        event(0, 0)
        + frame(b"hi", wsproto.OP_PING)
        + frame(payload[:50], fin=False)  # a fragmented event: the general path counts it
        + frame(b"", wsproto.OP_PONG)
        + frame(payload[50:], wsproto.OP_CONT)
        + frame(orjson.dumps({"op": "pong", "id": 1}))  # a reply, dispatched
        + event(0, 2)
    )
    sock.data_received(stream)
    assert state(sock) == (3, [], 0)
    assert counters.delivered == 3
    assert counters.control_frames == 2
    assert fut.done() and fut.result() == {"op": "pong", "id": 1}
    assert sock.parser.frames == 7
    assert len(sent) == 2  # the request and the pong answering the ping


async def test_a_foreign_poster_is_counted_apart() -> None:
    counters = Counters()
    sock = echohub(counters)  # tracks poster 0 only
    sock.data_received(event(0, 0) + event(7, 0) + event(0, 1))
    assert state(sock) == (2, [], 0)
    assert (counters.delivered, counters.foreign) == (2, 1)


@pytest.mark.parametrize(
    "bad",
    [
        wsproto.encode_frame(wsproto.OP_TEXT, b"masked", mask=True),
        frame(b"x", wsproto.OP_CONT),
        bytes([0x83, 0]),
    ],
)
async def test_protocol_errors_fail_the_socket_but_keep_what_was_counted(bad: bytes) -> None:
    counters = Counters()
    sock = echohub(counters)
    aborted: list[bool] = []
    sock.transport = FakeTransport([], aborted)  # type: ignore[assignment]
    sock.data_received(event(0, 0) + bad + event(0, 1))
    assert aborted == [True]
    assert sock.close_code == 1002
    assert counters.delivered == 1 and state(sock) == (1, [], 0)


async def test_cursor_tracking_sockets_decode_every_event() -> None:
    counters = Counters()
    sock = echohub(counters)
    sock.track_cursor = True
    assert sock.parser.trackers is None  # the general path, which decodes
    sock.data_received(event(0, 0) + event(0, 1))
    assert state(sock) == (2, [], 0)
    assert sock.cursors == {"user:ltymk6p0": str(1_795_325_063_780_419 + 1531)}
    sock.track_cursor = False
    assert sock.parser.trackers is sock.trackers


async def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client, "MARKER_CACHE_SIZE", 4)
    counters = Counters()
    sock = echohub(counters)
    frames = b"".join(event(0, s) for s in range(10))
    sock.data_received(frames)
    assert len(counters.markers) <= 4
    other = echohub(counters)
    other.data_received(frames)  # the guesses were cut with the cache; still exact
    assert state(sock) == state(other) == (10, [], 0)
    assert sum(1 for m in counters.markers.values() if m.next is not None) <= 4


async def test_socketio_frames_take_the_same_path() -> None:
    counters = Counters()
    sock = SocketIOSocket("127.0.0.1:1", counters)
    sock._upgraded = True
    sock.trackers = {0: SeqTracker()}
    sent: list[bytes] = []
    sock.transport = FakeTransport(sent)  # type: ignore[assignment]

    def sio(seq: int) -> bytes:
        data = {"text": marker_text(0, seq, T)}
        return frame(b"42" + orjson.dumps(["post.created", data]))

    sock.data_received(sio(0) + frame(b"2") + sio(1) + sio(1))
    assert state(sock) == (2, [], 1)
    assert len(sent) == 1  # the Engine.IO ping was answered


@pytest.mark.parametrize("shape,batch", [("frames", 1), ("frames", 7), ("stream", 1000)])
async def test_selfbench_shapes_count_exactly(shape: str, batch: int) -> None:
    r = selfbench.run_shape(sockets=20, events=30, shape=shape, batch=batch, sample_every=3)
    assert r["frames"] == 600 and r["us_per_frame"] > 0
    selfbench.check_anomalies()


class FakeTransport:
    def __init__(self, sent: list[bytes], aborted: list[bool] | None = None) -> None:
        self.sent = sent
        self.aborted = aborted if aborted is not None else []

    def write(self, data: bytes) -> None:
        self.sent.append(data)

    def is_closing(self) -> bool:
        return bool(self.aborted)

    def abort(self) -> None:
        self.aborted.append(True)

    def close(self) -> None:
        self.aborted.append(True)


@pytest.mark.parametrize("seed", range(8))
async def test_random_streams_count_like_a_frame_by_frame_reference(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sockets reading the same frames in different orders, cut at random points,
    with duplicates, losses, pings and replies in between: every socket's trackers
    end up as a plain regex-per-frame count says (and nothing hangs)."""
    rng = random.Random(seed)
    size = rng.choice([3, 50, client.MARKER_CACHE_SIZE])  # the cache cleared often, or not
    monkeypatch.setattr(client, "MARKER_CACHE_SIZE", size)
    counters = Counters(sample_every=rng.randint(1, 5))
    posters = 3
    frames = [event(p, s, T + s) for s in range(30) for p in range(posters)]
    socks = [echohub(counters, posters) for _ in range(6)]
    expected_delivered = 0
    for sock in socks:
        order = list(frames)
        if rng.random() < 0.5:  # a local reordering
            i = rng.randrange(len(order) - 5)
            order[i : i + 5] = rng.sample(order[i : i + 5], 5)
        order = [f for f in order if rng.random() > 0.05]  # losses
        order += rng.sample(frames, 3)  # duplicates, late
        extras = [frame(b"hi", wsproto.OP_PING), frame(b'{"op":"pong","id":9}')]
        stream_parts: list[bytes] = []
        for f in order:
            if rng.random() < 0.1:
                stream_parts.append(rng.choice(extras))
            stream_parts.append(f)
        stream = b"".join(stream_parts)
        sock.transport = FakeTransport([])  # type: ignore[assignment]
        pos = 0
        while pos < len(stream):
            step = rng.choice([1, 3, 50, 368, 369, 1000, 5000])
            sock.data_received(stream[pos : pos + step])
            pos += step
        ref = {p: SeqTracker() for p in range(posters)}
        for f in order:
            m = MARKER_RE.search(f)
            assert m is not None
            ref[int(m[1])].add(int(m[2]))
        expected_delivered += len(order)
        assert sock.trackers is not None
        assert {p: t.state() for p, t in sock.trackers.items()} == {
            p: t.state() for p, t in ref.items()
        }
    assert counters.delivered == expected_delivered
    assert counters.foreign == 0
