"""Data-overview computations, written as Ibis expressions (DuckDB by default)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from crmstats._expr import period_index, period_start, truncate
from crmstats._windows import WindowFrame, data_window
from crmstats.backend import execute
from crmstats.crmdata import CRMData
from crmstats.exceptions import DataError
from crmstats.schema import SALES_STAGES, TABLES
from crmstats.validation import as_table, transactions_table

__all__ = [
    "customer_revenue",
    "monthly_activity",
    "orders_per_customer",
    "spend_by_channel",
    "stage_counts",
    "table_overview",
    "top_revenue_share",
]


def table_overview(crm: CRMData) -> pd.DataFrame:
    """Validate every table of ``crm`` and describe it.

    Parameters
    ----------
    crm : CRMData
        The data source.

    Returns
    -------
    pandas.DataFrame
        One row per canonical table (index ``table``), with ``rows``,
        ``columns``, ``ids`` (distinct values of the table's first id column,
        named in ``id_column``; empty for spend, which has none),
        ``first`` and ``last`` (range of its first timestamp column), ``status``
        (``"ok"``, ``"invalid"`` or ``"absent"``) and ``message`` (the
        validation error, if any). Absent tables are listed so readers see what
        the source lacks.
    """
    rows = []
    for name in CRMData.table_names():
        data = getattr(crm, name)
        spec = TABLES[name]
        record: dict[str, Any] = {"table": name, "description": spec.description}
        if data is None:
            record.update(status="absent", message="")
            rows.append(record)
            continue
        try:
            t = as_table(data, name)
        except DataError as exc:
            record.update(status="invalid", message=str(exc))
            rows.append(record)
            continue
        id_col = next((c.name for c in spec.columns if c.kind == "id"), None)
        ts_col = next((c.name for c in spec.columns
                       if c.kind == "timestamp" and c.name in t.columns), None)
        aggs = dict(rows=t.count())
        if ts_col is not None:  # experiments' started_at is optional
            aggs.update(first=t[ts_col].min(), last=t[ts_col].max())
        if id_col is not None:
            aggs["ids"] = t[id_col].nunique()
        stats = execute(t.aggregate(**aggs)).iloc[0]
        record.update(
            rows=int(stats["rows"]),
            columns=len(t.columns),
            id_column=id_col or "",
            ids=int(stats["ids"]) if id_col is not None else pd.NA,
            first=pd.Timestamp(stats["first"]) if ts_col is not None else pd.NaT,
            last=pd.Timestamp(stats["last"]) if ts_col is not None else pd.NaT,
            status="ok",
            message="",
        )
        rows.append(record)
    out = pd.DataFrame(rows).set_index("table")
    cols = ["rows", "columns", "id_column", "ids", "first", "last", "status", "message"]
    out = out.reindex(columns=cols + ["description"])
    for c in ("rows", "columns", "ids"):
        out[c] = out[c].astype("Int64")
    return out


def monthly_activity(
    transactions: Any,
    *,
    period: str = "M",
    customer_id_col: str | None = None,
    timestamp_col: str | None = None,
    amount_col: str | None = None,
) -> pd.DataFrame:
    """Orders, active and new customers, revenue and refunds per period.

    Parameters
    ----------
    transactions : DataFrame, path or ibis.Table
        Canonical transactions table.
    period : {"D", "W", "M", "Q", "Y"}
        Period length.
    customer_id_col, timestamp_col, amount_col : str, optional
        The caller's names of the canonical columns.

    Returns
    -------
    pandas.DataFrame
        Index ``period`` (period start); columns ``orders`` (rows with a
        non-negative amount: zero-value orders count, refunds do
        not), ``customers`` (distinct buyers), ``new_customers``
        (buyers whose first purchase falls in the period), ``revenue`` (sum of
        all amounts, refunds included — see the refund policy in
        :mod:`crmstats.schema`) and ``refunds`` (sum of negative amounts, as a
        positive number). Periods without activity are absent. Windows
        follow :mod:`crmstats._windows`: a partial last period is left out
        (a :class:`~crmstats._windows.WindowFrame`: ``left_out()`` says
        which; ``window.start`` and ``window.end`` are the first and last
        timestamp), and
        ``new_customers`` is NaN in the data's first period, where customers
        who bought before the data cannot be told from new ones (later, a
        customer is new at its first purchase *in the data*).
    """
    t = transactions_table(transactions, customer_id_col=customer_id_col,
                           timestamp_col=timestamp_col, amount_col=amount_col)
    win = data_window(t, "timestamp", period)
    t = t.mutate(period=truncate(t.timestamp, period))
    t = t.filter(period_index(t.timestamp, period) <= win.last_complete)
    purchases = t.filter(t.amount >= 0)
    first = purchases.group_by("customer_id").aggregate(first_period=purchases.period.min())
    new = first.group_by(period=first.first_period).aggregate(new_customers=first.count())
    per = t.group_by("period").aggregate(
        orders=t.count(where=t.amount >= 0),
        customers=t.customer_id.nunique(where=t.amount >= 0),
        revenue=t.amount.sum(),
        refunds=(-t.amount).sum(where=t.amount < 0),
    )
    joined = per.left_join(new, "period").select(
        "period", "orders", "customers", "new_customers", "revenue", "refunds"
    )
    out = execute(joined.order_by("period")).set_index("period")
    out["new_customers"] = out["new_customers"].fillna(0).astype("float64")
    out["refunds"] = out["refunds"].fillna(0.0)
    out["orders"] = out["orders"].astype("int64")
    out["customers"] = out["customers"].astype("int64")
    out.index = pd.DatetimeIndex(out.index, name="period")
    # in the data's first period every buyer looks new: who bought before is not in the data
    out.loc[out.index == period_start([win.first], period)[0], "new_customers"] = np.nan
    out = WindowFrame.of(out, win)
    return out


def customer_revenue(
    transactions: Any,
    *,
    customer_id_col: str | None = None,
    timestamp_col: str | None = None,
    amount_col: str | None = None,
) -> pd.Series:
    """Net revenue per customer (purchases minus refunds), computed in-database.

    Parameters
    ----------
    transactions : DataFrame, path or ibis.Table
        Canonical transactions table.
    customer_id_col, timestamp_col, amount_col : str, optional
        The caller's names of the canonical columns.

    Returns
    -------
    pandas.Series
        Index ``customer_id`` (sorted), name ``revenue``: the sum of all
        amounts of customers with at least one purchase (refunds deducted, so
        a value can be below the purchases' sum; see the refund policy in
        :mod:`crmstats.schema`).
    """
    t = transactions_table(transactions, customer_id_col=customer_id_col,
                           timestamp_col=timestamp_col, amount_col=amount_col)
    per = t.group_by("customer_id").aggregate(
        revenue=t.amount.sum(), purchases=t.count(where=t.amount >= 0)
    )
    per = per.filter(per.purchases > 0).select("customer_id", "revenue")
    out = execute(per.order_by("customer_id")).set_index("customer_id")["revenue"]
    return out.astype("float64")


def orders_per_customer(
    transactions: Any,
    *,
    max_orders: int = 20,
    customer_id_col: str | None = None,
    timestamp_col: str | None = None,
    amount_col: str | None = None,
) -> pd.DataFrame:
    """Distribution of the number of orders per customer.

    Parameters
    ----------
    transactions : DataFrame, path or ibis.Table
        Canonical transactions table.
    max_orders : int
        Customers with more orders are pooled in the last row (labelled
        ``max_orders`` and flagged ``pooled``).
    customer_id_col, timestamp_col, amount_col : str, optional
        The caller's names of the canonical columns.

    Returns
    -------
    pandas.DataFrame
        Index ``orders`` (1, 2, ...); columns ``customers``, ``share`` (of all
        customers) and ``pooled`` (True on the pooled last row).
    """
    if int(max_orders) < 1:
        raise ValueError(f"max_orders must be at least 1, got {max_orders}")
    t = transactions_table(transactions, customer_id_col=customer_id_col,
                           timestamp_col=timestamp_col, amount_col=amount_col)
    purchases = t.filter(t.amount >= 0)
    per = purchases.group_by("customer_id").aggregate(n=purchases.count())
    capped = per.mutate(orders=per.n.clip(upper=int(max_orders)))
    dist = execute(capped.group_by("orders").aggregate(customers=capped.count()).order_by("orders"))
    dist = dist.set_index("orders")
    dist.index = dist.index.astype("int64")
    dist["customers"] = dist["customers"].astype("int64")
    dist["share"] = dist["customers"] / dist["customers"].sum()
    dist["pooled"] = dist.index == int(max_orders)
    return dist


def stage_counts(stage_events: Any, *, stages: tuple[str, ...] | None = None,
                 lead_id_col: str | None = None, stage_col: str | None = None,
                 entered_at_col: str | None = None) -> pd.DataFrame:
    """Count the leads that ever entered each sales-cycle stage.

    Parameters
    ----------
    stage_events : DataFrame, path or ibis.Table
        Canonical stage_events table.
    stages : tuple of str, optional
        Stage order; defaults to :data:`crmstats.schema.SALES_STAGES`. Stages
        present in the data but not listed follow, alphabetically.
    lead_id_col, stage_col, entered_at_col : str, optional
        The caller's names of the canonical columns.

    Returns
    -------
    pandas.DataFrame
        Index ``stage`` in funnel order; columns ``leads`` (distinct leads that
        entered it) and ``events`` (entries, re-entries included).
    """
    t = as_table(
        stage_events,
        "stage_events",
        columns={"lead_id": lead_id_col, "stage": stage_col, "entered_at": entered_at_col},
    )
    counts = execute(t.group_by("stage").aggregate(leads=t.lead_id.nunique(), events=t.count()))
    order = list(stages or SALES_STAGES)
    extra = sorted(set(counts["stage"]) - set(order))
    counts = counts.set_index("stage").reindex([s for s in order + extra
                                                if s in set(counts["stage"])])
    return counts.astype("int64")


def spend_by_channel(spend: Any, *, period: str = "M", date_col: str | None = None,
                     channel_col: str | None = None, cost_col: str | None = None) -> pd.DataFrame:
    """Marketing spend per period (rows) and channel (columns).

    Parameters
    ----------
    spend : DataFrame, path or ibis.Table
        Canonical spend table.
    period : {"D", "W", "M", "Q", "Y"}
        Period length.
    date_col, channel_col, cost_col : str, optional
        The caller's names of the canonical columns.

    Returns
    -------
    pandas.DataFrame
        Index ``period``; one column per channel (sorted by total spend,
        largest first); zeros where a channel had no spend. A partial last
        period is left out (:mod:`crmstats._windows`; spend dated on each
        period's first day records whole periods); a WindowFrame as
        :func:`monthly_activity`.
    """
    t = as_table(spend, "spend",
                 columns={"date": date_col, "channel": channel_col, "cost": cost_col})
    win = data_window(t, "date", period)
    t = t.filter(period_index(t.date, period) <= win.last_complete)
    t = t.mutate(period=truncate(t.date, period))
    long = execute(t.group_by(["period", "channel"]).aggregate(cost=t.cost.sum()))
    wide = long.pivot_table(index="period", columns="channel", values="cost",
                            aggfunc="sum", fill_value=0.0)
    wide = wide[wide.sum().sort_values(ascending=False).index]
    wide.index = pd.DatetimeIndex(wide.index, name="period")
    wide.columns.name = "channel"
    wide = WindowFrame.of(wide, win)
    return wide


def top_revenue_share(revenue: pd.Series, *, top_fraction: float = 0.2) -> float:
    """Share of net revenue that the top ``top_fraction`` of customers bring.

    The data overview's headline concentration figure: the customers' net
    revenue (:func:`customer_revenue`), a customer whose refunds exceed the
    purchases counted as zero, through :func:`crmstats.clv.pareto_analysis`.

    Parameters
    ----------
    revenue : pandas.Series
        Net revenue per customer, :func:`customer_revenue` (not modified).
    top_fraction : float
        Fraction of customers, the most valuable first (0.2: the top fifth).

    Returns
    -------
    float
        Their revenue over all customers' (0-1).

    Raises
    ------
    DataError
        When no customer has positive revenue (no share to take).

    Examples
    --------
    >>> top_revenue_share(pd.Series([60.0, 20.0, 10.0, 10.0, -5.0]))
    0.6
    """
    from crmstats.clv.segments import pareto_analysis

    if not isinstance(revenue, pd.Series):
        raise DataError(f"revenue: expected the Series of customer_revenue, "
                        f"got {type(revenue).__name__}", table="revenue")
    return pareto_analysis(revenue.clip(lower=0), top_fraction=top_fraction).top_share
