"""The weekly media table: outcome per week beside spend per channel (the MMM's input).

Aggregation runs in the database (Ibis): outcome rows and spend rows are
summed per week there, and only one row per week (and channel) comes back.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from crmstats._expr import period_index, period_start
from crmstats._windows import data_window
from crmstats.backend import execute
from crmstats.exceptions import DataError

__all__ = ["OUTCOMES", "assemble", "media_table"]

#: A week without any outcome row is a gap in the export (an error), not a quiet week, when the
#: weeks around it have at least this many rows (a Poisson count of 10 is 0 w.p. 5e-5).
_GAP_ROWS = 10
#: Outcomes of :func:`media_table`: (table, aggregate) per name.
OUTCOMES = {
    "conversions": ("conversions", None),
    "conversion_value": ("conversions", "value"),
    "revenue": ("transactions", "amount"),
}


def _weeks_text(weeks) -> str:
    days = [pd.Timestamp(w).strftime("%Y-%m-%d") for w in weeks]
    more = f" and {len(days) - 5} more" if len(days) > 5 else ""
    return ", ".join(days[:5]) + more


def _full_weeks(table, column: str) -> tuple[int, int]:
    """First and last week (period numbers) a table covers from start to end."""
    win = data_window(table, column, "W")
    first = win.first
    if win.start.normalize() > period_start([first], "W")[0]:
        first += 1  # the data begin after the week's Monday: that week is partial
    return first, win.last_complete


def media_table(
    crm: Any,
    outcome: str = "conversions",
    *,
    controls: pd.DataFrame | None = None,
    start: Any = None,
    end: Any = None,
) -> pd.DataFrame:
    """Outcome per week beside spend per channel, for :class:`MediaMixModel`.

    Parameters
    ----------
    crm : CRMData
        With a ``spend`` table (daily or weekly) and the outcome's table.
    outcome : {"conversions", "conversion_value", "revenue"}
        What the model explains: the number of ``conversions``, their
        ``value``, or ``revenue`` (the sum of ``transactions.amount``,
        refunds included).
    controls : pandas.DataFrame, optional
        Weekly control variables (price, promotion, holidays): numeric
        columns indexed by the week's Monday (or with a ``week`` column); every
        week of the table must have a row.
    start, end : timestamp-like, optional
        Keep the weeks starting on or after ``start`` and on or before ``end``.

    Returns
    -------
    pandas.DataFrame
        Index ``week`` (each week's Monday); two-level columns ``(role,
        name)``: ``("outcome", <outcome>)``, ``("spend", <channel>)`` per
        channel (largest total spend first) and ``("control", <name>)`` per
        control — ``table["spend"]`` is the spend per week and channel.
        The weeks run over the full weeks both the outcome and the spend
        cover; a week without spend in a channel is 0 there. A week without
        any outcome row is 0 when the weeks around it are quiet (their median
        is below 10 rows) and a gap otherwise (see Raises).

    Raises
    ------
    DataError
        When a table is absent, spend is recorded per month (a weekly model
        cannot split it), a week within the span has no outcome row while the
        4 weeks either side have a median of 10 or more (the export has a gap:
        the weeks are named), or the controls miss a week or hold non-numbers.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome must be one of {', '.join(OUTCOMES)}, got {outcome!r}")
    name, col = OUTCOMES[outcome]
    crm.require("spend", name)
    sp = crm.table("spend")
    rows, monthly = _dates_by_month(sp, "date")
    if rows == 0:
        raise DataError("spend table: no rows; the media table needs spend per week",
                        table="spend")
    if monthly:
        raise DataError("spend table, column 'date': every date is a month's first day, so "
                        "spend is recorded per month; a weekly media model needs weekly or "
                        "daily spend", table="spend", column="date")
    t = crm.table(name)
    s_first, s_last = _full_weeks(sp, "date")
    o_first, o_last = _full_weeks(t, "timestamp")
    lo, hi = max(s_first, o_first), min(s_last, o_last)
    if start is not None:
        lo = max(lo, int(np.ceil((pd.Timestamp(start) - period_start([0], "W")[0]).days / 7)))
    if end is not None:
        hi = min(hi, int((pd.Timestamp(end) - period_start([0], "W")[0]).days // 7))
    if hi < lo:
        raise DataError(f"{name} and spend tables: no full week that both cover "
                        "(within start/end)", table=name)
    wk = period_index(t.timestamp, "W")
    t = t.mutate(_w=wk).filter((wk >= lo) & (wk <= hi))
    value = t.count() if col is None else t[col].sum()
    out_w = execute(t.group_by("_w").aggregate(outcome=value, rows=t.count()))
    sw = period_index(sp.date, "W")
    sp = sp.mutate(_w=sw).filter((sw >= lo) & (sw <= hi))
    spend_w = execute(sp.group_by(["_w", sp.channel.cast("string").name("channel")])
                      .aggregate(cost=sp.cost.sum()))
    weeks = np.arange(lo, hi + 1)
    per = out_w.set_index("_w").reindex(weeks)
    y = per["outcome"].astype(float)
    rows_per_week = per["rows"].fillna(0).to_numpy(float)
    # an empty week among busy ones (the 4 weeks either side have a median of 10+ rows) is a
    # gap in the export; an empty week among quiet ones (a small business, a pipeline filling
    # up) is a week without outcome
    local = pd.Series(rows_per_week).rolling(9, center=True, min_periods=1).median().to_numpy()
    gaps = y.isna().to_numpy() & (local >= _GAP_ROWS)
    if gaps.any():
        gap = period_start(weeks[gaps], "W")
        raise DataError(f"{name} table: no row in {int(gaps.sum())} week(s) inside the "
                        f"span the media table covers ({_weeks_text(gap)}), while the weeks "
                        f"around have {np.median(local[gaps]):,.0f}: the export has gaps, which "
                        "cannot be read as zero outcome; fill them or restrict with start/end",
                        table=name, column="timestamp")
    y = y.fillna(0.0)
    wide = (spend_w.pivot_table(index="_w", columns="channel", values="cost", aggfunc="sum")
            .reindex(weeks).fillna(0.0).astype(float)) if len(spend_w) else pd.DataFrame(
                index=weeks)
    if wide.shape[1] == 0:
        raise DataError("spend table: no spend inside the weeks the outcome covers",
                        table="spend")
    wide = wide[wide.sum().sort_values(ascending=False, kind="mergesort").index]
    index = pd.DatetimeIndex(period_start(weeks, "W"), name="week")
    ctrl = _controls(controls, index) if controls is not None else None
    return assemble(index, outcome, y.to_numpy(), wide, ctrl)


def _controls(controls: pd.DataFrame, index: pd.DatetimeIndex) -> pd.DataFrame:
    if not isinstance(controls, pd.DataFrame):
        raise ValueError("controls: expected a DataFrame of weekly control columns")
    c = controls.copy()
    if "week" in c.columns:
        c = c.set_index("week")
    try:
        c.index = pd.DatetimeIndex(pd.to_datetime(c.index)).normalize()
    except (TypeError, ValueError) as err:
        raise DataError("controls: the index (or 'week' column) must hold the weeks' Mondays",
                        table="controls", column="week") from err
    if c.index.has_duplicates:
        dup = c.index[c.index.duplicated()]
        raise DataError(f"controls: week(s) {_weeks_text(dup)} appear twice", table="controls",
                        column="week")
    missing = index.difference(c.index)
    if len(missing):
        raise DataError(f"controls: no row for {len(missing)} week(s) of the media table "
                        f"({_weeks_text(missing)})", table="controls", column="week")
    c = c.reindex(index)
    for name in c.columns:
        vals = pd.to_numeric(c[name], errors="coerce")
        bad = vals.isna() | ~np.isfinite(vals.astype(float))
        if bad.any():
            raise DataError(f"controls, column {str(name)!r}: {int(bad.sum())} week(s) hold no "
                            f"finite number ({_weeks_text(c.index[bad.to_numpy()])})",
                            table="controls", column=str(name))
        c[name] = vals.astype(float)
    c.columns = [str(n) for n in c.columns]
    return c


def assemble(index, outcome: str, y, spend: pd.DataFrame, controls=None) -> pd.DataFrame:
    """Build the weekly media table: columns ``(role, name)``, roles outcome/spend/control."""
    parts = {"outcome": pd.DataFrame({outcome: np.asarray(y, float)}, index=index),
             "spend": pd.DataFrame(np.asarray(spend, float), index=index,
                                   columns=[str(c) for c in spend.columns])}
    if controls is not None and len(controls.columns):
        parts["control"] = pd.DataFrame(np.asarray(controls, float), index=index,
                                        columns=[str(c) for c in controls.columns])
    out = pd.concat(parts, axis=1, names=["role", "name"])
    out.index.name = "week"
    return out


def _dates_by_month(table: Any, column: str) -> tuple[int, bool]:
    """Return ``(rows, monthly)``: monthly when 3+ dates and every row on a month's first day."""
    dates = execute(table.aggregate(n=table[column].nunique(),
                                    firsts=(table[column].day() == 1).sum().cast("int64"),
                                    rows=table.count()))
    n_dates, firsts, rows = (int(dates[c].iloc[0]) for c in ("n", "firsts", "rows"))
    return rows, n_dates >= 3 and firsts == rows


def recorded_monthly(crm: Any, table: str = "spend", column: str = "date") -> bool:
    """Whether ``table`` of ``crm`` records its rows per month (every date a month's first day).

    A weekly media model cannot use such a table (:func:`media_table` refuses
    it); the book lists a study that needs weekly data as not available.
    """
    return _dates_by_month(crm.table(table), column)[1]
