"""Service KPIs of tickets per period, per active account (Ibis).

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
from crmstats._windows import data_window
from crmstats.backend import execute
from crmstats.churn.revenue import _subscriptions
from crmstats.exceptions import DataError
from crmstats.validation import as_table

__all__ = ["service_kpis"]

#: hours standing in for "never resolved" (the upper bound of an open ticket's time)
_OPEN = 1e15


def service_kpis(
    tickets: Any,
    *,
    period: str = "M",
    target_hours: float = 48.0,
    active_customers: pd.Series | None = None,
    subscriptions: Any = None,
    ticket_id_col: str | None = None,
    customer_id_col: str | None = None,
    opened_at_col: str | None = None,
    resolved_at_col: str | None = None,
) -> pd.DataFrame:
    """Service KPIs per period of ticket opening.

    Parameters
    ----------
    tickets : DataFrame, path or ibis.Table
        Canonical tickets table.
    period : {"D", "W", "M", "Q", "Y"}
        Period of the output.
    target_hours : float
        Resolution-time target.
    active_customers : pandas.Series, optional
        Active customers per period (indexed by period start, e.g.
        ``churn_rate(...)["active_start"]``), for tickets per active customer.
    subscriptions : DataFrame, path or ibis.Table, optional
        Canonical subscriptions table: restricts the KPIs to the key accounts'
        tickets and counts the active customers in the database, as the
        accounts with MRR in each period (overrides ``active_customers``).
    ticket_id_col, customer_id_col, opened_at_col, resolved_at_col : str, optional
        The caller's names of the canonical ticket columns.

    Returns
    -------
    pandas.DataFrame
        Index ``period``; columns ``tickets``, ``customers`` (with a ticket),
        ``resolved``, ``open`` (unresolved at the data's end), ``median_hours``
        and ``p90_hours`` to resolve, ``within_target`` (share of the tickets
        resolved within ``target_hours``; a ticket still open past the target
        is a miss) and, with ``active_customers`` or ``subscriptions``,
        ``active_customers`` and ``tickets_per_active_customer``.

    Notes
    -----
    Windows follow :mod:`crmstats._windows`: a partial last period is left
    out, and a figure that is not observed yet is NaN. Resolution times are
    right-censored at the data's end (the last opening or resolution): the
    median (or 90th percentile) of a period's tickets is known once it is a
    resolved ticket's time and every ticket still open has been open longer;
    ``within_target`` counts the tickets whose outcome is known (resolved
    within the target, or open for ``target_hours``), so recent tickets not
    yet due do not count as misses nor hide them. Without ``resolved_at``
    both are NaN.
    """
    period = period_unit(period)
    t = as_table(tickets, "tickets", columns={
        "ticket_id": ticket_id_col, "customer_id": customer_id_col,
        "opened_at": opened_at_col, "resolved_at": resolved_at_col})
    has_resolved = "resolved_at" in t.columns
    if not has_resolved:
        t = t.mutate(resolved_at=ibis.null("timestamp"))
    win = data_window(t, "opened_at", period)
    active = None
    if subscriptions is not None:
        s = _subscriptions(subscriptions, None, None, None)
        s = s.filter(s.mrr > 0)
        ids = s.select(aid=s.account_id.cast("string")).distinct()
        t = t.semi_join(ids, t.customer_id.cast("string") == ids.aid)
        per_active = s.group_by(p=period_index(s.month, period)).aggregate(
            n=s.account_id.nunique())
        active = execute(per_active).set_index("p")["n"]
    # the export's end: the last opening or resolution; a ticket still open then has been
    # open `age` hours, and its resolution time is only known to exceed that
    end = ibis.greatest(t.opened_at.max(), t.resolved_at.max()).as_scalar()
    hours = (t.resolved_at.epoch_seconds() - t.opened_at.epoch_seconds()) / 3600.0
    age = (end.epoch_seconds() - t.opened_at.epoch_seconds()) / 3600.0
    target = float(target_hours)
    t = t.mutate(p=period_index(t.opened_at, period), hours=hours, age=age)
    t = t.filter(t.p <= win.last_complete)
    done = t.resolved_at.notnull()
    # a ticket still open will take at least its age and at most forever: a quantile is
    # observed when it is the same under both (the bounds of the right-censored times)
    low = ibis.ifelse(done, t.hours, t.age)
    high = ibis.ifelse(done, t.hours, ibis.literal(_OPEN))
    per = t.group_by("p").aggregate(
        tickets=t.count(),
        customers=t.customer_id.nunique(),
        resolved=t.count(where=done),
        median_hours=high.quantile(0.5),
        median_low=low.quantile(0.5),
        p90_hours=high.quantile(0.9),
        p90_low=low.quantile(0.9),
        within=t.count(where=done & (t.hours <= target)),
        # the target outcome is known once a ticket is resolved in time or has been open
        # target_hours: tickets opened in the last target_hours before the end are not yet
        decided=t.count(where=(done & (t.hours <= target)) | (t.age >= target)),
    )
    out = execute(per).set_index("p").sort_index()
    if out.empty:
        raise DataError("tickets table: no ticket of the key accounts in subscriptions",
                        table="tickets", column="customer_id")
    out["open"] = out["tickets"] - out["resolved"]
    for q, low in (("median_hours", "median_low"), ("p90_hours", "p90_low")):
        value = pd.to_numeric(out[q], errors="coerce")
        bound = pd.to_numeric(out[low], errors="coerce")
        out[q] = value.where(np.isclose(value, bound, rtol=1e-12, atol=0.0))
    out["within_target"] = out["within"] / out["decided"].where(out["decided"] > 0)
    if not has_resolved:
        out[["median_hours", "p90_hours", "within_target"]] = np.nan
    out = out[["tickets", "customers", "resolved", "open", "median_hours", "p90_hours",
               "within_target"]]
    if active is not None:
        out["active_customers"] = active.reindex(out.index)
    out.index = pd.DatetimeIndex(period_start(out.index, period), name="period")
    if active is None and active_customers is not None:
        out["active_customers"] = pd.Series(active_customers).reindex(out.index)
    if "active_customers" in out:
        out["tickets_per_active_customer"] = out["tickets"] / out["active_customers"].where(
            lambda x: x > 0)
    return out
