"""What only a pandas input needs: its columns as Arrow arrays, its row labels, its result.

The coercion itself is :mod:`.coerce`'s, in the embedded DuckDB, as for every
input. Here: a frame's columns become Arrow arrays (NumPy- and Arrow-backed
ones without a copy; columns holding values of several Python types become
text, as a CSV or a database would hold them; Python datetimes in a timestamp
column are written as ISO text with their offset; categoricals are decoded);
the columns the engine changed are computed once into new arrays, so later
queries read values, not parsing expressions; and :func:`to_frame` gives
:func:`~crmstats.validation.validate` its DataFrame. The caller's frame is never
modified.
"""

from __future__ import annotations

import datetime

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa

from crmstats.backend import backend
from crmstats.exceptions import DataError
from crmstats.schema import TableSpec
from crmstats.validation.messages import ROW_COL, _caller


class _RowSource:
    """The caller's row labels for a pandas input, and its table with row positions.

    Checks run on the plain table; only when a check fails is the table
    (re)built with a position column (:data:`ROW_COL`), to name the offending
    rows by the caller's index labels. ``table`` may be given ready (the raw
    table the engine coerces carries positions already).
    """

    def __init__(self, arrow: pa.Table, labels: pd.Index, table: ir.Table | None = None):
        self.arrow = arrow
        self.labels = labels
        self._table = table

    def table(self) -> ir.Table:
        if self._table is not None:
            return self._table
        return ibis.memtable(with_positions(self.arrow))


def with_positions(arrow: pa.Table) -> pa.Table:
    """``arrow`` plus the row-position column (the other columns are not copied)."""
    positions = pa.array(np.arange(arrow.num_rows, dtype="int64"))
    return arrow.append_column(ROW_COL, positions)


def frame_to_arrow(data: pd.DataFrame, spec: TableSpec, mapping) -> pa.Table:
    """Return the frame's columns (the caller's names) as an Arrow table, refusing duplicates."""
    if data.columns.duplicated().any():
        dup = data.columns[data.columns.duplicated()].tolist()
        raise DataError(
            f"{spec.name} table: duplicated column name(s) {dup}", table=spec.name, column=dup[0]
        )
    timestamps = {_caller(c.name, mapping) for c in spec.columns if c.kind == "timestamp"}
    if not len(data.columns):
        return pa.table({})
    arrays = [_to_array(data[col], col in timestamps) for col in data.columns]
    return pa.Table.from_arrays(arrays, names=[str(c) for c in data.columns])


def _to_array(s: pd.Series, timestamp: bool) -> pa.Array:
    """One column as an Arrow array; NaN and None are missing values."""
    if s.dtype == object and timestamp:
        return _as_text(s)  # parsed by the engine, offsets included
    try:
        arr = pa.Array.from_pandas(s)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        return _as_text(s)  # values of several types (or too large for Arrow): as text
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    return arr


def _as_text(s: pd.Series) -> pa.Array:
    """Return a column's values as an Arrow string array (None for missing)."""
    try:
        return pa.array(s.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass

    def text(v):
        if v is None or (not isinstance(v, str) and pd.isna(v)):
            return None
        if isinstance(v, datetime.datetime | datetime.date):
            return v.isoformat(sep=" ") if isinstance(v, datetime.datetime) else v.isoformat()
        return str(v)

    return pa.array([text(v) for v in s.to_numpy(dtype=object)], type=pa.string())


def materialize(t: ir.Table, changed: list[str], raw: pa.Table, spec: TableSpec,
                mapping) -> pa.Table:
    """Return coerced table ``t`` as Arrow: ``raw``'s arrays where the engine left a column.

    The columns in ``changed`` are computed once, in row order; the others are
    the caller's arrays under their canonical names (no copy).
    """
    names = [n for n in t.columns if n != ROW_COL]
    computed = {}
    if changed:
        query = t.order_by(ROW_COL).select(*changed)
        got = backend().to_pyarrow(query)
        computed = {n: got.column(n).combine_chunks() for n in changed}
    arrays = [computed[n] if n in computed
              else raw.column(source_name(n, raw.column_names, spec, mapping)) for n in names]
    return pa.Table.from_arrays(arrays, names=names)


def source_name(name: str, columns, spec: TableSpec, mapping) -> str:
    """Return the caller's name, among ``columns``, of the validated table's column ``name``."""
    caller = _caller(name, mapping)
    return caller if spec.column(name) is not None and caller in columns else name


def to_frame(arrow: pa.Table, changed: list[str], data: pd.DataFrame, spec: TableSpec,
             mapping) -> pd.DataFrame:
    """Return the validated table as a new DataFrame with the caller's index.

    Columns the engine left as they were are the caller's (shared memory, no
    copy) unless the caller's column needed converting for Arrow (values of
    several types, a categorical); the others come from the validated arrays.
    """
    out = {}
    for name in arrow.column_names:
        source = (source_name(name, data.columns, spec, mapping) if name not in changed
                  else None)
        column = data[source] if source is not None and source in data.columns else None
        if column is None or column.dtype == object or isinstance(column.dtype,
                                                                  pd.CategoricalDtype):
            column = arrow.column(name).to_pandas()
        out[name] = column.reset_index(drop=True)
    frame = pd.DataFrame(out, copy=False)
    frame.index = data.index
    return frame
