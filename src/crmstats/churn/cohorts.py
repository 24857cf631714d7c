"""Acquisition cohorts, retention and inactivity churn of customers, in-database (Ibis).

Every function here runs where the data lives (the embedded DuckDB by default,
PostgreSQL or Spark when given their tables) and returns small pandas frames;
periods are numbered with :func:`crmstats._expr.period_index`, so period
arithmetic is integer arithmetic that every backend supports.
"""

from __future__ import annotations

from typing import Any

import ibis
import numpy as np
import pandas as pd

from crmstats._expr import period_index, period_start, period_unit
from crmstats._windows import WindowFrame, data_window
from crmstats.backend import execute
from crmstats.exceptions import DataError
from crmstats.validation import align_ids, as_table, transactions_table
from crmstats.vocabulary import renamed_arguments

__all__ = ["churn_rate", "cohort_table", "retention_matrix"]


_METRICS = ("customers", "revenue", "orders")


def _cohort_rows(transactions, period, by, customers, customer_id_col, timestamp_col,
                 amount_col):
    """Return the transactions and their (customer, period) cells with ``age`` and ``cohort``.

    Each cell carries ``orders`` (purchases, refunds excluded) and ``revenue``
    (net of refunds); aggregating to cells first spares the cohort counts a
    distinct count over every transaction. Cells of a partial last period are
    left out (:mod:`crmstats._windows`); with ``by``, so are the customers whose
    first purchase falls in the data's first period (their acquisition, and so
    their age, is not observed: they may have bought long before the data).
    """
    t = transactions_table(transactions, customer_id_col=customer_id_col,
                           timestamp_col=timestamp_col,
                           amount_col=amount_col)
    win = data_window(t, "timestamp", period)
    t = t.mutate(p=period_index(t.timestamp, period))
    t = t.filter(t.p <= win.last_complete)
    cells = t.group_by(["customer_id", "p"]).aggregate(
        orders=t.count(where=t.amount >= 0), revenue=t.amount.sum())
    buys = cells.filter(cells.orders > 0)
    first = buys.group_by("customer_id").aggregate(first_p=buys.p.min())
    j = cells.inner_join(first, "customer_id").mutate(age=lambda x: x.p - x.first_p)
    j = j.filter(j.age >= 0)
    if by is None:
        return win, j.mutate(cohort=j.first_p)
    j = j.filter(j.first_p > win.first)
    if customers is None:
        raise ValueError("by= needs the customers table (customers=...)")
    c = as_table(customers, "customers", columns={"customer_id": customer_id_col})
    if by not in c.columns:
        raise DataError(f"customers table: no column {by!r} to form cohorts; "
                        f"columns: {', '.join(c.columns)}", table="customers",
                        column=by)
    c = c.select("customer_id", cohort=c[by].cast("string"))
    j, c = align_ids(j, c, "customer_id")
    j = j.left_join(c, "customer_id").mutate(
        cohort=lambda x: ibis.coalesce(x.cohort, ibis.literal("(unknown)")))
    return win, j


def cohort_table(
    transactions: Any,
    *,
    period: str = "M",
    metric: str = "customers",
    by: str | None = None,
    customers: Any = None,
    max_age: int | None = None,
    customer_id_col: str | None = None,
    timestamp_col: str | None = None,
    amount_col: str | None = None,
) -> pd.DataFrame:
    """Acquisition cohorts × periods since acquisition.

    A customer's cohort is the period of its first purchase (or, with
    ``by``, that column of the customers table, e.g. the acquisition
    channel); its age at a purchase is the number of whole periods since the
    first purchase's period.

    Parameters
    ----------
    transactions : DataFrame, path or ibis.Table
        Canonical transactions table; refunds (negative amounts) are not
        purchases but do reduce ``revenue``.
    period : {"D", "W", "M", "Q", "Y"}
        Cohort and age granularity.
    metric : {"customers", "revenue", "orders"}
        Distinct buying customers, net revenue, or purchase rows per cell.
    by : str, optional
        Column of ``customers`` defining the cohorts instead of the first
        purchase period (ages still count from each customer's first purchase).
    customers : DataFrame, path or ibis.Table, optional
        Canonical customers table; required with ``by``.
    max_age : int, optional
        Keep ages ``0..max_age``.
    customer_id_col, timestamp_col, amount_col : str, optional
        The caller's names of the canonical columns.

    Returns
    -------
    pandas.DataFrame
        Index: the cohorts (period starts, or ``by`` values); columns
        ``0, 1, 2, ...`` (age in periods); cells the metric, 0 where nothing
        happened, NaN where it is not observed (:mod:`crmstats._windows`):
        ages beyond the last complete period, and the whole first cohort —
        its customers bought in the data's first period, acquired then or
        before the data, so it is no acquisition cohort. A partial last
        period is left out. With ``by``, customers first seen in the data's
        first period are left out (their age is unknown).
    """
    period = period_unit(period)
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {_METRICS}; got {metric!r}")
    win, j = _cohort_rows(transactions, period, by, customers, customer_id_col,
                          timestamp_col, amount_col)
    if max_age is not None:
        j = j.filter(j.age <= int(max_age))
    if metric == "customers":
        value = j.count(where=j.orders > 0)
    elif metric == "orders":
        value = j.orders.sum()
    else:
        value = j.revenue.sum()
    cells = execute(j.group_by(["cohort", "age"]).aggregate(value=value))
    table = cells.pivot(index="cohort", columns="age", values="value").sort_index()
    table = table.reindex(columns=range(int(cells["age"].max()) + 1 if len(cells) else 0))
    if by is None:
        # ages beyond the last complete period are unknown, not zero; the data's first
        # cohort holds everyone who bought then, acquired then or long before: no cohort
        cohorts = table.index.to_numpy(dtype="int64")
        ages = np.arange(table.shape[1])
        beyond = cohorts[:, None] + ages[None, :] > win.last_complete
        table = table.fillna(0.0).mask(beyond | (cohorts == win.first)[:, None])
        # ages only the first cohort reached are observed in none
        seen = np.flatnonzero(table.notna().any(axis=0).to_numpy())
        table = table.iloc[:, : seen[-1] + 1 if len(seen) else 0]
        table.index = pd.DatetimeIndex(period_start(cohorts, period), name="cohort")
    else:
        table = table.fillna(0.0)
        table.index.name = by
    table.columns = pd.Index(table.columns.astype(int), name="age")
    if metric != "revenue":
        table = table.astype("Float64").astype(float)
    return table


def retention_matrix(
    transactions: Any,
    *,
    period: str = "M",
    by: str | None = None,
    customers: Any = None,
    max_age: int | None = None,
    customer_id_col: str | None = None,
    timestamp_col: str | None = None,
    amount_col: str | None = None,
) -> pd.DataFrame:
    """Share of each cohort's customers buying at each age (age 0 is 1.0).

    With acquisition-period cohorts every customer of a cohort is observed
    for the same ages (later ages are NaN). With ``by`` a cohort mixes
    customers acquired at different times, so the share at age ``a`` is
    taken among the cohort's customers whose first purchase lies at least
    ``a`` periods before the data's last period — those who could have bought
    at that age — and is NaN where none could.

    Parameters
    ----------
    transactions : DataFrame, path or ibis.Table
        Canonical transactions table.
    period : {"D", "W", "M", "Q", "Y"}
        Cohort and age granularity.
    by : str, optional
        Column of ``customers`` defining the cohorts (e.g. the acquisition
        channel) instead of the first purchase period.
    customers : DataFrame, path or ibis.Table, optional
        Canonical customers table; required with ``by``.
    max_age : int, optional
        Keep ages ``0..max_age``.
    customer_id_col, timestamp_col, amount_col : str, optional
        The caller's names of the canonical columns.

    Returns
    -------
    pandas.DataFrame
        Shaped like :func:`cohort_table`.
    """
    kwargs = dict(period=period, by=by, customers=customers, max_age=max_age,
                  customer_id_col=customer_id_col, timestamp_col=timestamp_col,
                  amount_col=amount_col)
    counts = cohort_table(transactions, metric="customers", **kwargs)
    if by is None:
        return counts.div(counts[0], axis=0)
    exposed = _exposure(transactions, counts, **kwargs)
    return counts.div(exposed.where(exposed > 0))


def _exposure(transactions, counts, *, period="M", by=None, customers=None,
              max_age=None, customer_id_col=None, timestamp_col=None, amount_col=None):
    """Count the customers of each ``by`` cohort observable at each age."""
    period = period_unit(period)
    win, j = _cohort_rows(transactions, period, by, customers, customer_id_col,
                          timestamp_col, amount_col)
    starts = j.filter(j.age == 0)
    by_first = execute(starts.group_by(["cohort", "first_p"]).aggregate(
        n=starts.count(where=starts.orders > 0)))
    last = win.last_complete
    ages = counts.columns.to_numpy(dtype="int64")
    firsts = by_first["first_p"].to_numpy(dtype="int64")
    # customer groups by first period, observable at age a when first_p + a <= last
    seen = (firsts[:, None] + ages[None, :] <= last) * by_first["n"].to_numpy(float)[:, None]
    exposed = pd.DataFrame(seen, columns=counts.columns).groupby(
        by_first["cohort"].to_numpy()).sum()
    return exposed.reindex(counts.index).fillna(0.0).rename_axis(counts.index.name)


@renamed_arguments(churned_after="lapsed_after")
def churn_rate(
    transactions: Any,
    *,
    period: str = "M",
    lapsed_after: int = 3,
    customer_id_col: str | None = None,
    timestamp_col: str | None = None,
    amount_col: str | None = None,
) -> pd.DataFrame:
    """Churn per period under an inactivity rule, for non-contractual businesses.

    A customer counts as **active** in a period while its last purchase is
    fewer than ``lapsed_after`` periods old, and **churns** in the period
    where that purchase becomes ``lapsed_after`` periods old without a new
    one (so churn is known ``lapsed_after`` periods after the last
    purchase). A purchase by a churned customer makes it active again
    (``returned``).

    Parameters
    ----------
    transactions : DataFrame, path or ibis.Table
        Canonical transactions table.
    period : {"D", "W", "M", "Q", "Y"}
        Period of the rule and of the output.
    lapsed_after : int
        Periods without a purchase after which a customer has churned (the
        lapse threshold of README "Glossary", here in periods; ``churned_after``
        is its old name, deprecated).
    customer_id_col, timestamp_col, amount_col : str, optional
        The caller's names of the canonical columns.

    Returns
    -------
    pandas.DataFrame
        Index ``period`` (start); columns ``active_start`` (active at the
        start of the period), ``new`` (first purchases), ``returned``,
        ``churned``, ``active_end`` and ``churn_rate`` = churned ÷
        active_start. Windows follow the rule of :mod:`crmstats._windows`:
        a partial last period is left out, and the first ``lapsed_after``
        periods of the data are NaN — who was active then, who could churn
        and who is new depend on purchases before the data (``active_end``
        is known from period ``lapsed_after``). Counts are floats for the
        NaN. A :class:`~crmstats._windows.WindowFrame`: ``window`` is the
        observed window and ``left_out()`` a sentence naming a partial
        period left out ("" when none). ``new`` is
        a first purchase *in the data*: a customer whose earlier purchases
        predate it counts as new, not returned.
    """
    period = period_unit(period)
    n = int(lapsed_after)
    if n < 1:
        raise ValueError(f"lapsed_after must be at least 1 period, got {lapsed_after}")
    t = transactions_table(transactions, customer_id_col=customer_id_col,
                           timestamp_col=timestamp_col,
                           amount_col=amount_col)
    buys = t.filter(t.amount >= 0)
    occ = buys.group_by(["customer_id", buys.timestamp.pipe(period_index, period).name("p")]
                        ).aggregate()
    w = ibis.window(group_by=occ.customer_id, order_by=occ.p)
    occ = occ.mutate(prev_p=occ.p.lag().over(w), next_p=occ.p.lead().over(w))
    # this purchase starts a new active spell when the previous one lies more than n
    # periods back (the customer churned n periods after it); a gap of exactly n is
    # bought in the very period the customer would have churned, so it never churns
    starts = occ.mutate(
        kind=ibis.cases((occ.prev_p.isnull(), "new"), (occ.p - occ.prev_p > n, "returned"),
                        else_="continuing"))
    spells = starts.filter(starts.kind != "continuing")
    starting = spells.group_by(["p", "kind"]).aggregate(n=spells.count())
    # a churn event n periods after a purchase with no purchase in between
    churns = occ.filter(occ.next_p.isnull() | (occ.next_p - occ.p > n))
    churns = churns.group_by(p=churns.p + n).aggregate(n=churns.count())
    win = data_window(t, "timestamp", period)
    first, last = win.first, win.last_complete
    s = execute(starting)
    c = execute(churns)
    idx = np.arange(first, last + 1)
    new = s[s["kind"] == "new"].set_index("p")["n"].reindex(idx, fill_value=0)
    ret = s[s["kind"] == "returned"].set_index("p")["n"].reindex(idx, fill_value=0)
    churned = c.set_index("p")["n"].reindex(idx, fill_value=0)
    active_end = (new + ret - churned).cumsum()
    active_start = active_end.shift(1, fill_value=0)
    out = pd.DataFrame({
        "active_start": active_start, "new": new, "returned": ret, "churned": churned,
        "active_end": active_end,
    }).astype("float64")
    # the window's first n periods depend on purchases before the data: who was active,
    # who could churn, who is new (rule 3 of crmstats._windows); the customers active at
    # the end of a period are those who bought in its last n periods, known one earlier
    out.loc[out.index < first + n, ["active_start", "new", "returned", "churned"]] = np.nan
    out.loc[out.index < first + n - 1, "active_end"] = np.nan
    out["churn_rate"] = out["churned"] / out["active_start"].where(out["active_start"] > 0)
    if not (out["active_start"] > 0).any():
        raise DataError(
            f"transactions table: the purchases span {win.last - first + 1} period(s) of "
            f"{period!r} ({last - first + 1} complete); churn after {n} inactive "
            f"period(s) is first observable in the data's period {n + 1} (nobody can have "
            "churned before) and needs customers active at its start: use a shorter "
            "period or a smaller lapsed_after",
            table="transactions", column=timestamp_col or "timestamp")
    out.index = pd.DatetimeIndex(period_start(out.index, period), name="period")
    out = WindowFrame.of(out, win)
    return out
