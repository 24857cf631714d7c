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

import datetime
import warnings
from collections.abc import Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa

from crmstats.backend import _backend_of, execute, query_errors, read_table
from crmstats.exceptions import DataError, DataWarning
from crmstats.schema import (
    CLOSED_STAGE_NAMES,
    SALES_STAGES,
    ColumnSpec,
    TableSpec,
    stage_key,
    table_spec,
)

__all__ = ["SourceTable", "align_ids", "as_table", "deep_checks", "reuse_validated",
           "stage_problems", "transactions_table", "validate", "validate_table"]

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
        t, rows = ibis.memtable(arrow), _RowSource(arrow, data.index)
        _check_content(t, spec, mapping, rows)
        if spec.name in _TRAP_TABLES:
            _check_traps(t, spec, mapping, rows, data)
        out = pd.DataFrame(cols)
        out.index = data.index
        return out
    return validate_table(data, table, columns=mapping)


@dataclass(frozen=True)
class SourceTable:
    """A table as a company's export holds it, and how it maps onto a canonical table.

    Built by :func:`crmstats.load_crm` from a source file (``crmstats.yml``);
    every crmstats function accepts it wherever a table is expected and applies
    the mapping in the validation gate, so ``crm.transactions`` of a mapped
    source works like a canonical table.

    Parameters
    ----------
    data : pandas.DataFrame, path or ibis.Table
        The table as exported.
    columns : dict
        ``{canonical_name: exported_name}``.
    values : dict
        ``{canonical_column: {exported_value: canonical_value}}`` (stage,
        channel or any text column); values not listed are kept.
    dayfirst : bool, optional
        Whether dates written ``02/03/2024`` are day-first (True), month-first
        (False) or undeclared (None: the data must show the order, see
        :func:`validate`).
    timestamp_format : str, optional
        A ``strptime`` format (e.g. ``"%d/%m/%Y %H:%M"``) for every text
        timestamp column of the table.
    decimal, thousands : str, optional
        Number separators of text number columns (``decimal=","``,
        ``thousands="."`` read ``"1.234,50"`` as 1234.5).
    trim : bool
        Remove surrounding spaces from ids and text columns.
    drop_duplicates : bool
        Drop rows that exactly repeat another row (a double export).
    drop_blank_ids : bool
        Drop rows whose required id is blank or empty (an empty CSV field)
        instead of raising.
    personal : tuple of str
        Canonical or extra columns holding personal data (never published).
    label : str
        Where the table comes from, for messages (e.g. ``"orders.csv"``).
    """

    data: Any
    columns: dict = field(default_factory=dict)
    values: dict = field(default_factory=dict)
    dayfirst: bool | None = None
    timestamp_format: str | None = None
    decimal: str | None = None
    thousands: str | None = None
    trim: bool = False
    drop_duplicates: bool = False
    drop_blank_ids: bool = False
    personal: tuple = ()
    label: str = ""

    def __repr__(self) -> str:
        return f"SourceTable({self.label or type(self.data).__name__})"

    def to_ibis(self, table: str = "table") -> ir.Table:
        """Return the exported table with canonical column names, not yet validated.

        For code that only needs the columns (:func:`crmstats.backend.read_table`
        calls it); everything else goes through :func:`as_table`.
        """
        t = read_table(self.data, table=table)
        renames = {k: v for k, v in self.columns.items()
                   if k != v and v in t.columns and k not in t.columns}
        return t.rename(renames) if renames else t


def as_table(data: Any, table: str, *, columns: Mapping[str, str] | None = None) -> ir.Table:
    """Validate ``data`` as canonical table ``table`` and return an Ibis table.

    Parameters
    ----------
    data : pandas.DataFrame, path, ibis.Table or SourceTable
        The input table.
    table : str
        Canonical table name (see :mod:`crmstats.schema`).
    columns : mapping, optional
        ``{canonical_name: caller_name}``; ``None`` values are ignored, so
        functions can pass their ``*_col`` arguments straight through.

    Returns
    -------
    ibis.Table
        Canonical names and types; pandas inputs become in-memory DuckDB tables
        that read the frame's memory (no copy): edit the frame and the table
        follows, and passing the table to a crmstats function checks it again.
    """
    mapping = {k: v for k, v in (columns or {}).items() if v is not None}
    return validate_table(data, table, columns=mapping)


def transactions_table(
    transactions: Any,
    *,
    customer_id_col: str | None = None,
    timestamp_col: str | None = None,
    amount_col: str | None = None,
) -> ir.Table:
    """Validate a transactions table with the caller's column names (see :func:`as_table`)."""
    return as_table(transactions, "transactions", columns={
        "customer_id": customer_id_col, "timestamp": timestamp_col, "amount": amount_col})


def validate_table(
    data: Any, table: str, *, columns: Mapping[str, str] | None = None
) -> ir.Table:
    """Validate ``data`` and return it as an Ibis table with canonical columns.

    This is the entry every crmstats function uses on its inputs; see
    :func:`validate` for the parameters. A pandas input becomes an in-memory
    table of the embedded DuckDB backend; a :class:`SourceTable` has its
    mapping applied first.
    """
    spec = table_spec(table)
    mapping = {k: v for k, v in dict(columns or {}).items() if v is not None and v != k}
    trusted = _TRUSTED.get()
    if (trusted is not None and isinstance(data, ir.Table) and not mapping
            and trusted.get(data.op()) == table):
        return data  # validated earlier in this same crmstats call: nothing new to check
    source, original = None, data
    if isinstance(data, SourceTable):
        source = data
        mapping = {**{k: v for k, v in source.columns.items() if v != k}, **mapping}
        data = source.data
        if isinstance(data, pd.DataFrame):
            data = ibis.memtable(data)
    with query_errors(table, "validating it"):
        if isinstance(data, pd.DataFrame):
            # the coerced columns go to DuckDB as Arrow arrays (no DataFrame is built)
            arrow = _to_arrow(_coerce_columns(data, spec, mapping))
            t = ibis.memtable(arrow)
            rows = _RowSource(arrow, data.index)
        else:
            t = read_table(data, table=table, text_columns=_text_columns(spec, mapping, source))
            if source is not None:
                names = spec_names(spec)
                extra = {k: v for k, v in source.columns.items()
                         if k not in names and k != v and v in t.columns and k not in t.columns}
                t = t.rename(extra) if extra else t
            t = _rename_ibis(t, spec, mapping)
            if source is not None:
                t = _apply_source(t, spec, mapping, source)
            t = _coerce_ibis(t, spec, mapping, source)
            derived = {n: t[a] * t[b] for n, (a, b) in spec.derived.items()
                       if n not in t.columns and a in t.columns and b in t.columns}
            t = t.mutate(**derived) if derived else t
            rows = None
        _check_content(t, spec, mapping, rows)
        if spec.name in _TRAP_TABLES:
            _check_traps(t, spec, mapping, rows, original)
    _remember(t, table)
    return t


def _text_columns(spec: TableSpec, mapping, source) -> list[str]:
    """CSV columns to read as text: timestamps always, numbers when separators are set."""
    kinds = {"timestamp"}
    if source is not None and (source.decimal or source.thousands):
        kinds |= {"money", "count", "float"}
    return [_caller(c.name, mapping) for c in spec.columns if c.kind in kinds]


def _apply_source(t: ir.Table, spec: TableSpec, mapping, source: SourceTable) -> ir.Table:
    """Trim, map values, drop blank-id and duplicate rows as the source file says."""
    schema = t.schema()
    text = [c for c in spec.columns if c.name in schema and schema[c.name].is_string()
            and c.kind in ("id", "category")]
    changes = {}
    for name in dict.fromkeys([*(c.name for c in text), *source.values]):
        if name not in schema or not schema[name].is_string():
            continue
        col = t[name]
        if source.trim:
            col = col.strip()
        mapping_values = source.values.get(name)
        if mapping_values:
            col = col.substitute({str(k).strip() if source.trim else str(k): str(v)
                                  for k, v in mapping_values.items()})
        changes[name] = col
    if changes:
        t = t.mutate(**changes)
    if source.drop_blank_ids:
        for c in spec.columns:
            if c.kind == "id" and c.required and c.name in schema:
                col = t[c.name]
                keep = col.notnull() & (col.strip() != "") if schema[c.name].is_string() \
                    else col.notnull()
                t = t.filter(keep)
    if source.drop_duplicates:
        t = t.distinct()
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


def remembered(key) -> Any:
    """Inside :func:`reuse_validated`: what :func:`remember` stored under ``key``, else None."""
    trusted = _TRUSTED.get()
    return None if trusted is None else trusted.get(("memo", key))


def remember(key, value) -> None:
    """Inside :func:`reuse_validated`, keep ``value`` under ``key`` until the block ends."""
    trusted = _TRUSTED.get()
    if trusted is not None:
        trusted[("memo", key)] = value


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


def _derivable(spec: TableSpec, name: str, mapping, present) -> bool:
    """Whether required column ``name`` is absent but computable from two present columns."""
    factors = spec.derived.get(name)
    return (factors is not None and name not in mapping
            and all(_caller(f, mapping) in present for f in factors))


def _missing_error(spec: TableSpec, mapping, present) -> DataError | None:
    missing = [c for c in spec.required if _caller(c, mapping) not in present
               and not _derivable(spec, c, mapping, present)]
    if not missing:
        return None
    shown = [
        f"{_caller(c, mapping)!r}" + (f" (canonical {c!r})" if _caller(c, mapping) != c else "")
        for c in missing
    ]
    hint = ""
    if len(missing) == 1 and missing[0] not in mapping:
        hint = f"; map another column with {missing[0]}_col=..."
        if missing[0] in spec.derived:
            hint += (f" (or map {' and '.join(spec.derived[missing[0]])}: {missing[0]} is "
                     "then their product)")
    return DataError(
        f"{spec.name} table: missing required column {', '.join(shown)}; "
        f"{_present_columns(present)}{hint}",
        table=spec.name,
        column=_caller(missing[0], mapping),
    )


def _present_columns(present) -> str:
    """Name the columns a table has, only if they look like a header row's column names.

    A file that is no CSV (a password or key file read by mistake) has its first
    line as one "column": that line is not repeated in a message.
    """
    from crmstats.privacy import find_credential

    names = [str(c) for c in present]
    one_line = len(names) == 1 and (":" in names[0] or len(names[0].split()) > 4)
    header = (all(len(n) <= 80 and n.isprintable() for n in names) and not one_line
              and find_credential(" ".join(names)) is None)
    if not header:
        return ("its first line does not look like column names (not shown here): is it a "
                "CSV file with a header row?")
    return f"columns present: {', '.join(names)}"


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
    dayfirst = _frame_date_order(values, spec, col_spec, mapping)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            parsed = pd.to_datetime(s, errors="coerce", utc=bool(aware.any()), format="mixed",
                                    dayfirst=dayfirst)
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
        written = s[bad].astype(str).str.match(_DMY).any()
        how = f"; {_how(dayfirst, False)}" if written else ""
        raise DataError(
            f"{spec.name} table, column {name!r}: {int(bad.sum())} unparsable timestamp(s), "
            f"e.g. rows {', '.join(vals)}{how}",
            table=spec.name,
            column=name,
            rows=list(index[rows]),
        )
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed


def _frame_date_order(values: pd.Series, spec, col_spec, mapping) -> bool:
    """Day-first (True) or not, for text dates of a DataFrame column (see :func:`_date_order`)."""
    text = values[values.map(lambda v: isinstance(v, str))] if values.dtype == object else values
    if not len(text) or not (pd.api.types.is_string_dtype(text.dtype) or text.dtype == object):
        return False
    counts = dmy_counts(text)
    if not counts["n"]:
        return False

    def examples(kind: str) -> list[str]:
        parts = text.astype(str).str.extract(_DMY)
        a = pd.to_numeric(parts[0], errors="coerce")
        b = pd.to_numeric(parts[1], errors="coerce")
        hit = {"first": (a > 12) & (b <= 12), "second": (b > 12) & (a <= 12),
               "any": parts[0].notna()}[kind]
        return list(text[hit.to_numpy()].astype(str).head(3))

    return _date_order(counts, spec, col_spec, mapping, None, examples)


def dmy_counts(text: pd.Series) -> dict[str, int]:
    """Count dates written like ``02/03/2024``, and which order they allow.

    ``n`` counts them all, ``first`` those whose first part exceeds 12 (only a
    day-first reading parses them), ``second`` those whose second part does
    (values with both parts above 12 are in neither: no order parses them).
    """
    parts = text.astype(str).str.extract(_DMY)
    a = pd.to_numeric(parts[0], errors="coerce")
    b = pd.to_numeric(parts[1], errors="coerce")
    # a value with both parts above 12 (31/31/2023) fits neither order: it is unparsable,
    # not evidence of a mixed order
    return {"n": int(parts[0].notna().sum()), "first": int(((a > 12) & (b <= 12)).sum()),
            "second": int(((b > 12) & (a <= 12)).sum())}


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
                raise DataError(
                    f"{spec.name} table, column {_caller(c.name, mapping)!r}: type {dtype} where "
                    "timestamps are expected",
                    table=spec.name,
                    column=_caller(c.name, mapping),
                )
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
                raise DataError(
                    f"{spec.name} table, column {_caller(c.name, mapping)!r}: type {dtype} where "
                    "numbers are expected",
                    table=spec.name,
                    column=_caller(c.name, mapping),
                )
    return t.mutate(**casts) if casts else t


#: A date written with the day and month as one or two digits first: 02/03/2024, 2.3.24
_DMY = r"^\s*(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{2,4})"
_TIME_FORMATS = ("%H:%M:%S.%f", "%H:%M:%S", "%H:%M", "")


@ibis.udf.scalar.builtin(name="try_strptime")
def _try_strptime(value: str, fmt: str) -> datetime.datetime:
    """DuckDB's ``try_strptime``: NULL where the text does not match ``fmt``."""


def _strptime(col: ir.StringValue, fmt: str, duckdb: bool) -> ir.TimestampValue:
    return _try_strptime(col, fmt) if duckdb else col.as_timestamp(fmt)


def _date_order(counts, spec, c, mapping, dayfirst, examples=None) -> bool:
    """Decide day-first (True) or month-first (False) from the data and the source's option.

    Never a silent guess: conflicting evidence or no evidence at all (every
    day and month at most 12) without a declared order is an error; an order
    the data show but nobody declared is used with a :class:`DataWarning`.
    Errors quote up to three of the values concerned (``examples(kind)`` with
    kind ``"first"``, ``"second"`` or ``"any"``).
    """
    name = _caller(c.name, mapping)
    n, first_big, second_big = (_count(counts[k]) for k in ("n", "first", "second"))
    where = f"{spec.name} table, column {name!r}"

    def shown(kind: str) -> str:
        values = examples(kind) if examples is not None else []
        return f" (e.g. {', '.join(map(repr, values))})" if values else ""

    if first_big and second_big:
        raise DataError(
            f"{where}: mixes day-first and month-first dates: {first_big} value(s) can only be "
            f"day-first{shown('first')}, {second_big} only month-first{shown('second')}; "
            "export the column in one order",
            table=spec.name, column=name)
    if dayfirst is True and second_big:
        raise DataError(f"{where}: dayfirst is set but {second_big} date(s) have a month above "
                        f"12{shown('second')}: they are month-first", table=spec.name,
                        column=name)
    if dayfirst is False and first_big:
        raise DataError(f"{where}: dayfirst is false but {first_big} date(s) have a day above "
                        f"12 in the month position{shown('first')}: they are day-first",
                        table=spec.name, column=name)
    if dayfirst is not None:
        return bool(dayfirst)
    if first_big or second_big:
        order = "day-first" if first_big else "month-first"
        warnings.warn(
            f"{where}: {n} date(s) written like 02/03/2024 are read {order} because "
            f"{first_big or second_big} of them can only be {order}; declare it "
            f"(dayfirst: {str(bool(first_big)).lower()} in crmstats.yml) to silence this",
            DataWarning, stacklevel=5)
        return bool(first_big)
    raise DataError(
        f"{where}: {n} date(s) written like 02/03/2024{shown('any')} could be day-first or "
        "month-first (no day or month above 12); declare the order with dayfirst: true/false "
        "or timestamp_format in crmstats.yml, or convert the column with pandas.to_datetime",
        table=spec.name, column=name)


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

    def examples(kind: str) -> list[str]:
        return list(execute(t.filter(kinds[kind]).select(v=col).limit(3))["v"])

    dayfirst = _date_order(counts, spec, c, mapping,
                           source.dayfirst if source is not None else None, examples)
    if not duckdb:
        raise DataError(
            f"{spec.name} table, column {_caller(c.name, mapping)!r}: dates written like "
            "02/03/2024 in a database table need timestamp_format in crmstats.yml",
            table=spec.name, column=_caller(c.name, mapping))
    return _dmy(col, iso, dayfirst), _how(dayfirst, declared=source is not None
                                          and source.dayfirst is not None)


def _how(dayfirst: bool, declared: bool) -> str:
    order = "day-first" if dayfirst else "month-first"
    return f"dates read {order}" + (" as declared" if declared else " as the data show")


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


def _raise_if_rows(t: ir.Table, cond, spec, col_spec, mapping, problem, source=None,
                   detail: str = "") -> None:
    """Raise naming the count and up to five rows of ``t`` where ``cond(table)`` holds."""
    n = _count(execute(t.count(where=cond(t))))
    if n:
        sample = _offending(t, cond, source)
        raise _error(spec, col_spec, mapping, problem,
                     _row_labels(sample, spec, source, mapping), n, detail)


def _offending(t: ir.Table, cond, source) -> pd.DataFrame:
    """Up to five rows where ``cond(table)`` holds, with row positions for a pandas input."""
    table = source.table() if source is not None else t
    return execute(table.filter(cond(table)).limit(_MAX_ROWS))


def _check_content(t: ir.Table, spec: TableSpec, mapping, source) -> None:
    """Null ids, non-finite/negative numbers, duplicated keys — one query, then details.

    ``source`` (a :class:`_RowSource`, for pandas inputs) names offending rows
    by the caller's index labels; it is only used once a check has failed.
    """
    checks: dict[str, tuple[ColumnSpec, str, Any]] = {}
    schema = t.schema()
    for c in spec.columns:
        if c.name not in schema:
            continue
        if c.kind == "id" or (c.kind in ("timestamp", "category") and c.required):
            checks[f"null_{c.name}"] = (c, "null value(s)",
                                        lambda tb, n=c.name: tb[n].isnull())
            if c.kind == "id" and schema[c.name].is_string():
                # a blank id would become one more customer (or lead, account, ...); counted
                # first by a cheap superset (empty, or starting with a space or control
                # character), then exactly only when that finds any
                checks[f"blank_{c.name}"] = (c, "blank id(s) (empty or only spaces)",
                                             lambda tb, n=c.name: tb[n] < "!")
        elif c.kind in ("money", "count", "float") and schema[c.name].is_floating():
            checks[f"nonfinite_{c.name}"] = (
                (c, "non-finite value(s)",
                 lambda tb, n=c.name: tb[n].notnull() & (tb[n].isnan() | tb[n].isinf()))
                if c.nullable else
                (c, "missing or non-finite value(s)",
                 lambda tb, n=c.name: tb[n].isnull() | tb[n].isnan() | tb[n].isinf()))
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
        if key.startswith("blank_") and pd.notna(n) and int(n) > 0:
            cond = lambda tb, name=c.name: tb[name].strip() == ""  # noqa: E731 - exact check
            n = execute(t.count(where=cond(t)))
        if pd.notna(n) and int(n) > 0:
            sample = _offending(t, cond, source)
            raise _error(spec, c, mapping, problem, _row_labels(sample, spec, source, mapping),
                         int(n))
    _check_name_variants(t, spec, mapping)
    if spec.name == "stage_events":
        _check_stages(t, mapping)
    if spec.name == "deals":
        _check_deal_stages(t, mapping)
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
            shared = _row_labels(rows, spec, source, mapping)
            who = (f"{len(shared)} rows" if isinstance(shared, _Ids) else _fmt_rows(shared))
            raise DataError(
                f"{spec.name} table: key ({', '.join(_caller(k, mapping) for k in key)}) is "
                f"duplicated for {total} value(s), e.g. "
                f"{', '.join(repr(r) if isinstance(r, str) else str(r) for r in examples)}; "
                f"{who} share the first one",
                table=spec.name,
                column=_caller(key[0], mapping),
                rows=_row_labels(rows, spec, source, mapping),
            )


# ----------------------------------------------------------------------------- traps

#: Tables whose every validation also looks for the two silent traps (:func:`_check_traps`).
_TRAP_TABLES = ("transactions",)
#: Inputs already looked at in this process: key -> (weak reference, fingerprint); see _seen.
_TRAPS_SEEN: dict[int, tuple] = {}


def _seen(data) -> bool:
    """Return whether this very input, unchanged, had its traps looked at in this process.

    A DataFrame is the same object with the same shape, columns and arrays (an
    in-place edit of values is not noticed: it only decides whether a warning
    repeats); an Ibis table the same expression object; a file the same path,
    size and modification time. Anything else is looked at every time.
    """
    import os
    import weakref

    if isinstance(data, pd.DataFrame):
        try:
            arrays = tuple(id(b.values) for b in data._mgr.blocks)
        except AttributeError:  # another pandas internals layout: look every time
            return False
        key, fingerprint = id(data), (data.shape, tuple(map(str, data.columns)), arrays)
        ref = weakref.ref(data)
    elif isinstance(data, ir.Table):
        key, fingerprint, ref = id(data), None, weakref.ref(data)
    elif isinstance(data, SourceTable):
        return _seen(data.data)
    elif isinstance(data, str | os.PathLike):
        try:
            st = os.stat(data)
        except OSError:
            return False
        key, fingerprint, ref = ("path", os.fspath(data)), (st.st_size, st.st_mtime_ns), None
    else:
        return False
    entry = _TRAPS_SEEN.get(key)
    if entry is not None and entry[1] == fingerprint and (ref is None or entry[0]() is data):
        return True
    if len(_TRAPS_SEEN) > 256:
        _TRAPS_SEEN.clear()
    _TRAPS_SEEN[key] = (ref, fingerprint)
    return False


def _check_traps(t: ir.Table, spec: TableSpec, mapping, source, data) -> None:
    """Warn of the two traps a direct call would otherwise pass without a word.

    * rows that exactly repeat another row (a double export doubles revenue),
      looked for when there is no ``order_id`` (the key check catches repeated
      orders);
    * text customer ids that differ from another only in upper/lower case or
      surrounding spaces (``"C042 "`` and ``"c042"`` count as two customers).

    Duplicates take one distinct count over the rows (~0.1 s on two million
    rows); ids first one cheap pass (a space at either end, letters of both
    cases), and the distinct count over the ids only when that finds any. An
    input is looked at once per process: the same, unchanged frame (same arrays),
    Ibis expression or file is not looked at again, and repeated calls cost
    nothing. A :class:`~crmstats.DataWarning` names the table, the column and
    example rows (the caller's index labels for a frame; ids for a file or
    database table). Whole sources are checked by :func:`deep_checks`.
    """
    if _seen(data):
        return
    schema = t.schema()
    cols = [c for c in t.columns if c != ROW_COL]
    if "order_id" not in schema:
        _warn_duplicate_rows(t, spec, mapping, source, cols)
    if "customer_id" in schema and schema["customer_id"].is_string():
        _warn_id_variants(t, spec, mapping, source, "customer_id")


def _user_level() -> int:
    """Return the ``stacklevel`` that points a warning at the first caller outside crmstats."""
    import os
    import sys

    package = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def _examples(rows) -> str:
    """Format example rows for a warning, bracketed (a published page drops them)."""
    if isinstance(rows, _Ids):
        return _fmt_rows(rows)
    return "rows [" + ", ".join(repr(r) if isinstance(r, str) else str(r)
                                for r in list(rows)[:_MAX_ROWS]) + "]"


def _warn_duplicate_rows(t, spec, mapping, source, cols) -> None:
    def row_hash(tb):
        return ibis.struct({c: tb[c] for c in cols}).hash()

    counts = execute(t.aggregate(n=t.count(), d=row_hash(t).nunique())).iloc[0]
    repeats = _count(counts["n"]) - _count(counts["d"])
    if repeats <= 0:
        return
    h = row_hash(t)
    first = execute(t.group_by(h=h).aggregate(k=t.count()).filter(lambda g: g.k > 1)
                    .order_by("h").limit(1))["h"].iloc[0]
    rows = _row_labels(_offending(t, lambda tb: row_hash(tb) == int(first), source), spec,
                       source, mapping)
    warnings.warn(
        f"{spec.name} table: {repeats:,} row(s) exactly repeat another row (every column "
        f"equal; no order_id tells orders apart), e.g. {_examples(rows)} are one row twice; "
        "a double export doubles revenue: drop them (drop_duplicates: true in crmstats.yml) "
        "if they are one", DataWarning, stacklevel=_user_level())


def _warn_id_variants(t, spec, mapping, source, name) -> None:
    c = t[name]
    # cheap first (one pass, no distinct): ids can only be variants of each other when some
    # carry a leading or trailing space, or some have lower- and some upper-case letters
    signs = execute(t.aggregate(
        padded=t.count(where=(c < "!") | c.endswith(" ")),
        not_lower=t.count(where=c != c.lower()), not_upper=t.count(where=c != c.upper()),
    )).iloc[0]
    if not _count(signs["padded"]) and not (_count(signs["not_lower"])
                                            and _count(signs["not_upper"])):
        return
    ids = t.select(v=c).distinct().filter(lambda x: x.v.notnull())
    padded = (ids.v < "!") | ids.v.endswith(" ")  # a leading or trailing space (cheap)
    counts = execute(ids.aggregate(ids=ids.count(), lower=ids.v.lower().nunique(),
                                   padded=ids.count(where=padded))).iloc[0]
    merged = _count(counts["ids"]) - _count(counts["lower"])
    if _count(counts["padded"]):  # trimming (slow in DuckDB) only where it can matter
        folded = ids.mutate(f=ids.v.strip().lower())
        merged = _count(counts["ids"]) - _count(execute(folded.f.nunique()))
    if merged <= 0:
        return
    folded = ids.mutate(f=ids.v.strip().lower())
    groups = folded.group_by("f").aggregate(k=folded.count()).filter(lambda g: g.k > 1)
    key = execute(groups.order_by("f").limit(1))["f"].iloc[0]
    variants = execute(folded.filter(folded.f == key).order_by("v").limit(_MAX_ROWS))["v"]
    rows = None
    for value in variants:
        sample = _offending(t, lambda tb, v=value: tb[name] == v, source)
        labels = _row_labels(sample.head(1), spec, source, mapping)
        rows = labels if rows is None else type(labels)(
            [*rows, *labels], *([labels.columns] if isinstance(labels, _Ids) else []))
    shown = _examples(rows)
    col = _caller(name, mapping)
    warnings.warn(
        f"{spec.name} table, column {col!r}: {merged:,} value(s) differ from another only in "
        f"upper/lower case or surrounding spaces and count as different ids, e.g. {shown} "
        "(one id written differently); trim and map them (trim: true, values: in "
        "crmstats.yml) or clean the export", DataWarning, stacklevel=_user_level())


#: Funnel paths whose stages must be entered in this order (first entries).
_STAGE_ORDER = (("subscriber", "lead"), ("lead", "qualified"), ("lead", "unqualified"),
                ("qualified", "opportunity"), ("opportunity", "won"), ("opportunity", "lost"),
                ("lead", "won"))


def _count(value) -> int:
    """Return an aggregate count as int (Spark gives NULL for a filtered count of 0)."""
    return 0 if value is None or pd.isna(value) else int(value)


#: Name columns checked on every call for values differing only in case or spaces (they
#: have few distinct values, so the check is one small GROUP BY each).
_NAME_COLUMNS = ("stage", "channel", "acquisition_channel")


def _check_name_variants(t: ir.Table, spec: TableSpec, mapping) -> None:
    """Warn when names (channels, stages) differ only in case or surrounding spaces."""
    schema = t.schema()
    for name in _NAME_COLUMNS:
        if name not in schema or not schema[name].is_string():
            continue
        names = execute(t.select(v=t[name]).distinct().limit(100_000))["v"].dropna()
        merged = len(names) - names.astype(str).str.strip().str.lower().nunique()
        if merged:
            warnings.warn(
                f"{spec.name} table, column {_caller(name, mapping)!r}: {merged:,} name(s) "
                "differ from another only in upper/lower case or surrounding spaces and "
                "count separately; map them with values: (and trim: true) in crmstats.yml",
                DataWarning, stacklevel=5)


def stage_problems(t: ir.Table) -> dict:
    """Count stage names outside the funnel and leads whose stages run backwards.

    Returns
    -------
    dict
        ``unknown`` (the stage names outside :data:`crmstats.schema.SALES_STAGES`,
        most frequent first), ``unknown_counts`` (their rows), ``unknown_rows``
        (total), ``pairs`` (the funnel orders checked) and ``out_of_order``
        (leads whose first entry of a later stage precedes an earlier stage's).
    """
    counts = execute(t.group_by(stage=t.stage.cast("string")).aggregate(n=t.count()))
    unknown = counts[~counts["stage"].isin(SALES_STAGES)].sort_values("n", ascending=False)
    out = {"unknown": list(unknown["stage"]), "unknown_counts": list(unknown["n"]),
           "unknown_rows": int(unknown["n"].sum()), "out_of_order": 0, "pairs": []}
    present = set(counts["stage"])
    pairs = [(a, b) for a, b in _STAGE_ORDER if a in present and b in present]
    if pairs:
        firsts = t.group_by("lead_id").aggregate(**{
            f"t_{s}": t.entered_at.min(where=t.stage == s)
            for s in sorted({x for p in pairs for x in p})})
        bad = ibis.or_(*[firsts[f"t_{b}"] < firsts[f"t_{a}"] for a, b in pairs])
        out["out_of_order"] = _count(execute(firsts.filter(bad).count()))
        out["pairs"] = pairs
    return out


def _check_stages(t: ir.Table, mapping) -> None:
    """Stage names outside the funnel and leads whose stages run backwards: DataWarnings.

    Names only stage names and counts (no ids or other values), so the text
    may reach a published page.
    """
    found = stage_problems(t)
    if found["unknown_rows"]:
        listed = ", ".join(f"{s!r} ({n:,} rows)"
                           for s, n in zip(found["unknown"], found["unknown_counts"], strict=True))
        example = ", ".join(f"{s}: <one of {'/'.join(SALES_STAGES)}>"
                            for s in found["unknown"][:3])
        warnings.warn(
            f"stage_events table, column {_caller('stage', mapping)!r}: "
            f"{found['unknown_rows']:,} row(s) have stage names outside the funnel "
            f"({', '.join(SALES_STAGES)}) and are left out of funnel KPIs: {listed}; map them "
            f"in crmstats.yml, e.g. values: stage: {{{example}}}",
            DataWarning, stacklevel=5)
    if found["out_of_order"]:
        named = ", ".join(f"{b} before {a}" for a, b in found["pairs"])
        warnings.warn(
            f"stage_events table, column {_caller('entered_at', mapping)!r}: "
            f"{found['out_of_order']:,} lead(s) entered a stage before an earlier funnel stage "
            f"({named} checked); their days in stage are unreliable: fix the stage times in "
            "the source", DataWarning, stacklevel=5)


def _check_deal_stages(t: ir.Table, mapping) -> None:
    """Warn when a deals export names its won/lost stages otherwise than ``won``/``lost``.

    Without the canonical names no deal counts as closed: every deal would be open.
    """
    names = execute(t.select(v=t.stage.cast("string")).distinct().limit(10_000))["v"].dropna()
    present = set(names)
    norm = {n: stage_key(n) for n in names}
    for canonical, spellings in CLOSED_STAGE_NAMES.items():
        if canonical in present:
            continue
        like = sorted(n for n, k in norm.items() if k in spellings)
        if like:
            shown = ", ".join(f"{n}: {canonical}" for n in like[:3])
            warnings.warn(
                f"deals table, column {_caller('stage', mapping)!r}: no deal is at stage "
                f"{canonical!r}, so none counts as {canonical}; map the export's name in "
                f"crmstats.yml, e.g. values: stage: {{{shown}}}", DataWarning, stacklevel=5)


def read_raw(data: Any, table: str) -> ir.Table:
    """Read a table's file or database table as :func:`validate_table` reads it.

    The same columns are read as text, so a CSV is loaded into DuckDB once
    (:func:`crmstats.backend.read_table` caches by file and text columns).
    """
    source = data if isinstance(data, SourceTable) else None
    mapping = {k: v for k, v in source.columns.items() if v != k} if source else {}
    text = _text_columns(table_spec(table), mapping, source)
    return read_table(source.data if source else data, table=table, text_columns=text)


def id_dtype(data: Any, table: str, column: str) -> str | None:
    """Return ``"string"``, ``"integer"`` or None: an id column's type, from the schema only."""
    mapping = data.columns if isinstance(data, SourceTable) else {}
    raw = data.data if isinstance(data, SourceTable) else data
    name = mapping.get(column, column)
    try:
        if isinstance(raw, pd.DataFrame):
            if name not in raw.columns:
                return None
            dtype = raw[name].dtype
            if pd.api.types.is_integer_dtype(dtype):
                return "integer"
            text = pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)
            return "string" if text else None
        t = read_raw(data, table)
    except DataError:
        return None
    if name not in t.columns:
        return None
    dtype = t.schema()[name]
    return "integer" if dtype.is_integer() else "string" if dtype.is_string() else None


def deep_checks(t: ir.Table, table: str) -> dict[str, int]:
    """Run the slower data-quality checks of a validated table (DataWarnings); return counts.

    * rows that exactly repeat another row (for transactions only when there is
      no ``order_id``, which would tell two orders apart) — double revenue if
      they are a double export;
    * ids and text columns whose values differ only in case or surrounding
      spaces (``"Email "`` and ``"email"`` would be two channels).

    One aggregation query per table; warnings name the column and the count,
    never the values (their text may reach a published page).
    """
    spec = table_spec(table)
    schema = t.schema()
    text = [c.name for c in spec.columns if c.name in schema and schema[c.name].is_string()
            and c.kind in ("id", "category")]
    aggs = {}
    for name in text:
        col = t[name]
        aggs[f"distinct_{name}"] = col.nunique()
        aggs[f"folded_{name}"] = col.strip().lower().nunique()
    # keyless tables, and transactions without order_id (their key cannot tell orders apart)
    check_dups = not spec.key or (table == "transactions" and "order_id" not in schema)
    out: dict[str, int] = {}
    with query_errors(table, "checking data quality"):
        counts = execute(t.aggregate(__n__=t.count(), **aggs)).iloc[0] if aggs else None
        if check_dups:
            distinct = int(execute(t.distinct().count()))
            n = _count(counts["__n__"]) if counts is not None else _count(execute(t.count()))
            out["duplicate_rows"] = n - distinct
    # what validating the table warned of already (every path, see _check_traps)
    trapped = table in _TRAP_TABLES
    if out.get("duplicate_rows") and not trapped:
        warnings.warn(
            f"{table} table: {out['duplicate_rows']:,} row(s) exactly repeat another row"
            + (" and there is no order_id to tell orders apart" if table == "transactions"
               else "") + "; if they are a double export set drop_duplicates: true for the "
            "table in crmstats.yml", DataWarning, stacklevel=3)
    for name in text:
        merged = _count(counts[f"distinct_{name}"]) - _count(counts[f"folded_{name}"])
        out[f"case_variants_{name}"] = merged
        if merged and name not in _NAME_COLUMNS and not (trapped and name == "customer_id"):
            # name columns, and a transactions table's customer ids, warn on every call
            warnings.warn(
                f"{table} table, column {name!r}: {merged:,} value(s) differ from another only "
                "in upper/lower case or surrounding spaces and count as different "
                f"{'ids' if spec.column(name).kind == 'id' else 'names'}; map them with "
                "values: (or trim: true) in crmstats.yml",
                DataWarning, stacklevel=3)
    return out


def align_ids(left: ir.Table, right: ir.Table, column: str,
              right_column: str | None = None) -> tuple[ir.Table, ir.Table]:
    """Return both tables with id columns of one type, ready to join.

    When one table holds text ids and the other integers (an export and a
    database often disagree), both are read as text: ``42`` matches ``"42"``.
    Tables whose ids already share a type are returned unchanged.
    """
    rcol = right_column or column
    lt, rt = left[column].type(), right[rcol].type()
    if lt == rt or (lt.is_integer() and rt.is_integer()):
        return left, right
    return (left.mutate(**{column: left[column].cast("string")}),
            right.mutate(**{rcol: right[rcol].cast("string")}))
