"""Search rules: folding, member keys, post terms and queries."""

from __future__ import annotations

from typing import Any

import pytest

from server.domain.errors import DomainError
from server.domain.search import (
    fold,
    matches_post,
    member_keys,
    member_query,
    post_query,
    post_terms,
    validate_search_type,
)


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("ｱｷ", "アキ"),  # half-width katakana
        ("ﾊﾟﾝ", "パン"),  # with a separate sound mark
        ("AKI", "aki"),
        ("ＡＫＩ", "aki"),  # full-width Latin
        ("Straße", "strasse"),
        ("ΣΊΣΥΦΟΣ", "σίσυφοσ"),
        ("①", "1"),
    ],
)
def test_fold(raw: str, folded: str) -> None:
    assert fold(raw) == folded


def test_member_keys() -> None:
    assert member_keys("aki", "Aki Yamada") == {"aki", "aki yamada", "yamada"}
    keys = member_keys("aki_j", "山田アキ")
    assert {"aki_j", "山田アキ", "田アキ", "アキ", "キ"} <= keys
    assert member_keys("bob", "ＢＯＢ") == {"bob"}


@pytest.mark.parametrize(
    ("raw", "prefix"),
    [("ｱｷ", "アキ"), ("AKI", "aki"), ("@Aki", "aki"), ("  aki  yam ", "aki yam")],
)
def test_member_queries(raw: str, prefix: str) -> None:
    assert member_query(raw) == prefix


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (None, "query_required"),
        ("", "query_required"),
        ("   ", "query_required"),
        ("!!!", "query_no_words"),
        ("@", "query_no_words"),
        ("。、！", "query_no_words"),
        ("a" * 101, "query_too_long"),
        ("a" * 5000, "query_too_long"),
        ("nul\x00", "invalid_query"),
        ("two\nlines", "invalid_query"),
    ],
)
def test_queries_refused(raw: Any, code: str) -> None:
    for parse in (member_query, post_query):
        with pytest.raises(DomainError) as err:
            parse(raw)
        assert (err.value.code, err.value.field) == (code, "q")


def test_too_many_words() -> None:
    with pytest.raises(DomainError) as err:
        post_query(" ".join(f"w{i}" for i in range(21)))
    assert err.value.code == "query_too_long"


def test_post_terms() -> None:
    assert sorted(post_terms("Hello, WORLD! hello")) == ["hello", "world"]
    assert set(post_terms("猫が好き")) == {"猫", "好", "猫が", "が好", "好き"}
    assert set(post_terms("ﾊﾟﾝ")) == {"パン"}  # half-width, sound mark joined
    assert set(post_terms("ｱｷと東京2024")) == {"東", "京", "アキ", "キと", "と東", "東京",
                                               "2024"}  # fmt: skip
    assert len(post_terms("".join(chr(0x4E00 + i) for i in range(300)))) == 400  # capped
    assert all(" " not in t for t in post_terms("Ｈｅｌｌｏ　ｗｏｒｌｄ ｱｲ"))


def test_post_queries_and_matching() -> None:
    query = post_query("東京都 Tokyo")
    assert query.terms == ("東京", "京都", "tokyo")
    assert matches_post(query, "東京都でtokyo")
    assert not matches_post(query, "東京と京都 tokyo")  # the bigrams alone are not enough
    single = post_query("猫")
    assert single.terms == ("猫",) and matches_post(single, "猫")
    assert post_query("ｱｷ").terms == ("アキ",)
    assert post_query("ね 猫").terms == ("猫",)  # a lone kana is no word
    with pytest.raises(DomainError) as err:
        post_query("ね")
    assert (err.value.code, err.value.field) == ("query_too_short", "q")


def test_search_types() -> None:
    assert validate_search_type(None) == "members"
    assert validate_search_type("posts") == "posts"
    for bad in ("users", "", "POSTS"):
        with pytest.raises(DomainError) as err:
            validate_search_type(bad)
        assert (err.value.code, err.value.field) == ("invalid_type", "type")
