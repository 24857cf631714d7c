"""Error and warning text of the gate: column names as the caller wrote them, example rows."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from crmstats.exceptions import DataError
from crmstats.schema import (
    ColumnSpec,
    TableSpec,
)

#: Hidden column carrying the caller's row positions through DuckDB.
ROW_COL = "__crmstats_row__"


_MAX_ROWS = 5


def _caller(name: str, mapping: Mapping[str, str]) -> str:
    """Return the caller's name of canonical column ``name``."""
    return mapping.get(name, name)


class _Ids(list):
    """Offending rows named by their key or id values (a file or database has no index)."""

    def __init__(self, values, columns):
        super().__init__(values)
        self.columns = list(columns)


def _fmt_rows(rows) -> str:
    shown = ", ".join(repr(r) if isinstance(r, str) else str(r) for r in list(rows)[:_MAX_ROWS])
    if isinstance(rows, _Ids):  # named by ids, not row numbers: say so, and which column
        cols = ", ".join(map(repr, rows.columns))
        return f"ids [{shown}] (column{'s' if len(rows.columns) > 1 else ''} {cols})"
    return f"rows {shown}"


def _error(spec, col_spec: ColumnSpec, mapping, problem: str, rows, total=None,
           detail: str = "") -> DataError:
    name = _caller(col_spec.name, mapping)
    count = f"{total} row(s)" if total is not None else "row(s)"
    return DataError(
        f"{spec.name} table, column {name!r}: {problem} in {count}, e.g. "
        f"{_fmt_rows(rows)}" + (f"; {detail}" if detail else ""),
        table=spec.name,
        column=name,
        rows=list(rows)[:_MAX_ROWS],
    )


def _row_labels(rows: pd.DataFrame, spec: TableSpec, source, mapping=None) -> list:
    """Name offending rows: the caller's index labels (pandas input) or their key/ids.

    A file or database table has no row labels: its rows are named by their key
    (or id) values, in an :class:`_Ids` list whose message says so and names the
    columns (``e.g. ids ['536375'] (column 'InvoiceNo')``), never as row numbers.
    """
    mapping = mapping or {}
    if source is not None and ROW_COL in rows.columns:
        return list(source.labels[rows[ROW_COL].to_numpy()])
    keys = [c for c in (spec.key or ()) if c in rows.columns]
    ids = keys or [c.name for c in spec.columns if c.kind == "id" and c.name in rows.columns]
    if ids:
        return _Ids([tuple(r) if len(ids) > 1 else r[0]
                     for r in rows[ids].astype(object).itertuples(index=False)],
                    [_caller(c, mapping) for c in ids])
    return list(rows.index)


def _user_level() -> int:
    """Return the ``stacklevel`` that points a warning at the first caller outside crmstats.

    Frames of crmstats and of :mod:`contextlib` (a ``@reuse_validated()``
    decorator) are skipped.
    """
    import contextlib
    import os
    import sys

    # the crmstats package folder (this module sits one level below it)
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    skipped = os.path.abspath(contextlib.__file__)
    frame, level = sys._getframe(1), 1
    while frame is not None:
        path = os.path.abspath(frame.f_code.co_filename)
        if not (path.startswith(package + os.sep) or path == skipped):
            break
        frame, level = frame.f_back, level + 1
    return level


def _examples(rows) -> str:
    """Format example rows for a warning, bracketed (a published page drops them)."""
    if isinstance(rows, _Ids):
        return _fmt_rows(rows)
    return "rows [" + ", ".join(repr(r) if isinstance(r, str) else str(r)
                                for r in list(rows)[:_MAX_ROWS]) + "]"


def _count(value) -> int:
    """Return an aggregate count as int (Spark gives NULL for a filtered count of 0)."""
    return 0 if value is None or pd.isna(value) else int(value)
