"""The front end's catalogues (web/js/i18n/<lang>.json): the same keys in every
language, the plural forms each language needs, the same placeholders, no value left
in the other language, every key the page asks for present, and the files kept sorted
so parallel additions rarely collide."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
CATALOGUES = WEB / "js" / "i18n"
LANGS = ("en", "ja")
# CLDR cardinal categories for integer counts: what Intl.PluralRules can select.
PLURAL_FORMS = {"en": {"one", "other"}, "ja": {"other"}}
PLACEHOLDER = re.compile(r"\{(\w+)\}")
JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uff01-\uff5e\u3000-\u303f]")
# Words that stay as they are in Japanese: the brand and the effect markup.
UNTRANSLATED = re.compile(r"Echo Hub|\$\[\w+|@\{\w+\}|\{\w+\}|https?://\S+")
# `t("key"` / `t('key'` / `t(\n "key"` in the scripts, `data-i18n*="key"` in the page.
T_CALL = re.compile(r"""\b(?:t|tParts)\(\s*["']([\w.]+)["']""")
DATA_I18N = re.compile(r"""data-i18n(?:-[\w-]+)?="([\w.]+)\"""")


def load(lang: str) -> dict[str, Any]:
    return dict(json.loads((CATALOGUES / f"{lang}.json").read_text(encoding="utf-8")))


def forms(value: Any) -> list[str]:
    return list(value.values()) if isinstance(value, dict) else [value]


def test_every_language_has_the_same_keys() -> None:
    en, ja = load("en"), load("ja")
    assert sorted(en.keys() - ja.keys()) == [], "missing in ja"
    assert sorted(ja.keys() - en.keys()) == [], "missing in en"
    assert len(en) > 50


@pytest.mark.parametrize("lang", LANGS)
def test_values_are_text_or_the_plural_forms_the_language_needs(lang: str) -> None:
    for key, value in load(lang).items():
        if isinstance(value, dict):
            assert set(value) == PLURAL_FORMS[lang], f"{lang} {key}: forms {sorted(value)}"
            assert all(PLACEHOLDER.search(v) for v in value.values()), f"{lang} {key}: no count"
        for text in forms(value):
            assert isinstance(text, str) and text.strip(), f"{lang} {key}: empty"
            assert text == text.strip(), f"{lang} {key}: stray spaces"


def test_placeholders_agree_between_languages() -> None:
    en, ja = load("en"), load("ja")
    for key in en.keys() & ja.keys():
        want = {frozenset(PLACEHOLDER.findall(v)) for v in forms(en[key])}
        got = {frozenset(PLACEHOLDER.findall(v)) for v in forms(ja[key])}
        assert got == want, f"{key}: en {want} ja {got}"


def test_no_value_is_in_the_other_language() -> None:
    for key, value in load("en").items():
        for text in forms(value):
            assert not JAPANESE.search(text), f"en {key}: {text!r}"
    for key, value in load("ja").items():
        for text in forms(value):
            rest = UNTRANSLATED.sub("", text)
            if re.search(r"[A-Za-z]{2,}", rest):
                assert JAPANESE.search(text), f"ja {key} is not Japanese: {text!r}"


def test_every_key_the_page_asks_for_exists() -> None:
    known = load("en").keys()
    used: dict[str, str] = {}
    for path in sorted(WEB.rglob("*.js")) + sorted(WEB.rglob("*.html")):
        text = path.read_text(encoding="utf-8")
        for key in T_CALL.findall(text) + DATA_I18N.findall(text):
            used.setdefault(key, str(path.relative_to(ROOT)))
    assert len(used) > 20
    missing = {k: where for k, where in used.items() if k not in known}
    assert missing == {}


def test_catalogues_are_sorted_and_formatted() -> None:
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "catalogues"), "--check"],
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr


# A quoted literal that reads as words for people: capitalised prose, or Japanese.
STRING_LITERAL = re.compile(r"""(?<![\w$])(["'`])((?:(?!\1)[^\\\n]|\\.)*)\1""")
PROSE = re.compile(r"[A-Z][a-z]+(?:[ ,][A-Za-z'’]+)*[.!?…]?|.*[\u3040-\u30ff\u3400-\u9fff].*")
# Not words for people: key names (KeyboardEvent.key, DataTransfer.types) and the
# last-resort message of an error that has no code at all (shown by code otherwise).
NOT_PROSE = {"Enter", "Escape", "Tab", "Files", "Something went wrong"}


def test_no_words_for_people_are_written_in_the_code() -> None:
    found = []
    for path in sorted((WEB / "js").rglob("*.js")):
        if path.name == "i18n.js":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split(" // ")[0]
            if code.lstrip().startswith(("//", "*", "/*")):
                continue
            for match in STRING_LITERAL.finditer(code):
                text = match.group(2)
                if PROSE.fullmatch(text) and text not in NOT_PROSE:
                    found.append(f"{path.relative_to(ROOT)}:{number}: {text!r}")
    assert found == [], "use t() and a catalogue key:\n" + "\n".join(found)
