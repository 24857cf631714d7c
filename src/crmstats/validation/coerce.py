"""The coercion engine: every input's columns to canonical types, in the table's engine.

One engine for every input: files and database tables are coerced where they
live, and a DataFrame's columns are handed to the embedded DuckDB as Arrow
arrays (:mod:`.frames` does only what is pandas-only) and coerced by the same
expressions, so a value means the same whatever form the table came in
(``tests/test_one_engine.py`` feeds the same messy tables through both). The
rules:

* **numbers** (money, counts, other numbers): numeric columns become float64;
  text is read after removing surrounding spaces (and the source's
  ``thousands`` separator; its ``decimal`` mark becomes ``.``) and must be a
  plain decimal number (``12``, ``-3.5``, ``+1e3``, ``.5``): currency signs,
  thousands separators the source does not declare, ``NaN``/``null``/``inf``
  text, underscores and the like are refused naming the rows and values; an
  empty or all-space value is missing where the column may be missing (else
  refused); booleans, timestamps and other types are refused;
* **ids**: float ids (a Parquet export) must be whole numbers that fit a
  64-bit integer and become integers; text ids are kept as written (spaces,
  case and leading zeros are not touched; :mod:`.traps` warns of variants)
  except a column whose every value is written like a float (``123.0``: a
  float column saved as text) becomes integers, as a CSV reader reads it;
  boolean ids are refused;
* **categories** are kept as they are (a dictionary-encoded column is read as
  its values); name variants are warned of by :mod:`.stages`;
* **timestamps**: see :mod:`.timestamps`.

References
----------
DuckDB documentation, "Casting" (the text-to-number cast accepts more than a
plain decimal: underscores between digits, ``nan``, ``inf``), https://duckdb.org/docs/sql/expressions/cast
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from crmstats.backend import _backend_of
from crmstats.exceptions import DataError
from crmstats.schema import ColumnSpec, TableSpec
from crmstats.validation.columns import _missing_error
from crmstats.validation.content import raise_bad_values
from crmstats.validation.messages import _caller
from crmstats.validation.timestamps import parse_text_column

_DECIMAL = r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?"
#: A plain decimal number, with surrounding spaces, after the source's separators are handled.
NUMBER = rf"^\s*{_DECIMAL}\s*$"
#: The same, or nothing but spaces (a missing value where a column may be missing).
BLANK_OR_NUMBER = rf"^\s*({_DECIMAL})?\s*$"
#: A whole number written as a float (``123.0``), small enough for a 64-bit integer.
FLOAT_TEXT_ID = r"^-?[0-9]{1,18}\.0+$"
#: Float ids at or above this magnitude do not fit a 64-bit integer.
_INT64_LIMIT = 2.0**63


@ibis.udf.scalar.builtin(name="trunc")
def _trunc(value: float) -> float:
    """DuckDB's ``trunc`` of a double: the whole part, still a double."""


def rename(t: ir.Table, spec: TableSpec, mapping) -> ir.Table:
    """Rename the caller's columns to canonical names; refuse a missing required column.

    A canonical name that another column is mapped onto is dropped (the mapped
    column wins); other columns are kept.
    """
    err = _missing_error(spec, mapping, list(t.columns))
    if err:
        raise err
    renames = {
        c.name: _caller(c.name, mapping)
        for c in spec.columns
        if _caller(c.name, mapping) != c.name and _caller(c.name, mapping) in t.columns
    }
    if renames:
        clash = [c for c in renames if c in t.columns]
        if clash:
            t = t.drop(*clash)
        t = t.rename(renames)
    return t


def coerce(t: ir.Table, spec: TableSpec, mapping, source=None, rows=None
           ) -> tuple[ir.Table, list[str]]:
    """Cast the canonical columns of ``t`` to canonical types, refusing what does not parse.

    ``source`` is the :class:`~crmstats.validation.SourceTable` whose options
    apply (None: none); ``rows`` a row source naming offending rows by the
    caller's index labels (pandas inputs; None: by their ids). Columns
    computed from others (``amount`` = quantity × unit price) are added.
    Returns the table (the same rows) and the names of the columns that are
    new expressions (cast, parsed or computed); the others are ``t``'s own.
    """
    schema = t.schema()
    casts = {}
    for c in spec.columns:
        if c.name not in schema:
            continue
        dtype = schema[c.name]
        if c.kind == "id":
            cast = _id(t, spec, c, mapping, dtype, rows)
        elif c.kind == "timestamp":
            cast = _timestamp(t, spec, c, mapping, dtype, source, rows)
        elif c.kind in ("money", "count", "float"):
            cast = _number(t, spec, c, mapping, dtype, source, rows)
        else:
            cast = None
        if cast is not None:
            casts[c.name] = cast
    t = t.mutate(**casts) if casts else t
    derived = {n: t[a] * t[b] for n, (a, b) in spec.derived.items()
               if n not in t.columns and a in t.columns and b in t.columns}
    return (t.mutate(**derived) if derived else t), [*casts, *derived]


def _id(t, spec, c: ColumnSpec, mapping, dtype, rows):
    name = c.name
    if dtype.is_boolean():
        _refuse_type(t, spec, c, mapping, dtype, "ids", rows)
    if dtype.is_floating():
        # ids written as floats (a Parquet export): whole numbers become integers
        duckdb = _backend_of(t).name == "duckdb"

        def fraction(x):  # DuckDB's % on doubles is ~20x slower than its trunc
            return _trunc(x) != x if duckdb else x % 1 != 0

        raise_bad_values(
            t, lambda tb: tb[name].notnull() & (tb[name].isnan() | tb[name].isinf()
                                                | fraction(tb[name])
                                                | (tb[name].abs() >= _INT64_LIMIT)),
            spec, c, mapping, "non-integer numeric ids (or beyond 64-bit integers)", rows)
        return t[name].cast("int64")
    if dtype.is_string() and _float_text_ids(t, name):
        return t[name].strip().re_replace(r"\.0+$", "").cast("int64")
    return None


def _float_text_ids(t: ir.Table, name: str) -> bool:
    """Whether every id of text column ``name`` is written like a float (``123.0``).

    Cheap when not: one value is looked at first.
    """
    from crmstats.backend import execute
    from crmstats.validation.messages import _count

    col = t[name].strip()
    first = execute(t.select(v=t[name]).limit(1))["v"]  # no filter: stops at the first row
    if len(first) and (first.iloc[0] is None or not str(first.iloc[0]).strip()):
        first = execute(t.filter(col.notnull() & (col != "")).select(v=col).limit(1))["v"]
    if not len(first) or not str(first.iloc[0]).strip().endswith(".0"):
        return False
    got = execute(t.aggregate(n=t.count(where=col.notnull() & (col != "")),
                              floats=t.count(where=col.re_search(FLOAT_TEXT_ID)))).iloc[0]
    return _count(got["floats"]) == _count(got["n"]) > 0


def _timestamp(t, spec, c: ColumnSpec, mapping, dtype, source, rows):
    if dtype.is_timestamp():
        return t[c.name].cast(ibis.dtype("timestamp")) if dtype.timezone is not None else None
    if dtype.is_date():
        return t[c.name].cast("timestamp")
    if dtype.is_string():
        return parse_text_column(t, spec, c, mapping, source, rows)[0]
    hint = (" (epoch numbers: convert them first, e.g. with pandas.to_datetime(unit=...))"
            if dtype.is_numeric() else "")
    _refuse_type(t, spec, c, mapping, dtype, "timestamps", rows, hint)
    return None


def _number(t, spec, c: ColumnSpec, mapping, dtype, source, rows):
    name = c.name
    if dtype.is_string():
        def text(tb):
            col = tb[name]
            if source is not None and source.thousands:
                col = col.replace(source.thousands, "")
            if source is not None and source.decimal and source.decimal != ".":
                col = col.replace(source.decimal, ".")
            return col

        # one regular expression, surrounding spaces included (stripping first is slower)
        grammar = BLANK_OR_NUMBER if c.nullable else NUMBER
        hint = ("" if source is not None and source.decimal else
                "for numbers such as '1.234,50' set decimal: ',' and thousands: '.' for the "
                "table in crmstats.yml; remove currency signs")
        raise_bad_values(t, lambda tb: tb[name].notnull() & ~text(tb).re_search(grammar),
                         spec, c, mapping, "value(s) are not numbers", rows, hint)
        # DuckDB's cast ignores the spaces the grammar allows; other databases' may not
        value = text(t) if _backend_of(t).name == "duckdb" else text(t).strip()
        return value.try_cast("float64")
    if dtype.is_numeric() and not dtype.is_boolean():
        return None if dtype.is_float64() else t[name].cast("float64")
    _refuse_type(t, spec, c, mapping, dtype, "numbers", rows)
    return None


def _refuse_type(t, spec, c: ColumnSpec, mapping, dtype, expected: str, rows,
                 hint: str = "") -> None:
    """Refuse column ``c`` whose type cannot hold ``expected``, naming its first rows."""
    kind = "boolean values" if dtype.is_boolean() else f"values of type {dtype}"
    raise_bad_values(t, lambda tb: tb[c.name].notnull(), spec, c, mapping,
                     f"{kind} where {expected} are expected{hint}", rows)
    column = _caller(c.name, mapping)  # every value is missing: the type still cannot do
    raise DataError(f"{spec.name} table, column {column!r}: type {dtype} where {expected} "
                    f"are expected{hint}", table=spec.name, column=column)
