"""The data overview's tables for a book page: a few columns, short headers.

:func:`~crmstats.overview.table_overview` describes every canonical table in
nine columns (the id column's name, the first and the last timestamp, the
validation message apart from the status...): right for an analyst, a
sideways-scrolling wall for a reader. The page shows it as
:func:`source_table`: per table its rows, its ids, its time span as one piece
of text and its status with the reason when it is invalid. The result itself
is unchanged.
"""

from __future__ import annotations

import pandas as pd

from crmstats.formatting import MISSING, is_missing
from crmstats.page_tables import require_columns

__all__ = ["source_table"]


def _day(value) -> str:
    return pd.Timestamp(value).strftime("%Y-%m-%d")


def _span(first, last) -> str:
    """``"2024-01-01 to 2025-12-31"``; :data:`~crmstats.formatting.MISSING` without dates."""
    if is_missing(first) or is_missing(last):
        return MISSING
    return f"{_day(first)} to {_day(last)}"


def _status(status, message) -> str:
    """``ok``, ``absent``, or ``invalid: <the validation error>``."""
    text = "" if is_missing(status) else str(status)
    reason = "" if is_missing(message) else str(message).strip()
    return f"{text}: {reason}" if text == "invalid" and reason else text


def source_table(overview: pd.DataFrame) -> pd.DataFrame:
    """Return what the source holds, for a page: rows, ids, time span and status per table.

    Parameters
    ----------
    overview : pandas.DataFrame
        :func:`~crmstats.overview.table_overview`'s result (not modified).

    Returns
    -------
    pandas.DataFrame
        The same index (``table``); ``rows``, ``ids`` (distinct values of the
        table's id column; empty for spend, which has none, and for a table
        that is absent or invalid), ``time span`` (its first to its last
        timestamp, as text, days only; "—" without one) and ``status``
        (``ok``, ``absent``, or ``invalid: `` followed by the validation
        error). The column count, the id column's name, the exact timestamps
        and the description stay in ``overview``.
    """
    require_columns(overview, ["rows", "ids", "first", "last", "status", "message"],
                    "table_overview")
    out = overview[["rows", "ids"]].copy()
    out["time span"] = [_span(a, b) for a, b in
                        zip(overview["first"], overview["last"], strict=True)]
    out["status"] = [_status(s, m) for s, m in
                     zip(overview["status"], overview["message"], strict=True)]
    return out
