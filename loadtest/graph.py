"""The ``social`` scenario's world: a seeded follow graph and who must receive what.

Pure values and arithmetic (no I/O, no clock): the same seed gives the same graph in
every process and every run, so the parent, the workers and a later run on a kept data
directory agree on it without shipping it around.

**The graph.** ``members`` members; member ``t`` is followed by ``base + top * r**-alpha``
members (``r`` its popularity rank, 1 = most followed), the followers drawn uniformly,
then a share of the edges made mutual (mixi's mai-miku: friends). With the defaults a
few members are followed by ~30% of everyone, most by a few dozen, and each follows
~40 on average. Then a few blocks (which remove follows both ways, as the server does)
and mutes of someone followed.

**Who must receive a post.** A post is identified on the wire by its *stream key*
``2 * author + friends_only`` and its sequence number within that stream (the marker
``lt <key> <seq> <ns>`` is its text, see :mod:`loadtest.codec`). A member's ``home``
carries its own channel and those of the members it follows, minus the ones it muted
or that a block separates it from (SPEC "Social graph"); a friends-only post reaches
only the author's friends (and the author). So the streams a member must receive are
exactly :meth:`SocialGraph.keys_of`: anything else that arrives is a WRONG delivery,
and every acknowledged post of those streams that does not arrive is lost.
"""

from __future__ import annotations

import bisect
import math
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from loadtest.stats import DeliveryCount, SeqTracker, account

# --- stream keys ----------------------------------------------------------------------


def stream_key(author: int, friends_only: bool) -> int:
    """The marker's poster number of a post: one sequence per author and visibility."""
    return 2 * author + (1 if friends_only else 0)


def key_author(key: int) -> int:
    return key >> 1


def key_friends_only(key: int) -> bool:
    return bool(key & 1)


# --- the graph ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GraphShape:
    """The knobs of :func:`generate_graph` (defaults: the workload of issue 19)."""

    avg_follows: float = 40.0
    top_share: float = 0.3  # the most followed member: followed by this share of all
    alpha: float = 0.9  # how fast popularity falls with rank
    reciprocity: float = 0.3  # share of edges answered by a follow back (friends)
    block_share: float = 0.02  # members who block someone
    mute_share: float = 0.05  # members who mute someone they follow


@dataclass(frozen=True)
class SocialGraph:
    """Who follows, blocks and mutes whom, by member number ``0 … members-1``."""

    members: int
    following: tuple[frozenset[int], ...]
    blocking: tuple[frozenset[int], ...]
    muting: tuple[frozenset[int], ...]
    seed: int = 0
    _followers: tuple[frozenset[int], ...] = field(default=(), repr=False, compare=False)
    _blocked_by: tuple[frozenset[int], ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        followers: list[set[int]] = [set() for _ in range(self.members)]
        blocked_by: list[set[int]] = [set() for _ in range(self.members)]
        for a, outs in enumerate(self.following):
            for b in outs:
                followers[b].add(a)
        for a, outs in enumerate(self.blocking):
            for b in outs:
                blocked_by[b].add(a)
        object.__setattr__(self, "_followers", tuple(frozenset(s) for s in followers))
        object.__setattr__(self, "_blocked_by", tuple(frozenset(s) for s in blocked_by))

    def followers(self, member: int) -> frozenset[int]:
        return self._followers[member]

    def blocked_by(self, member: int) -> frozenset[int]:
        return self._blocked_by[member]

    def friends(self, a: int, b: int) -> bool:
        return b in self.following[a] and a in self.following[b]

    def blocked_either_way(self, a: int, b: int) -> bool:
        return b in self.blocking[a] or a in self.blocking[b]

    def home(self, member: int) -> frozenset[int]:
        """The authors whose posts ``member``'s home shows: itself and whom it follows,
        minus muted and blocked (either way) members."""
        return frozenset({member, *(a for a in self.following[member] if self.shows(member, a))})

    def keys_of(self, member: int) -> list[int]:
        """The post streams ``member``'s home must carry (and no other)."""
        keys = []
        for a in sorted(self.home(member)):
            keys.append(stream_key(a, False))
            if a == member or self.friends(member, a):
                keys.append(stream_key(a, True))
        return keys

    def shows(self, member: int, author: int) -> bool:
        """Whether ``member``'s home carries ``author``'s channel (the rule of home())."""
        if member == author:
            return True
        return (
            author in self.following[member]
            and author not in self.muting[member]
            and not self.blocked_either_way(member, author)
        )

    def audience(self, author: int, friends_only: bool) -> frozenset[int]:
        """The members whose home must show a post of ``author``."""
        out = {author}
        for f in self.followers(author):
            if self.shows(f, author) and (not friends_only or self.friends(f, author)):
                out.add(f)
        return frozenset(out)

    def may_see(self, viewer: int, author: int, friends_only: bool) -> bool:
        """Whether ``viewer`` may see (and so like) a post of ``author`` (mutes aside)."""
        if viewer == author:
            return True
        if self.blocked_either_way(viewer, author):
            return False
        return not friends_only or self.friends(viewer, author)

    @property
    def edges(self) -> int:
        return sum(len(s) for s in self.following)

    def summary(self) -> dict[str, float]:
        """The shape, for the report: how many follows, friends, blocks and mutes."""
        indeg = sorted(len(f) for f in self._followers)
        n = max(1, self.members)
        mutual = sum(
            1 for a in range(self.members) for b in self.following[a] if self.friends(a, b)
        )
        return {
            "members": self.members,
            "follows": self.edges,
            "follows_per_member": round(self.edges / n, 1),
            "friend_pairs": mutual // 2,
            "followers_max": indeg[-1] if indeg else 0,
            "followers_max_share": round((indeg[-1] if indeg else 0) / n, 3),
            "followers_median": indeg[len(indeg) // 2] if indeg else 0,
            "blocks": sum(len(s) for s in self.blocking),
            "mutes": sum(len(s) for s in self.muting),
        }


def in_degree_targets(members: int, shape: GraphShape) -> list[int]:
    """How many followers each popularity rank gets: ``base + top * r**-alpha``, with
    ``base`` chosen so that the mean out-degree (reciprocal edges included) comes to
    ``avg_follows``."""
    if members <= 1:
        return [0] * members
    top = shape.top_share * (members - 1)
    tail = [top * (r**-shape.alpha) for r in range(1, members + 1)]
    # reciprocal follows add edges: draw fewer so the total lands on avg_follows
    drawn = shape.avg_follows * members / (1 + shape.reciprocity)
    base = max(0.0, (drawn - sum(tail)) / members)
    return [min(members - 1, round(base + t)) for t in tail]


def generate_graph(members: int, seed: int, shape: GraphShape | None = None) -> SocialGraph:
    """A seeded power-law follow graph with friends, blocks and mutes (see the module)."""
    shape = shape or GraphShape()
    rng = random.Random(f"social-graph:{members}:{seed}")
    rank_to_member = list(range(members))
    rng.shuffle(rank_to_member)  # popularity is not the member number
    following: list[set[int]] = [set() for _ in range(members)]
    for rank, want in enumerate(in_degree_targets(members, shape)):
        target = rank_to_member[rank]
        for f in rng.sample(range(members - 1), min(want, members - 1)):
            follower = f if f < target else f + 1  # anyone but the target
            following[follower].add(target)
    for a in range(members):
        for b in sorted(following[a]):
            if a not in following[b] and rng.random() < shape.reciprocity:
                following[b].add(a)
    blocking: list[set[int]] = [set() for _ in range(members)]
    muting: list[set[int]] = [set() for _ in range(members)]
    if members > 2:
        for a in rng.sample(range(members), round(shape.block_share * members)):
            b = rng.randrange(members - 1)
            b = b if b < a else b + 1
            blocking[a].add(b)
            following[a].discard(b)  # a block removes follows both ways
            following[b].discard(a)
        for a in rng.sample(range(members), round(shape.mute_share * members)):
            followed = sorted(following[a])
            if followed:
                muting[a].add(rng.choice(followed))
    return SocialGraph(
        members,
        tuple(frozenset(s) for s in following),
        tuple(frozenset(s) for s in blocking),
        tuple(frozenset(s) for s in muting),
        seed,
    )


# --- activity -------------------------------------------------------------------------

#: Relative activity per hour of the day (0-23, local time) of a social network: low at
#: night, a morning commute, lunch, and the evening peak (mixi's traffic had this shape).
DAILY_ACTIVITY = (
    0.35, 0.2, 0.12, 0.08, 0.07, 0.1, 0.3, 0.7, 0.9, 0.7, 0.6, 0.7,
    1.0, 0.8, 0.6, 0.6, 0.7, 0.8, 1.0, 1.2, 1.4, 1.5, 1.3, 0.8,
)  # fmt: skip


def activity_at(hour: float) -> float:
    """The daily curve at ``hour`` (0 to 24), linearly interpolated, mean 1.0."""
    mean = sum(DAILY_ACTIVITY) / len(DAILY_ACTIVITY)
    h = hour % 24
    i = int(h)
    frac = h - i
    a, b = DAILY_ACTIVITY[i], DAILY_ACTIVITY[(i + 1) % 24]
    return (a + (b - a) * frac) / mean


def event_times(
    rate: float, duration: float, *, curve: bool, start_hour: float = 0.0
) -> list[float]:
    """When the run's events happen (seconds from its start), ``rate`` per second on
    average. Fixed: evenly spaced. With ``curve``: the run is a compressed day
    starting at ``start_hour`` and the rate follows :func:`activity_at`."""
    total = int(rate * duration)
    if total <= 0:
        return []
    if not curve:
        return [i / rate for i in range(total)]
    # invert the cumulative activity: event i happens where the integral reaches i
    steps = 2400
    cum = [0.0]
    for s in range(steps):
        hour = start_hour + 24.0 * (s + 0.5) / steps
        cum.append(cum[-1] + activity_at(hour))
    scale = total / cum[-1]
    out = []
    for i in range(total):
        j = bisect.bisect_right(cum, (i + 0.5) / scale) - 1
        j = min(max(j, 0), steps - 1)
        span = cum[j + 1] - cum[j]
        frac = ((i + 0.5) / scale - cum[j]) / span if span > 0 else 0.0
        out.append(duration * (j + frac) / steps)
    return out


# --- the plan of posts, likes and visits ----------------------------------------------


@dataclass(frozen=True, slots=True)
class PlannedPost:
    at: float  # seconds from the start
    author: int
    friends_only: bool
    mention: int = -1  # the member its text mentions (`@handle`), -1 for none


def plan_posts(
    graph: SocialGraph,
    times: Sequence[float],
    seed: int,
    *,
    friends_share: float = 0.1,
    mention_share: float = 0.0,
    authors: Sequence[int] | None = None,
) -> list[PlannedPost]:
    """Who posts at each of ``times`` (uniformly among ``authors``), which posts are
    friends-only (``friends_share`` of them), and which mention a member
    (``mention_share``: half of them someone the author follows, half anyone, so
    that some mentions reach members who may not see the post)."""
    rng = random.Random(f"social-posts:{seed}")
    pool = list(authors) if authors is not None else list(range(graph.members))
    if not pool:
        return []
    out = []
    for t in times:
        author = rng.choice(pool)
        friends_only = rng.random() < friends_share
        mention = -1
        if graph.members > 1 and rng.random() < mention_share:
            followed = sorted(graph.following[author])
            if followed and rng.random() < 0.5:
                mention = rng.choice(followed)
            else:
                mention = rng.randrange(graph.members - 1)
                mention += mention >= author  # anyone but the author
        out.append(PlannedPost(t, author, friends_only, mention))
    return out


def mention_expected(graph: SocialGraph, author: int, friends_only: bool, member: int) -> bool:
    """Whether a post mentioning ``member`` notifies them: not the author, only if they
    may see the post, and not if they muted the author (SPEC "Conversations")."""
    return (
        member != author
        and graph.may_see(member, author, friends_only)
        and author not in graph.muting[member]
    )


def pick_liker(
    graph: SocialGraph, author: int, friends_only: bool, rng: random.Random
) -> int | None:
    """A member who sees the post in their home (a follower who may see it), or None."""
    fans = sorted(f for f in graph.followers(author) if graph.may_see(f, author, friends_only))
    return rng.choice(fans) if fans else None


def pick_visit(graph: SocialGraph, rng: random.Random, blocked_share: float) -> tuple[int, int]:
    """A profile visit ``(visitor, owner)``: with ``blocked_share`` one across a block
    (which must leave no footprint), else between members with no block between them."""
    n = graph.members
    crossing = [(a, b) for a in range(n) for b in graph.blocking[a]]
    if crossing and rng.random() < blocked_share:
        a, b = rng.choice(crossing)
        return (a, b) if rng.random() < 0.5 else (b, a)
    for _ in range(100):
        v, o = rng.randrange(n), rng.randrange(n)
        if v != o and not graph.blocked_either_way(v, o):
            return v, o
    return 0, 1 if n > 1 else 0


def footprint_expected(graph: SocialGraph, visitor: int, owner: int) -> bool:
    """Whether a (first) visit notifies the owner: not on oneself, not across a block."""
    return visitor != owner and not graph.blocked_either_way(visitor, owner)


# --- accounting -----------------------------------------------------------------------


@dataclass(slots=True)
class SocialCount(DeliveryCount):
    """Delivery accounting of the social scenario: :class:`DeliveryCount` plus
    ``wrong`` (arrived at a member who must not receive it)."""

    wrong: int = 0

    def add(self, other: DeliveryCount) -> None:
        DeliveryCount.add(self, other)
        if isinstance(other, SocialCount):
            self.wrong += other.wrong


def account_member(
    keys: Iterable[int],
    trackers: Mapping[int, SeqTracker],
    acked: Mapping[int, Sequence[int]],
    wrong: int = 0,
) -> SocialCount:
    """One member: every acknowledged post of each stream in ``keys`` is expected once.

    ``trackers`` hold what arrived per stream; ``wrong`` counts marker events of streams
    outside ``keys`` (the lean reader counts them without a tracker).
    """
    total = SocialCount(wrong=wrong)
    for key in keys:
        tracker = trackers.get(key) or SeqTracker()
        total.add(account(acked.get(key, ()), tracker))
    return total


def expected_deliveries(
    graph: SocialGraph, online: Iterable[int], acked: Mapping[int, Sequence[int]]
) -> int:
    """Deliveries a run must produce: for each online member, the acked posts of its
    streams (the same sum :func:`account_member` takes, from the graph alone)."""
    return sum(len(acked.get(k, ())) for m in online for k in graph.keys_of(m))


Notification = tuple[int, str, str]  # (member, type, what: the post id or the visitor)


def account_notifications(
    expected: Iterable[Notification], arrived: Iterable[Notification]
) -> SocialCount:
    """Notifications (``like``, ``footprint``) expected once each at a member's ``me``:
    missing ones are lost, repeats duplicated, any other is WRONG."""
    want = Counter(expected)
    got = Counter(arrived)
    out = SocialCount()
    for item, n in want.items():
        out.expected += n
        have = got.get(item, 0)
        out.delivered += min(n, have)
        out.lost += max(0, n - have)
        out.duplicated += max(0, have - n)
    out.wrong = sum(n for item, n in got.items() if item not in want)
    return out


def percentile_of(values: Sequence[float], pct: float) -> float:
    """The ``pct`` percentile of ``values`` (nearest rank); 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return float(ordered[rank - 1])
