"""The per-table gate: :func:`validate`, :func:`as_table` and :func:`validate_table`.

Maps the caller's column names onto the canonical ones, hands the table to the
coercion engine (:mod:`.coerce`; a DataFrame's columns reach it as Arrow arrays,
:mod:`.frames`), then runs the content checks (:mod:`.content`) and the two
traps (:mod:`.traps`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from crmstats.backend import query_errors, read_table
from crmstats.schema import (
    TableSpec,
    table_spec,
)
from crmstats.validation.coerce import coerce, rename
from crmstats.validation.columns import _column_mapping, _text_columns
from crmstats.validation.content import _check_content
from crmstats.validation.frames import (
    _RowSource,
    frame_to_arrow,
    in_order,
    materialize,
    to_frame,
    with_casts,
    with_positions,
)
from crmstats.validation.memory import COUNTS, frame_once, input_once, mark, validated_as
from crmstats.validation.source_table import SourceTable
from crmstats.validation.traps import _TRAP_TABLES, _check_traps


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
        COUNTS[spec.name] += 1
        with query_errors(spec.name, "validating it"):
            t, rows, arrow, changed = _coerce_frame(data, spec, mapping)
            _check_content(t, spec, mapping, rows)
            if spec.name in _TRAP_TABLES:
                _check_traps(t, spec, mapping, rows, data)
        return to_frame(arrow, changed, rows.casts, data, spec, mapping)
    return validate_table(data, table, columns=mapping)


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
        that read the frame's memory (no copy). The table knows it is
        validated: passed to a crmstats function it is not checked again. It
        stays as it was checked: an in-place edit of the frame afterwards gives
        the frame new memory (pandas' copy-on-write), and the edited frame is
        checked again wherever it is passed.
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
    mapping applied first. Validated once: a table this function returned is
    recognised, and the same unchanged frame gives the same table (see
    :mod:`crmstats.validation.memory`); :data:`~crmstats.validation.memory.COUNTS`
    counts the validations that ran.
    """
    spec = table_spec(table)
    mapping = {k: v for k, v in dict(columns or {}).items() if v is not None and v != k}
    if not mapping and isinstance(data, ir.Table):
        known = validated_as(data)
        if known is not None and known.table == table:
            return data  # validated already (this very expression): nothing new to check
    key = ("validated", table, tuple(sorted(mapping.items())))
    if isinstance(data, pd.DataFrame):
        # the same, unchanged frame (copy-on-write gives an edited one new arrays) is
        # validated once: a second crmstats call on it gets the table the first one checked
        return frame_once(data, key, lambda: _validate_new(data, spec, mapping))
    # the same file (unchanged), mapped source table or database table: once per process
    return input_once(data, key, lambda: _validate_new(data, spec, mapping))


def _validate_new(data: Any, spec: TableSpec, mapping: dict) -> ir.Table:
    """Validate ``data`` as table ``spec`` (see :func:`validate_table`), and mark the result."""
    table = spec.name
    source, original, keep = None, data, None
    if isinstance(data, SourceTable):
        source = data
        mapping = {**{k: v for k, v in source.columns.items() if v != k}, **mapping}
        data = source.data
        if isinstance(data, pd.DataFrame):
            keep = data = data.copy(deep=False)  # see below: edits of the caller's frame
            data = ibis.memtable(frame_to_arrow(data, spec, mapping))
    COUNTS[table] += 1
    with query_errors(table, "validating it"):
        if isinstance(data, pd.DataFrame):
            # a shallow copy, kept alive by the validated table: pandas' copy-on-write then
            # gives a later in-place edit of the caller's frame its own memory, and the
            # table (which reads these arrays without a copy) stays as it was validated
            keep = data = data.copy(deep=False)
            t, rows, _, _ = _coerce_frame(data, spec, mapping)
        else:
            t = read_table(data, table=table, text_columns=_text_columns(spec, mapping, source))
            if source is not None:
                names = {c.name for c in spec.columns}
                extra = {k: v for k, v in source.columns.items()
                         if k not in names and k != v and v in t.columns and k not in t.columns}
                t = t.rename(extra) if extra else t
            t = rename(t, spec, mapping)
            if source is not None:
                t = _apply_source(t, spec, mapping, source)
            t, _ = coerce(t, spec, mapping, source)
            rows = None
        facts = _check_content(t, spec, mapping, rows)
        if spec.name in _TRAP_TABLES:
            facts.update(_check_traps(t, spec, mapping, rows, original))
    mark(t, table, keep=keep, facts=facts)
    return t


def _coerce_frame(data: pd.DataFrame, spec: TableSpec, mapping: dict):
    """Coerce a frame in the engine; return (table, row source, its Arrow table, changed).

    The frame's columns reach DuckDB as Arrow arrays (:mod:`.frames`); the engine
    names offending rows by the frame's index labels; the columns it changed
    are computed once, the others stay the caller's arrays.
    """
    arrow = frame_to_arrow(data, spec, mapping)
    positions = not in_order()  # then the rows carry their positions through DuckDB
    raw = rename(ibis.memtable(with_positions(arrow) if positions else arrow), spec, mapping)
    rows = _RowSource(arrow, data.index, raw if positions else None,
                      prepare=lambda tb: rename(tb, spec, mapping))
    t, changed = coerce(raw, spec, mapping, None, rows)
    final, casts = materialize(t, changed, raw, arrow, spec, mapping)
    return with_casts(final, casts), _RowSource(final, data.index, casts=casts), final, changed


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
