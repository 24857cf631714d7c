"""The pandas coercion engine: a caller's DataFrame to typed columns, then Arrow.

Must agree with :mod:`.coerce_ibis` (the engine for files and database
tables) on every rule (``tests/test_one_engine.py`` feeds the same messy tables
through both); text timestamps are parsed by that engine itself
(:mod:`.timestamps`, in the embedded DuckDB). The caller's frame is never
modified.
"""

from __future__ import annotations

import datetime

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa

from crmstats.backend import execute
from crmstats.exceptions import DataError
from crmstats.schema import (
    ColumnSpec,
    TableSpec,
)
from crmstats.validation.columns import _missing_error
from crmstats.validation.messages import _MAX_ROWS, ROW_COL, _caller, _error
from crmstats.validation.timestamps import parse_text_column


def _coerce_columns(data: pd.DataFrame, spec: TableSpec, mapping) -> dict[str, pd.Series]:
    """Return the columns with canonical names and types (pandas input; ``data`` untouched).

    Columns already of the canonical type are passed through without copying.
    """
    err = _missing_error(spec, mapping, list(data.columns))
    if err:
        raise err
    if data.columns.duplicated().any():
        dup = data.columns[data.columns.duplicated()].tolist()
        raise DataError(
            f"{spec.name} table: duplicated column name(s) {dup}", table=spec.name, column=dup[0]
        )
    reverse = {_caller(c.name, mapping): c.name for c in spec.columns}
    out = {}
    for col in data.columns:
        canonical = reverse.get(col)
        if canonical is None:
            if col in spec_names(spec):
                # a canonical name used by another (mapped) column: keep the mapped one
                continue
            series = data[col]
            if series.dtype == object:
                series = _object_to_arrow_safe(series)
            out[str(col)] = series.reset_index(drop=True)
            continue
        col_spec = spec.column(canonical)
        out[canonical] = _coerce_series(data[col], spec, col_spec, mapping, data.index)
    for name, (a, b) in spec.derived.items():
        if name not in out and a in out and b in out:
            out[name] = out[a] * out[b]
    return out


def _to_arrow(columns: dict[str, pd.Series]) -> pa.Table:
    """Arrow table of the coerced columns; NumPy-backed ones share pandas' buffers (no copy).

    The table is a view of the arrays of the (shallow copy of the) frame the
    gate validated; the gate keeps that copy alive with the table, so pandas'
    copy-on-write gives a later in-place edit of the caller's frame new
    memory and the validated table never changes.
    """
    if not columns:
        return pa.table({})
    return pa.Table.from_arrays(
        [pa.Array.from_pandas(s) for s in columns.values()], names=list(columns)
    )


class _RowSource:
    """The caller's row labels for a pandas input, and its table with row positions.

    Content checks run on the plain table; only when a check fails is the table
    rebuilt with a position column (:data:`ROW_COL`), to name the offending
    rows by the caller's index labels.
    """

    def __init__(self, arrow: pa.Table, labels: pd.Index):
        self.arrow = arrow
        self.labels = labels

    def table(self) -> ir.Table:
        positions = pa.array(np.arange(self.arrow.num_rows, dtype="int64"))
        return ibis.memtable(self.arrow.append_column(ROW_COL, positions))


def spec_names(spec: TableSpec) -> set[str]:
    """Canonical column names of ``spec``."""
    return {c.name for c in spec.columns}


def _object_to_arrow_safe(series: pd.Series) -> pd.Series:
    """Turn a mixed-type object column into strings so Arrow can hold it."""
    kinds = {type(v) for v in series.dropna().head(1000)}
    if len(kinds) > 1:
        return series.map(lambda v: v if pd.isna(v) else str(v))
    return series


def _coerce_series(s: pd.Series, spec, col_spec: ColumnSpec, mapping, index) -> pd.Series:
    s = s.reset_index(drop=True)
    kind = col_spec.kind
    if kind == "id":
        if s.dtype == object:
            s = _object_to_arrow_safe(s)
        if pd.api.types.is_float_dtype(s.dtype):
            frac = s.notna() & (s % 1 != 0)
            if frac.any():
                raise _error(
                    spec, col_spec, mapping, "non-integer numeric ids",
                    index[frac.to_numpy()], int(frac.sum()),
                )
            s = s.astype("Int64")
        return s
    if kind == "timestamp":
        return _coerce_timestamps(s, spec, col_spec, mapping, index)
    if kind in ("money", "count", "float"):
        if pd.api.types.is_bool_dtype(s.dtype):
            raise _error(spec, col_spec, mapping, "boolean values where numbers are expected",
                         index[:_MAX_ROWS], len(s))
        if not pd.api.types.is_numeric_dtype(s.dtype):
            num = pd.to_numeric(s, errors="coerce")
            bad = num.isna() & s.notna()
            if col_spec.nullable:  # an empty field is a missing (unknown) value
                bad &= s.astype(str).str.strip() != ""
            if bad.any():
                vals = [f"{index[i]} ({s.iloc[i]!r})" for i in np.flatnonzero(bad)[:_MAX_ROWS]]
                raise DataError(
                    f"{spec.name} table, column {_caller(col_spec.name, mapping)!r}: "
                    f"{int(bad.sum())} value(s) are not numbers, e.g. rows {', '.join(vals)}",
                    table=spec.name,
                    column=_caller(col_spec.name, mapping),
                    rows=list(index[np.flatnonzero(bad)[:_MAX_ROWS]]),
                )
            s = num
        return s.astype("float64")
    if kind == "category":
        if s.dtype == object or isinstance(s.dtype, pd.CategoricalDtype):
            s = s.astype(object).map(lambda v: v if pd.isna(v) else str(v))
        return s
    return s


def _coerce_timestamps(s: pd.Series, spec, col_spec, mapping, index) -> pd.Series:
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.tz_convert("UTC").dt.tz_localize(None)
    if pd.api.types.is_datetime64_dtype(s.dtype):
        return s
    if pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
        raise _error(spec, col_spec, mapping,
                     f"numbers of dtype {s.dtype} where timestamps are expected "
                     "(convert epoch values with pandas.to_datetime(unit=...) first)",
                     index[:_MAX_ROWS], len(s))
    # text (and Python datetime objects, written as ISO text with their offset): parsed by
    # the engine that parses files and database tables, so a date means the same in both
    text = _as_text(s)
    arrow = pa.table({col_spec.name: text})
    t = ibis.memtable(arrow)
    parsed, _ = parse_text_column(t, spec, col_spec, mapping, None,
                                  _RowSource(arrow, index))
    out = execute(t.select(v=parsed))["v"]
    return pd.Series(out.to_numpy(dtype="datetime64[us]"), name=s.name)


def _as_text(s: pd.Series) -> pa.Array:
    """Return a column's values as an Arrow string array (None for missing)."""
    try:
        return pa.array(s.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        pass

    def text(v):
        if v is None or (not isinstance(v, str) and pd.isna(v)):
            return None
        if isinstance(v, datetime.datetime | datetime.date):
            return v.isoformat(sep=" ") if isinstance(v, datetime.datetime) else v.isoformat()
        return str(v)

    return pa.array([text(v) for v in s.to_numpy(dtype=object)], type=pa.string())
