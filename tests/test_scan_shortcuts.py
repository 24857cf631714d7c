"""The publication scan's shortcuts find exactly what the plain searches find (text_scan)."""

from __future__ import annotations

import re

import pytest

from crmstats import text_scan
from crmstats.text_scan import CREDENTIAL_PATTERNS, _literal_starts, scan_text
from tests.secret_forms import CREDENTIALS, LOOKALIKES


def test_literal_starts_are_read_from_the_pattern():
    assert _literal_starts(re.compile(r"(?<![a-z])abc\d")) == ("abc",)
    assert set(_literal_starts(re.compile(r"\b(?:sk|rk)_(?:live|test)_\w+"))) == {
        "sk_live_", "sk_test_", "rk_live_", "rk_test_"}
    assert _literal_starts(re.compile(r"(?<!x)ab|(?<!y)cd+")) == ("ab", "c")
    assert _literal_starts(re.compile(r"abc", re.I)) is None  # case-insensitive: search
    assert _literal_starts(re.compile(r"(?:PG)?password")) is None  # optional beginning
    assert _literal_starts(re.compile(r"ab|\d+")) is None  # one branch has no literal
    assert _literal_starts(re.compile(r"[a-z]+")) is None


@pytest.mark.parametrize(("what", "text"), CREDENTIALS + LOOKALIKES,
                         ids=[c[0] for c in CREDENTIALS + LOOKALIKES])
def test_every_match_begins_with_a_literal_start(what, text):
    for name, pattern in CREDENTIAL_PATTERNS:
        starts = _literal_starts(pattern)
        if starts is None:
            continue
        for match in pattern.finditer(text):
            assert match.group().startswith(starts), (name, what)


def _document() -> str:
    parts = [text for _, text in CREDENTIALS + LOOKALIKES]
    parts += ["Anna Berg wrote to C000123 and anna berg again;", "Berg Anna", "C000124x"]
    return "\n".join(f"<p>{part}</p>" for part in parts)


def test_scan_text_finds_the_same_as_without_shortcuts(monkeypatch):
    personal = ("Anna Berg", "C000123", "Mark", "Van der Berg", "x 1")
    text = _document()
    fast = scan_text(text, extra_values=personal, paths=["/home/builder"])

    class Everything:
        def __contains__(self, item):
            return True

    index = text_scan._personal_index
    monkeypatch.setattr(text_scan, "_literal_starts", lambda pattern: None)
    monkeypatch.setattr(text_scan, "_personal_index",  # every position tried: no first words
                        lambda values: {n: (joined, Everything()) for n, (joined, _)
                                        in index(values).items()})
    plain = scan_text(text, extra_values=personal, paths=["/home/builder"])
    assert fast == plain
    assert sum(f.pattern == "personal value" for f in fast) == 3
    assert {f.pattern for f in fast} & {name for name, _ in CREDENTIAL_PATTERNS}
