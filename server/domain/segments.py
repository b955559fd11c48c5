"""Mentions, links and tags: found in a post's visible text and added to its segments.

SPEC "Conversations": clients never parse text. The server turns the effect tree of
`server.domain.effects` into wire segments where, inside every text (inside effects
too), these become segments of their own, each with the text exactly as written:

- `{"mention": handle, "text": "@Aki"}`: `@` then 3-20 of `[A-Za-z0-9_]` (a handle,
  case-insensitive, so `handle` is lower-cased), not preceded by an ASCII word
  character or `@` (so `a@b.example` is no mention, but `こんにちは@aki` is one) and
  not followed by one (so `@abcdefghijklmnopqrstuv`, too long for a handle, is none).
  Only handles of existing members become mentions: the caller says which
  (`members`), the rest stays text.
- `{"link": url, "text": url}`: `http://` or `https://` (scheme in any case), a host,
  then printable ASCII other than `<>"` up to the first space or non-ASCII character
  (Japanese text often follows a URL without a space). Trailing `.,:;!?'` are left
  out, and a trailing `)` unless the URL opened one. The URL is kept as written.
- `{"tag": tag, "text": "#東京"}`: `#` (or the full-width U+FF03 a Japanese keyboard
  types) then 1-50 Unicode letters, marks, digits or `_`, with at least one letter,
  not preceded by an ASCII word character or `&` (`今日は#ラーメン` is a tag,
  `C#` and `&#39;` are not). `tag` is the NFKC, case-folded form, so `#Tokyo`,
  `#tokyo` and the full-width `#tokyo` are one tag page.

A mention, link or tag never spans an effect boundary: each text is annotated alone.
Joining the `text` of every leaf, in order, gives the post's visible text back.

Pure: no I/O.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Container, Sequence
from dataclasses import dataclass

import regex

from server.domain.effects import Effect, Segment, Text
from server.domain.errors import DomainError

__all__ = [
    "MAX_TAG_LENGTH",
    "Annotated",
    "annotate",
    "check_tag",
    "mentioned_handles",
    "normal_tag",
    "wire_text",
]

MAX_TAG_LENGTH = 50
# The three forms, tried at each position left to right: a link first, so the `@` or
# `#` inside a URL stays part of it.
_FIND = regex.compile(
    r"""
    (?P<link>(?i:https?)://[^\s/?#<>"\x00-\x1f\x7f-\U0010ffff][!#-;=?-~]*)
  | (?<![A-Za-z0-9_@])@(?P<mention>[A-Za-z0-9_]{3,20})(?![A-Za-z0-9_])
  | (?<![A-Za-z0-9_&])[#＃](?P<tag>[\p{L}\p{M}\p{N}_]{1,50})(?![\p{L}\p{M}\p{N}_])
    """,
    regex.VERBOSE,
)
_HAS_LETTER = regex.compile(r"\p{L}")
_TRAILING = ".,:;!?'"
# Characters any of the three forms needs: a text without them is left alone, which
# keeps the common post (no mention, link or tag) as cheap as before.
_MENTION_HANDLES = regex.compile(r"(?<![A-Za-z0-9_@])@([A-Za-z0-9_]{3,20})(?![A-Za-z0-9_])")


def _may_annotate(text: str) -> bool:
    return "@" in text or "#" in text or "://" in text or "＃" in text


@dataclass(frozen=True, slots=True)
class Annotated:
    """A post's wire segments with what they mention and tag (each once, in order)."""

    segments: list[dict[str, object]]
    mentions: tuple[str, ...]
    tags: tuple[str, ...]


def normal_tag(name: str) -> str:
    """The form a tag is filed under: NFKC, then case-folded."""
    return unicodedata.normalize("NFKC", name).casefold()


_TAG_NAME = regex.compile(r"[\p{L}\p{M}\p{N}_]{1,50}")


def check_tag(raw: object) -> str:
    """The filed form of a tag asked for by name (with or without its `#`), or
    `DomainError("invalid_tag", field="tag")` for anything a post could not tag."""
    if not isinstance(raw, str) or len(raw) > 4 * MAX_TAG_LENGTH:
        raise DomainError("invalid_tag", "a tag is 1-50 letters, digits or _", field="tag")
    name = raw[1:] if raw[:1] in ("#", "＃") else raw
    name = unicodedata.normalize("NFC", name)
    if not _TAG_NAME.fullmatch(name) or not _HAS_LETTER.search(name):
        raise DomainError(
            "invalid_tag", "a tag is 1-50 letters, digits or _, with a letter", field="tag"
        )
    return normal_tag(name)


def mentioned_handles(text: str) -> list[str]:
    """The lower-cased handles `text` could mention (to look up which exist).

    A superset of the mentions `annotate` finds (an effect boundary can split one)."""
    if "@" not in text:
        return []
    seen: dict[str, None] = {}
    for match in _MENTION_HANDLES.finditer(text):
        seen[match.group(1).lower()] = None
    return list(seen)


def _link_end(url: str) -> int:
    """Where a link found by `_FIND` really ends: trailing punctuation left out."""
    end = len(url)
    while end > 0:
        ch = url[end - 1]
        if ch in _TRAILING:
            end -= 1
        elif ch == ")" and url.count("(", 0, end) < url.count(")", 0, end):
            end -= 1
        else:
            break
    return end


def _annotate_text(
    text: str, members: Container[str], mentions: dict[str, None], tags: dict[str, None]
) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    plain_from = 0
    pos = 0
    while True:
        match = _FIND.search(text, pos)
        if match is None:
            break
        start, end = match.span()
        kind = match.lastgroup
        leaf: dict[str, object] | None = None
        if kind == "link":
            end = start + _link_end(match.group())
            url = text[start:end]
            if "://" in url and len(url) > url.index("://") + 3:
                leaf = {"link": url, "text": url}
        elif kind == "mention":
            handle = match.group("mention").lower()
            if handle in members:
                leaf = {"mention": handle, "text": match.group()}
                mentions[handle] = None
        else:
            name = match.group("tag")
            if _HAS_LETTER.search(name):
                tag = normal_tag(name)
                leaf = {"tag": tag, "text": match.group()}
                tags[tag] = None
        if leaf is None:
            pos = start + 1
            continue
        if start > plain_from:
            out.append({"text": text[plain_from:start]})
        out.append(leaf)
        plain_from = pos = end
    if plain_from < len(text):
        out.append({"text": text[plain_from:]})
    return out


def _walk(
    segments: Sequence[Segment],
    members: Container[str],
    mentions: dict[str, None],
    tags: dict[str, None],
) -> list[dict[str, object]]:
    wire: list[dict[str, object]] = []
    for segment in segments:
        if isinstance(segment, Text):
            if _may_annotate(segment.text):
                wire.extend(_annotate_text(segment.text, members, mentions, tags))
            else:
                wire.append({"text": segment.text})
        else:
            assert isinstance(segment, Effect)
            children = _walk(segment.children, members, mentions, tags)
            wire.append({"effect": segment.effect, "children": children})
    return wire


def annotate(segments: Sequence[Segment], members: Container[str] = ()) -> Annotated:
    """The wire segments of a parsed post, mentions (of `members` only, lower-cased
    handles), links and tags found in every text (module docstring)."""
    mentions: dict[str, None] = {}
    tags: dict[str, None] = {}
    wire = _walk(segments, members, mentions, tags)
    return Annotated(wire, tuple(mentions), tuple(tags))


def wire_text(segments: Sequence[dict[str, object]]) -> str:
    """The visible text of wire segments: every leaf's `text`, in order."""
    parts: list[str] = []
    for segment in segments:
        children = segment.get("children")
        if isinstance(children, list):
            parts.append(wire_text(children))
        else:
            text = segment.get("text")
            assert isinstance(text, str)
            parts.append(text)
    return "".join(parts)
