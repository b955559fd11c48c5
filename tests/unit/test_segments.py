"""Mentions, links and tags in segments (server.domain.segments): tables and properties."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from server.domain.echo import validate_echo_text
from server.domain.effects import Effect, Text, parse_markup
from server.domain.errors import DomainError
from server.domain.segments import annotate, mentioned_handles, normal_tag, wire_text

MEMBERS = {"aki", "bob_2", "ren"}


def leaves(text: str) -> list[dict[str, object]]:
    return annotate(parse_markup(text), MEMBERS).segments


# fmt: off
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello", [{"text": "hello"}]),
        ("hi @aki", [{"text": "hi "}, {"mention": "aki", "text": "@aki"}]),
        ("@AKI!", [{"mention": "aki", "text": "@AKI"}, {"text": "!"}]),
        ("@nobody here", [{"text": "@nobody here"}]),  # not a member: stays text
        ("mail a@aki.example", [{"text": "mail a@aki.example"}]),
        ("@@aki", [{"text": "@@aki"}]),
        ("@akiko", [{"text": "@akiko"}]),  # a different (unknown) handle, not a prefix
        ("こんにちは@aki さん", [{"text": "こんにちは"}, {"mention": "aki", "text": "@aki"},
                           {"text": " さん"}]),
        ("@" + "a" * 21, [{"text": "@" + "a" * 21}]),
        ("see https://example.com/a?b=1#c.",
         [{"text": "see "}, {"link": "https://example.com/a?b=1#c",
                             "text": "https://example.com/a?b=1#c"}, {"text": "."}]),
        ("HTTP://EXAMPLE.COM", [{"link": "HTTP://EXAMPLE.COM", "text": "HTTP://EXAMPLE.COM"}]),
        ("(https://e.com/x_(y))", [{"text": "("}, {"link": "https://e.com/x_(y)",
                                                   "text": "https://e.com/x_(y)"},
                                   {"text": ")"}]),
        ("https://e.comを見て", [{"link": "https://e.com", "text": "https://e.com"},
                               {"text": "を見て"}]),
        ("javascript:alert(1)", [{"text": "javascript:alert(1)"}]),
        ("ftp://e.com", [{"text": "ftp://e.com"}]),
        ("http:// x", [{"text": "http:// x"}]),
        ("http://.", [{"text": "http://."}]),
        ('https://e.com/"><script>', [{"link": "https://e.com/", "text": "https://e.com/"},
                                     {"text": '"><script>'}]),
        ("https://e.com/@aki#tag", [{"link": "https://e.com/@aki#tag",
                                     "text": "https://e.com/@aki#tag"}]),
        ("#東京 で", [{"tag": "東京", "text": "#東京"}, {"text": " で"}]),
        ("#Tokyo #tokyo", [{"tag": "tokyo", "text": "#Tokyo"}, {"text": " "},
                           {"tag": "tokyo", "text": "#tokyo"}]),
        ("＃ｔｏｋｙｏ", [{"tag": "tokyo", "text": "＃ｔｏｋｙｏ"}]),
        ("今日は#ラーメン", [{"text": "今日は"}, {"tag": "ラーメン", "text": "#ラーメン"}]),
        ("#が", [{"tag": "が", "text": "#が"}]),
        ("#123", [{"text": "#123"}]),
        ("#a1_b", [{"tag": "a1_b", "text": "#a1_b"}]),
        ("C# &#39;", [{"text": "C# &#39;"}]),
        ("#" + "a" * 51, [{"text": "#" + "a" * 51}]),
        ("$[big @aki #x]", [{"effect": "big", "children": [
            {"mention": "aki", "text": "@aki"}, {"text": " "}, {"tag": "x", "text": "#x"}]}]),
        ("@ak$[big i]", [{"text": "@ak"}, {"effect": "big", "children": [{"text": "i"}]}]),
    ],
)
# fmt: on
def test_segments(text: str, expected: list[dict[str, object]]) -> None:
    assert leaves(text) == expected


def test_mentions_and_tags_are_listed_once_in_order() -> None:
    found = annotate(parse_markup("@ren @aki @REN #b #a #B"), MEMBERS)
    assert found.mentions == ("ren", "aki")
    assert found.tags == ("b", "a")


def test_mentioned_handles_is_a_superset_for_lookup() -> None:
    assert mentioned_handles("@Aki @nobody x@y @aki @ab") == ["aki", "nobody"]
    assert mentioned_handles("no at sign") == []


def test_normal_tag() -> None:
    assert normal_tag("ＴｏｋｙｏＳＴＲＡßE") == "tokyostrasse"
    assert normal_tag("ｶﾞｰﾃﾞﾝ") == "ガーデン"


ALPHABET = st.sampled_from(
    ["@", "#", "＃", "aki", "AKI", "bob_2", "http", "https", "://", "/", ".", ")", "(",
     " ", "e.com", "日本", "が", "\u0301", "&", "_", "1", "$[big ", "$[shake ", "]", "\\",
     "?", '"', "<", "👍🏽", "x"]
)  # fmt: skip


@given(st.lists(ALPHABET, max_size=30).map("".join))
@example("@aki@aki#a#a https://x.y/#a@aki")
def test_leaves_rejoin_to_the_visible_text(source: str) -> None:
    try:
        echo = validate_echo_text(source)
    except DomainError:
        return
    found = annotate(echo.segments, MEMBERS)
    assert wire_text(found.segments) == echo.text
    _check_shape(found.segments)


@given(st.text(max_size=200))
def test_any_text_is_annotated_without_error(text: str) -> None:
    found = annotate((Text(text),) if text else (), MEMBERS)
    assert wire_text(found.segments) == text
    _check_shape(found.segments)
    nested = annotate((Effect("big", (Text(text or "x"),)),), MEMBERS)
    assert wire_text(nested.segments) == (text or "x")


def _check_shape(segments: list[dict[str, object]]) -> None:
    previous_plain = False
    for seg in segments:
        if "children" in seg:
            assert isinstance(seg["children"], list)
            _check_shape(seg["children"])
            previous_plain = False
            continue
        text = seg["text"]
        assert isinstance(text, str) and text
        plain = seg.keys() == {"text"}
        assert not (plain and previous_plain), "adjacent texts are merged"
        previous_plain = plain
        if "link" in seg:
            assert seg["link"] == text and str(text).lower().startswith(("http://", "https://"))
        if "mention" in seg:
            assert str(text)[1:].lower() == seg["mention"] and seg["mention"] in MEMBERS
        if "tag" in seg:
            assert normal_tag(str(text)[1:]) == seg["tag"]
