"""Validation of the canonical tables: one module, used by every public function.

:func:`validate` takes a table in any accepted form — a pandas DataFrame, a path
to a CSV/Parquet file, or an Ibis table on any backend — maps the caller's
column names onto the canonical ones, coerces types and checks the content.
Problems raise :class:`~crmstats.DataError` naming the table, the column (as the
caller named it) and a few offending rows.

Checks
------
* every required column is present;
* ids are never null;
* timestamps parse; timezone-aware values are converted to UTC and made naive;
  a column mixing naive and aware values is rejected (its naive values have no
  defined instant);
* money columns are finite (no null, NaN or infinity) and, except transaction
  amounts (refunds, see :mod:`crmstats.schema`), non-negative;
* count columns (``quantity``) are finite and non-negative;
* categories with a fixed set of values (experiments' ``group``) hold only those;
* the table's key (see :data:`crmstats.schema.TABLES`) is unique.

The caller's DataFrame is never modified: coercions happen on a new frame.
Content checks run as Ibis expressions on the table's backend (DuckDB for
in-memory and file inputs), so a table living in PostgreSQL is checked where it
lives and only counts and at most five offending rows come back.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa

from crmstats.exceptions import DataError, DataWarning
from crmstats.schema import ColumnSpec, TableSpec, table_spec

__all__ = ["reuse_validated", "validate", "validate_table"]

#: Hidden column carrying the caller's row positions through DuckDB.
ROW_COL = "__crmstats_row__"
_MAX_ROWS = 5


def validate(
    data: Any,
    table: str = "transactions",
    *,
    columns: Mapping[str, str] | None = None,
    **col_overrides: str,
) -> pd.DataFrame | ir.Table:
    """Check a table against its canonical schema and return it in canonical form.

    Parameters
    ----------
    data : pandas.DataFrame, str, pathlib.Path or ibis.Table
        The table. Paths ending in ``.csv``/``.csv.gz`` or ``.parquet`` are read
        with DuckDB.
    table : str
        Canonical table name, one of :data:`crmstats.schema.TABLES`.
    columns : mapping, optional
        ``{canonical_name: caller_name}`` for columns named differently.
    **col_overrides
        The same mapping given as ``<canonical>_col="caller_name"`` keywords,
        e.g. ``customer_id_col="cust"``.

    Returns
    -------
    pandas.DataFrame or ibis.Table
        A pandas DataFrame (a new object; the input is untouched) when given
        one, otherwise an Ibis table; canonical column names and types.

    Raises
    ------
    DataError
        Naming the table, column and offending rows.
    """
    mapping = _column_mapping(columns, col_overrides)
    if isinstance(data, pd.DataFrame):
        spec = table_spec(table)
        cols = _coerce_columns(data, spec, mapping)
        arrow = _to_arrow(cols)
        _check_content(ibis.memtable(arrow), spec, mapping, _RowSource(arrow, data.index))
        out = pd.DataFrame(cols)
        out.index = data.index
        return out
    return validate_table(data, table, columns=mapping)


def validate_table(
    data: Any, table: str, *, columns: Mapping[str, str] | None = None
) -> ir.Table:
    """Validate ``data`` and return it as an Ibis table with canonical columns.

    This is the entry every crmstats function uses on its inputs; see
    :func:`validate` for the parameters. A pandas input becomes an in-memory
    table of the embedded DuckDB backend.
    """
    spec = table_spec(table)
    mapping = {k: v for k, v in dict(columns or {}).items() if v is not None and v != k}
    trusted = _TRUSTED.get()
    if (trusted is not None and isinstance(data, ir.Table) and not mapping
            and trusted.get(data.op()) == table):
        return data  # validated earlier in this same crmstats call: nothing new to check
    if isinstance(data, pd.DataFrame):
        # the coerced columns go to DuckDB as Arrow arrays (no DataFrame is built)
        arrow = _to_arrow(_coerce_columns(data, spec, mapping))
        t = ibis.memtable(arrow)
        rows = _RowSource(arrow, data.index)
    else:
        from crmstats.io import read_table

        t = read_table(data, table=table)
        t = _rename_ibis(t, spec, mapping)
        t = _coerce_ibis(t, spec, mapping)
        rows = None
    _check_content(t, spec, mapping, rows)
    _remember(t, table)
    return t


#: Inside :func:`reuse_validated`: the Ibis expressions :func:`validate_table` returned
#: (expression -> table name); ``None`` outside.
_TRUSTED: ContextVar[dict | None] = ContextVar("crmstats_trusted_tables", default=None)


@contextmanager
def reuse_validated():
    """Within this block, a table that :func:`validate_table` returned is not checked again.

    For functions that validate their inputs once and hand the validated Ibis
    tables to other crmstats functions (e.g. one call per snapshot); usable as
    a decorator, ``@reuse_validated()``. Outside
    such a block nothing is remembered: a table passed back by a user is
    checked again, so an edit of the underlying frame, or new rows in a
    database table, never slips through unchecked. Nested blocks share the
    outermost one's memory.
    """
    if _TRUSTED.get() is not None:
        yield
        return
    token = _TRUSTED.set({})
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def _remember(t: ir.Table, table: str) -> None:
    trusted = _TRUSTED.get()
    if trusted is not None:
        trusted[t.op()] = table


# ----------------------------------------------------------------------------- helpers


def _column_mapping(columns, overrides) -> dict[str, str]:
    mapping = dict(columns or {})
    for key, value in overrides.items():
        if not key.endswith("_col"):
            raise TypeError(f"unexpected keyword argument {key!r}")
        if value is not None:
            mapping[key[: -len("_col")]] = value
    return mapping


def _caller(name: str, mapping: Mapping[str, str]) -> str:
    """Return the caller's name of canonical column ``name``."""
    return mapping.get(name, name)


def _missing_error(spec: TableSpec, mapping, present) -> DataError | None:
    missing = [c for c in spec.required if _caller(c, mapping) not in present]
    if not missing:
        return None
    shown = [
        f"{_caller(c, mapping)!r}" + (f" (canonical {c!r})" if _caller(c, mapping) != c else "")
        for c in missing
    ]
    hint = ""
    if len(missing) == 1 and missing[0] not in mapping:
        hint = f"; map another column with {missing[0]}_col=..."
    return DataError(
        f"{spec.name} table: missing required column {', '.join(shown)}; "
        f"columns present: {', '.join(map(str, present))}{hint}",
        table=spec.name,
        column=_caller(missing[0], mapping),
    )


def _fmt_rows(rows) -> str:
    rows = list(rows)[:_MAX_ROWS]
    return ", ".join(repr(r) if isinstance(r, str) else str(r) for r in rows)


def _error(spec, col_spec: ColumnSpec, mapping, problem: str, rows, total=None) -> DataError:
    name = _caller(col_spec.name, mapping)
    count = f"{total} row(s)" if total is not None else "row(s)"
    return DataError(
        f"{spec.name} table, column {name!r}: {problem} in {count}, e.g. rows "
        f"{_fmt_rows(rows)}",
        table=spec.name,
        column=name,
        rows=list(rows)[:_MAX_ROWS],
    )


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
    return out


def _to_arrow(columns: dict[str, pd.Series]) -> pa.Table:
    """Arrow table of the coerced columns; NumPy-backed ones share pandas' buffers (no copy).

    The table is a view: it follows later in-place edits of the caller's frame.
    That is safe because a validated table is only trusted again inside
    :func:`reuse_validated` (one crmstats call); anywhere else it is checked
    again when passed back.
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
    name = _caller(col_spec.name, mapping)
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.tz_convert("UTC").dt.tz_localize(None)
    if pd.api.types.is_datetime64_dtype(s.dtype):
        return s
    if pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
        raise _error(spec, col_spec, mapping,
                     f"numbers of dtype {s.dtype} where timestamps are expected "
                     "(convert epoch values with pandas.to_datetime(unit=...) first)",
                     index[:_MAX_ROWS], len(s))
    present = s.notna()
    values = s[present]
    # element-wise awareness: datetime objects carry tzinfo, strings an offset or 'Z'
    aware = values.map(_is_tz_aware)
    if aware.any() and not aware.all():
        naive_rows = index[np.flatnonzero(present)[~aware.to_numpy()]]
        aware_rows = index[np.flatnonzero(present)[aware.to_numpy()]]
        raise DataError(
            f"{spec.name} table, column {name!r}: mixes timezone-aware and naive timestamps "
            f"(aware e.g. rows {_fmt_rows(aware_rows)}; naive e.g. rows {_fmt_rows(naive_rows)}); "
            "give every value an offset or none",
            table=spec.name,
            column=name,
            rows=list(naive_rows[:_MAX_ROWS]),
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            parsed = pd.to_datetime(s, errors="coerce", utc=bool(aware.any()), format="mixed")
        except (TypeError, ValueError, OverflowError) as exc:  # pragma: no cover - pandas edge
            raise DataError(
                f"{spec.name} table, column {name!r}: timestamps could not be parsed ({exc})",
                table=spec.name,
                column=name,
            ) from None
    bad = parsed.isna() & present
    if bad.any():
        rows = np.flatnonzero(bad)[:_MAX_ROWS]
        vals = [f"{index[i]} ({s.iloc[i]!r})" for i in rows]
        raise DataError(
            f"{spec.name} table, column {name!r}: {int(bad.sum())} unparsable timestamp(s), "
            f"e.g. rows {', '.join(vals)}",
            table=spec.name,
            column=name,
            rows=list(index[rows]),
        )
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed


def _is_tz_aware(v) -> bool:
    if isinstance(v, pd.Timestamp) or hasattr(v, "tzinfo"):
        return getattr(v, "tzinfo", None) is not None
    if isinstance(v, str):
        text = v.strip()
        if text.endswith(("Z", "z")) or text.upper().endswith("UTC"):
            return True
        tail = text[-6:]
        # an offset such as +01:00 / -0500 after a time part
        return ("T" in text or " " in text or ":" in text) and (
            (len(tail) == 6 and tail[0] in "+-" and tail[3] == ":")
            or (len(text) > 5 and text[-5] in "+-" and text[-4:].isdigit() and ":" in text)
        )
    return False


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


def _coerce_ibis(t: ir.Table, spec: TableSpec, mapping) -> ir.Table:
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
                _raise_if_rows(t, lambda tb, n=c.name: tb[n].try_cast("timestamp").isnull()
                               & tb[n].notnull(), spec, c, mapping, "unparsable timestamp(s)")
                casts[c.name] = t[c.name].try_cast("timestamp")
            else:
                raise DataError(
                    f"{spec.name} table, column {_caller(c.name, mapping)!r}: type {dtype} where "
                    "timestamps are expected",
                    table=spec.name,
                    column=_caller(c.name, mapping),
                )
        elif c.kind in ("money", "count", "float"):
            if dtype.is_string():
                _raise_if_rows(t, lambda tb, n=c.name: tb[n].try_cast("float64").isnull()
                               & tb[n].notnull(), spec, c, mapping,
                               "value(s) that are not numbers")
                casts[c.name] = t[c.name].try_cast("float64")
            elif dtype.is_numeric() and not dtype.is_boolean():
                if not dtype.is_float64():
                    casts[c.name] = t[c.name].cast("float64")
            else:
                raise DataError(
                    f"{spec.name} table, column {_caller(c.name, mapping)!r}: type {dtype} where "
                    "numbers are expected",
                    table=spec.name,
                    column=_caller(c.name, mapping),
                )
    return t.mutate(**casts) if casts else t


def _row_labels(rows: pd.DataFrame, spec: TableSpec, source) -> list:
    """Name offending rows: the caller's index labels (pandas input) or their key/ids."""
    if source is not None and ROW_COL in rows.columns:
        return list(source.labels[rows[ROW_COL].to_numpy()])
    keys = [c for c in (spec.key or ()) if c in rows.columns]
    ids = keys or [c.name for c in spec.columns if c.kind == "id" and c.name in rows.columns]
    if ids:
        return [
            tuple(r) if len(ids) > 1 else r[0]
            for r in rows[ids].astype(object).itertuples(index=False)
        ]
    return list(rows.index)


def _raise_if_rows(t: ir.Table, cond, spec, col_spec, mapping, problem, source=None) -> None:
    """Raise naming the count and up to five rows of ``t`` where ``cond(table)`` holds."""
    from crmstats.io import execute

    n = int(execute(t.count(where=cond(t))))
    if n:
        sample = _offending(t, cond, source)
        raise _error(spec, col_spec, mapping, problem, _row_labels(sample, spec, source), n)


def _offending(t: ir.Table, cond, source) -> pd.DataFrame:
    """Up to five rows where ``cond(table)`` holds, with row positions for a pandas input."""
    from crmstats.io import execute

    table = source.table() if source is not None else t
    return execute(table.filter(cond(table)).limit(_MAX_ROWS))


def _check_content(t: ir.Table, spec: TableSpec, mapping, source) -> None:
    """Null ids, non-finite/negative numbers, duplicated keys — one query, then details.

    ``source`` (a :class:`_RowSource`, for pandas inputs) names offending rows
    by the caller's index labels; it is only used once a check has failed.
    """
    from crmstats.io import execute

    checks: dict[str, tuple[ColumnSpec, str, Any]] = {}
    schema = t.schema()
    for c in spec.columns:
        if c.name not in schema:
            continue
        if c.kind == "id" or (c.kind in ("timestamp", "category") and c.required):
            checks[f"null_{c.name}"] = (c, "null value(s)",
                                        lambda tb, n=c.name: tb[n].isnull())
        elif c.kind in ("money", "count", "float") and schema[c.name].is_floating():
            checks[f"nonfinite_{c.name}"] = (
                c, "missing or non-finite value(s)",
                lambda tb, n=c.name: tb[n].isnull() | tb[n].isnan() | tb[n].isinf(),
            )
            if c.nonnegative:
                checks[f"negative_{c.name}"] = (c, "negative value(s)",
                                                lambda tb, n=c.name: tb[n] < 0)
        if c.kind == "category" and c.values:
            checks[f"values_{c.name}"] = (
                c, f"value(s) other than {', '.join(map(repr, c.values))}",
                lambda tb, n=c.name, v=c.values: tb[n].notnull() & ~tb[n].cast("string").isin(v),
            )
    # timestamps after tomorrow are almost always entry errors: counted in the same query
    horizon = (pd.Timestamp.now(tz="UTC").tz_localize(None) + pd.Timedelta(days=1)).to_pydatetime()
    future = {
        f"__future_{c.name}": (c, t[c.name] > horizon)
        for c in spec.columns
        if c.kind == "timestamp" and c.name in schema and schema[c.name].is_timestamp()
    }
    counts = execute(
        t.aggregate(
            __n__=t.count(),
            **{k: t.count(where=v[2](t)) for k, v in checks.items()},
            **{k: t.count(where=v[1]) for k, v in future.items()},
        )
    ).iloc[0]
    for key, (c, _) in future.items():
        n = counts[key]
        if pd.notna(n) and int(n) > 0:
            warnings.warn(
                f"{spec.name} table, column {_caller(c.name, mapping)!r}: {int(n)} timestamp(s) "
                "lie in the future; check the data's clock or time zone",
                DataWarning,
                stacklevel=4,
            )
    if int(counts["__n__"]) == 0:
        raise DataError(f"{spec.name} table is empty (no rows)", table=spec.name)
    for key, (c, problem, cond) in checks.items():
        n = counts[key]
        if pd.notna(n) and int(n) > 0:
            sample = _offending(t, cond, source)
            raise _error(spec, c, mapping, problem, _row_labels(sample, spec, source), int(n))
    for earlier, later in spec.order:
        if earlier in schema and later in schema:
            _raise_if_rows(t, lambda tb, e=earlier, la=later: tb[la] < tb[e], spec,
                           spec.column(later), mapping,
                           f"value(s) before {_caller(earlier, mapping)!r}", source)
    key = [k for k in spec.key if k in schema]
    if spec.key and key and spec.key[0] in schema:
        dup = t.group_by(key).aggregate(_n=t.count()).filter(lambda g: g._n > 1)
        dups = execute(dup.limit(_MAX_ROWS))
        if len(dups):
            total = int(execute(dup.count()))
            first = dups.iloc[0]
            rows = _offending(t, lambda tb: ibis.and_(*[tb[k] == first[k] for k in key]), source)
            examples = [tuple(r) if len(key) > 1 else r[0]
                        for r in dups[key].astype(object).itertuples(index=False)]
            raise DataError(
                f"{spec.name} table: key ({', '.join(_caller(k, mapping) for k in key)}) is "
                f"duplicated for {total} value(s), e.g. {_fmt_rows(examples)}; rows "
                f"{_fmt_rows(_row_labels(rows, spec, source))} share the first one",
                table=spec.name,
                column=_caller(key[0], mapping),
                rows=_row_labels(rows, spec, source),
            )
