"""Effect markup (mixi2's emoteki): parse, render back, and the wire form of segments.

Grammar of an Echo's source text:

- `$[name content]` is an effect: `$[`, a name from `EFFECTS`, exactly one space,
  the content (text and nested effects), `]`. Effects nest at most `MAX_DEPTH` deep.
- `]` closes the innermost open effect; outside any effect it is literal text.
- Escapes: a run of backslashes immediately followed by `$[` is halved, and if the
  run was odd its last backslash turns that `$[` into literal text. So `\\$[` is a
  literal `$[`, `\\\\$[big x]` is a literal backslash then an effect, and
  `\\\\\\$[` is a literal backslash then a literal `$[`. Backslashes anywhere else
  are literal as typed (`a\\b` is `a\\b`). This is the only extension of the
  spec's "`\\$[` is a literal `$[`", and it exists so that every text can be
  written down: without it a backslash just before an effect could not be.
- There is no escape for `]` inside an effect, so text inside an effect never
  contains `]` (outside effects it may).

Errors are `DomainError` with field `text` and a message naming the 0-based position
(in code points of the source) of the offending `$[`: `unknown_effect` (unknown or
missing name, or not followed by exactly one space), `empty_effect` (content with no
visible character), `unclosed_effect`, `effects_too_deep`.

Pure: no I/O. Rendering effects is the client's job; it gets `segments`, never markup.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeAlias

import regex

from server.domain.errors import DomainError

__all__ = [
    "EFFECTS",
    "MAX_DEPTH",
    "Effect",
    "Segment",
    "Text",
    "is_blank",
    "parse_markup",
    "plain_text",
    "render_markup",
    "segments_from_wire",
    "segments_to_wire",
]

EFFECTS = ("shake", "big")
MAX_DEPTH = 2


@dataclass(frozen=True, slots=True)
class Text:
    """Literal visible text (escapes already resolved)."""

    text: str


@dataclass(frozen=True, slots=True)
class Effect:
    """An effect applied to its children."""

    effect: str
    children: tuple[Segment, ...]


Segment: TypeAlias = Text | Effect

_OPEN = "$["
# Ordinary text: anything that cannot start an escape, an effect or a close.
_PLAIN = re.compile(r"[^\\$\]]+")
# An effect name runs to the first space, bracket, dollar or backslash.
_NAME = re.compile(r"[^\s\[\]$\\]*")
# A run of backslashes followed by "$[", inside a Text being rendered.
_LITERAL_OPEN = re.compile(r"(\\*)\$\[")
# Blank: nothing but whitespace and default-ignorable code points (ZWSP, ZWJ,
# variation selectors, the Hangul filler...), i.e. nothing anyone can see.
_BLANK = regex.compile(r"[\s\p{Default_Ignorable_Code_Point}]*")
# The ASCII characters `_BLANK` matches (no ASCII character is default-ignorable).
_ASCII_BLANK = "\t\n\v\f\r "
_NAME_IN_MESSAGE = 20


def is_blank(text: str) -> bool:
    """True if `text` has no visible character (only whitespace / default-ignorables)."""
    if text.isascii():
        return not text.strip(_ASCII_BLANK)
    return _BLANK.fullmatch(text) is not None


def _shown(name: str) -> str:
    if len(name) > _NAME_IN_MESSAGE:
        name = name[:_NAME_IN_MESSAGE] + "…"
    return f"'{name}'"


class _Parser:
    """Recursive descent over the source; `pos` only ever moves forward."""

    __slots__ = ("pos", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self.pos = 0

    def sequence(self, depth: int, opened: tuple[int, str] | None) -> tuple[Segment, ...]:
        """Segments until the `]` closing the effect at `depth` (or the end at depth 0)."""
        source, end = self.source, len(self.source)
        out: list[Segment] = []
        buf: list[str] = []
        while self.pos < end:
            ch = source[self.pos]
            if ch == "\\":
                run_end = self.pos
                while run_end < end and source[run_end] == "\\":
                    run_end += 1
                run = run_end - self.pos
                if source.startswith(_OPEN, run_end):
                    buf.append("\\" * (run // 2))
                    if run % 2:
                        buf.append(_OPEN)
                        run_end += len(_OPEN)
                else:
                    buf.append("\\" * run)
                self.pos = run_end
            elif source.startswith(_OPEN, self.pos):
                if buf:
                    out.append(Text("".join(buf)))
                    buf.clear()
                out.append(self.effect(depth + 1))
            elif ch == "]" and opened is not None:
                self.pos += 1
                break
            else:
                match = _PLAIN.match(source, self.pos)
                stop = match.end() if match else self.pos + 1
                buf.append(source[self.pos : stop])
                self.pos = stop
        else:
            if opened is not None:
                at, name = opened
                raise DomainError(
                    "unclosed_effect",
                    f"effect {_shown(name)} at position {at} is never closed",
                    field="text",
                )
        if buf:
            out.append(Text("".join(buf)))
        return tuple(out)

    def effect(self, depth: int) -> Effect:
        """The effect whose `$[` is at `pos`, through its closing `]`."""
        source, at = self.source, self.pos
        if depth > MAX_DEPTH:
            raise DomainError(
                "effects_too_deep",
                f"effects nest at most {MAX_DEPTH} deep; the effect at position {at} "
                f"is {depth} deep",
                field="text",
            )
        match = _NAME.match(source, at + len(_OPEN))
        assert match is not None  # the pattern matches the empty string
        name, self.pos = match.group(), match.end()
        at_end = self.pos >= len(source)
        if at_end and (not name or name in EFFECTS):
            raise DomainError(
                "unclosed_effect", f"'$[' at position {at} is never closed", field="text"
            )
        if not name:
            raise DomainError(
                "unknown_effect", f"missing effect name at position {at}", field="text"
            )
        if name not in EFFECTS:
            raise DomainError(
                "unknown_effect", f"unknown effect {_shown(name)} at position {at}", field="text"
            )
        if source[self.pos] != " ":
            raise DomainError(
                "unknown_effect",
                f"effect {_shown(name)} at position {at} must be followed by one space",
                field="text",
            )
        self.pos += 1
        children = self.sequence(depth, (at, name))
        if is_blank(plain_text(children)):
            raise DomainError(
                "empty_effect", f"empty effect {_shown(name)} at position {at}", field="text"
            )
        return Effect(name, children)


def parse_markup(source: str) -> tuple[Segment, ...]:
    """Parse effect markup into segments: adjacent text merged, no empty `Text`.

    Raises `DomainError` (field `text`) as described in the module docstring; never
    anything else, whatever the input.
    """
    if _OPEN not in source:
        # No effect and no escape (escapes only come before a `$[`): the source is
        # one literal text, as the parser would find it, without walking it.
        return (Text(source),) if source else ()
    return _Parser(source).sequence(0, None)


def plain_text(segments: Iterable[Segment]) -> str:
    """The visible text: markup removed, escapes resolved."""
    parts: list[str] = []
    for segment in segments:
        if isinstance(segment, Text):
            parts.append(segment.text)
        else:
            parts.append(plain_text(segment.children))
    return "".join(parts)


def _escape(text: str, *, before_effect: bool, inside: bool) -> str:
    if inside and "]" in text:
        raise ValueError("text inside an effect cannot contain ']'")
    escaped = _LITERAL_OPEN.sub(lambda m: m.group(1) * 2 + "\\" + _OPEN, text)
    if before_effect:
        # Double a trailing backslash run so the effect's `$[` stays an opener.
        escaped += "\\" * (len(escaped) - len(escaped.rstrip("\\")))
    return escaped


def _render(segments: Sequence[Segment], inside: bool, out: list[str]) -> None:
    for index, segment in enumerate(segments):
        if isinstance(segment, Text):
            following = segments[index + 1] if index + 1 < len(segments) else None
            out.append(
                _escape(segment.text, before_effect=isinstance(following, Effect), inside=inside)
            )
        else:
            out.append(f"{_OPEN}{segment.effect} ")
            _render(segment.children, True, out)
            out.append("]")


def render_markup(segments: Sequence[Segment]) -> str:
    """The markup source for `segments`: the inverse of `parse_markup`.

    For any tree `parse_markup` can return, `parse_markup(render_markup(t)) == t`.
    A literal `$[` is written `\\$[` and backslashes before a `$[` are doubled (see
    the module docstring). Raises `ValueError` for a `]` in text inside an effect,
    which markup cannot express.
    """
    out: list[str] = []
    _render(segments, False, out)
    return "".join(out)


def segments_to_wire(segments: Iterable[Segment]) -> list[dict[str, object]]:
    """The JSON form: `{"text": ...}` and `{"effect": name, "children": [...]}`."""
    wire: list[dict[str, object]] = []
    for segment in segments:
        if isinstance(segment, Text):
            wire.append({"text": segment.text})
        else:
            wire.append({"effect": segment.effect, "children": segments_to_wire(segment.children)})
    return wire


def _invalid(message: str) -> DomainError:
    return DomainError("invalid_segments", message, field="segments")


def _from_wire(obj: object, depth: int) -> tuple[Segment, ...]:
    if not isinstance(obj, list):
        raise _invalid("segments must be a list")
    out: list[Segment] = []
    for item in obj:
        if not isinstance(item, dict):
            raise _invalid("each segment must be an object")
        if item.keys() == {"text"}:
            text = item["text"]
            if not isinstance(text, str) or not text:
                raise _invalid("a text segment needs a non-empty string")
            if out and isinstance(out[-1], Text):
                out[-1] = Text(out[-1].text + text)
            else:
                out.append(Text(text))
        elif item.keys() == {"effect", "children"}:
            name = item["effect"]
            if not isinstance(name, str) or name not in EFFECTS:
                raise _invalid("unknown effect in segments")
            if depth + 1 > MAX_DEPTH:
                raise _invalid(f"effects nest at most {MAX_DEPTH} deep")
            children = _from_wire(item["children"], depth + 1)
            if is_blank(plain_text(children)):
                raise _invalid("an effect needs visible text")
            out.append(Effect(name, children))
        else:
            raise _invalid('a segment is {"text"} or {"effect", "children"}')
    return tuple(out)


def segments_from_wire(obj: object) -> tuple[Segment, ...]:
    """Segments from their JSON form, checked like parsed markup (known effects, at
    most 2 deep, no empty effect or text); adjacent texts are merged.

    Raises `DomainError("invalid_segments", field="segments")`.
    """
    return _from_wire(obj, 0)
