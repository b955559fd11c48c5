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
# iteration marks belong to Japanese words.
_CJK = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Hangul}ーゝゞヽヾ々"
_TOKEN = regex.compile(rf"(?P<cjk>[{_CJK}]+)|(?P<word>[\p{{L}}\p{{N}}\p{{M}}_]+)")
_SPACES = regex.compile(r"\s+")


def fold(text: str) -> str:
    """The search form of `text`: NFKC (width, compatibility forms), case folding, and
    NFKC again (case folding can leave a string that is not NFKC)."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def _words(folded: str) -> list[tuple[str, str]]:
    """(kind, run) for each run of letters: `cjk` or `word`."""
    return [("cjk" if m.group("cjk") else "word", m.group(0)) for m in _TOKEN.finditer(folded)]


def member_keys(handle: str, display_name: str) -> frozenset[str]:
    """What a member is found by (prefixes of these): the handle, the whole display
    name, each word of it (so `yam` finds "Aki Yamada"), and each tail of a Japanese
    run in it (names are written without spaces: `アキ` finds 山田アキ)."""
    name = _SPACES.sub(" ", fold(display_name)).strip()
    keys = {handle.lower(), name}
    keys.update(name.split(" "))
    for kind, run in _words(name):
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


def _terms(runs: list[tuple[str, str]]) -> list[str]:
    terms: list[str] = []
    for kind, run in runs:
        if kind == "word":
            terms.append(run[:_MAX_KEY])
        else:
            terms.extend(run)
            terms.extend(run[i : i + 2] for i in range(len(run) - 1))
    return list(dict.fromkeys(terms))


def post_terms(text: str) -> list[str]:
    """The terms a post's visible text is indexed under (no duplicates, capped)."""
    return _terms(_words(fold(text)))[:_MAX_POST_TERMS]


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
        else:
            terms.append(run[:_MAX_KEY])
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
