"""Data quality of a data source: what was read, dropped, flagged and mapped, per table.

:func:`data_quality` is the first thing to look at on a company's own export:
per canonical table the rows read, the rows the source file drops (exact
duplicates, blank ids) and why, the rows flagged by the gate's checks, the
date range, the distinct ids, channels and stages, and the mapping in use.
Everything is counted in-database; only the one-row-per-table result comes
back. No value of any row appears in it, so it can be published.
"""

from __future__ import annotations

import warnings
from typing import Any

import pandas as pd

from crmstats.backend import execute, query_errors
from crmstats.crmdata import CRMData
from crmstats.exceptions import DataError, DataWarning
from crmstats.page_tables import pick
from crmstats.schema import TABLES
from crmstats.sources import load_crm
from crmstats.validation import SourceTable, deep_checks, read_raw, stage_problems

__all__ = ["data_quality", "quality_contents_table", "quality_rows_table", "source_mapping"]

_CHANNELS = ("channel", "acquisition_channel")


def _first_of(spec, kind: str) -> str | None:
    for c in spec.columns:
        if c.kind == kind:
            return c.name
    return None


def _rows_read(data: Any, name: str) -> int:
    raw = data.data if isinstance(data, SourceTable) else data
    if isinstance(raw, pd.DataFrame):
        return len(raw)
    with query_errors(name, "counting its rows"):
        return int(execute(read_raw(data, name).count()))


def _describe_error(exc: DataError) -> str:
    """Return the error without its example rows (they may hold personal data)."""
    text = str(exc)
    for cut in (", e.g.", " e.g.", " (aware e.g."):
        text = text.split(cut)[0]
    return text


def data_quality(crm: Any) -> pd.DataFrame:
    """Per table: rows read, dropped and flagged (and why), date range, distinct names.

    Parameters
    ----------
    crm : CRMData or data source
        Anything :func:`crmstats.load_crm` accepts.

    Returns
    -------
    pandas.DataFrame
        Index ``table``; columns ``rows_read`` (as exported), ``rows_dropped``
        and ``dropped_because`` (what the source file drops: exact duplicates,
        blank ids), ``rows_used``, ``flags`` (the gate's findings: duplicate
        rows kept, names differing only in case or spaces, stage names outside
        the funnel, stages out of order, future dates; or the error that makes
        the table unusable), ``first`` and ``last`` (range of the table's first
        date column), ``ids`` (distinct values of its first id column),
        ``channels`` and ``stages`` (distinct values, where the table has
        them) and ``mapping`` (columns renamed, values mapped, date and
        number formats). Counts only, no row values.
    """
    crm = load_crm(crm)
    rows = []
    for name, data in crm.tables().items():
        spec = TABLES[name]
        row: dict[str, Any] = {"table": name, "rows_read": _rows_read(data, name)}
        row["mapping"] = _mapping_text(data)
        flags: list[str] = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                t = crm.table(name)  # runs the deep checks once per bundle and keeps them
                checks = crm._checked[name] if name in crm._checked else deep_checks(t, name)
                stages = {}
                if name == "stage_events":  # counted by the gate when it validated the table
                    stages = checks.get("stages") or stage_problems(t)
        except DataError as exc:
            row.update(rows_dropped=0, dropped_because="", rows_used=0,
                       flags=f"unusable: {_describe_error(exc)}")
            rows.append(row)
            continue
        ts = _first_of(spec, "timestamp")
        idc = _first_of(spec, "id")
        aggs = {"__n__": t.count()}
        if ts in t.columns:
            aggs.update(first=t[ts].min(), last=t[ts].max())
        if idc in t.columns:
            aggs["ids"] = t[idc].nunique()
        channel = next((c for c in _CHANNELS if c in t.columns), None)
        if channel:
            aggs["channels"] = t[channel].nunique()
        if "stage" in t.columns:
            aggs["stages"] = t.stage.nunique()
        with query_errors(name, "measuring its quality"):
            got = execute(t.aggregate(**aggs)).iloc[0]
        used = int(got["__n__"])
        row["rows_used"] = used
        row["rows_dropped"] = row["rows_read"] - used
        because = []
        if isinstance(data, SourceTable):
            if data.drop_duplicates:
                because.append("exact duplicate rows")
            if data.drop_blank_ids:
                because.append("blank ids")
        row["dropped_because"] = " and ".join(because) if row["rows_dropped"] else ""
        if checks.get("duplicate_rows"):
            flags.append(f"{checks['duplicate_rows']:,} exact duplicate row(s) kept")
        for key, n in checks.items():
            if key.startswith("case_variants_") and n:
                flags.append(f"{n:,} {key[len('case_variants_'):]} value(s) differ only in "
                             "case or spaces")
        if stages.get("unknown_rows"):
            flags.append(f"{stages['unknown_rows']:,} row(s) with stage names outside the "
                         f"funnel ({', '.join(stages['unknown'])}), left out")
        if stages.get("out_of_order"):
            flags.append(f"{stages['out_of_order']:,} lead(s) with stages out of order")
        future = [w for w in caught if issubclass(w.category, DataWarning)
                  and "in the future" in str(w.message)]
        if future or any(n for k, n in checks.items() if k.startswith("future_")):
            flags.append("timestamps in the future")
        row["flags"] = "; ".join(flags)
        for key in ("first", "last"):
            row[key] = pd.Timestamp(got[key]) if key in got and pd.notna(got[key]) else pd.NaT
        for key in ("ids", "channels", "stages"):
            row[key] = int(got[key]) if key in got and pd.notna(got[key]) else pd.NA
        rows.append(row)
    columns = ["table", "rows_read", "rows_dropped", "dropped_because", "rows_used", "flags",
               "first", "last", "ids", "channels", "stages", "mapping"]
    out = pd.DataFrame(rows).reindex(columns=columns).set_index("table")
    for col in ("ids", "channels", "stages"):
        out[col] = out[col].astype("Int64")
    for col in ("rows_read", "rows_dropped", "rows_used"):
        out[col] = out[col].fillna(0).astype("int64")
    out["flags"] = out["flags"].fillna("")
    out["dropped_because"] = out["dropped_because"].fillna("")
    return out


def _mapping_text(data: Any) -> str:
    if not isinstance(data, SourceTable):
        return "canonical (no mapping)"
    parts = []
    renamed = {k: v for k, v in data.columns.items() if k != v}
    if renamed:
        parts.append(f"{len(renamed)} column(s) renamed")
    for col, values in data.values.items():
        parts.append(f"{len(values)} {col} name(s) mapped")
    if data.timestamp_format:
        parts.append(f"dates {data.timestamp_format}")
    elif data.dayfirst is not None:
        parts.append("dates day-first" if data.dayfirst else "dates month-first")
    if data.decimal or data.thousands:
        parts.append(f"numbers with decimal {data.decimal or '.'!r}"
                     + (f", thousands {data.thousands!r}" if data.thousands else ""))
    if data.trim:
        parts.append("spaces trimmed")
    return "; ".join(parts) or "as exported"


def source_mapping(crm: Any) -> pd.DataFrame:
    """Return the column and value mapping of a source, one row per mapped item.

    Returns
    -------
    pandas.DataFrame
        Columns ``table``, ``kind`` ("column" or "<column> value"),
        ``exported`` (the export's name) and ``canonical``. Empty for a source
        without a source file. Lists names of columns and of stage/channel
        values only (configuration, not personal data).
    """
    crm = crm if isinstance(crm, CRMData) else load_crm(crm)
    rows = []
    for name, data in crm.tables().items():
        if not isinstance(data, SourceTable):
            continue
        for canonical, exported in data.columns.items():
            rows.append((name, "column", str(exported), canonical))
        for col, values in data.values.items():
            for exported, canonical in values.items():
                rows.append((name, f"{col} value", str(exported), str(canonical)))
    return pd.DataFrame(rows, columns=["table", "kind", "exported", "canonical"])


def quality_rows_table(quality: pd.DataFrame) -> pd.DataFrame:
    """Return the rows half of :func:`data_quality` for a page: read, dropped and why, used, flags.

    The date range, distinct counts and mapping are :func:`quality_contents_table`
    (eleven columns in one table scroll sideways on a book page).
    """
    return pick(quality, {c: c.replace("_", " ") for c in (
        "rows_read", "rows_dropped", "dropped_because", "rows_used", "flags")}, "data_quality")


def quality_contents_table(quality: pd.DataFrame) -> pd.DataFrame:
    """Return the contents half of :func:`data_quality` for a page: dates, counts, mapping."""
    return pick(quality, {c: c for c in ("first", "last", "ids", "channels", "stages",
                                          "mapping")}, "data_quality")
