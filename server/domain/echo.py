"""Echo post text, visibility, and the character policy for all user-written text.

Owns what an Echo's text may be (SPEC "Echo posts") and the shared rules other
domain modules reuse for names, titles and descriptions: how characters are counted
(`visible_length`, extended grapheme clusters after NFC) and which characters are
refused (`is_forbidden_character`). Does no I/O.

Refused characters, and why:
- line breaks (`LINE_BREAKS`: every boundary `str.splitlines` knows) -> an Echo is
  one line;
- all other C0/C1 controls (Unicode `Cc`, tab included) and lone surrogates (`Cs`);
- bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069): they
  reorder what follows them, so `abc\\u202etxt.exe` displays as something else
  ("Trojan Source" spoofing), and ordinary right-to-left text does not need them.
Kept on purpose: ZWJ/ZWNJ (emoji sequences, Persian), LRM/RLM/ALM (mark-only bidi
hints), variation selectors and tag characters (emoji and flag sequences), soft
hyphen, private-use and unassigned code points (future emoji).

Combining marks are limited per character: at most `MAX_MARKS_PER_GRAPHEME` nonspacing
or enclosing marks (`Mn`, `Me`) in one grapheme. Within the byte limit, `"e"` and 2,047
U+0301 were one character drawing ~600 px of marks over the page ("zalgo"); no writing
system stacks more than a few (Vietnamese two, Hebrew with cantillation four or five;
an emoji keycap or ZWJ sequence two or three variation selectors and marks).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import regex

from server.domain.effects import Segment, is_blank, parse_markup, plain_text
from server.domain.errors import DomainError

__all__ = [
    "LINE_BREAKS",
    "MAX_BYTES",
    "MAX_GRAPHEMES",
    "MAX_MARKS_PER_GRAPHEME",
    "VISIBILITIES",
    "EchoText",
    "clean_text",
    "is_forbidden_character",
    "validate_echo_text",
    "validate_visibility",
    "visible_length",
]

MAX_GRAPHEMES = 150
MAX_MARKS_PER_GRAPHEME = 8
MAX_BYTES = 4096
VISIBILITIES = ("public", "friends")

LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_GRAPHEME = regex.compile(r"\X")
_MARK = regex.compile(r"[\p{Mn}\p{Me}]")
# The same sets as patterns, so a text is searched in C rather than walked character
# by character in Python: Unicode fixes `Cc` as U+0000-U+001F and U+007F-U+009F
# forever, and `Cs` as U+D800-U+DFFF (tests/unit/test_echo.py checks every code point).
_LINE_BREAK = re.compile("[" + "".join(sorted(LINE_BREAKS)) + "]")
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
# Budget of UTF-8 bytes per character for texts other than Echoes: a ZWJ family
# emoji is 25 bytes, so 32 leaves room for real text but not for "zalgo" piles.
_BYTES_PER_GRAPHEME = 32


@dataclass(frozen=True, slots=True)
class EchoText:
    """A validated Echo text: `text` is the visible text, `markup` the NFC source."""

    text: str
    segments: tuple[Segment, ...]
    markup: str


def visible_length(text: str) -> int:
    """Length as a reader counts it: extended grapheme clusters (`regex` `\\X`)."""
    if text.isascii():
        # In ASCII only CR LF joins into one cluster: no ASCII character extends,
        # prepends or joins.
        return len(text) - text.count("\r\n")
    return len(_GRAPHEME.findall(text))


def most_marks_in_a_grapheme(text: str) -> int:
    """The largest number of combining marks (`Mn`, `Me`) in one grapheme of `text`."""
    if text.isascii():
        return 0
    marks = _MARK.findall(text)
    if len(marks) <= MAX_MARKS_PER_GRAPHEME:
        return len(marks)  # a bound, enough to pass: no grapheme can have more
    return max(len(_MARK.findall(g)) for g in _GRAPHEME.findall(text))


def is_forbidden_character(ch: str) -> bool:
    """True for a control character, lone surrogate or bidi override (module docstring).

    Line breaks are forbidden characters too; callers that allow newlines check first.
    """
    return ch in LINE_BREAKS or ch in _BIDI_CONTROLS or unicodedata.category(ch) in ("Cc", "Cs")


def _find(text: str, pattern: re.Pattern[str]) -> int | None:
    """Index of the first character matching `pattern`, or None."""
    found = pattern.search(text)
    return None if found is None else found.start()


def _describe(ch: str) -> str:
    return f"U+{ord(ch):04X}"


def validate_echo_text(raw: object) -> EchoText:
    """Validate an Echo's source text (markup included); all errors have field `text`.

    In order: `invalid_text` (not a string), `text_required` (empty), NFC, then
    `text_too_large` (> 4096 UTF-8 bytes with markup), `text_multiline`,
    `text_control_character`, the markup errors of `parse_markup`, `text_blank`
    (no visible character), `text_too_long` (> 150 characters of visible text),
    `text_too_many_marks` (a character with more than 8 combining marks).
    The text is otherwise kept as typed (not stripped).
    """
    if not isinstance(raw, str):
        raise DomainError("invalid_text", "text must be a string", field="text")
    if not raw:
        raise DomainError("text_required", "text is required", field="text")
    is_ascii = raw.isascii()
    if is_ascii:
        # NFC leaves ASCII as it is, and its UTF-8 is a byte a character.
        source, size = raw, len(raw)
    else:
        source = unicodedata.normalize("NFC", raw)
        size = len(source.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise DomainError(
            "text_too_large",
            f"text is {size} bytes of UTF-8; the limit is {MAX_BYTES}",
            field="text",
        )
    # Line breaks are forbidden characters too: one search clears a good text of both,
    # and in ASCII the forbidden characters are exactly the unprintable ones.
    forbidden = None if is_ascii and source.isprintable() else _FORBIDDEN.search(source)
    if forbidden is not None:
        at = _find(source, _LINE_BREAK)
        if at is not None:
            raise DomainError(
                "text_multiline",
                f"text must be one line; line break at position {at}",
                field="text",
            )
        at = forbidden.start()
        raise DomainError(
            "text_control_character",
            f"control character {_describe(source[at])} at position {at} is not allowed",
            field="text",
        )
    segments = parse_markup(source)
    text = plain_text(segments)
    if is_blank(text):
        raise DomainError("text_blank", "text must contain a visible character", field="text")
    length = visible_length(text)
    if length > MAX_GRAPHEMES:
        raise DomainError(
            "text_too_long",
            f"text is {length} characters; the limit is {MAX_GRAPHEMES}",
            field="text",
        )
    most = most_marks_in_a_grapheme(text)
    if most > MAX_MARKS_PER_GRAPHEME:
        raise DomainError(
            "text_too_many_marks",
            f"text has a character with {most} combining marks; "
            f"the limit is {MAX_MARKS_PER_GRAPHEME}",
            field="text",
        )
    return EchoText(text=text, segments=segments, markup=source)


def validate_visibility(raw: object) -> str:
    """`public` (the default, for None) or `friends`."""
    if raw is None:
        return "public"
    if not isinstance(raw, str) or raw not in VISIBILITIES:
        raise DomainError(
            "invalid_visibility", 'visibility must be "public" or "friends"', field="visibility"
        )
    return raw


_NEWLINES = regex.compile(r"\r\n|[\r\x85\u2028\u2029]")


def clean_text(
    raw: object,
    *,
    field: str,
    code: str,
    label: str,
    max_graphemes: int,
    min_graphemes: int = 1,
    multiline: bool = False,
) -> str:
    """A short user-written text (name, title, description): NFC, stripped, checked.

    Must be a string of `min_graphemes`..`max_graphemes` characters (graphemes) and at
    most 32 UTF-8 bytes per allowed character, without forbidden characters; with
    `min_graphemes >= 1` it must also have a visible character. With `multiline`,
    line breaks are allowed and normalised to `\\n`. Every refusal is
    `DomainError(code, ..., field=field)`.
    """
    if not isinstance(raw, str):
        raise DomainError(code, f"{label} must be a string", field=field)
    text = unicodedata.normalize("NFC", raw)
    if multiline:
        text = _NEWLINES.sub("\n", text)
    text = text.strip()
    if len(text.encode("utf-8", "surrogatepass")) > _BYTES_PER_GRAPHEME * max_graphemes:
        raise DomainError(code, f"{label} is too large", field=field)
    allowed = "\n" if multiline else ""
    for index, ch in enumerate(text):
        if ch in allowed:
            continue
        if ch in LINE_BREAKS:
            raise DomainError(code, f"{label} must be one line", field=field)
        if is_forbidden_character(ch):
            raise DomainError(
                code,
                f"{label} must not contain control characters "
                f"({_describe(ch)} at position {index})",
                field=field,
            )
    if min_graphemes >= 1 and is_blank(text):
        raise DomainError(code, f"{label} must not be blank", field=field)
    length = visible_length(text)
    if length < min_graphemes:
        raise DomainError(code, f"{label} must be at least {min_graphemes} characters", field=field)
    if length > max_graphemes:
        raise DomainError(
            code,
            f"{label} is {length} characters; the limit is {max_graphemes}",
            field=field,
        )
    most = most_marks_in_a_grapheme(text)
    if most > MAX_MARKS_PER_GRAPHEME:
        raise DomainError(
            code,
            f"{label} has a character with {most} combining marks; "
            f"the limit is {MAX_MARKS_PER_GRAPHEME}",
            field=field,
        )
    return text
