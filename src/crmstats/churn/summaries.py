"""Cohort, churn, key-account and service aggregations, written as Ibis expressions.

Every function here runs where the data lives (the embedded DuckDB by default,
PostgreSQL or Spark when given their tables) and returns small pandas frames.
Periods are numbered with :func:`crmstats._expr.period_index`, so period
arithmetic is integer arithmetic that every backend supports.

References
----------
.. [1] Fader, P. S. and Hardie, B. G. S. (2007). How to project customer
   retention. Journal of Interactive Marketing 21(1), 76-90.
"""

from __future__ import annotations

from typing import Any

import ibis
import numpy as np
import pandas as pd

from crmstats._expr import period_index, period_start, period_unit
from crmstats.exceptions import DataError
from crmstats.io import as_table, execute, read_table, transactions_table
from crmstats.validation import align_ids

__all__ = [
    "account_lifetimes",
    "account_months",
    "churn_rate",
    "cohort_table",
    "cross_sell",
    "grr_by_cohort",
    "mrr_bridge",
    "nrr_by_cohort",
    "retention_matrix",
    "service_kpis",
]

_METRICS = ("customers", "revenue", "orders")


def _cohort_rows(transactions, period, cohort_col, customers, customer_id_col, timestamp_col,
                 amount_col):
    """Return the transactions and their (customer, period) cells with ``age`` and ``cohort``.

    Each cell carries ``orders`` (purchases, refunds excluded) and ``revenue``
    (net of refunds); aggregating to cells first spares the cohort counts a
    distinct count over every transaction.
    """
    t = transactions_table(transactions, customer_id_col=customer_id_col,
                           timestamp_col=timestamp_col,
                           amount_col=amount_col)
    t = t.mutate(p=period_index(t.timestamp, period))
    cells = t.group_by(["customer_id", "p"]).aggregate(
        orders=t.count(where=t.amount >= 0), revenue=t.amount.sum())
    buys = cells.filter(cells.orders > 0)
    first = buys.group_by("customer_id").aggregate(first_p=buys.p.min())
    j = cells.inner_join(first, "customer_id").mutate(age=lambda x: x.p - x.first_p)
    j = j.filter(j.age >= 0)
    if cohort_col is None:
        return t, j.mutate(cohort=j.first_p)
    if customers is None:
        raise ValueError("cohort_col needs the customers table (customers=...)")
    c = as_table(customers, "customers", columns={"customer_id": customer_id_col})
    if cohort_col not in c.columns:
        raise DataError(f"customers table: no column {cohort_col!r} to form cohorts; "
                        f"columns: {', '.join(c.columns)}", table="customers",
                        column=cohort_col)
    c = c.select("customer_id", cohort=c[cohort_col].cast("string"))
    j, c = align_ids(j, c, "customer_id")
    j = j.left_join(c, "customer_id").mutate(
        cohort=lambda x: ibis.coalesce(x.cohort, ibis.literal("(unknown)")))
    return t, j


def cohort_table(
    transactions: Any,
    *,
    period: str = "M",
    metric: str = "customers",
    cohort_col: str | None = None,
    customers: Any = None,
    max_age: int | None = None,
    customer_id_col: str | None = None,
    timestamp_col: str | None = None,
    amount_col: str | None = None,
) -> pd.DataFrame:
    """Acquisition cohorts × periods since acquisition.

    A customer's cohort is the period of its first purchase (or, with
    ``cohort_col``, that column of the customers table, e.g. the acquisition
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
    cohort_col : str, optional
        Column of ``customers`` defining the cohorts instead of the first
        purchase period (ages still count from each customer's first purchase).
    customers : DataFrame, path or ibis.Table, optional
        Canonical customers table; required with ``cohort_col``.
    max_age : int, optional
        Keep ages ``0..max_age``.
    customer_id_col, timestamp_col, amount_col : str, optional
        The caller's names of the canonical columns.

    Returns
    -------
    pandas.DataFrame
        Index: the cohorts (period starts, or ``cohort_col`` values); columns
        ``0, 1, 2, ...`` (age in periods); cells the metric, 0 where nothing
        happened (and NaN where the age lies beyond the data for that cohort).
    """
    period = period_unit(period)
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {_METRICS}; got {metric!r}")
    t, j = _cohort_rows(transactions, period, cohort_col, customers, customer_id_col,
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
    if cohort_col is None:
        # ages beyond the last observed period are unknown, not zero
        last = int(execute(t.p.max()))
        cohorts = table.index.to_numpy(dtype="int64")
        ages = np.arange(table.shape[1])
        beyond = cohorts[:, None] + ages[None, :] > last
        table = table.fillna(0.0).mask(beyond)
        table.index = pd.DatetimeIndex(period_start(cohorts, period), name="cohort")
    else:
        table = table.fillna(0.0)
        table.index.name = cohort_col
    table.columns = pd.Index(table.columns.astype(int), name="age")
    if metric != "revenue":
        table = table.astype("Float64").astype(float)
    return table


def retention_matrix(transactions: Any, **kwargs) -> pd.DataFrame:
    """Share of each cohort's customers buying at each age (age 0 is 1.0).

    Takes the arguments of :func:`cohort_table` (``metric`` is "customers").
    With acquisition-period cohorts every customer of a cohort is observed
    for the same ages (later ages are NaN). With ``cohort_col`` a cohort mixes
    customers acquired at different times, so the share at age ``a`` is
    taken among the cohort's customers whose first purchase lies at least
    ``a`` periods before the data's last period — those who could have bought
    at that age — and is NaN where none could.

    Returns
    -------
    pandas.DataFrame
        Shaped like :func:`cohort_table`.
    """
    kwargs.pop("metric", None)
    counts = cohort_table(transactions, metric="customers", **kwargs)
    if kwargs.get("cohort_col") is None:
        return counts.div(counts[0], axis=0)
    exposed = _exposure(transactions, counts, **kwargs)
    return counts.div(exposed.where(exposed > 0))


def _exposure(transactions, counts, *, period="M", cohort_col=None, customers=None,
              max_age=None, customer_id_col=None, timestamp_col=None, amount_col=None):
    """Count the customers of each ``cohort_col`` cohort observable at each age."""
    period = period_unit(period)
    t, j = _cohort_rows(transactions, period, cohort_col, customers, customer_id_col,
                        timestamp_col, amount_col)
    starts = j.filter(j.age == 0)
    by_first = execute(starts.group_by(["cohort", "first_p"]).aggregate(
        n=starts.count(where=starts.orders > 0)))
    last = int(execute(t.p.max()))
    ages = counts.columns.to_numpy(dtype="int64")
    firsts = by_first["first_p"].to_numpy(dtype="int64")
    # customer groups by first period, observable at age a when first_p + a <= last
    seen = (firsts[:, None] + ages[None, :] <= last) * by_first["n"].to_numpy(float)[:, None]
    exposed = pd.DataFrame(seen, columns=counts.columns).groupby(
        by_first["cohort"].to_numpy()).sum()
    return exposed.reindex(counts.index).fillna(0.0).rename_axis(counts.index.name)


def churn_rate(
    transactions: Any,
    *,
    period: str = "M",
    churned_after: int = 3,
    customer_id_col: str | None = None,
    timestamp_col: str | None = None,
    amount_col: str | None = None,
) -> pd.DataFrame:
    """Churn per period under an inactivity rule, for non-contractual businesses.

    A customer counts as **active** in a period while its last purchase is
    fewer than ``churned_after`` periods old, and **churns** in the period
    where that purchase becomes ``churned_after`` periods old without a new
    one (so churn is known ``churned_after`` periods after the last
    purchase). A purchase by a churned customer makes it active again
    (``returned``).

    Parameters
    ----------
    transactions : DataFrame, path or ibis.Table
        Canonical transactions table.
    period : {"D", "W", "M", "Q", "Y"}
        Period of the rule and of the output.
    churned_after : int
        Periods without a purchase after which a customer has churned.
    customer_id_col, timestamp_col, amount_col : str, optional
        The caller's names of the canonical columns.

    Returns
    -------
    pandas.DataFrame
        Index ``period`` (start); columns ``active_start`` (active at the
        start of the period), ``new`` (first purchases), ``returned``,
        ``churned``, ``active_end`` and ``churn_rate`` = churned ÷
        active_start. Periods whose churn cannot be known yet (the last
        ``churned_after - 1``) are left out.
    """
    period = period_unit(period)
    n = int(churned_after)
    if n < 1:
        raise ValueError(f"churned_after must be at least 1 period, got {churned_after}")
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
    last = int(execute(t.timestamp.pipe(period_index, period).max()))
    first = int(execute(buys.timestamp.pipe(period_index, period).min()))
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
    }).astype("int64")
    with np.errstate(divide="ignore", invalid="ignore"):
        out["churn_rate"] = np.where(out["active_start"] > 0,
                                     out["churned"] / out["active_start"].where(
                                         out["active_start"] > 0, 1), np.nan)
    # churn in the last n-1 periods is not knowable yet
    out = out.iloc[: max(len(out) - (n - 1), 0)]
    if out.empty or int(out["active_start"].sum()) == 0:
        raise DataError(
            f"transactions table: the purchases span {last - first + 1} period(s) of "
            f"{period!r}; churn after {n} inactive period(s) needs more than {n} (and "
            "customers active at a period's start): use a shorter period or a smaller "
            "churned_after", table="transactions", column=timestamp_col or "timestamp")
    out.index = pd.DatetimeIndex(period_start(out.index, period), name="period")
    return out


# ----------------------------------------------------------------------------- key accounts


def _subscriptions(subscriptions, account_id_col, month_col, mrr_col, category_col=None):
    cols = {"account_id": account_id_col, "month": month_col, "mrr": mrr_col}
    if category_col is not None:
        cols["product_category"] = category_col
    return as_table(subscriptions, "subscriptions", columns=cols)


def _account_periods(s, period: str):
    """MRR per account and period: the monthly sum over products, taken at the period's end."""
    monthly = s.group_by(["account_id", s.month.pipe(period_index, "M").name("m")]).aggregate(
        mrr=s.mrr.sum())
    monthly = monthly.filter(monthly.mrr > 0)
    if period == "M":
        return monthly.select("account_id", p=monthly.m, mrr=monthly.mrr)
    if period != "Q":
        raise ValueError("key-account periods are 'M' (months) or 'Q' (quarters)")
    # a quarter's MRR is the MRR of its last month (a quarter-end snapshot)
    last = monthly.mutate(q=(monthly.m / 3.0).floor()).filter(lambda x: x.m % 3 == 2)
    return last.select("account_id", p=last.q, mrr=last.mrr)


def mrr_bridge(
    subscriptions: Any,
    *,
    period: str = "M",
    account_id_col: str | None = None,
    month_col: str | None = None,
    mrr_col: str | None = None,
) -> pd.DataFrame:
    """Bridge each period's starting MRR to its ending MRR (the MRR bridge).

    Per account, the MRR of a period is compared with the previous period's:
    an account with MRR for the first time is **new**; one whose MRR grew is
    **expansion**, fell but stayed positive **contraction**; one that had MRR
    and has none is **churned** (its previous MRR is lost); one that had MRR
    at some earlier time, none in the previous period and some now is
    **reactivated**. The identity ``start + new + expansion − contraction −
    churned + reactivated = end`` holds every period.

    Parameters
    ----------
    subscriptions : DataFrame, path or ibis.Table
        Canonical subscriptions table (MRR per account, month and product).
    period : {"M", "Q"}
        Months, or quarters (MRR at each quarter's last month).
    account_id_col, month_col, mrr_col : str, optional
        The caller's names of the canonical columns.

    Returns
    -------
    pandas.DataFrame
        Index ``period``; columns ``start``, ``new``, ``expansion``,
        ``contraction``, ``churned``, ``reactivated``, ``end`` (MRR),
        ``accounts_start``, ``accounts_churned``, ``logo_churn_rate``,
        ``nrr`` = (start + expansion − contraction − churned) ÷ start and
        ``grr`` = (start − contraction − churned) ÷ start (per period,
        not annualised).
    """
    period = str(period).upper()
    s = _subscriptions(subscriptions, account_id_col, month_col, mrr_col)
    ap = _account_periods(s, period)
    w = ibis.window(group_by=ap.account_id, order_by=ap.p)
    ap = ap.mutate(prev_p=ap.p.lag().over(w), prev_mrr=ap.mrr.lag().over(w),
                   next_p=ap.p.lead().over(w))
    consecutive = ap.prev_p.notnull() & (ap.p - ap.prev_p == 1)
    delta = ap.mrr - ap.prev_mrr
    zero = ibis.literal(0.0)
    moves = ap.group_by("p").aggregate(
        end=ap.mrr.sum(),
        accounts_end=ap.count(),
        new=ap.mrr.sum(where=ap.prev_p.isnull()),
        reactivated=ap.mrr.sum(where=ap.prev_p.notnull() & ~consecutive),
        expansion=ibis.ifelse(consecutive & (delta > 0), delta, zero).sum(),
        contraction=ibis.ifelse(consecutive & (delta < 0), -delta, zero).sum(),
    )
    lost = ap.filter(ap.next_p.isnull() | (ap.next_p - ap.p > 1))
    lost = lost.group_by(p=lost.p + 1).aggregate(churned=lost.mrr.sum(),
                                                 accounts_churned=lost.count())
    m = execute(moves).set_index("p")
    c = execute(lost).set_index("p")
    if m.empty:
        raise DataError("subscriptions table: no positive MRR", table="subscriptions",
                        column="mrr")
    idx = np.arange(int(m.index.min()), int(m.index.max()) + 1)
    out = m.reindex(idx).fillna(0.0)
    out = out.join(c.reindex(idx).fillna(0.0))
    out["start"] = out["end"].shift(1, fill_value=0.0)
    out["accounts_start"] = out["accounts_end"].shift(1, fill_value=0).astype("int64")
    out["accounts_churned"] = out["accounts_churned"].astype("int64")
    start = out["start"].where(out["start"] > 0)
    out["nrr"] = (out["start"] + out["expansion"] - out["contraction"] - out["churned"]) / start
    out["grr"] = (out["start"] - out["contraction"] - out["churned"]) / start
    out["logo_churn_rate"] = out["accounts_churned"] / out["accounts_start"].where(
        out["accounts_start"] > 0)
    cols = ["start", "new", "expansion", "contraction", "churned", "reactivated", "end",
            "accounts_start", "accounts_churned", "logo_churn_rate", "nrr", "grr"]
    out = out[cols]
    out.index = pd.DatetimeIndex(period_start(idx, period), name="period")
    return out


def nrr_by_cohort(
    subscriptions: Any,
    *,
    period: str = "M",
    account_id_col: str | None = None,
    month_col: str | None = None,
    mrr_col: str | None = None,
) -> pd.DataFrame:
    """Net revenue retention of each start cohort, by periods since the start.

    Parameters
    ----------
    subscriptions : DataFrame, path or ibis.Table
        Canonical subscriptions table.
    period : {"M", "Q"}
        Months, or quarters (each quarter's MRR is its last month's).
    account_id_col, month_col, mrr_col : str, optional
        The caller's names of the canonical columns.

    Returns
    -------
    pandas.DataFrame
        Index: the cohorts (period of each account's first MRR); columns
        ``0, 1, ...``: the cohort's MRR at that age ÷ its MRR at age 0
        (NaN beyond the data). Expansion counts; reactivated MRR counts where
        it returns.
    """
    return _revenue_retention(subscriptions, period, account_id_col, month_col, mrr_col,
                              gross=False)


def grr_by_cohort(
    subscriptions: Any,
    *,
    period: str = "M",
    account_id_col: str | None = None,
    month_col: str | None = None,
    mrr_col: str | None = None,
) -> pd.DataFrame:
    """Gross revenue retention of each start cohort, by periods since the start.

    Like :func:`nrr_by_cohort`, but each account's MRR counts at most at its
    starting MRR, so only contraction and churn move it: the sum over the
    cohort's accounts of ``min(MRR at that age, MRR at age 0)`` ÷ the
    cohort's MRR at age 0 (at most 1).

    Returns
    -------
    pandas.DataFrame
        Shaped like :func:`nrr_by_cohort`.
    """
    return _revenue_retention(subscriptions, period, account_id_col, month_col, mrr_col,
                              gross=True)


def _revenue_retention(subscriptions, period, account_id_col, month_col, mrr_col, *, gross):
    period = str(period).upper()
    s = _subscriptions(subscriptions, account_id_col, month_col, mrr_col)
    ap = _account_periods(s, period)
    first = ap.group_by("account_id").aggregate(c=ap.p.min())
    j = ap.inner_join(first, "account_id")
    if gross:
        base = j.filter(j.p == j.c).select("account_id", base=j.mrr)
        j = j.inner_join(base, "account_id")
        j = j.mutate(mrr=ibis.least(j.mrr, j.base))
    cells = execute(j.group_by([j.c, (j.p - j.c).name("age")]).aggregate(mrr=j.mrr.sum()))
    if cells.empty:
        raise DataError("subscriptions table: no positive MRR", table="subscriptions",
                        column="mrr")
    last = int(execute(ap.p.max()))
    table = cells.pivot(index="c", columns="age", values="mrr").sort_index()
    table = table.reindex(columns=range(int(cells["age"].max()) + 1)).fillna(0.0)
    cohorts = table.index.to_numpy(dtype="int64")
    beyond = cohorts[:, None] + np.arange(table.shape[1])[None, :] > last
    table = table.div(table[0], axis=0).mask(beyond)
    table.index = pd.DatetimeIndex(period_start(cohorts, period), name="cohort")
    table.columns = pd.Index(table.columns.astype(int), name="age")
    return table


def cross_sell(
    data: Any,
    *,
    category_col: str = "product_category",
    period: str = "M",
    table: str | None = None,
    account_id_col: str | None = None,
    month_col: str | None = None,
    mrr_col: str | None = None,
    customer_id_col: str | None = None,
    timestamp_col: str | None = None,
    amount_col: str | None = None,
) -> pd.DataFrame:
    """Cross-sell and upsell of existing accounts per period.

    Works on subscriptions (what each account holds each month) or on
    transactions (what each customer buys each period). A **cross-sell** is
    an account taking a category it never had, after its first period; an
    **upsell** is more revenue in a category than in the period before (the
    category held or bought in both periods).

    Parameters
    ----------
    data : DataFrame, path or ibis.Table
        Canonical subscriptions or transactions table with a category column.
    category_col : str
        The caller's name of the product category column.
    period : {"D", "W", "M", "Q", "Y"}
        Output period; subscriptions are monthly, so ``"M"`` only for them.
    table : {"subscriptions", "transactions"}, optional
        Which table ``data`` is; by default subscriptions when it has the
        account id column (``account_id`` or ``account_id_col``), else
        transactions.
    account_id_col, month_col, mrr_col : str, optional
        The caller's names of the canonical subscription columns.
    customer_id_col, timestamp_col, amount_col : str, optional
        The caller's names of the canonical transaction columns.

    Returns
    -------
    pandas.DataFrame
        Index ``period``; columns ``accounts`` (holding MRR, or buying, in the
        period), ``categories_per_account`` (mean distinct categories held or
        bought in the period), ``breadth`` (mean distinct categories the
        period's accounts have ever held or bought, up to the period),
        ``cross_sell_accounts``, ``cross_sell_rate``, ``upsell_accounts`` and
        ``upsell_rate``. The rates divide by the previous period's accounts
        for subscriptions, and by the period's returning buyers (past their
        first period) for transactions.
    """
    period = period_unit(period)
    if table is None:
        cols = read_table(data, table="subscriptions").columns
        table = "subscriptions" if (account_id_col or "account_id") in cols else "transactions"
    if table == "subscriptions":
        if period != "M":
            raise ValueError("cross_sell on subscriptions is computed per month (period='M')")
        s = _subscriptions(data, account_id_col, month_col, mrr_col, category_col=category_col)
        _require_category(s, "subscriptions", category_col)
        s = s.filter(s.mrr > 0)
        cells = s.group_by([s.account_id.name("aid"), s.product_category,
                            s.month.pipe(period_index, "M").name("p")]).aggregate(
            revenue=s.mrr.sum())
    elif table == "transactions":
        tx = as_table(data, "transactions", columns={
            "customer_id": customer_id_col, "timestamp": timestamp_col, "amount": amount_col,
            "product_category": category_col})
        _require_category(tx, "transactions", category_col)
        tx = tx.filter((tx.amount >= 0) & tx.product_category.notnull())
        cells = tx.group_by([tx.customer_id.name("aid"), tx.product_category,
                             tx.timestamp.pipe(period_index, period).name("p")]).aggregate(
            revenue=tx.amount.sum())
    else:
        raise ValueError(f"table must be 'subscriptions' or 'transactions'; got {table!r}")
    w = ibis.window(group_by=[cells.aid, cells.product_category], order_by=cells.p)
    acc_first = cells.group_by("aid").aggregate(first_p=cells.p.min())
    cells = cells.mutate(prev_p=cells.p.lag().over(w), prev_rev=cells.revenue.lag().over(w))
    cells = cells.inner_join(acc_first, "aid")
    added = cells.prev_p.isnull() & (cells.p > cells.first_p)
    upsell = (cells.prev_p == cells.p - 1) & (cells.revenue > cells.prev_rev)
    # categories ever held: cumulative count of first-time categories per account
    per_acc = cells.group_by(["aid", "p"]).aggregate(
        new_cats=cells.count(where=cells.prev_p.isnull()), first_p=cells.first_p.max())
    wa = ibis.window(group_by=per_acc.aid, order_by=per_acc.p, preceding=None, following=0)
    per_acc = per_acc.mutate(ever=per_acc.new_cats.sum().over(wa))
    breadth = per_acc.group_by("p").aggregate(
        breadth=per_acc.ever.mean(),
        returning=per_acc.count(where=per_acc.p > per_acc.first_p))
    per = cells.group_by("p").aggregate(
        accounts=cells.aid.nunique(),
        holdings=cells.count(),
        cross_sell_accounts=cells.aid.nunique(where=added),
        upsell_accounts=cells.aid.nunique(where=upsell),
    )
    out = execute(per).set_index("p").sort_index()
    if out.empty:
        what = "MRR" if table == "subscriptions" else "purchase"
        raise DataError(f"{table} table: no positive {what} with a category", table=table,
                        column=category_col)
    out = out.join(execute(breadth).set_index("p"))
    idx = np.arange(int(out.index.min()), int(out.index.max()) + 1)
    out = out.reindex(idx)
    counts = ["accounts", "holdings", "cross_sell_accounts", "upsell_accounts", "returning"]
    out[counts] = out[counts].fillna(0)
    base = out["accounts"].shift(1) if table == "subscriptions" else out["returning"]
    out["categories_per_account"] = out["holdings"] / out["accounts"].where(out["accounts"] > 0)
    out["cross_sell_rate"] = out["cross_sell_accounts"] / base.where(base > 0)
    out["upsell_rate"] = out["upsell_accounts"] / base.where(base > 0)
    out = out[["accounts", "categories_per_account", "breadth", "cross_sell_accounts",
               "cross_sell_rate", "upsell_accounts", "upsell_rate"]]
    for c in ("accounts", "cross_sell_accounts", "upsell_accounts"):
        out[c] = out[c].astype("int64")
    out.index = pd.DatetimeIndex(period_start(idx, period), name="period")
    return out


def _require_category(t, table: str, category_col: str) -> None:
    if "product_category" not in t.columns:
        raise DataError(f"{table} table: no category column {category_col!r}; columns: "
                        f"{', '.join(t.columns)}", table=table, column=category_col)


# ----------------------------------------------------------------------------- service


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
        ``resolved``, ``open`` (unresolved), ``median_hours`` and
        ``p90_hours`` to resolve, ``within_target`` (share of resolved tickets
        resolved within ``target_hours``) and, with ``active_customers`` or
        ``subscriptions``, ``active_customers`` and
        ``tickets_per_active_customer``.
    """
    period = period_unit(period)
    t = as_table(tickets, "tickets", columns={
        "ticket_id": ticket_id_col, "customer_id": customer_id_col,
        "opened_at": opened_at_col, "resolved_at": resolved_at_col})
    if "resolved_at" not in t.columns:
        t = t.mutate(resolved_at=ibis.null("timestamp"))
    active = None
    if subscriptions is not None:
        s = _subscriptions(subscriptions, None, None, None)
        s = s.filter(s.mrr > 0)
        ids = s.select(aid=s.account_id.cast("string")).distinct()
        t = t.semi_join(ids, t.customer_id.cast("string") == ids.aid)
        per_active = s.group_by(p=period_index(s.month, period)).aggregate(
            n=s.account_id.nunique())
        active = execute(per_active).set_index("p")["n"]
    hours = (t.resolved_at.epoch_seconds() - t.opened_at.epoch_seconds()) / 3600.0
    t = t.mutate(p=period_index(t.opened_at, period), hours=hours)
    per = t.group_by("p").aggregate(
        tickets=t.count(),
        customers=t.customer_id.nunique(),
        resolved=t.count(where=t.resolved_at.notnull()),
        median_hours=t.hours.quantile(0.5),
        p90_hours=t.hours.quantile(0.9),
        within=t.count(where=t.hours <= float(target_hours)),
    )
    out = execute(per).set_index("p").sort_index()
    if out.empty:
        raise DataError("tickets table: no ticket of the key accounts in subscriptions",
                        table="tickets", column="customer_id")
    out["open"] = out["tickets"] - out["resolved"]
    out["within_target"] = out["within"] / out["resolved"].where(out["resolved"] > 0)
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


def account_lifetimes(
    subscriptions: Any,
    tickets: Any = None,
    *,
    account_id_col: str | None = None,
    month_col: str | None = None,
    mrr_col: str | None = None,
) -> pd.DataFrame:
    """One row per key account: its first spell's tenure, churn flag and service record.

    The first spell runs from the account's first month with MRR to the month
    before its first month without (later returns count as reactivation, not
    as the same lifetime). Accounts still paying in the data's last month are
    censored. ``duration`` is the survival time for
    :func:`~crmstats.churn.survival_curves` and the other survival functions:
    an account that churned after paying ``tenure`` months left at its
    ``tenure``-th renewal; one still paying has survived ``tenure - 1``
    renewals, and whether it renews next month is not yet observed. Using
    ``tenure`` for both would put censored accounts at risk of a renewal they
    have not faced and bias the survival curve upwards.

    With ``tickets``, the account's tickets opened during the spell give the
    churn drivers ``tickets_per_month`` and ``resolution_days`` (mean days to
    resolve; the median over accounts where an account has no resolved
    ticket, flagged by ``no_resolved_ticket``).

    Returns
    -------
    pandas.DataFrame
        Index ``account_id``; columns ``start`` (first month), ``tenure``
        (months in the first spell), ``duration`` (renewals faced: ``tenure``
        if churned, else ``tenure - 1``), ``churned`` (1 = churned,
        0 = censored),
        ``reactivated`` (came back later), ``start_mrr`` and with tickets
        ``tickets``, ``tickets_per_month``, ``resolution_days``,
        ``no_resolved_ticket``.
    """
    s = _subscriptions(subscriptions, account_id_col, month_col, mrr_col)
    ap = _account_periods(s, "M")
    w = ibis.window(group_by=ap.account_id, order_by=ap.p)
    ap = ap.mutate(next_p=ap.p.lead().over(w))
    gap = ap.next_p.isnull() | (ap.next_p - ap.p > 1)
    firsts = ap.group_by("account_id").aggregate(start_p=ap.p.min(), last_p=ap.p.max())
    g = ap.filter(gap)
    ends = g.group_by("account_id").aggregate(spell_end=g.p.min())
    per = firsts.inner_join(ends, "account_id")
    start_mrr = ap.inner_join(firsts, "account_id").filter(lambda x: x.p == x.start_p)
    start_mrr = start_mrr.select("account_id", start_mrr=start_mrr.mrr)
    per = per.inner_join(start_mrr, "account_id")
    data_last = int(execute(ap.p.max()))
    out = execute(per).set_index("account_id").sort_index()
    out["tenure"] = (out["spell_end"] - out["start_p"] + 1).astype("int64")
    out["churned"] = (out["spell_end"] < data_last).astype("int64")
    out["reactivated"] = (out["last_p"] > out["spell_end"]).astype("int64")
    out["duration"] = out["tenure"] - 1 + out["churned"]
    out["start"] = period_start(out["start_p"], "M")
    result = out[["start", "tenure", "duration", "churned", "reactivated", "start_mrr"]].copy()
    if tickets is not None:
        tk = as_table(tickets, "tickets")
        if "resolved_at" not in tk.columns:
            tk = tk.mutate(resolved_at=ibis.null("timestamp"))
        tk = tk.mutate(p=period_index(tk.opened_at, "M"),
                       days=(tk.resolved_at.epoch_seconds() - tk.opened_at.epoch_seconds())
                       / 86400.0)
        spell = per.select("account_id", "start_p", "spell_end")
        j = tk.inner_join(spell, tk.customer_id.cast("string") == spell.account_id.cast("string"))
        j = j.filter((j.p >= j.start_p) & (j.p <= j.spell_end))
        agg = execute(j.group_by(j.account_id).aggregate(
            tickets=j.count(), resolution_days=j.days.mean())).set_index("account_id")
        agg.index = agg.index.astype(result.index.dtype) if len(agg) else agg.index
        result = result.join(agg, how="left")
        result["tickets"] = result["tickets"].fillna(0).astype("int64")
        result["tickets_per_month"] = result["tickets"] / result["tenure"]
        result["no_resolved_ticket"] = result["resolution_days"].isna().astype("int64")
        result["resolution_days"] = result["resolution_days"].fillna(
            result["resolution_days"].median())
    return result


def account_months(
    subscriptions: Any,
    tickets: Any = None,
    *,
    window: int = 3,
    account_id_col: str | None = None,
    month_col: str | None = None,
    mrr_col: str | None = None,
) -> pd.DataFrame:
    """Month-by-month risk intervals of key accounts, for churn drivers that change over time.

    Each account's first spell (see :func:`account_lifetimes`) becomes one row
    per month at risk, in counting-process form: the interval ``(entry, exit]``
    of tenure, ``churned`` = 1 on the interval that ends in churn. With
    ``tickets``, ``tickets_recent`` counts the account's tickets opened in the
    ``window`` months before the month of the interval's end, and
    ``resolution_days`` is the account's mean days to resolve over all its
    resolved tickets (its service level, a trait of the account; the median
    over accounts where it has none), with ``log_resolution_days``. Feed it
    to :class:`crmstats.churn.CoxModel` (whose defaults are these columns:
    ``entry``, ``exit``, ``churned``).

    The per-account spells and the per-account, per-month ticket counts are
    aggregated in the database; only those small frames are expanded here.

    Returns
    -------
    pandas.DataFrame
        Columns ``account_id``, ``entry``, ``exit``, ``churned`` and, with
        tickets, ``tickets_recent``, ``resolution_days``, ``log_resolution_days``.
    """
    # the spells only: the ticket drivers are computed below, per month and per account
    life = account_lifetimes(subscriptions, account_id_col=account_id_col,
                             month_col=month_col, mrr_col=mrr_col)
    # intervals at risk: ages 1..tenure (churned) or 1..tenure-1 (censored at the data's end)
    n_int = life["duration"].clip(lower=0).to_numpy()
    owner = np.repeat(np.arange(len(life)), n_int)
    offsets = np.arange(n_int.sum()) - np.repeat(np.cumsum(n_int) - n_int, n_int)
    exit_age = offsets + 1
    out = pd.DataFrame({
        "account_id": life.index.to_numpy()[owner],
        "entry": (exit_age - 1).astype(float),
        "exit": exit_age.astype(float),
        "churned": ((exit_age == life["tenure"].to_numpy()[owner])
                    & (life["churned"].to_numpy()[owner] == 1)).astype("int64"),
    })
    if tickets is not None:
        start = life["start"].dt.year.to_numpy() * 12 + life["start"].dt.month.to_numpy() - 1
        check_month = start[owner] + exit_age  # the month whose start the interval ends at
        tk = as_table(tickets, "tickets")
        tk = tk.mutate(m=period_index(tk.opened_at, "M"), cid=tk.customer_id.cast("string"))
        counts = execute(tk.group_by(["cid", "m"]).aggregate(n=tk.count()))
        key = pd.Series(counts["n"].to_numpy(),
                        index=pd.MultiIndex.from_arrays([counts["cid"], counts["m"]]))
        acc = out["account_id"].astype(str).to_numpy()
        recent = np.zeros(len(out), dtype="int64")
        for lag in range(1, int(window) + 1):
            idx = pd.MultiIndex.from_arrays([acc, check_month - lag])
            recent += key.reindex(idx).fillna(0).to_numpy(dtype="int64")
        out["tickets_recent"] = recent
        if "resolved_at" in tk.columns:
            days = (tk.resolved_at.epoch_seconds() - tk.opened_at.epoch_seconds()) / 86400.0
            level = execute(tk.group_by("cid").aggregate(d=days.mean())).set_index("cid")["d"]
        else:
            level = pd.Series(dtype=float)
        level = level.reindex(life.index.astype(str))
        level = level.fillna(level.median()).to_numpy()
        out["resolution_days"] = level[owner]
        out["log_resolution_days"] = np.log(out["resolution_days"].clip(lower=1e-3))
    return out
