"""The ``social`` scenario's pure parts: the seeded graph, who must receive what, the
daily curve, and the accounting that finds wrong, lost and duplicated deliveries."""

from __future__ import annotations

import statistics

import pytest

from loadtest import selfbench, wsproto
from loadtest.client import Counters, EchoHubSocket
from loadtest.codec import CODECS
from loadtest.graph import (
    SocialGraph,
    account_member,
    account_notifications,
    activity_at,
    event_times,
    expected_deliveries,
    footprint_expected,
    generate_graph,
    mention_expected,
    plan_posts,
    stream_key,
)
from loadtest.social import rooms_of
from loadtest.stats import SeqTracker

# --- the graph --------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_graph_and_another_seed_another() -> None:
    a, b, c = generate_graph(300, 5), generate_graph(300, 5), generate_graph(300, 6)
    assert a.following == b.following and a.blocking == b.blocking and a.muting == b.muting
    assert a.following != c.following


def test_the_graph_has_the_shape_of_a_social_network() -> None:
    g = generate_graph(2000, 1)
    followers = sorted(len(g.followers(m)) for m in range(2000))
    s = g.summary()
    assert 37 <= s["follows_per_member"] <= 43  # ~40 follows each
    assert 0.2 <= followers[-1] / 2000 <= 0.4  # the most followed: ~30% of everyone
    assert followers[-3] / 2000 >= 0.1  # a few of them, not one
    assert 20 <= statistics.median(followers) <= 60  # most: a few dozen
    assert followers[len(followers) // 10] >= 10  # hardly anyone is followed by nobody
    assert s["friend_pairs"] > 2000 * 5  # mutual follows are common (friends)
    assert s["blocks"] == 40 and s["mutes"] == 100


def test_blocks_remove_follows_both_ways_and_mutes_are_of_followed_members() -> None:
    g = generate_graph(500, 3)
    blocks = [(a, b) for a in range(500) for b in g.blocking[a]]
    assert blocks
    for a, b in blocks:
        assert b not in g.following[a] and a not in g.following[b]
    for a in range(500):
        assert g.muting[a] <= g.following[a]
        assert a not in g.following[a]


def tiny() -> SocialGraph:
    """0 and 1 are friends; 2 follows 0; 3 follows 0 and muted them; 4 follows 0 and
    blocked 1; 5 blocked 0 (and so follows nobody there)."""
    following = [{1}, {0}, {0}, {0}, {0}, set()]
    blocking = [set(), set(), set(), set(), {1}, {0}]
    muting = [set(), set(), set(), {0}, set(), set()]
    return SocialGraph(
        6,
        tuple(frozenset(s) for s in following),
        tuple(frozenset(s) for s in blocking),
        tuple(frozenset(s) for s in muting),
    )


@pytest.mark.parametrize(
    ("viewer", "author", "friends_only", "receives"),
    [
        (0, 0, False, True),  # one's own posts, public
        (0, 0, True, True),  # and friends-only
        (1, 0, False, True),  # a friend
        (1, 0, True, True),
        (2, 0, False, True),  # a follower
        (2, 0, True, False),  # not a friend: no friends-only post
        (3, 0, False, False),  # muted
        (3, 0, True, False),
        (4, 0, False, True),  # blocked someone else: no matter
        (4, 1, False, False),  # blocked the author (and follows nobody there)
        (1, 4, False, False),  # blocked by the author
        (5, 0, False, False),  # blocked the author
        (0, 2, False, False),  # does not follow
    ],
)
def test_who_receives_a_post(viewer: int, author: int, friends_only: bool, receives: bool) -> None:
    g = tiny()
    assert (stream_key(author, friends_only) in g.keys_of(viewer)) is receives
    assert (viewer in g.audience(author, friends_only)) is receives


def test_expected_deliveries_are_the_acked_posts_times_their_audience() -> None:
    g = generate_graph(200, 9)
    acked = {stream_key(a, fo): list(range(a % 3)) for a in range(200) for fo in (False, True)}
    by_audience = sum(len(seqs) * len(g.audience(k >> 1, bool(k & 1))) for k, seqs in acked.items())
    assert expected_deliveries(g, range(200), acked) == by_audience
    assert expected_deliveries(g, [], acked) == 0


def test_the_peer_rooms_are_the_home_and_me_of_echo_hub() -> None:
    g = tiny()
    handles = [f"m{i}" for i in range(6)]
    assert rooms_of(g, handles, 2) == ["user:m0", "user:m2", "friends:m2", "me:m2"]
    assert rooms_of(g, handles, 1) == ["user:m0", "friends:m0", "user:m1", "friends:m1", "me:m1"]
    assert rooms_of(g, handles, 3) == ["user:m3", "friends:m3", "me:m3"]  # muted 0


def test_footprints_are_expected_except_on_oneself_and_across_a_block() -> None:
    g = tiny()
    assert footprint_expected(g, 2, 0)
    assert not footprint_expected(g, 0, 0)
    assert not footprint_expected(g, 4, 1) and not footprint_expected(g, 1, 4)


# --- the schedule -----------------------------------------------------------------------


def test_fixed_rate_times_are_evenly_spaced() -> None:
    assert event_times(4, 2, curve=False) == [0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
    assert event_times(0, 10, curve=False) == []


def test_the_daily_curve_keeps_the_count_and_crowds_the_evening() -> None:
    times = event_times(100, 24, curve=True, start_hour=0)  # one "hour" per second
    assert len(times) == 2400 and times == sorted(times)
    assert all(0 <= t < 24 for t in times)
    night = sum(1 for t in times if 3 <= t < 5)
    evening = sum(1 for t in times if 20 <= t < 22)
    assert evening > 5 * night
    assert activity_at(21) > activity_at(4)
    assert statistics.mean(activity_at(h) for h in range(24)) == pytest.approx(1.0)


def test_a_tenth_of_the_planned_posts_are_friends_only() -> None:
    g = generate_graph(100, 1)
    posts = plan_posts(g, [i / 10 for i in range(5000)], seed=4)
    share = sum(p.friends_only for p in posts) / len(posts)
    assert 0.08 <= share <= 0.12
    assert len({p.author for p in posts}) > 90
    assert posts == plan_posts(g, [i / 10 for i in range(5000)], seed=4)


# --- accounting -------------------------------------------------------------------------


def member_socket(counters: Counters, keys: list[int]) -> EchoHubSocket:
    sock = EchoHubSocket("127.0.0.1:1", CODECS["json"], counters)
    sock._upgraded = True
    sock.trackers = {k: SeqTracker() for k in keys}
    return sock


def post_frame(key: int, seq: int) -> bytes:
    return wsproto.encode_frame(
        wsproto.OP_TEXT, selfbench.event_payload(key, seq, selfbench.T0_NS), mask=False
    )


async def test_a_wrong_a_lost_and_a_duplicated_delivery_are_each_detected() -> None:
    g = tiny()
    keys = g.keys_of(2)  # 2 follows 0 but is not a friend
    public, friends_only = stream_key(0, False), stream_key(0, True)
    assert public in keys and friends_only not in keys
    acked = {public: [0, 1, 2], friends_only: [0], stream_key(2, False): []}
    counters = Counters()
    sock = member_socket(counters, keys)

    def accounted() -> tuple[int, int, int, int, int]:
        assert sock.trackers is not None
        c = account_member(keys, sock.trackers, acked, wrong=counters.foreign)
        return c.expected, c.delivered, c.lost, c.duplicated, c.wrong

    sock.data_received(post_frame(public, 0) + post_frame(public, 1) + post_frame(public, 2))
    assert accounted() == (3, 3, 0, 0, 0)  # a clean run
    sock.data_received(post_frame(friends_only, 0))  # a friends-only post to a non-friend
    assert accounted() == (3, 3, 0, 0, 1)
    sock.data_received(post_frame(public, 1))  # the same post twice
    assert accounted() == (3, 3, 0, 1, 1)

    other = member_socket(counters, keys)
    other.data_received(post_frame(public, 0) + post_frame(public, 2))  # 1 never came
    assert other.trackers is not None
    lost = account_member(keys, other.trackers, acked)
    assert (lost.expected, lost.delivered, lost.lost, lost.wrong) == (3, 2, 1, 0)


def test_notifications_lost_duplicated_and_wrong() -> None:
    want = [(0, "like", "p1"), (0, "like", "p2"), (3, "footprint", "m2")]
    assert account_notifications(want, want).delivered == 3
    got = [(0, "like", "p1"), (0, "like", "p1"), (3, "footprint", "m2"), (5, "footprint", "m4")]
    c = account_notifications(want, got)
    assert (c.expected, c.delivered, c.lost, c.duplicated, c.wrong) == (3, 2, 1, 1, 1)


async def test_a_notification_quoting_a_post_is_no_delivery_of_it() -> None:
    counters = Counters()
    sock = member_socket(counters, [stream_key(0, False)])
    seen: list[dict[str, object]] = []
    sock.on_event = seen.append
    like = {"op": "event", "topic": "me", "cursor": "1", "type": "like",
            "data": {"echo": "p1", "text": "lt 0 0 1", "by": {"handle": "m2"}}}  # fmt: skip
    frame = wsproto.encode_frame(wsproto.OP_TEXT, CODECS["json"].encode(like), mask=False)
    sock.data_received(frame + post_frame(stream_key(0, False), 0) + frame)
    assert counters.delivered == 1  # the post, not the two likes that quote its text
    assert [e["type"] for e in seen] == ["like", "like"]
    assert sock.trackers is not None and sock.trackers[0].state() == (1, [], 0)


@pytest.mark.parametrize(
    ("author", "friends_only", "member", "told"),
    [
        (0, False, 2, True),  # a follower may see a public post
        (0, True, 2, False),  # not a friend: may not see a friends-only one
        (0, True, 1, True),  # a friend
        (2, False, 0, True),  # may see a public post without following its author
        (0, False, 3, False),  # muted the author
        (1, False, 4, False),  # blocked the author
        (0, False, 5, False),  # blocked the author
        (0, False, 0, False),  # never oneself
    ],
)
def test_who_a_mention_notifies(author: int, friends_only: bool, member: int, told: bool) -> None:
    assert mention_expected(tiny(), author, friends_only, member) is told


def test_a_share_of_posts_mention_someone_else() -> None:
    g = generate_graph(200, 2)
    posts = plan_posts(g, [i / 10 for i in range(4000)], seed=3, mention_share=0.25)
    mentions = [p for p in posts if p.mention >= 0]
    assert 0.2 <= len(mentions) / len(posts) <= 0.3
    assert all(p.mention != p.author for p in mentions)
    followed = sum(1 for p in mentions if p.mention in g.following[p.author])
    assert 0.4 <= followed / len(mentions) <= 0.7  # half whom they follow, half anyone
    assert all(p.mention == -1 for p in plan_posts(g, [0.0] * 100, seed=3))
