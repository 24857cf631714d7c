r"""The personal values a publication scan looks for, collected and indexed once per build.

A book build looks for the values of its sources' personal columns (names, e-mails,
phones) and their text ids (``C000123``) in every page, error and run record it
publishes (:func:`crmstats.text_scan.scan_text`, :func:`~crmstats.text_scan.redact`).
:class:`PersonalValues` holds them once, distinct, with their index: each value as its
lower-case words joined by one space, by word count, and the first words of each count
(few words start a value, so most positions of a text are passed over at once).

A source of ten times the demo holds 1.2 million such values. They are read from the
columns with Arrow compute where that gives exactly what the Python rules give (text in
ASCII: a word is ``[A-Za-z0-9]+`` there, Python's ``\s`` is ``[\t-\r\x1c-\x1f ]``),
and with the Python rules themselves where it would not (text with other characters,
numbers and other non-text columns, whose ``str`` Arrow would write differently).
``tests/test_personal_values.py`` compares the two on random ASCII text and the demo's
values.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from typing import Any

#: A word of a value or a page: letters and digits of any script (no underscore).
WORD = re.compile(r"[^\W_]+")

#: A text id (``C000123``): five or more characters without spaces, a letter and a digit.
TEXT_ID = re.compile(r"(?=[^\s]*[A-Za-z])(?=[^\s]*\d)[^\s]{5,}")

# The same rules for text in ASCII as RE2 patterns (Arrow): after ASCII lower-casing, what
# separates WORD's words; Python's \s on ASCII (RE2's \s lacks \v and \x1c-\x1f).
_ASCII_NOT_WORD = r"[^a-z0-9]+"
_ASCII_SPACE = r"[\x09-\x0d\x1c-\x1f ]"

#: Per word count: the values as their lower-case words joined by a space, and their first words.
Index = dict[int, tuple[set[str], set[str]]]


def words(text: str) -> list[str]:
    """Return the lower-case words of ``text``, as the scan matches them."""
    return [w.lower() for w in WORD.findall(text)]


def _counts(ws: list[str]) -> bool:
    """Whether a value of these words is looked for.

    A single word only when it holds a digit (a phone number, an id): a lone
    first name ("Mark", "June") is also an ordinary word.
    """
    return len(ws) > 1 or (len(ws) == 1 and any(c.isdigit() for c in ws[0]))


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


class PersonalValues:
    """Distinct personal values (text) and their index for the publication scan.

    Made once per build (:func:`crmstats.book.scan._personal_values`) from the
    source's columns (:meth:`of_column`, :meth:`of_text_ids`, joined by :meth:`union`),
    or from plain values (``PersonalValues(["Anna Berg", "C000123"])``: missing
    ones left out, others as their ``str``). Iterating gives the distinct values;
    ``len``, ``in`` and ``==`` (same values) work as on a set of them.
    :attr:`index` is built on first use and kept (read it, never change it).
    """

    def __init__(self, values: Iterable[Any] = ()) -> None:
        self._arrow, self._other = _texts(list(dict.fromkeys(
            str(v) for v in values if not _missing(v))))

    @classmethod
    def _of(cls, arrow, other: frozenset[str] = frozenset(), *,
            distinct: bool = False) -> PersonalValues:
        import pyarrow.compute as pc

        made = cls.__new__(cls)
        made._arrow = arrow if distinct else pc.unique(arrow)
        made._other = frozenset(other)
        return made

    @classmethod
    def of_column(cls, column) -> PersonalValues:
        """Take the distinct values of a column (a pandas Series) as text, missing ones left out.

        Text columns are read by Arrow; any other column as ``str`` of each value.
        """
        import pyarrow.compute as pc

        arrow = _text_column(column)
        if arrow is None:
            return cls._of(*_texts([str(v) for v in column.dropna().unique()]))
        return cls._of(pc.drop_null(arrow))

    @classmethod
    def of_text_ids(cls, column) -> PersonalValues:
        """Take the distinct text ids of an id column (``C000123``; plain numbers never).

        A value counts when its text fully matches :data:`TEXT_ID`.
        """
        import pyarrow.compute as pc

        arrow = _text_column(column)
        if arrow is None:
            try:
                texts = column.dropna().astype(str).unique()
            except UnicodeError:  # text Arrow cannot hold (a lone surrogate): each value's str
                texts = list(dict.fromkeys(str(v) for v in column.dropna().unique()))
            return cls._of(*_texts([v for v in texts if TEXT_ID.fullmatch(v)]))
        arrow = pc.unique(pc.drop_null(arrow))
        ascii_ = pc.string_is_ascii(arrow)
        plain = pc.filter(arrow, ascii_)
        is_id = pc.and_(pc.and_(pc.greater_equal(pc.binary_length(plain), 5),
                                pc.invert(pc.match_substring_regex(plain, _ASCII_SPACE))),
                        pc.and_(pc.match_substring_regex(plain, "[A-Za-z]"),
                                pc.match_substring_regex(plain, "[0-9]")))
        others = [v for v in pc.filter(arrow, pc.invert(ascii_)).to_pylist()
                  if TEXT_ID.fullmatch(v)]
        return cls._of(_concat([pc.filter(plain, is_id), _texts(others)[0]]).combine_chunks(),
                       distinct=True)

    @classmethod
    def union(cls, parts: Iterable[PersonalValues]) -> PersonalValues:
        """All values of ``parts``, once each."""
        parts = list(parts)
        return cls._of(_concat([p._arrow for p in parts]),
                       frozenset().union(*(p._other for p in parts)))

    def __iter__(self) -> Iterator[str]:
        yield from self._arrow.to_pylist()
        yield from self._other

    def __len__(self) -> int:
        return len(self._arrow) + len(self._other)

    def __contains__(self, value: object) -> bool:
        return value in self._set

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PersonalValues):
            return NotImplemented
        return len(self) == len(other) and self._set == other._set

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"PersonalValues({len(self)} values)"

    @functools.cached_property
    def _set(self) -> frozenset[str]:
        return frozenset(self)

    @functools.cached_property
    def index(self) -> Index:
        """Per word count: the values' lower-case words joined by a space, and the first words.

        Values without a word, and single words without a digit, are left out
        (:func:`crmstats.text_scan.scan_text` matches what is left as whole words).
        """
        import pyarrow.compute as pc

        found: dict[int, tuple[set[str], set[str]]] = {}
        ascii_ = pc.string_is_ascii(self._arrow)
        for n, joined in _ascii_words(pc.filter(self._arrow, ascii_)):
            values = set(joined.to_pylist())
            found[n] = (values, set(values) if n == 1 else set(
                pc.unique(pc.replace_substring_regex(joined, " .*", "")).to_pylist()))
        for value in [*pc.filter(self._arrow, pc.invert(ascii_)).to_pylist(), *self._other]:
            ws = words(value)
            if _counts(ws):
                values, firsts = found.setdefault(len(ws), (set(), set()))
                values.add(" ".join(ws))
                firsts.add(ws[0])
        return dict(sorted(found.items()))


def _ascii_words(values) -> Iterator[tuple[int, Any]]:
    """Yield ``(n, texts)``: ASCII values of ``n`` words looked for, :func:`words` joined.

    Arrow's rules that give on ASCII what :func:`words` and :func:`_counts` give:
    lower-cased, each run of characters other than ``[a-z0-9]`` one space, the
    ends trimmed; a single word kept only with a digit.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    lowered = pc.ascii_lower(values)
    simple = pc.match_substring_regex(lowered, "^[a-z0-9]*$")  # one word (or none) as it is
    joined = pa.chunked_array([pc.filter(lowered, simple), pc.utf8_trim(pc.replace_substring_regex(
        pc.filter(lowered, pc.invert(simple)), _ASCII_NOT_WORD, " "), characters=" ")],
        type=pa.large_string())
    n_words = pc.if_else(pc.equal(joined, ""), 0, pc.add(pc.count_substring(joined, " "), 1))
    kept = pc.or_(pc.greater(n_words, 1),
                  pc.and_(pc.equal(n_words, 1), pc.match_substring_regex(joined, "[0-9]")))
    joined, n_words = pc.filter(joined, kept), pc.filter(n_words, kept)
    for n in sorted(pc.unique(n_words).to_pylist()):
        yield n, pc.filter(joined, pc.equal(n_words, n))


def _text_column(column):
    """Return a pandas column as Arrow text (missing values null), or None if not all text."""
    import pyarrow as pa

    try:
        arrow = pa.array(column, from_pandas=True)
    except (pa.ArrowException, UnicodeError, TypeError, ValueError):
        return None  # mixed types, or text Arrow cannot hold
    if pa.types.is_string(arrow.type) or pa.types.is_large_string(arrow.type):
        return arrow.cast(pa.large_string())
    return None


def _texts(values: list[str]):
    """``(Arrow array, frozenset)``: the values UTF-8 can hold, and the rest (lone surrogates)."""
    import pyarrow as pa

    try:
        return pa.array(values, type=pa.large_string()), frozenset()
    except UnicodeError:
        ok = [v for v in values if _encodes(v)]
        return pa.array(ok, type=pa.large_string()), frozenset(set(values) - set(ok))


def _encodes(value: str) -> bool:
    try:
        value.encode()
    except UnicodeError:
        return False
    return True


def _concat(arrays: list):
    import pyarrow as pa

    chunks = [c for a in arrays for c in (a.chunks if isinstance(a, pa.ChunkedArray) else [a])]
    return pa.chunked_array(chunks, type=pa.large_string())
