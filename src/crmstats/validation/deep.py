"""Once-per-bundle checks of raw tables (:func:`deep_checks`) and id alignment across tables."""

from __future__ import annotations

import warnings
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from crmstats.backend import execute, query_errors, read_table
from crmstats.exceptions import DataError, DataWarning
from crmstats.schema import (
    table_spec,
)
from crmstats.validation.columns import _text_columns
from crmstats.validation.memory import validated_as
from crmstats.validation.messages import _count, _user_level
from crmstats.validation.source_table import SourceTable
from crmstats.validation.stages import _NAME_COLUMNS
from crmstats.validation.traps import _TRAP_TABLES


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
    known = validated_as(t)
    # counts the gate's traps made already when it validated ``t`` (not counted again)
    out: dict[str, int] = dict(known.facts) if known is not None else {}
    text = [c.name for c in spec.columns if c.name in schema and schema[c.name].is_string()
            and c.kind in ("id", "category")]
    names = [name for name in text if f"case_variants_{name}" not in out]
    # keyless tables, and transactions without order_id (their key cannot tell orders apart)
    check_dups = (not spec.key or (table == "transactions" and "order_id" not in schema)) \
        and "duplicate_rows" not in out
    with query_errors(table, "checking data quality"):
        counts = _distinct_counts(t, names) if names else None
        if check_dups:
            distinct = int(execute(t.distinct().count()))
            n = counts["__n__"][0] if counts is not None else _count(execute(t.count()))
            out["duplicate_rows"] = n - distinct
    # what validating the table warned of already (every path, see _check_traps)
    trapped = table in _TRAP_TABLES
    if out.get("duplicate_rows") and not trapped:
        warnings.warn(
            f"{table} table: {out['duplicate_rows']:,} row(s) exactly repeat another row"
            + (" and there is no order_id to tell orders apart" if table == "transactions"
               else "") + "; if they are a double export set drop_duplicates: true for the "
            "table in crmstats.yml", DataWarning, stacklevel=_user_level())
    for name in names:
        merged = counts[name][0] - counts[name][1]
        out[f"case_variants_{name}"] = merged
        if merged and name not in _NAME_COLUMNS and not (trapped and name == "customer_id"):
            # name columns, and a transactions table's customer ids, warn on every call
            warnings.warn(
                f"{table} table, column {name!r}: {merged:,} value(s) differ from another only "
                "in upper/lower case or surrounding spaces and count as different "
                f"{'ids' if spec.column(name).kind == 'id' else 'names'}; map them with "
                "values: (or trim: true) in crmstats.yml",
                DataWarning, stacklevel=_user_level())
    return out


def _distinct_counts(t: ir.Table, names: list[str]) -> dict[str, tuple[int, int]]:
    """``{column: (distinct values, distinct values once trimmed and lower-cased)}`` of ``t``.

    Also ``"__n__"``: ``(rows, 0)``. One query: each column's distinct values
    first, then those folded (trimming and lower-casing only the distinct
    values, not every row: on the 10x demo's 1.15M stage entries 0.6 -> 0.1 s
    in DuckDB). Nulls are not values.
    """
    parts = [t.aggregate(c=ibis.literal("__n__"), d=t.count(), f=ibis.literal(0, "int64"))]
    for name in names:
        values = t.select(v=t[name]).distinct().filter(lambda x: x.v.notnull())
        parts.append(values.aggregate(c=ibis.literal(name), d=values.count(),
                                      f=values.v.strip().lower().nunique()))
    rows = execute(ibis.union(*parts, distinct=False))
    return {c: (_count(d), _count(f)) for c, d, f in zip(rows["c"], rows["d"], rows["f"],
                                                         strict=True)}


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
