"""Echo text rules: counting, limits, one line, control characters, markup."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from server.domain.echo import (
    _FORBIDDEN,
    _GRAPHEME,
    _LINE_BREAK,
    LINE_BREAKS,
    MAX_BYTES,
    MAX_GRAPHEMES,
    MAX_MARKS_PER_GRAPHEME,
    EchoText,
    clean_text,
    is_forbidden_character,
    validate_echo_text,
    validate_visibility,
    visible_length,
)
from server.domain.effects import _BLANK, Effect, Text, _Parser, parse_markup, plain_text
from server.domain.errors import DomainError

FAMILY = "👨\u200d👩\u200d👧\u200d👦"  # one grapheme, 7 code points
THUMB_DARK = "👍🏿"  # skin-tone modifier
FLAG_JP = "🇯🇵"
FLAG_SCOTLAND = "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("", 0),
        ("abc", 3),
        ("あいう", 3),
        ("e\u0301", 1),
        ("\u00e9", 1),
        (FAMILY, 1),
        (THUMB_DARK, 1),
        (FLAG_JP, 1),
        (FLAG_SCOTLAND, 1),
        ("ก\u0e34\u0e4a", 1),  # Thai consonant with stacked marks
        ("\r\n", 1),
        ("a b", 3),
    ],
)
def test_visible_length(text: str, length: int) -> None:
    assert visible_length(text) == length


@pytest.mark.parametrize(
    "raw",
    [
        "x" * 150,
        "あ" * 150,
        "漢" * 150,
        FAMILY * 150,
        THUMB_DARK * 150,
        FLAG_JP * 150,
        "e\u0301" * 150,
        "$[big " + "x" * 150 + "]",  # markup does not count
        "$[big " + "x" * 50 + "] " + "$[shake " + "y" * 49 + "]" + "z" * 49,
        "\\$[" + "x" * 148,  # the escape backslash is not visible
        " " * 149 + "x",
    ],
)
def test_at_the_limit_is_accepted(raw: str) -> None:
    echo = validate_echo_text(raw)
    assert visible_length(echo.text) <= MAX_GRAPHEMES


@pytest.mark.parametrize(
    "raw",
    [
        "x" * 151,
        "あ" * 151,
        FAMILY * 151,
        THUMB_DARK * 151,
        "e\u0301" * 151,
        "$[big " + "x" * 151 + "]",
        "$[big " + "x" * 100 + "]" + "y" * 51,
    ],
)
def test_over_the_limit_is_too_long(raw: str) -> None:
    with pytest.raises(DomainError) as excinfo:
        validate_echo_text(raw)
    assert (excinfo.value.code, excinfo.value.field) == ("text_too_long", "text")
    assert "151" in excinfo.value.message


def test_nfc_composes() -> None:
    echo = validate_echo_text("cafe\u0301")
    assert echo.text == "caf\u00e9"
    assert echo.markup == "caf\u00e9"
    assert unicodedata.is_normalized("NFC", echo.text)


def test_result_shape() -> None:
    assert validate_echo_text("hello $[shake wow]") == EchoText(
        text="hello wow",
        segments=(Text("hello "), Effect("shake", (Text("wow"),))),
        markup="hello $[shake wow]",
    )


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (None, "invalid_text"),
        (42, "invalid_text"),
        (["hi"], "invalid_text"),
        (b"hi", "invalid_text"),
        ("", "text_required"),
        (" ", "text_blank"),
        ("\u3000\u3000", "text_blank"),
        ("\u200b", "text_blank"),
        ("\u3164", "text_blank"),  # Hangul filler
        # one "character" smuggling kilobytes of combining marks
        ("e" + "\u0301" * 3000, "text_too_large"),
        ("x" * 4097, "text_too_large"),
        ("あ" * 1366, "text_too_large"),  # 4098 bytes, far over 150 too: size wins
        ("a\nb", "text_multiline"),
        ("a\rb", "text_multiline"),
        ("a\r\nb", "text_multiline"),
        ("a\u2028b", "text_multiline"),
        ("a\u2029b", "text_multiline"),
        ("a\x85b", "text_multiline"),
        ("a\vb", "text_multiline"),
        ("a\fb", "text_multiline"),
        ("hello\n", "text_multiline"),  # not stripped
        ("a\x00b", "text_control_character"),
        ("a\tb", "text_control_character"),
        ("a\x1b[31mb", "text_control_character"),
        ("a\x7fb", "text_control_character"),
        ("a\x9bb", "text_control_character"),
        ("a\u202eb", "text_control_character"),
        ("a\u2066b\u2069", "text_control_character"),
        ("a\ud800b", "text_control_character"),
        ("$[spin x]", "unknown_effect"),
        ("$[shake]", "unknown_effect"),
        ("$[shake ]", "empty_effect"),
        ("$[shake x", "unclosed_effect"),
        ("$[big $[shake $[big x]]]", "effects_too_deep"),
        ("$[big  ]", "empty_effect"),
    ],
)
def test_rejected(raw: object, code: str) -> None:
    with pytest.raises(DomainError) as excinfo:
        validate_echo_text(raw)
    assert type(excinfo.value) is DomainError
    assert (excinfo.value.code, excinfo.value.field) == (code, "text")


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        ("hi", "hi"),
        ("  hi  ", "  hi  "),
        ("$[big $[shake wow]]", "wow"),
        ("\\$[shake x]", "$[shake x]"),
        ("\\\\$[big x]", "\\x"),
        ("a]b", "a]b"),
        ("price: $5", "price: $5"),
        (
            "ZWJ\u200dand ZWNJ\u200c and LRM\u200e are fine",
            "ZWJ\u200dand ZWNJ\u200c and LRM\u200e are fine",
        ),
        ("שלום עולם", "שלום עולם"),
        (FLAG_SCOTLAND, FLAG_SCOTLAND),
        ("\ue000", "\ue000"),  # private use
    ],
)
def test_accepted(raw: str, text: str) -> None:
    assert validate_echo_text(raw).text == text


def test_byte_limit_counts_markup() -> None:
    inner = "x" * 100
    markup = "$[big " + inner + "]"
    padding = "$[shake y]" * ((MAX_BYTES - len(markup)) // 10 + 1)
    assert len((markup + padding).encode()) > MAX_BYTES
    with pytest.raises(DomainError) as excinfo:
        validate_echo_text(markup + padding)
    assert excinfo.value.code == "text_too_large"


def test_error_messages_say_where() -> None:
    with pytest.raises(DomainError) as excinfo:
        validate_echo_text("ab\x07")
    assert "position 2" in excinfo.value.message
    assert "U+0007" in excinfo.value.message
    with pytest.raises(DomainError) as excinfo:
        validate_echo_text("hi $[spin x]")
    assert excinfo.value.message == "unknown effect 'spin' at position 3"


@given(st.text(max_size=200))
def test_only_domain_errors_and_counts_agree(raw: str) -> None:
    """Property: any str gives an EchoText or a DomainError, and the counted text is
    exactly the parser's plain text."""
    try:
        echo = validate_echo_text(raw)
    except DomainError as exc:
        assert exc.field == "text"
        return
    assert echo.text == plain_text(parse_markup(echo.markup))
    assert 1 <= visible_length(echo.text) <= MAX_GRAPHEMES
    assert len(echo.markup.encode()) <= MAX_BYTES
    assert not any(is_forbidden_character(ch) for ch in echo.markup)


MARKUP_PIECES = st.sampled_from(["$[big ", "$[shake ", "]", "\\$[", "\\", "a", "あ", FAMILY, " "])


@given(st.lists(MARKUP_PIECES, max_size=60).map("".join))
def test_markup_heavy_inputs_count_plain_text(raw: str) -> None:
    try:
        echo = validate_echo_text(raw)
    except DomainError:
        return
    assert visible_length(echo.text) == visible_length(plain_text(echo.segments))


@pytest.mark.parametrize(
    ("raw", "expected"), [(None, "public"), ("public", "public"), ("friends", "friends")]
)
def test_visibility_accepted(raw: object, expected: str) -> None:
    assert validate_visibility(raw) == expected


@pytest.mark.parametrize("raw", ["", "Public", "private", "followers", 1, True, ["public"]])
def test_visibility_rejected(raw: object) -> None:
    with pytest.raises(DomainError) as excinfo:
        validate_visibility(raw)
    assert (excinfo.value.code, excinfo.value.field) == ("invalid_visibility", "visibility")


@pytest.mark.parametrize(
    ("raw", "multiline", "expected"),
    [
        ("  Tokyo  ", False, "Tokyo"),
        ("cafe\u0301", False, "caf\u00e9"),
        ("a\r\nb\rc\u2028d", True, "a\nb\nc\nd"),
        ("line one\nline two\n", True, "line one\nline two"),
    ],
)
def test_clean_text_accepted(raw: str, multiline: bool, expected: str) -> None:
    got = clean_text(raw, field="f", code="bad_f", label="f", max_graphemes=20, multiline=multiline)
    assert got == expected


@pytest.mark.parametrize(
    ("raw", "multiline"),
    [
        (None, False),
        (3, False),
        ("", False),
        ("   ", False),
        ("a\nb", False),
        ("a\x00b", True),
        ("a\tb", True),
        ("a\u202eb", True),
        ("x" * 21, False),
        ("e" + "\u0301" * 700, False),  # one grapheme, too many bytes
    ],
)
def test_clean_text_rejected(raw: object, multiline: bool) -> None:
    with pytest.raises(DomainError) as excinfo:
        clean_text(raw, field="f", code="bad_f", label="f", max_graphemes=20, multiline=multiline)
    assert (excinfo.value.code, excinfo.value.field) == ("bad_f", "f")


def test_clean_text_optional_may_be_empty() -> None:
    assert clean_text("  ", field="f", code="c", label="f", max_graphemes=5, min_graphemes=0) == ""


# --- shortcuts agree with the general rules ----------------------------------


def test_forbidden_pattern_is_the_forbidden_characters() -> None:
    """Every code point: the pattern searched in C says what the rule says."""
    for code in range(0x110000):
        ch = chr(code)
        assert (_FORBIDDEN.match(ch) is not None) is is_forbidden_character(ch), hex(code)
        assert (_LINE_BREAK.match(ch) is not None) is (ch in LINE_BREAKS), hex(code)


@given(st.text(st.characters(max_codepoint=0x7F), max_size=60))
@example("\r\n\r\r\n\n\x00\r")
def test_ascii_length_matches_grapheme_count(text: str) -> None:
    assert visible_length(text) == len(_GRAPHEME.findall(text))


def reference_validate(raw: str) -> EchoText:
    """validate_echo_text as first written: every rule applied to every character."""
    if not raw:
        raise DomainError("text_required", "text is required", field="text")
    source = unicodedata.normalize("NFC", raw)
    size = len(source.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        raise DomainError("text_too_large", f"text is {size} bytes of UTF-8; the limit is "
                          f"{MAX_BYTES}", field="text")  # fmt: skip
    at = next((i for i, ch in enumerate(source) if ch in LINE_BREAKS), None)
    if at is not None:
        raise DomainError("text_multiline", f"text must be one line; line break at position "
                          f"{at}", field="text")  # fmt: skip
    at = next((i for i, ch in enumerate(source) if is_forbidden_character(ch)), None)
    if at is not None:
        raise DomainError("text_control_character", f"control character U+{ord(source[at]):04X}"
                          f" at position {at} is not allowed", field="text")  # fmt: skip
    segments = _Parser(source).sequence(0, None)
    text = plain_text(segments)
    if _BLANK.fullmatch(text) is not None:
        raise DomainError("text_blank", "text must contain a visible character", field="text")
    length = len(_GRAPHEME.findall(text))
    if length > MAX_GRAPHEMES:
        raise DomainError("text_too_long", f"text is {length} characters; the limit is "
                          f"{MAX_GRAPHEMES}", field="text")  # fmt: skip
    most = max((sum(unicodedata.category(ch) in ("Mn", "Me") for ch in g)
                for g in _GRAPHEME.findall(text)), default=0)  # fmt: skip
    if most > MAX_MARKS_PER_GRAPHEME:
        limit = MAX_MARKS_PER_GRAPHEME
        raise DomainError("text_too_many_marks", f"text has a character with {most} combining "
                          f"marks; the limit is {limit}", field="text")  # fmt: skip
    return EchoText(text=text, segments=segments, markup=source)


def outcome(validate: Callable[[str], EchoText], raw: str) -> object:
    try:
        return validate(raw)
    except DomainError as exc:
        return (exc.code, exc.message, exc.field)


ASCII_PIECES = st.sampled_from(["a", "Z", "0", " ", "\t", "\n", "\r", "\x00", "\x1e", "\x7f",
                                "$[big ", "$[shake ", "]", "\\", "$", "["])  # fmt: skip


@given(
    st.one_of(
        st.text(max_size=200),
        st.text(st.characters(max_codepoint=0x7F), max_size=200),
        st.lists(st.one_of(ASCII_PIECES, MARKUP_PIECES), max_size=80).map("".join),
    )
)
@example("x" * 4097)
@example("ab\x07c\nd")
@example("\u202e\n")
@example("   ")
@example("x" * 151)
@example("e" + "\u0301" * 2047)
@example("a" + "\u0301\u200d" * 9)
def test_validation_matches_the_rules_applied_character_by_character(raw: str) -> None:
    assert outcome(validate_echo_text, raw) == outcome(reference_validate, raw)


def test_ascii_forbidden_characters_are_the_unprintable_ones() -> None:
    for code in range(0x80):
        assert chr(code).isprintable() is not is_forbidden_character(chr(code)), hex(code)


MARKS = st.sampled_from(["\u0301", "\u0308", "\u20e3", "\ufe0f", "\u200d", "a", " "])


@pytest.mark.parametrize(
    "raw",
    [
        "e" + "\u0301" * 2047,  # the flood the audit found: one grapheme, 4 KiB
        "q" + "\u0301" * 9,  # (no precomposed q with an acute: NFC keeps all 9)
        "q" + "\u0301\u200d" * 9,  # interleaved with joiners: still one grapheme
        "$[shake o" + "\u0308" * 12 + "]",
        "ok " + "Z" + "\u0336\u0351\u0344" * 3,
    ],
)
def test_a_character_with_too_many_marks_is_refused(raw: str) -> None:
    with pytest.raises(DomainError) as err:
        validate_echo_text(raw)
    assert err.value.code == "text_too_many_marks" and err.value.field == "text"
    assert f"the limit is {MAX_MARKS_PER_GRAPHEME}" in err.value.message


@pytest.mark.parametrize(
    "raw",
    [
        "q" + "\u0301" * 8,  # at the limit
        "e" + "\u0301" * 9,  # NFC makes e + U+0301 one character: 8 marks remain
        "Tiếng Việt ệ́ ở",  # Vietnamese: two stacked marks
        "בְּרֵאשִׁ֖ית",  # Hebrew with points and a cantillation mark
        "1\ufe0f\u20e3 🏳\ufe0f\u200d\u26a7\ufe0f " + FAMILY,  # keycap, ZWJ sequences
        "a" + "\u0301" * 8 + "b" + "\u0301" * 8,  # many marks, none piled past 8
    ],
)
def test_real_writing_and_emoji_keep_their_marks(raw: str) -> None:
    assert validate_echo_text(raw).markup == unicodedata.normalize("NFC", raw)


@given(st.lists(MARKS, max_size=60).map("".join))
def test_mark_piles_are_judged_like_the_reference(raw: str) -> None:
    raw = "x" + raw
    assert outcome(validate_echo_text, raw) == outcome(reference_validate, raw)


def test_names_and_titles_limit_marks_too() -> None:
    with pytest.raises(DomainError) as err:
        clean_text("Anx" + "\u0301" * 9, field="display_name", code="invalid_display_name",
                   label="display name", max_graphemes=50)  # fmt: skip
    assert err.value.code == "invalid_display_name" and err.value.field == "display_name"
    assert "combining marks" in err.value.message
    assert clean_text(
        "Zoë" + "\u0301" * 7, field="f", code="c", label="l", max_graphemes=50
    ) == unicodedata.normalize("NFC", "Zoë" + "\u0301" * 7)
