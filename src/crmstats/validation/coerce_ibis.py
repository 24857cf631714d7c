"""The Ibis coercion engine: files and database tables, coerced where they live.

Must agree with :mod:`.coerce_pandas` on every rule.
"""

from __future__ import annotations

import datetime

import ibis
import ibis.expr.types as ir

from crmstats.backend import _backend_of, execute
from crmstats.exceptions import DataError
from crmstats.schema import (
    ColumnSpec,
    TableSpec,
)
from crmstats.validation.columns import _missing_error
from crmstats.validation.content import _raise_if_rows
from crmstats.validation.dates import _DMY, _date_order, _how
from crmstats.validation.messages import _caller, _count


def _rename_ibis(t: ir.Table, spec: TableSpec, mapping) -> ir.Table:
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


def _coerce_ibis(t: ir.Table, spec: TableSpec, mapping, source=None) -> ir.Table:
    """Cast canonical columns of an Ibis table to canonical types, checking parses."""
    schema = t.schema()
    casts = {}
    for c in spec.columns:
        if c.name not in schema:
            continue
        dtype = schema[c.name]
        if c.kind == "timestamp":
            if dtype.is_timestamp():
                if dtype.timezone is not None:
                    casts[c.name] = t[c.name].cast(ibis.dtype("timestamp"))
            elif dtype.is_date():
                casts[c.name] = t[c.name].cast("timestamp")
            elif dtype.is_string():
                parsed, how = _parse_timestamps(t, spec, c, mapping, source)

                def bad(tb, n=c.name, p=parsed):
                    return p.isnull() & tb[n].notnull() & (tb[n].strip() != "")

                if _count(execute(t.count(where=bad(t)))):
                    values = execute(t.filter(bad(t)).select(v=t[c.name]).limit(3))["v"]
                    _raise_if_rows(t, bad, spec, c, mapping, "unparsable timestamp(s)",
                                   detail=f"{how}; the values, e.g. "
                                          f"{', '.join(map(repr, values))}")
                casts[c.name] = parsed
            else:
                raise _wrong_type(spec, c, mapping, dtype, "timestamps")
        elif c.kind in ("money", "count", "float"):
            if dtype.is_string():
                col = t[c.name].strip()
                if source is not None and source.thousands:
                    col = col.replace(source.thousands, "")
                if source is not None and source.decimal and source.decimal != ".":
                    col = col.replace(source.decimal, ".")
                hint = ("" if source is not None and source.decimal else
                        " (for numbers such as '1.234,50' set decimal: ',' and thousands: '.' "
                        "for the table in crmstats.yml)")
                _raise_if_rows(t, lambda tb, n=c.name, v=col, e=c.nullable:
                               v.try_cast("float64").isnull() & tb[n].notnull()
                               & ((tb[n].strip() != "") if e else ibis.literal(True)),
                               spec, c, mapping,
                               "value(s) that are not numbers" + hint)
                casts[c.name] = col.try_cast("float64")
            elif dtype.is_numeric() and not dtype.is_boolean():
                if not dtype.is_float64():
                    casts[c.name] = t[c.name].cast("float64")
            else:
                raise _wrong_type(spec, c, mapping, dtype, "numbers")
    return t.mutate(**casts) if casts else t


_TIME_FORMATS = ("%H:%M:%S.%f", "%H:%M:%S", "%H:%M", "")


@ibis.udf.scalar.builtin(name="try_strptime")
def _try_strptime(value: str, fmt: str) -> datetime.datetime:
    """DuckDB's ``try_strptime``: NULL where the text does not match ``fmt``."""


def _strptime(col: ir.StringValue, fmt: str, duckdb: bool) -> ir.TimestampValue:
    return _try_strptime(col, fmt) if duckdb else col.as_timestamp(fmt)


def _parse_timestamps(t: ir.Table, spec, c: ColumnSpec, mapping,
                      source) -> tuple[ir.TimestampValue, str]:
    """Parse a text timestamp column in-database; day/month order never guessed silently.

    Returns the parsed column and how it was read (for messages: "read day-first", ...).
    """
    col = t[c.name].strip()
    duckdb = _backend_of(t).name == "duckdb"
    fmt = source.timestamp_format if source is not None else None
    if fmt:
        return _strptime(col, fmt, duckdb), f"read with timestamp_format {fmt!r}"
    iso = col.try_cast("timestamp")
    declared = source.dayfirst if source is not None else None
    if declared is not None and duckdb:
        # the order is declared: a date contradicting it fails to parse and is reported
        return _dmy(col, iso, bool(declared)), _how(bool(declared), declared=True)
    a = col.re_extract(_DMY, 1).try_cast("int64")
    b = col.re_extract(_DMY, 2).try_cast("int64")
    kinds = {"first": (a > 12) & (b <= 12), "second": (b > 12) & (a <= 12),
             "any": col.re_search(_DMY)}
    counts = execute(t.aggregate(
        n=t.count(where=col.re_search(_DMY)),
        first=t.count(where=kinds["first"]), second=t.count(where=kinds["second"]),
    )).iloc[0]
    if _count(counts["n"]) == 0:
        return iso, "read as ISO dates (2024-03-02)"

    if not duckdb:  # refused before any warning about their order
        raise DataError(
            f"{spec.name} table, column {_caller(c.name, mapping)!r}: dates written like "
            "02/03/2024 in a database table need timestamp_format in crmstats.yml",
            table=spec.name, column=_caller(c.name, mapping))

    def examples(kind: str) -> list[str]:
        return list(execute(t.filter(kinds[kind]).select(v=col).limit(3))["v"])

    dayfirst = _date_order(counts, spec, c, mapping,
                           source.dayfirst if source is not None else None, examples)
    return _dmy(col, iso, dayfirst), _how(dayfirst, declared=source is not None
                                          and source.dayfirst is not None)


def _dmy(col: ir.StringValue, iso: ir.TimestampValue, dayfirst: bool) -> ir.TimestampValue:
    """Parse dates written like 02/03/2024 [13:45[:30[.123]]] (or with . or -) in DuckDB."""
    normal = col.re_replace(r"^(\d{1,2})[.\-](\d{1,2})[.\-](\d{2,4})", r"\1/\2/\3")
    date = "%d/%m/%Y" if dayfirst else "%m/%d/%Y"
    candidates = [_try_strptime(normal, f"{date} %H:%M:%S"), _try_strptime(normal, date)]
    for sep in (" ", "T"):
        for time in _TIME_FORMATS:
            if time and time != "%H:%M:%S" or (time and sep == "T"):
                candidates.append(_try_strptime(normal, f"{date}{sep}{time}"))
    return ibis.coalesce(*candidates, iso)


def _wrong_type(spec, c, mapping, dtype, expected: str) -> DataError:
    """Return the error for a column whose type cannot hold ``expected`` values."""
    column = _caller(c.name, mapping)
    return DataError(f"{spec.name} table, column {column!r}: type {dtype} where {expected} "
                     "are expected", table=spec.name, column=column)
