"""What a post search costs over a large index: N posts, then timed queries.

    .venv/bin/python scripts/searchbench.py --posts 100000

Starts a private embedded engine in a temporary directory and the app's services on it
(as server/app.py wires them, without serving HTTP), stores N public posts (half
Japanese, half English, words drawn from a Zipf law so some terms are in most posts and
others in few) with the same engine commands posting uses, indexing included, then
runs each query REPEAT times through `DiscoveryService.posts` (the whole path of
`GET /api/search?type=posts`: the index walk, reading the posts, visibility, matching)
and prints the median and worst wall time and the process CPU per query, and the
engine memory the index takes. Loopback only (a unix socket); everything it starts it
stops.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

from server.app import create_app
from server.domain.search import post_terms
from server.engine import EmbeddedEngine
from server.services.common import User, iso, new_id
from server.services.container import FEATURES, SERVICES
from server.settings import Settings
from server.store.echoes import EchoStore
from server.store.search import SearchStore

KANA = (
    "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをん"
)
KANJI = "東京猫犬山川海空雨雪花木本日月火水金土人心手口目耳足学生先友達新古大小食飲見行来"
QUERIES = ["the", "cat", "tokyo", "rare", "東京", "猫", "友達", "東京の猫", "zqxj", "cat tokyo"]
REPEAT = 5


def english_words(rng: random.Random, count: int) -> list[str]:
    syllables = ["ka", "to", "ri", "mo", "na", "sa", "lo", "ve", "pi", "zu", "de", "ba"]
    words = ["the", "cat", "tokyo", "rare"]
    while len(words) < count:
        words.append("".join(rng.choice(syllables) for _ in range(rng.randint(2, 4))))
    return words


def japanese_words(rng: random.Random, count: int) -> list[str]:
    words = ["東京", "猫", "友達", "の"]
    while len(words) < count:
        kanji = "".join(rng.choice(KANJI) for _ in range(rng.randint(1, 2)))
        words.append(kanji + "".join(rng.choice(KANA) for _ in range(rng.randint(0, 2))))
    return words


def zipf_weights(count: int) -> list[float]:
    """Cumulative Zipf weights: the word of rank r is drawn in proportion to 1/r."""
    return list(itertools.accumulate(1 / (rank + 1) for rank in range(count)))


def make_text(rng: random.Random, i: int, en: list[str], ja: list[str], cum: list[float]) -> str:
    if i % 2:
        return " ".join(rng.choices(en, cum_weights=cum, k=rng.randint(4, 14)))[:150]
    return "".join(rng.choices(ja, cum_weights=cum, k=rng.randint(6, 30)))[:150]


async def fill(store: EchoStore, author: User, posts: int, seed: int) -> None:
    rng = random.Random(seed)
    en, ja = english_words(rng, 3000), japanese_words(rng, 3000)
    cum = zipf_weights(len(en))
    waiting = 0.0
    batch: list[tuple[Any, ...]] = []
    for i in range(posts):
        text = make_text(rng, i, en, ja, cum)
        rec = {"id": new_id(), "author": author.id, "author_handle": author.handle,
               "author_name": author.display_name, "text": text, "markup": text,
               "segments": orjson.dumps([{"text": text}]).decode(), "visibility": "public",
               "community": "", "tags": "", "created_at": iso(time.time()),
               "terms": " ".join(post_terms(text))}  # fmt: skip
        batch += store.creation(rec)
        indexing = SearchStore.post_indexing(rec["id"], rec["terms"])
        if indexing is not None:
            batch.append(indexing)
        if len(batch) >= 3000 or i == posts - 1:
            t0 = time.monotonic()
            await store.engine.calls(batch)
            waiting += time.monotonic() - t0
            batch = []
    print(f"waiting for the engine: {waiting:.1f} s")


async def run(posts: int) -> None:
    with tempfile.TemporaryDirectory(prefix="echohub-search-") as tmp:
        engine = EmbeddedEngine(Path(tmp))
        engine.start()
        runner: web.AppRunner | None = None
        try:
            app = create_app(Settings(rate_limits={}), engine.url)
            runner = web.AppRunner(app)
            await runner.setup()
            svc = app[SERVICES]
            echoes, discovery = app[FEATURES].echoes, app[FEATURES].discovery
            author = User(new_id(), "author", "Author", "member", iso(time.time()), False)
            viewer = User(new_id(), "viewer", "Viewer", "member", iso(time.time()), False)
            used_before = int((await svc.client.info("memory"))["used_memory"])
            started = time.monotonic()
            await fill(echoes.store, author, posts, seed=7)
            filled = time.monotonic() - started
            used = int((await svc.client.info("memory"))["used_memory"])
            terms = await svc.client.eval("return #redis.call('KEYS', 'eh:tl:*')", 0)
            grown = (used - used_before) / 2**20
            print(f"{posts:,} posts stored and indexed in {filled:.1f} s; {terms:,} terms; "
                  f"engine memory +{grown:.0f} MiB (posts and index)")  # fmt: skip
            print(f"{'query':<12} {'found':>6} {'median ms':>10} {'max ms':>8} {'CPU ms':>7}")
            for query in QUERIES:
                walls, cpus = [], []
                found = 0
                for _ in range(REPEAT):
                    cpu, wall = time.process_time(), time.perf_counter()
                    page = await discovery.posts(viewer, query, None, 20)
                    walls.append(time.perf_counter() - wall)
                    cpus.append(time.process_time() - cpu)
                    found = len(page["items"])
                median, worst = statistics.median(walls) * 1000, max(walls) * 1000
                cpu_ms = statistics.median(cpus) * 1000
                print(f"{query:<12} {found:>6} {median:>10.2f} {worst:>8.2f} {cpu_ms:>7.2f}")
        finally:
            if runner is not None:
                await runner.cleanup()
            engine.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=100_000)
    args = parser.parse_args()
    if not 1 <= args.posts <= 2_000_000:
        parser.error("--posts must be from 1 to 2,000,000")
    asyncio.run(run(args.posts))


if __name__ == "__main__":
    main()
