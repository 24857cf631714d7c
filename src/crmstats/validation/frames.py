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

    def __init__(self, arrow: pa.Table, labels: pd.Index, table: ir.Table | None = None,
                 casts: dict | None = None, prepare=None):
        self.arrow = arrow
        self.labels = labels
        self._table = table
        self.casts = casts or {}
        self.prepare = prepare

    def table(self) -> ir.Table:
        if self._table is not None:
            return self._table
        t = with_casts(with_positions(self.arrow), self.casts)
        return self.prepare(t) if self.prepare is not None else t


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


def materialize(t: ir.Table, changed: list[str], raw: ir.Table, arrow: pa.Table,
                spec: TableSpec, mapping) -> tuple[pa.Table, dict]:
    """Return coerced table ``t`` as Arrow, and the casts left to every query.

    ``raw`` is the table the engine coerced (``arrow``, renamed, with row
    positions). A changed column that is a cast between number types (an
    integer amount to float, a whole float id to an integer) stays the
    caller's array and its cast is returned (``{name: type}``), applied in
    each query at no cost to notice; the other changed columns (parsed text,
    computed columns) are computed once, in row order. Unchanged columns are
    the caller's arrays under their canonical names (no copy).
    """
    names = [n for n in t.columns if n != ROW_COL]
    before, after = raw.schema(), t.schema()
    casts = {n: after[n] for n in changed if n in before and before[n].is_numeric()
             and not before[n].is_boolean() and after[n].is_numeric()}
    computed = {}
    heavy = [n for n in changed if n not in casts]
    if heavy:
        # a plain projection keeps the rows in order (see in_order) unless told it need not
        got = backend().to_pyarrow((t.order_by(ROW_COL) if ROW_COL in t.columns else t)
                                   .select(*heavy))
        computed = {n: got.column(n).combine_chunks() for n in heavy}
    arrays = [computed[n] if n in computed
              else arrow.column(source_name(n, arrow.column_names, spec, mapping))
              for n in names]
    return pa.Table.from_arrays(arrays, names=names), casts


def in_order() -> bool:
    """Whether the embedded DuckDB returns a projection's rows in their order.

    It does unless ``preserve_insertion_order`` is off (:func:`crmstats.backend.backend`
    turns it off under a memory limit); then the rows carry their positions.
    """
    setting = backend().raw_sql("SELECT current_setting('preserve_insertion_order')")
    return str(setting.fetchall()[0][0]).lower() == "true"


def with_casts(arrow: pa.Table, casts: dict) -> ir.Table:
    """``arrow`` as an Ibis table with the casts :func:`materialize` left to each query."""
    t = ibis.memtable(arrow)
    return t.mutate(**{n: t[n].cast(dtype) for n, dtype in casts.items()}) if casts else t


def source_name(name: str, columns, spec: TableSpec, mapping) -> str:
    """Return the caller's name, among ``columns``, of the validated table's column ``name``."""
    caller = _caller(name, mapping)
    return caller if spec.column(name) is not None and caller in columns else name


def to_frame(arrow: pa.Table, changed: list[str], casts: dict, data: pd.DataFrame,
             spec: TableSpec, mapping) -> pd.DataFrame:
    """Return the validated table as a new DataFrame with the caller's index.

    Columns the engine left as they were are the caller's (shared memory, no
    copy) unless the caller's column needed converting for Arrow (values of
    several types, a categorical); the others come from the validated arrays
    (with the engine's number casts, :func:`materialize`).
    """
    out = {}
    for name in arrow.column_names:
        source = (source_name(name, data.columns, spec, mapping) if name not in changed
                  else None)
        column = data[source] if source is not None and source in data.columns else None
        if name in casts:
            # the engine checked the values (whole float ids); DuckDB rounds as Arrow does
            column = arrow.column(name).cast(casts[name].to_pyarrow(), safe=False).to_pandas()
        elif column is None or column.dtype == object or isinstance(column.dtype,
                                                                    pd.CategoricalDtype):
            column = arrow.column(name).to_pandas()
        out[name] = column.reset_index(drop=True)
    frame = pd.DataFrame(out, copy=False)
    frame.index = data.index
    return frame
