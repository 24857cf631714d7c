"""The personal values' Arrow rules give exactly what the Python rules give (personal_values)."""

from __future__ import annotations

import random
import re

import pandas as pd
import pytest

from crmstats import text_scan
from crmstats.personal_values import PersonalValues
from crmstats.text_scan import redact, scan_text

# The rules as the scan has always written them in Python, one value at a time.
WORD = re.compile(r"[^\W_]+")
TEXT_ID = re.compile(r"(?=[^\s]*[A-Za-z])(?=[^\s]*\d)[^\s]{5,}")


def python_index(values) -> dict[int, tuple[set[str], set[str]]]:
    by_len: dict[int, tuple[set[str], set[str]]] = {}
    for value in values:
        words = tuple(w.lower() for w in WORD.findall(str(value)))
        if not words or (len(words) == 1 and not any(c.isdigit() for c in words[0])):
            continue
        joined, firsts = by_len.setdefault(len(words), (set(), set()))
        joined.add(" ".join(words))
        firsts.add(words[0])
    return by_len


def random_ascii(n: int, seed: int) -> list[str]:
    """Random ASCII text: every control character, punctuation, letters and digits."""
    rng = random.Random(seed)
    every = [chr(i) for i in range(128)]
    common = list("aZ09 .@-_+") + ["\x1c", "\x1f", "\x0b", "\x7f"]
    return ["".join(rng.choice(every if rng.random() < 0.5 else common)
                    for _ in range(rng.randint(0, 14))) for _ in range(n)]


ODD = ["Müller Straße 5", "İSTANBUL 34", "ǅemal Ⅻ", "٣٤٥٦", "１２３４５", "x²", "ﬁle 7", "Ωmega 1",
       "a\u00a0b 12", "C0001\u2028x", "C0001\x85", "née\tÉmile", "", " ", "__", "_9_", "a_b 1"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_index_is_the_python_rules_on_random_ascii(seed):
    values = random_ascii(4000, seed) + ODD
    assert PersonalValues(values).index == python_index(set(values))


@pytest.mark.parametrize("seed", [0, 1])
def test_text_ids_are_the_python_rule_on_random_ascii(seed):
    values = random_ascii(4000, seed) + ODD
    values += ["C000123", "ab\x1c123", "ab\x0b12345", "abc12\x7f", "12345", "abcde", "a1\x1fb2c"]
    expected = {v for v in values if TEXT_ID.fullmatch(v)}
    assert 0 < len(expected) < len(set(values))
    for column in (pd.Series(values, dtype="str"), pd.Series(values, dtype=object)):
        ids = PersonalValues.of_text_ids(pd.concat([column, pd.Series([None])]))
        assert set(ids) == expected and len(ids) == len(expected)


def test_columns_that_are_not_text_give_each_values_str():
    """Arrow writes numbers differently (1e+20, 5.0): those go through Python's str."""
    floats = pd.Series([1e20, 5.0, float("nan"), 12345.5])
    assert set(PersonalValues.of_column(floats)) == {"1e+20", "5.0", "12345.5"}
    assert set(PersonalValues.of_text_ids(floats)) == {"1e+20"}  # what the scan always did
    mixed = pd.Series(["Anna Berg", 4915112345, None, "4915112345"], dtype=object)
    assert sorted(PersonalValues.of_column(mixed)) == ["4915112345", "Anna Berg"]
    assert len(PersonalValues.of_column(pd.Series([None, float("nan")], dtype=object))) == 0


def test_text_arrow_cannot_hold_is_kept():
    """A lone surrogate is no UTF-8: such a value is kept in Python, not dropped or raised."""
    odd = "Anna\ud800 Berg 12"
    column = pd.Series([odd, "C000123", None], dtype=object)
    values = PersonalValues.union([PersonalValues.of_column(column),
                                   PersonalValues.of_text_ids(column)])
    assert set(values) == {odd, "C000123"} and len(values) == 2 and odd in values
    assert values.index == python_index([odd, "C000123"])
    assert redact("to anna\ud800 berg 12 today", extra_values=values) == "to […] today"


def test_values_are_distinct_and_compare_as_sets():
    a = PersonalValues.union([PersonalValues.of_column(pd.Series(["x 1", "y 2", "x 1"])),
                              PersonalValues(["y 2", None, float("nan"), 3])])
    assert sorted(a) == ["3", "x 1", "y 2"] and len(a) == 3
    assert a == PersonalValues(["3", "y 2", "x 1"]) and a != PersonalValues(["3"])
    assert len(PersonalValues.union([])) == 0 and PersonalValues().index == {}


def test_the_demo_values_index_as_in_python():
    from crmstats.book.scan import _personal_values
    from crmstats.book.studies import Study

    source = "demo:seed=3,n_contacts=300"
    values = _personal_values([Study("s", "S", None, {"data_source": source})])
    assert isinstance(values, PersonalValues)
    assert any(not v.isascii() for v in values)  # names such as "Csilla Molnár"
    assert values.index == python_index(set(values))


def test_a_scan_reads_the_index_once_and_matches_as_with_plain_values():
    plain = ("Anna Berg", "C000123", "Mark", "Van der Berg", "x 1", "Ümit Öz")
    values = PersonalValues(plain)
    text = "Anna  Berg wrote to c000123, van-der-berg, ÜMIT ÖZ and Mark; x_1; C000124"
    assert scan_text(text, extra_values=values) == scan_text(text, extra_values=plain)
    assert sum(f.pattern == "personal value" for f in scan_text(text, extra_values=values)) == 5
    expected = redact(text, extra_values=plain)
    before, index = text_scan._plain_index.cache_info(), values.index
    assert redact(text, extra_values=values) == expected
    assert values.index is index and text_scan._plain_index.cache_info() == before
