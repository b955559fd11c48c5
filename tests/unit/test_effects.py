"""The effect markup parser, its inverse, and the wire form of segments."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from server.domain.effects import (
    _BLANK,
    EFFECTS,
    MAX_DEPTH,
    Effect,
    Segment,
    Text,
    _Parser,
    is_blank,
    parse_markup,
    plain_text,
    render_markup,
    segments_from_wire,
    segments_to_wire,
)
from server.domain.errors import DomainError


def shake(*children: Segment) -> Effect:
    return Effect("shake", children)


def big(*children: Segment) -> Effect:
    return Effect("big", children)


T = Text


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("", ()),
        ("hello", (T("hello"),)),
        ("hello $[shake wow]", (T("hello "), shake(T("wow")))),
        ("$[big hi]", (big(T("hi")),)),
        ("$[big $[shake wow]]", (big(shake(T("wow"))),)),
        ("$[big a $[shake b] c]!", (big(T("a "), shake(T("b")), T(" c")), T("!"))),
        ("$[shake a]$[big b]", (shake(T("a")), big(T("b")))),
        ("$[shake  two spaces]", (shake(T(" two spaces")),)),  # content may start blank
        ("$[shake 日本語]", (shake(T("日本語")),)),
        ("$[shake 👨‍👩‍👧‍👦]", (shake(T("👨‍👩‍👧‍👦")),)),
        # a ] outside any effect is literal text
        ("a]b", (T("a]b"),)),
        ("]", (T("]"),)),
        ("$[big x]]", (big(T("x")), T("]"))),
        # $ and [ on their own are literal
        ("$5 [x] $ [", (T("$5 [x] $ ["),)),
        ("$$[big x]", (T("$"), big(T("x")))),
        ("[$[big x]", (T("["), big(T("x")))),
        # escapes
        ("\\$[shake x]", (T("$[shake x]"),)),
        ("a\\$[b", (T("a$[b"),)),
        ("\\\\$[big x]", (T("\\"), big(T("x")))),
        ("\\\\\\$[big x]", (T("\\$[big x]"),)),
        ("\\\\\\\\$[big x]", (T("\\\\"), big(T("x")))),
        ("a\\b\\\\c\\", (T("a\\b\\\\c\\"),)),  # backslashes elsewhere are literal
        ("\\$x \\[ \\]", (T("\\$x \\[ \\]"),)),
        ("$[big \\$[shake x]", (big(T("$[shake x")),)),
        ("$[big a\\]", (big(T("a\\")),)),  # no escape for ]: it closes
        ("$[big \\$[]", (big(T("$[")),)),
    ],
)
def test_parse(source: str, expected: tuple[Segment, ...]) -> None:
    assert parse_markup(source) == expected


@pytest.mark.parametrize(
    ("source", "code", "position"),
    [
        ("hi $[spin x]", "unknown_effect", 3),
        ("wow $[spin x]", "unknown_effect", 4),
        ("$[Shake x]", "unknown_effect", 0),  # names are case-sensitive
        ("$[shake]", "unknown_effect", 0),  # missing space
        ("$[shakewow]", "unknown_effect", 0),
        ("$[ x]", "unknown_effect", 0),  # missing name
        ("$[]", "unknown_effect", 0),
        ("$[shake\u3000x]", "unknown_effect", 0),  # only an ASCII space separates
        ("$[shake$[big x]]", "unknown_effect", 0),
        ("ab$[big $[spin x]]", "unknown_effect", 8),
        ("$[spin", "unknown_effect", 0),
        ("$[shake ]", "empty_effect", 0),
        ("$[shake    ]", "empty_effect", 0),  # whitespace is not visible text
        ("$[shake \u200b]", "empty_effect", 0),  # nor is a zero-width space
        ("$[big $[shake ]]", "empty_effect", 6),
        ("ok $[big  $[shake  ] ]", "empty_effect", 10),
        ("$[shake x", "unclosed_effect", 0),
        ("$[shake ", "unclosed_effect", 0),
        ("$[shake", "unclosed_effect", 0),
        ("abc $[", "unclosed_effect", 4),
        ("$[big $[shake wow]", "unclosed_effect", 0),
        ("$[big a $[shake wow", "unclosed_effect", 8),
        ("x$[big \\\\$[shake b]", "unclosed_effect", 1),
        ("$[big $[shake $[big x]]]", "effects_too_deep", 14),
        ("$[big $[big $[big $[big x]]]]", "effects_too_deep", 12),
    ],
)
def test_parse_errors(source: str, code: str, position: int) -> None:
    with pytest.raises(DomainError) as excinfo:
        parse_markup(source)
    error = excinfo.value
    assert type(error) is DomainError
    assert (error.code, error.field) == (code, "text")
    assert f"position {position}" in error.message


def test_unknown_effect_message() -> None:
    with pytest.raises(DomainError) as excinfo:
        parse_markup("wow $[spin x]")
    assert excinfo.value.message == "unknown effect 'spin' at position 4"


def test_unknown_effect_message_truncates_long_names() -> None:
    with pytest.raises(DomainError) as excinfo:
        parse_markup("$[" + "x" * 4000 + " y]")
    assert len(excinfo.value.message) < 80


@pytest.mark.parametrize(
    ("segments", "text"),
    [
        ((), ""),
        ((T("a"),), "a"),
        ((T("hello "), shake(T("wow"))), "hello wow"),
        ((big(T("a "), shake(T("b")), T(" c")), T("!")), "a b c!"),
    ],
)
def test_plain_text(segments: tuple[Segment, ...], text: str) -> None:
    assert plain_text(segments) == text


@pytest.mark.parametrize(
    ("segments", "markup"),
    [
        ((), ""),
        ((T("hello "), shake(T("wow"))), "hello $[shake wow]"),
        ((T("$[x"),), "\\$[x"),
        ((T("\\"), big(T("x"))), "\\\\$[big x]"),
        ((T("\\$[big x]"),), "\\\\\\$[big x]"),
        ((T("a\\"),), "a\\"),
        ((big(T("a\\")),), "$[big a\\]"),
        ((T("$"), big(T("x"))), "$$[big x]"),
        ((T("\\$"), big(T("x"))), "\\$$[big x]"),
        ((big(T("x")), T("]")), "$[big x]]"),
        ((big(shake(T("w"))),), "$[big $[shake w]]"),
    ],
)
def test_render(segments: tuple[Segment, ...], markup: str) -> None:
    assert render_markup(segments) == markup
    assert parse_markup(markup) == segments


def test_render_refuses_close_bracket_inside_effect() -> None:
    with pytest.raises(ValueError):
        render_markup((big(T("a]b")),))


def test_wire_form_matches_spec() -> None:
    segments = parse_markup("hello $[shake wow]")
    assert segments_to_wire(segments) == [
        {"text": "hello "},
        {"effect": "shake", "children": [{"text": "wow"}]},
    ]


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        ([], ()),
        ([{"text": "a"}], (T("a"),)),
        ([{"text": "a"}, {"text": "b"}], (T("ab"),)),  # merged
        (
            [{"effect": "big", "children": [{"effect": "shake", "children": [{"text": "w"}]}]}],
            (big(shake(T("w"))),),
        ),
    ],
)
def test_segments_from_wire(wire: object, expected: tuple[Segment, ...]) -> None:
    assert segments_from_wire(wire) == expected


def _nest(depth: int) -> object:
    node: object = {"text": "x"}
    for _ in range(depth):
        node = {"effect": "big", "children": [node]}
    return [node]


@pytest.mark.parametrize(
    "wire",
    [
        None,
        "hello",
        {"text": "a"},
        [None],
        ["a"],
        [{"text": ""}],
        [{"text": 1}],
        [{"text": "a", "extra": 1}],
        [{}],
        [{"effect": "spin", "children": [{"text": "a"}]}],
        [{"effect": "big", "children": []}],
        [{"effect": "big", "children": [{"text": "  "}]}],
        [{"effect": "big", "children": {"text": "a"}}],
        [{"effect": "big"}],
        [{"effect": 1, "children": [{"text": "a"}]}],
        _nest(MAX_DEPTH + 1),
    ],
)
def test_segments_from_wire_rejects(wire: object) -> None:
    with pytest.raises(DomainError) as excinfo:
        segments_from_wire(wire)
    assert (excinfo.value.code, excinfo.value.field) == ("invalid_segments", "segments")


@pytest.mark.parametrize(
    ("text", "blank"),
    [
        ("", True),
        (" \t\u3000", True),
        ("\u200b\u200d\ufe0f\u3164", True),
        ("a", False),
        ("\u2800", False),  # braille blank is a visible cell, not whitespace
        ("👍", False),
    ],
)
def test_is_blank(text: str, blank: bool) -> None:
    assert is_blank(text) is blank


# --- properties --------------------------------------------------------------

MARKUP_ALPHABET = st.sampled_from(
    ["$", "[", "]", "\\", " ", "$[", "shake ", "big ", "a", "あ", "👍"]
)
markupish = st.lists(MARKUP_ALPHABET, max_size=40).map("".join)


@given(st.one_of(markupish, st.text(max_size=60)))
@example("$[" * 1000)
@example("\\" * 1000 + "$[")
def test_parse_only_raises_domain_errors(source: str) -> None:
    try:
        segments = parse_markup(source)
    except DomainError as exc:
        assert exc.field == "text"
        assert "position" in exc.message
    else:
        assert all(s != T("") for s in segments)
        assert render_markup(segments) is not None


def _merge(segments: list[Segment]) -> tuple[Segment, ...]:
    out: list[Segment] = []
    for segment in segments:
        if isinstance(segment, Text) and out and isinstance(out[-1], Text):
            out[-1] = Text(out[-1].text + segment.text)
        else:
            out.append(segment)
    return tuple(out)


TEXT_CHARS = ["$", "[", "\\", " ", "a", "z", "日", "👍", "e\u0301", "\u200d", "\u3000"]


def texts(inside: bool) -> st.SearchStrategy[Text]:
    chars = TEXT_CHARS if inside else [*TEXT_CHARS, "]"]
    return st.lists(st.sampled_from(chars), min_size=1, max_size=6).map(lambda c: T("".join(c)))


def effects(depth: int) -> st.SearchStrategy[Segment]:
    child = texts(True) if depth == MAX_DEPTH else st.one_of(texts(True), effects(depth + 1))
    return st.builds(
        Effect,
        st.sampled_from(EFFECTS),
        st.lists(child, min_size=1, max_size=4).map(_merge),
    ).filter(lambda e: not is_blank(plain_text(e.children)))


trees = st.lists(st.one_of(texts(False), effects(1)), max_size=5).map(_merge)


@given(trees)
def test_render_then_parse_round_trips(tree: tuple[Segment, ...]) -> None:
    assert parse_markup(render_markup(tree)) == tree


@given(trees)
def test_wire_round_trips(tree: tuple[Segment, ...]) -> None:
    assert segments_from_wire(segments_to_wire(tree)) == tree


@given(markupish)
def test_parse_render_parse_is_stable(source: str) -> None:
    try:
        tree = parse_markup(source)
    except DomainError:
        return
    assert parse_markup(render_markup(tree)) == tree


# --- shortcuts agree with the general rules ----------------------------------


ASCII = st.text(st.characters(max_codepoint=0x7F), max_size=60)


@given(st.one_of(ASCII, st.text(max_size=60)).filter(lambda s: "$[" not in s))
@example("a\\b] $ [ \\")
def test_text_without_an_opener_parses_as_the_parser_would(source: str) -> None:
    assert parse_markup(source) == _Parser(source).sequence(0, None)


def test_ascii_blank_matches_the_general_rule_per_character() -> None:
    for code in range(0x80):
        assert is_blank(chr(code)) is (_BLANK.fullmatch(chr(code)) is not None), hex(code)


@given(ASCII)
@example(" \t\r\n")
def test_ascii_blank_matches_the_general_rule(text: str) -> None:
    assert is_blank(text) is (_BLANK.fullmatch(text) is not None)
