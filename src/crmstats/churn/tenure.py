"""Account tenure for survival analysis: per-account lifetimes and month-by-month panels.

Every function here runs where the data lives (the embedded DuckDB by default,
PostgreSQL or Spark when given their tables) and returns small pandas frames;
periods are numbered with :func:`crmstats._expr.period_index`, so period
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

from crmstats._expr import period_index, period_start
from crmstats.backend import execute
from crmstats.churn.revenue import _account_periods, _subscriptions
from crmstats.validation import as_table

__all__ = ["account_lifetimes", "account_months"]


def account_lifetimes(
    subscriptions: Any,
    tickets: Any = None,
    *,
    observed_starts: bool = False,
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

    Parameters
    ----------
    subscriptions, tickets : DataFrame, path or ibis.Table
        Canonical subscriptions and (optional) tickets tables.
    observed_starts : bool
        Keep only the accounts whose start is observed (``start_observed``):
        what survival curves and retention projections need.
    account_id_col, month_col, mrr_col : str, optional
        The caller's names of the canonical subscription columns.

    Returns
    -------
    pandas.DataFrame
        Index ``account_id``; columns ``start`` (first month), ``tenure``
        (months in the first spell), ``duration`` (renewals faced: ``tenure``
        if churned, else ``tenure - 1``), ``churned`` (1 = churned,
        0 = censored),
        ``reactivated`` (came back later), ``start_mrr``, ``start_observed``
        (False for accounts already paying in the data's first month: they
        may have started before the data, so their tenure is at least the
        one shown; leave them out of survival curves, :mod:`crmstats._windows`)
        and with tickets
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
    out = execute(per).set_index("account_id").sort_index()
    data_last = int(out["last_p"].max())  # every account is in out: the data's last month
    out["tenure"] = (out["spell_end"] - out["start_p"] + 1).astype("int64")
    out["churned"] = (out["spell_end"] < data_last).astype("int64")
    out["reactivated"] = (out["last_p"] > out["spell_end"]).astype("int64")
    out["duration"] = out["tenure"] - 1 + out["churned"]
    out["start"] = period_start(out["start_p"], "M")
    # an account paying in the data's first month may have started long before
    out["start_observed"] = out["start_p"] > int(out["start_p"].min())
    if observed_starts:
        out = out[out["start_observed"]]
    result = out[["start", "tenure", "duration", "churned", "reactivated", "start_mrr",
                  "start_observed"]].copy()
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
