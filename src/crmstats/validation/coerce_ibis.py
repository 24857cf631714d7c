"""The Ibis coercion engine: files and database tables, coerced where they live.

Must agree with :mod:`.coerce_pandas` on every rule (``tests/test_one_engine.py``
feeds the same messy tables through both); text timestamps of both are parsed
by :mod:`.timestamps`.
"""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from crmstats.exceptions import DataError
from crmstats.schema import (
    TableSpec,
)
from crmstats.validation.columns import _missing_error
from crmstats.validation.content import _raise_if_rows
from crmstats.validation.messages import _caller
from crmstats.validation.timestamps import parse_text_column


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
        if c.kind == "id" and dtype.is_floating():
            # ids written as floats (a Parquet export): whole numbers become integers
            _raise_if_rows(t, lambda tb, n=c.name: tb[n].notnull() & (tb[n] % 1 != 0),
                           spec, c, mapping, "non-integer numeric ids")
            casts[c.name] = t[c.name].cast("int64")
        elif c.kind == "timestamp":
            if dtype.is_timestamp():
                if dtype.timezone is not None:
                    casts[c.name] = t[c.name].cast(ibis.dtype("timestamp"))
            elif dtype.is_date():
                casts[c.name] = t[c.name].cast("timestamp")
            elif dtype.is_string():
                casts[c.name] = parse_text_column(t, spec, c, mapping, source)[0]
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


def _wrong_type(spec, c, mapping, dtype, expected: str) -> DataError:
    """Return the error for a column whose type cannot hold ``expected`` values."""
    column = _caller(c.name, mapping)
    return DataError(f"{spec.name} table, column {column!r}: type {dtype} where {expected} "
                     "are expected", table=spec.name, column=column)
