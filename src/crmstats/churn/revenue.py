"""Key-account revenue: the MRR bridge, NRR and GRR by cohort, cross-sell and upsell (Ibis).

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
from crmstats.backend import execute, read_table
from crmstats.exceptions import DataError
from crmstats.validation import as_table

__all__ = ["cross_sell", "grr_by_cohort", "mrr_bridge", "nrr_by_cohort"]


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
        not annualised). The first period is NaN but for ``end``: its start
        lies before the data (:mod:`crmstats._windows`), so whether its MRR is
        new or was there before is not observed. Account counts are floats
        for that NaN. Subscriptions record whole months, so no period is
        partial (a quarter is its last month's snapshot, and a quarter
        without it is absent). ``new`` is MRR of an account without MRR
        earlier *in the data*: an account that paid before the data,
        stopped, and came back counts as new, not reactivated.
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
    # the first period has no observed start: its accounts held MRR before the data, or
    # not, so none of its moves is known (every account would look new)
    moves = ["start", "new", "expansion", "contraction", "churned", "reactivated",
             "accounts_start", "accounts_churned", "logo_churn_rate", "nrr", "grr"]
    out[["accounts_start", "accounts_churned"]] = out[["accounts_start",
                                                       "accounts_churned"]].astype("float64")
    out.loc[idx[0], moves] = np.nan
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
        it returns. The data's first cohort is NaN: it holds every account
        paying in the first period, whether it started then or before the
        data (:mod:`crmstats._windows`).
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
    span = execute(ap.aggregate(first=ap.p.min(), last=ap.p.max())).iloc[0]
    table = cells.pivot(index="c", columns="age", values="mrr").sort_index()
    table = table.reindex(columns=range(int(cells["age"].max()) + 1)).fillna(0.0)
    cohorts = table.index.to_numpy(dtype="int64")
    beyond = cohorts[:, None] + np.arange(table.shape[1])[None, :] > int(span["last"])
    # the data's first cohort is every account paying then, started then or before: no cohort
    first = (cohorts == int(span["first"]))[:, None]
    table = table.div(table[0], axis=0).mask(beyond | first)
    table.index = pd.DatetimeIndex(period_start(cohorts, period), name="cohort")
    table.columns = pd.Index(table.columns.astype(int), name="age")
    return table


def cross_sell(
    data: Any,
    *,
    category_col: str | None = None,
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
    category_col : str, optional
        The caller's name of the ``product_category`` column.
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
        first period) for transactions. On transactions a partial last
        period is left out (:mod:`crmstats._windows`; subscriptions record
        whole months). A category is new to an account when the account did
        not hold or buy it earlier *in the data*.
    """
    period = period_unit(period)
    if table is None:
        cols = read_table(data, table="subscriptions").columns
        table = "subscriptions" if (account_id_col or "account_id") in cols else "transactions"
    if table == "subscriptions":
        if period != "M":
            raise ValueError("cross_sell on subscriptions is computed per month (period='M')")
        s = _subscriptions(data, account_id_col, month_col, mrr_col, category_col=category_col)
        _require_category(s, "subscriptions", category_col or "product_category")
        s = s.filter(s.mrr > 0)
        cells = s.group_by([s.account_id.name("aid"), s.product_category,
                            s.month.pipe(period_index, "M").name("p")]).aggregate(
            revenue=s.mrr.sum())
    elif table == "transactions":
        tx = as_table(data, "transactions", columns={
            "customer_id": customer_id_col, "timestamp": timestamp_col, "amount": amount_col,
            "product_category": category_col})
        _require_category(tx, "transactions", category_col or "product_category")
        # a partial last period is left out (crmstats._windows)
        last = data_window(tx, "timestamp", period).last_complete
        tx = tx.filter((tx.amount >= 0) & tx.product_category.notnull()
                       & (tx.timestamp.pipe(period_index, period) <= last))
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
                        column=category_col or "product_category")
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
