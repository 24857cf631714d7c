"""Text timestamps to timestamps: one parser, in the table's engine, for every input.

Files and database tables are parsed where they live; a DataFrame's text
column is handed to the embedded DuckDB as an Arrow string column and parsed by
the same expressions (:func:`parse_text_column`), so a date means the same
whatever form the table came in. The rules:

* surrounding spaces are ignored; an empty (or all-space) value is missing;
* ISO dates and times (``2024-03-02``, ``2024-03-02T13:45:00.123``), a few
  written-out forms (``Mar 2, 2024``, ``2 March 2024``) and ``20240302``;
* a value with an offset or zone after its time (``+01:00``, ``-0500``, ``Z``,
  ``UTC``) is converted to UTC; a column mixing such values with values
  without one is refused (those have no defined instant);
* dates written like ``02/03/2024`` (or with ``.`` or ``-``, two- or
  four-digit years, with a time) are read day-first or month-first as the
  source declares (``dayfirst``) or as the data show (a :class:`DataWarning`
  says so); never by a guess (:func:`~crmstats.validation.dates._date_order`);
* a ``timestamp_format`` of the source file is used as given.
"""

from __future__ import annotations

import datetime

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir

from crmstats.backend import _backend_of, execute
from crmstats.exceptions import DataError
from crmstats.schema import ColumnSpec
from crmstats.validation.dates import _DMY, _date_order, _how
from crmstats.validation.messages import _MAX_ROWS, ROW_COL, _caller, _count, _fmt_rows

#: A time followed by an offset or zone: the value is timezone-aware.
_AWARE = r"\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*([Zz]|UTC|[+-]\d{2}(:?\d{2})?)$"
#: A day/month date (slashes, after normalising) whose year has two digits.
_TWO_DIGIT_YEAR = r"^\d{1,2}/\d{1,2}/\d{2}(\D|$)"
_TIME_FORMATS = ("%H:%M:%S.%f", "%H:%M:%S", "%H:%M", "")
#: Written-out and compact dates DuckDB's cast does not read (tried after it).
_OTHER_FORMATS = ("%b %d, %Y", "%B %d, %Y", "%d %b %Y", "%d %B %Y", "%b %d %Y", "%Y%m%d")


@ibis.udf.scalar.builtin(name="try_strptime")
def _try_strptime(value: str, fmt: str) -> datetime.datetime:
    """DuckDB's ``try_strptime``: NULL where the text does not match ``fmt``."""


def _strptime(col: ir.StringValue, fmt: str, duckdb: bool) -> ir.TimestampValue:
    return _try_strptime(col, fmt) if duckdb else col.as_timestamp(fmt)


def date_parts(col: ir.StringValue) -> dict[str, ir.BooleanValue]:
    """Return the day/month evidence of text dates: the one definition of what counts.

    ``any``: written like ``02/03/2024``; ``first``: the first part exceeds 12
    (only a day-first reading parses it); ``second``: the second part does.
    A value with both parts above 12 is in neither (no order parses it).
    """
    a = col.re_extract(_DMY, 1).try_cast("int64")
    b = col.re_extract(_DMY, 2).try_cast("int64")
    return {"any": col.re_search(_DMY), "first": (a > 12) & (b <= 12),
            "second": (b > 12) & (a <= 12)}


def parse_text_column(t: ir.Table, spec, c: ColumnSpec, mapping, source=None,
                      rows=None) -> tuple[ir.TimestampValue, str]:
    """Parse text column ``c`` of ``t``; refuse what does not parse. Return (parsed, how).

    ``source`` is the :class:`~crmstats.validation.SourceTable` whose options
    apply (None: none); ``rows`` a row source naming offending rows by the
    caller's index labels (pandas inputs; None: by their ids).
    """
    trim = _trimmer(t, c.name)
    make, how = _parser(t, spec, c, mapping, source, rows, trim)
    parsed = make(t)

    def bad(tb):
        return make(tb).isnull() & tb[c.name].notnull() & (trim(tb[c.name]) != "")

    from crmstats.validation.content import raise_bad_values

    raise_bad_values(t, bad, spec, c, mapping, "unparsable timestamp(s)", rows, how)
    return parsed, how


def _trimmer(t: ir.Table, name: str):
    """Return how values of text column ``name`` lose surrounding spaces: strip, or as they are.

    Ibis' strip is DuckDB's ``trim`` with a list of characters, ~0.6 s per million
    values, and the parser reads a value many times: in DuckDB one cheap count
    first tells whether any value starts or ends with a space or control
    character (a superset: the comparison is by code point there; other
    databases may collate spaces away, so they always strip).
    """
    if _backend_of(t).name != "duckdb":
        return lambda v: v.strip()
    col = t[name]
    padded = (col != "") & ((col < "!") | (col.right(1) < "!"))
    if _count(execute(t.count(where=padded))):
        return lambda v: v.strip()
    return lambda v: v


def _parser(t: ir.Table, spec, c: ColumnSpec, mapping, source, rows, trim):
    """Decide how column ``c`` is read; return ``(make(table) -> parsed column, how)``."""
    name = c.name
    duckdb = _backend_of(t).name == "duckdb"
    fmt = source.timestamp_format if source is not None else None
    if fmt:
        return (lambda tb: _strptime(trim(tb[name]), fmt, duckdb),
                f"read with timestamp_format {fmt!r}")
    col = trim(t[name])
    kinds = date_parts(col)
    aware = col.re_search(_AWARE)
    counts = execute(t.aggregate(
        n=t.count(where=kinds["any"]), first=t.count(where=kinds["first"]),
        second=t.count(where=kinds["second"]), aware=t.count(where=aware),
        present=t.count(where=col.notnull() & (col != "")),
    )).iloc[0]
    n_aware, present = _count(counts["aware"]), _count(counts["present"])
    if n_aware and n_aware < present:
        _refuse_mixed_zones(t, spec, c, mapping, rows, aware, col)
    if n_aware:
        return (lambda tb: trim(tb[name]).try_cast(dt.Timestamp(timezone="UTC"))
                .cast(dt.Timestamp()), "read with their offsets, as UTC")
    declared = source.dayfirst if source is not None else None
    if _count(counts["n"]) == 0:
        return (lambda tb: _iso(trim(tb[name]), duckdb)), "read as ISO dates (2024-03-02)"
    if not duckdb:  # refused before any warning about their order
        raise DataError(
            f"{spec.name} table, column {_caller(name, mapping)!r}: dates written like "
            "02/03/2024 in a database table need timestamp_format in crmstats.yml",
            table=spec.name, column=_caller(name, mapping))
    if declared is not None:
        # the order is declared: a date contradicting it fails to parse and is reported
        dayfirst = bool(declared)
    else:
        def examples(kind: str) -> list[str]:
            return list(execute(t.filter(kinds[kind]).select(v=col).limit(3))["v"])

        dayfirst = _date_order(counts, spec, c, mapping, None, examples)
    return (lambda tb: _dmy(trim(tb[name]), dayfirst),
            _how(dayfirst, declared=declared is not None))


def _refuse_mixed_zones(t, spec, c, mapping, rows, aware, col) -> None:
    name = _caller(c.name, mapping)
    table = rows.table() if rows is not None else t
    tcol = table[c.name].strip()
    is_aware = tcol.re_search(_AWARE)
    naive = tcol.notnull() & (tcol != "") & ~is_aware

    def labels(cond):
        sample = execute(table.filter(cond).limit(_MAX_ROWS))
        if rows is not None:
            return list(rows.labels[sample[ROW_COL].to_numpy()])
        from crmstats.validation.messages import _row_labels

        return _row_labels(sample, spec, None, mapping)

    aware_rows, naive_rows = labels(is_aware), labels(naive)
    raise DataError(
        f"{spec.name} table, column {name!r}: mixes timezone-aware and naive timestamps "
        f"(aware e.g. {_fmt_rows(aware_rows)}; naive e.g. {_fmt_rows(naive_rows)}); give "
        "every value an offset or none", table=spec.name, column=name,
        rows=list(naive_rows)[:_MAX_ROWS])


def _iso(col: ir.StringValue, duckdb: bool) -> ir.TimestampValue:
    iso = col.try_cast("timestamp")
    if not duckdb:
        return iso
    return ibis.coalesce(iso, *[_try_strptime(col, f) for f in _OTHER_FORMATS])


def _dmy(col: ir.StringValue, dayfirst: bool) -> ir.TimestampValue:
    """Parse dates written like 02/03/2024 [13:45[:30[.123]]] (or with . or -) in DuckDB."""
    normal = col.re_replace(r"^(\d{1,2})[.\-](\d{1,2})[.\-](\d{2,4})", r"\1/\2/\3")
    order = "%d/%m" if dayfirst else "%m/%d"

    def candidates(year: str) -> list:
        date = f"{order}/{year}"
        out = [_try_strptime(normal, f"{date} %H:%M:%S"), _try_strptime(normal, date)]
        for sep in (" ", "T"):
            for time in _TIME_FORMATS:
                if time and time != "%H:%M:%S" or (time and sep == "T"):
                    out.append(_try_strptime(normal, f"{date}{sep}{time}"))
        return out

    # a two-digit year is read as %y (24 -> 2024), never as the year 24
    return ibis.ifelse(normal.re_search(_TWO_DIGIT_YEAR),
                       ibis.coalesce(*candidates("%y")),
                       ibis.coalesce(*candidates("%Y"), col.try_cast("timestamp")))


def dmy_counts(text) -> dict[str, int]:
    """Count dates written like ``02/03/2024`` in a pandas Series, and which order they allow.

    ``n`` counts them all, ``first`` those only a day-first reading parses,
    ``second`` those only a month-first reading parses (:func:`date_parts`,
    run on the values in the embedded DuckDB, as the gate counts them).
    """
    import pyarrow as pa

    values = pa.array([None if v is None or v != v else str(v) for v in text], type=pa.string())
    t = ibis.memtable(pa.table({"v": values}))
    kinds = date_parts(t.v.strip())
    got = execute(t.aggregate(n=t.count(where=kinds["any"]), first=t.count(where=kinds["first"]),
                              second=t.count(where=kinds["second"]))).iloc[0]
    return {k: _count(got[k]) for k in ("n", "first", "second")}
