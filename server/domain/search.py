"""Search rules: how text is folded, which terms index a post, what a query may be.

Owns the normalisation that makes search case- and width-insensitive (`fold`: NFKC,
case folding, NFKC again, so `ｱｷ` and `アキ`, `AKI` and `aki`, `Ｓｔｒａßｅ` and
`strasse` are one key), the keys a member is found by, the terms a post is indexed
under and the checks on a query. Does no I/O.

Posts are indexed by words and, for Japanese (and Chinese, Korean) text, which has no
spaces between words, by character unigrams and bigrams: a query's bigrams must all be
among the post's, and the post's folded text must then contain each run of the query
(bigrams alone would let 東京都 match 東京と京都). Unigrams let a one-letter query (猫)
work. The engine has no full-text search of its own here (the embedded Valkey ships
without the search module), so the index is ours: one sorted set per term.
"""

from __future__ import annotations

import operator
import unicodedata
from dataclasses import dataclass

import regex

from server.domain.echo import is_forbidden_character, visible_length
from server.domain.errors import DomainError

__all__ = [
    "MAX_QUERY",
    "MAX_QUERY_TERMS",
    "SEARCH_TYPES",
    "PostQuery",
    "fold",
    "matches_post",
    "member_keys",
    "member_query",
    "post_query",
    "post_terms",
    "validate_search_type",
]

SEARCH_TYPES = ("members", "posts")
MAX_QUERY = 100  # characters
MAX_QUERY_TERMS = 20
# Keys and words are cut to this many characters: nobody types more to find something.
_MAX_KEY = 40
# A post of 150 characters gives at most ~300 terms; the cap bounds a hostile one.
_MAX_POST_TERMS = 400
_MAX_NAME_TAILS = 20

# Scripts written without spaces between words; the prolonged sound mark and the
# iteration marks belong to Japanese words, and so do the half-width sound marks (which
# Unicode files under no script) until folding joins them to their letter: ﾊﾟﾝ is パン.
_CJK = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}ーゝゞヽヾ々ｰﾞﾟ゛゜"
# A run of Japanese (group 1) or of other letters, marks and digits (group 2).
_TOKEN = regex.compile(rf"([{_CJK}]+)|([\p{{L}}\p{{N}}\p{{M}}_]+)")
_SPACES = regex.compile(r"\s+")
# Letters indexed on their own too, so a one-letter search finds them: a kanji (猫) or
# a hangul syllable is a word; a lone kana is not, and indexing every one would cost
# ~40% more terms per post.
_INDEXED_ALONE = regex.compile(r"[\p{Han}\p{Hangul}]")


def fold(text: str) -> str:
    """The search form of `text`: NFKC (width, compatibility forms), case folding, and
    NFKC again (case folding can leave a string that is not NFKC)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def _fold_run(run: str) -> str:
    return run.lower() if run.isascii() else fold(run)


def _words(text: str) -> list[tuple[str, str]]:
    """(kind, folded run) for each run of letters in `text`: `cjk` or `word`.

    Split first, then fold each run: the runs are short and most are already NFKC, so
    this costs a fraction of folding a whole post that holds one full-width mark."""
    return [
        ("cjk", _fold_run(cjk)) if cjk else ("word", _fold_run(word))
        for cjk, word in _TOKEN.findall(text)
    ]


def member_keys(handle: str, display_name: str) -> frozenset[str]:
    """What a member is found by (prefixes of these): the handle, the whole display
    name, each word of it (so `yam` finds "Aki Yamada"), and each tail of a Japanese
    run in it (names are written without spaces: `アキ` finds 山田アキ)."""
    name = _SPACES.sub(" ", fold(display_name)).strip()
    keys = {handle.lower(), name}
    keys.update(name.split(" "))
    for kind, run in _words(display_name):
        if kind == "cjk":
            keys.update(run[i:] for i in range(1, min(len(run), _MAX_NAME_TAILS)))
    return frozenset(k[:_MAX_KEY] for k in keys if k)


def _check_query(raw: object) -> str:
    if raw is None or raw == "":
        raise DomainError("query_required", "type something to search for", field="q")
    if not isinstance(raw, str):
        raise DomainError("invalid_query", "q must be text", field="q")
    if len(raw) > 4 * MAX_QUERY or visible_length(raw) > MAX_QUERY:
        raise DomainError("query_too_long", f"a search is at most {MAX_QUERY} characters",
                          field="q")  # fmt: skip
    if any(is_forbidden_character(ch) for ch in raw):
        raise DomainError("invalid_query", "q must not contain control characters", field="q")
    text: str = _SPACES.sub(" ", fold(raw)).strip()
    if not text:
        raise DomainError("query_required", "type something to search for", field="q")
    return text


def member_query(raw: object) -> str:
    """The folded prefix to look members up by; a leading `@` is dropped."""
    text = _check_query(raw).lstrip("@").strip()
    if not _words(text):
        raise DomainError("query_no_words", "search for a name or a handle, not only "
                          "punctuation", field="q")  # fmt: skip
    return text[:_MAX_KEY]


@dataclass(frozen=True, slots=True)
class PostQuery:
    """Terms every match is indexed under, and the runs its text must contain."""

    terms: tuple[str, ...]
    runs: tuple[str, ...]


def _terms(runs: list[tuple[str, str]]) -> set[str]:
    terms: set[str] = set()
    for kind, run in dict.fromkeys(runs):
        if kind == "word":
            terms.add(run[:_MAX_KEY])
        else:
            terms.update(_INDEXED_ALONE.findall(run))
            terms.update(map(operator.add, run, run[1:]))
    return terms


def post_terms(text: str) -> list[str]:
    """The terms a post's visible text is indexed under, in no particular order (no
    duplicates, none holding a space; a post of 150 characters has at most ~300)."""
    terms = _terms(_words(text))
    return list(terms) if len(terms) <= _MAX_POST_TERMS else sorted(terms)[:_MAX_POST_TERMS]


def post_query(raw: object) -> PostQuery:
    """A posts query: its words (every one must occur) and Japanese runs (each must
    occur as written). A run of several Japanese letters looks up its bigrams only."""
    text = _check_query(raw)
    runs = _words(text)
    if not runs:
        raise DomainError("query_no_words", "search for words, not only punctuation",
                          field="q")  # fmt: skip
    terms: list[str] = []
    for kind, run in runs:
        if kind == "cjk" and len(run) > 1:
            terms.extend(run[i : i + 2] for i in range(len(run) - 1))
        elif kind == "word" or _INDEXED_ALONE.match(run):
            terms.append(run[:_MAX_KEY])
    if not terms:
        raise DomainError("query_too_short", "search for at least two kana, or a kanji",
                          field="q")  # fmt: skip
    unique = tuple(dict.fromkeys(terms))
    if len(unique) > MAX_QUERY_TERMS:
        raise DomainError("query_too_long", f"a search is at most {MAX_QUERY_TERMS} words",
                          field="q")  # fmt: skip
    cjk_runs = tuple(dict.fromkeys(run for kind, run in runs if kind == "cjk" and len(run) > 2))
    return PostQuery(unique, cjk_runs)


def matches_post(query: PostQuery, text: str) -> bool:
    """Whether a post found by the query's terms really matches (its Japanese runs
    occur as written, not only their bigrams)."""
    if not query.runs:
        return True
    folded = fold(text)
    return all(run in folded for run in query.runs)


def validate_search_type(raw: str | None) -> str:
    """`members` (the default) or `posts`."""
    if raw is None:
        return "members"
    if raw not in SEARCH_TYPES:
        raise DomainError("invalid_type", 'type must be "members" or "posts"', field="type")
    return raw
