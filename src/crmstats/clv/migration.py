"""How customer value moves: value tiers at two dates, the migration matrix and the CLV bridge.

:func:`value_migration` values every customer at two dates with the same
BG/NBD [1]_ and Gamma-Gamma [2]_ models, places them in the tiers of the
customer value pyramid [3]_ at both dates, and explains the change in total
customer lifetime value (CLV) by where it came from:

===============  ==============================================================
component        customers (and the value they contribute)
===============  ==============================================================
new              first purchase after the start date: their CLV at the end
upgrades         present at the start, one tier or more higher at the end:
                 their change in CLV
downgrades       present at the start, one tier or more lower at the end (not
                 lost): their change in CLV
unchanged tier   present at the start, same tier at the end: their change
lost             active at the start, lapsed by the end (no purchase for
                 ``lapsed_after``): their change in CLV
===============  ==============================================================

The components sum to the change in total CLV (end minus start) exactly: every
customer present at either date is in exactly one of them.

**One fit, not one per date.** By default both dates are scored with one pair
of models fitted on the data up to the end date (``refit=False``). A tier move
then comes from the customer's own purchases and silences between the dates,
not from re-estimated population parameters: refitting at each date moves
every customer's CLV at once by the change in the estimates (a few percent
between two half-years of the same CRM), and that shift would show as
migration of customers who did nothing different. The end-date fit also uses
the most data. The price: the start-date values are not exactly the ones a
book built at the start date published. ``refit=True`` fits at each date on the
data up to that date instead, for comparing two published runs.

References
----------
.. [1] Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005). "Counting your
   customers" the easy way: An alternative to the Pareto/NBD model.
   Marketing Science 24(2), 275-284.
.. [2] Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005). RFM and CLV:
   Using iso-value curves for customer base analysis. Journal of Marketing
   Research 42(4), 415-430.
.. [3] Zeithaml, V. A., Rust, R. T. and Lemon, K. N. (2001). The customer
   pyramid: creating and serving profitable customers. California Management
   Review 43(4), 118-142.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from crmstats.exceptions import ConvergenceWarning, DataError
from crmstats.vocabulary import renamed_arguments

__all__ = ["COMPONENTS", "ValueMigration", "value_migration"]

#: Components of the CLV bridge, in order (see the module docstring).
COMPONENTS = ("new", "upgrades", "downgrades", "unchanged tier", "lost")

#: Column of the migration matrices for customers lost between the dates.
LOST = "lost"


@dataclass(frozen=True)
class ValueMigration:
    """Result of :func:`value_migration`.

    Attributes
    ----------
    customers : pandas.DataFrame
        Index ``customer_id``, every customer present at either date:
        ``clv_start`` (NaN for new customers), ``clv_end``, ``change``
        (``clv_end - clv_start``; for new customers ``clv_end``),
        ``fall_share`` (share of the start value lost, ``-change / clv_start``;
        negative for gains; the ranking that best finds customers who truly
        stopped buying, see :func:`value_migration`),
        ``tier_start`` (NaN for new customers), ``tier_end``, ``tier_move``
        (tiers gained, negative when fallen; a lost customer counts as one
        tier below the bottom one), ``lost`` (active at the start, lapsed by
        the end), ``p_alive_start``, ``p_alive_end`` and ``component`` (one of
        :data:`COMPONENTS`).
    counts : pandas.DataFrame
        Rows: tier at the start (customers present then); columns: tier at
        the end and ``"lost"``; cells: customers. Each row sums to the tier's
        customers at the start.
    value_start, value_change : pandas.DataFrame
        The same cells with the customers' total CLV at the start and their
        total change in CLV.
    new_customers : pandas.Series
        New customers (first purchase after the start) per tier at the end.
    decomposition : pandas.Series
        ``start`` (total CLV at the start), the :data:`COMPONENTS`, ``end``
        (total CLV at the end): ``start + sum(components) == end``.
    fallers : pandas.DataFrame
        Customers who fell by one tier or more (lost ones included), ranked by
        value lost (``clv_start - clv_end``), largest first; ids only.
    start, end : pandas.Timestamp
        The two dates.
    tiers : dict
        Tier name → share of customers at the start date.
    boundaries : str
        ``"start"`` (the start date's CLV cut-offs applied at both dates) or
        ``"each"`` (each date ranked on its own).
    cutoffs : pandas.Series
        Lowest CLV of each tier at the start date (with ``boundaries="start"``
        the end tiers use the same cut-offs).
    refit : bool
        Whether the models were fitted at each date (see the module docstring).
    lapsed_after : float
        Time without a purchase (in ``time_unit``) after which a customer is
        lapsed.
    time_unit : str
        Unit of recency and T in the summaries.
    fits : dict
        The fitted models the values rest on, by the names readers know
        (``"BG/NBD"``, ``"Gamma-Gamma"``; with ``refit`` also the start
        date's, ``"BG/NBD at the start"``...): what
        :func:`crmstats.clv.fit_problem` is asked about before a figure is
        headlined.
    """

    customers: pd.DataFrame
    counts: pd.DataFrame
    value_start: pd.DataFrame
    value_change: pd.DataFrame
    new_customers: pd.Series
    decomposition: pd.Series
    fallers: pd.DataFrame
    start: pd.Timestamp
    end: pd.Timestamp
    tiers: dict
    boundaries: str
    cutoffs: pd.Series
    refit: bool
    lapsed_after: float
    time_unit: str
    fits: dict = field(default_factory=dict)

    @property
    def net_migration(self) -> float:
        """Change in total CLV of the customers present at the start (all but new)."""
        d = self.decomposition
        return float(d[list(COMPONENTS[1:])].sum())

    @property
    def share_value_moved_down(self) -> float:
        """Share of the start date's total CLV held by customers who fell a tier or more."""
        c = self.customers
        down = c["tier_move"] < 0
        total = float(c["clv_start"].sum())
        return float(c.loc[down, "clv_start"].sum() / total) if total > 0 else float("nan")

    def top_fallers(self, n: int = 15, *, pseudonymous: bool = True,
                    key: str | bytes | None = None) -> pd.DataFrame:
        """Return the customers to act on first: the largest falls in value, for a list.

        Parameters
        ----------
        n : int
            Rows.
        pseudonymous : bool
            Show a stable keyed pseudonym per customer instead of its id
            (:func:`crmstats.privacy.pseudonymize`; the analyst maps it back
            with :func:`crmstats.privacy.reidentify` and the key).
        key : str or bytes, optional
            Pseudonym key (default the environment's, see :mod:`crmstats.privacy`).

        Returns
        -------
        pandas.DataFrame
            Index ``customer`` (pseudonym or id); ``tier_then``, ``tier_now``
            (``"lost"`` for a lapsed customer), ``clv_then``, ``clv_now``,
            ``value_lost`` and ``p_alive_now``, largest value lost first.
        """
        f = self.fallers.head(int(n))
        out = pd.DataFrame({
            "tier_then": f["tier_start"].astype(str),
            "tier_now": np.where(f["lost"], LOST, f["tier_end"].astype(str)),
            "clv_then": f["clv_start"], "clv_now": f["clv_end"],
            "value_lost": f["value_lost"], "p_alive_now": f["p_alive_end"]}, index=f.index)
        if pseudonymous:
            from crmstats.privacy import pseudonymize

            out.index = pd.Index(pseudonymize(f.index.to_series(), key=key).to_numpy())
        out.index.name = "customer"
        return out


def _tier_codes(values: pd.Series, cutoffs: np.ndarray) -> np.ndarray:
    """Tier code (0 = top) of each value under descending cut-offs (last tier: the rest)."""
    codes = np.full(len(values), len(cutoffs) - 1, dtype=int)
    v = values.to_numpy(float)
    for k in range(len(cutoffs) - 2, -1, -1):
        codes[v >= cutoffs[k]] = k
    return codes


@renamed_arguments(freq="period")
def value_migration(
    transactions: Any,
    start,
    end=None,
    *,
    period: str = "D",
    time_unit: str = "W",
    horizon_months: int = 12,
    discount_rate: float = 0.01,
    tiers: Mapping[str, float] | None = None,
    boundaries: str = "start",
    lapsed_after: float | None = None,
    refit: bool = False,
    allow_unconverged: bool = False,
) -> ValueMigration:
    """Value tiers at two dates, the migration matrix and the change in total CLV by source.

    Parameters
    ----------
    transactions : DataFrame, path, ibis.Table or CRMData
        Canonical transactions table (a ``CRMData`` gives its ``transactions``).
    start : timestamp-like or int
        The earlier date (e.g. the previous run's ``as_of``), or a whole
        number of months before ``end``.
    end : timestamp-like, optional
        The later date; default the last transaction.
    period, time_unit : str
        As for :func:`~crmstats.clv.rfm_summary` (``freq`` is the old name of
        ``period``, deprecated).
    horizon_months, discount_rate : int, float
        As for :func:`~crmstats.clv.customer_lifetime_value`.
    tiers : mapping of str to float, optional
        Tier name → share of customers from the top (as for
        :func:`~crmstats.clv.value_tiers`; default its pyramid).
    boundaries : {"start", "each"}
        ``"start"``: the tiers are cut at the start date (by ``tiers``' shares)
        and the same CLV cut-offs place customers at the end, so a move means
        the customer's own value changed. ``"each"``: each date is ranked on
        its own (tier sizes stay at their shares; new customers push others
        down).
    lapsed_after : float, optional
        Time without a purchase, in ``time_unit``, after which a customer is
        lapsed (lost); default twice the median time between repeat purchases
        at the end date (the rule of :func:`crmstats.funnel.lifecycle_stage`).
    refit : bool
        Fit the models at each date on the data up to it instead of once at
        the end date (see the module docstring for why one fit is the default).
    allow_unconverged : bool
        Value customers even when a fit did not converge (as for
        :func:`~crmstats.clv.fit_value`); the result's ``fits`` then let
        :func:`crmstats.clv.fit_problem` say which fit is not to be trusted
        (the study names it and headlines nothing that rests on it).

    Returns
    -------
    ValueMigration

    Notes
    -----
    Two rankings of falling value: ``fallers`` ranks by the value lost
    (money at stake, for account teams); ``customers["fall_share"]`` by the
    share of value lost. Checked on the simulator (20,000 contacts, seeds 3
    and 5, start 3, 6 and 9 months before the end): the top decile by
    ``fall_share`` holds 2.0-3.0 times the base rate of customers truly dead by
    the end, the top decile by value lost 1.8-2.4 times (large accounts lose
    much value in absolute terms from ordinary pauses).
    """
    from crmstats._expr import parse_date
    from crmstats.backend import execute
    from crmstats.clv.summaries import rfm_summary
    from crmstats.clv.valuation import fit_value
    from crmstats.clv.value import (
        DEFAULT_TIERS,
        customer_lifetime_value,
        lapse_threshold,
        value_tiers,
    )
    from crmstats.crmdata import CRMData
    from crmstats.validation import as_table

    if isinstance(transactions, CRMData):
        transactions.require("transactions")
        transactions = transactions.transactions
    if boundaries not in ("start", "each"):
        raise ValueError(f"boundaries must be 'start' or 'each', got {boundaries!r}")
    tx = as_table(transactions, "transactions")
    if end is None:
        end = execute(tx.timestamp.max())
    end = parse_date(end, "end")
    if isinstance(start, (int, np.integer)) and not isinstance(start, bool):
        if start < 1:
            raise ValueError(f"start as months before the end must be at least 1, got {start}")
        start = end - pd.DateOffset(months=int(start))
    start = parse_date(start, "start")
    if not start < end:
        raise ValueError(f"start {start} must be before end {end}")
    kw = dict(period=period, time_unit=time_unit, horizon_months=horizon_months,
              discount_rate=discount_rate, allow_unconverged=allow_unconverged)
    s_start = rfm_summary(tx, observation_end=start, period=period, time_unit=time_unit)
    if len(s_start) < 20:
        raise DataError(f"transactions table: {len(s_start)} customer(s) bought by the start "
                        f"date {start:%Y-%m-%d}; value migration needs at least 20",
                        table="transactions", column="timestamp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fit_end = fit_value(tx, observation_end=end, **kw)
        fit_start = fit_value(tx, observation_end=start, **kw) if refit else None
    s_end, v_end = fit_end.summary, fit_end.clv
    if refit:
        s_start, v_start = fit_start.summary, fit_start.clv
        bg_start = fit_start.transaction_model
    else:  # one fit: the end date's models score the start date's histories
        bg_start = fit_end.transaction_model
        v_start = customer_lifetime_value(bg_start, fit_end.spend_model, s_start,
                                          horizon_months=horizon_months,
                                          discount_rate=discount_rate,
                                          allow_unconverged=allow_unconverged)["clv"]
    bg_end = fit_end.transaction_model

    tiers = dict(tiers or DEFAULT_TIERS)
    names = list(tiers)
    t_start = value_tiers(v_start, tiers)
    cutoffs = t_start.groupby("tier", observed=False)["value"].min().reindex(names)
    if boundaries == "start":
        codes = _tier_codes(v_end, cutoffs.to_numpy(float))
        tier_end = pd.Categorical.from_codes(codes, categories=names, ordered=True)
    else:
        tier_end = value_tiers(v_end, tiers)["tier"].to_numpy()
    tier_end = pd.Series(tier_end, index=v_end.index)

    if lapsed_after is None:
        lapsed_after = lapse_threshold(s_end, default=float("inf"))
    since_start = s_start["T"] - s_start["recency"]
    since_end = (s_end["T"] - s_end["recency"]).reindex(s_start.index)
    lost = (since_start < lapsed_after) & (since_end >= lapsed_after)

    ids = s_end.index  # every customer present at the start is present at the end
    out = pd.DataFrame(index=ids)
    out["clv_start"] = v_start.reindex(ids)
    out["clv_end"] = v_end
    present = out["clv_start"].notna()
    out["change"] = out["clv_end"] - out["clv_start"].fillna(0.0)
    out["fall_share"] = -out["change"] / out["clv_start"].where(out["clv_start"] > 0)
    out["tier_start"] = pd.Categorical(t_start["tier"].reindex(ids), categories=names,
                                       ordered=True)
    out["tier_end"] = pd.Categorical(tier_end.reindex(ids), categories=names, ordered=True)
    out["lost"] = lost.reindex(ids).fillna(False).astype(bool)
    code_start = out["tier_start"].cat.codes.astype(float)
    code_end = np.where(out["lost"], len(names), out["tier_end"].cat.codes).astype(float)
    out["tier_move"] = pd.array(np.where(present, code_start - code_end, np.nan)).astype("Int64")
    out["p_alive_start"] = bg_start.probability_alive(s_start).reindex(ids)
    out["p_alive_end"] = bg_end.probability_alive(s_end).reindex(ids)
    move = out["tier_move"].fillna(0).to_numpy()
    component = np.select(
        [~present.to_numpy(), out["lost"].to_numpy(), move > 0, move < 0],
        ["new", "lost", "upgrades", "downgrades"], "unchanged tier")
    out["component"] = pd.Categorical(component, categories=list(COMPONENTS))
    out.index.name = "customer_id"

    old = out[present]
    col_end = pd.Categorical(np.where(old["lost"], LOST, old["tier_end"].astype(str)),
                             categories=[*names, LOST])
    grid = dict(index=pd.CategoricalIndex(names, categories=names, ordered=True,
                                          name="tier_start"),
                columns=pd.Index([*names, LOST], name="tier_end"))

    def matrix(values):
        m = pd.crosstab(old["tier_start"], col_end, values=values, aggfunc="sum",
                        dropna=False).reindex(**grid).fillna(0.0)
        m.index, m.columns = grid["index"], grid["columns"]
        return m

    counts = matrix(np.ones(len(old))).astype("int64")
    value_start = matrix(old["clv_start"])
    value_change = matrix(old["change"])
    new = out.loc[~present, "tier_end"].value_counts().reindex(names).fillna(0).astype("int64")
    new.index.name = "tier_end"

    parts = {c: math.fsum(out.loc[out["component"] == c, "change"]) for c in COMPONENTS}
    decomposition = pd.Series({"start": math.fsum(old["clv_start"]), **parts,
                               "end": math.fsum(out["clv_end"])}, name="clv")
    fallers = old[old["tier_move"] < 0].assign(value_lost=lambda f: f["clv_start"] - f["clv_end"])
    fallers = fallers.sort_values("value_lost", ascending=False, kind="mergesort")[
        ["tier_start", "tier_end", "lost", "clv_start", "clv_end", "value_lost", "fall_share",
         "p_alive_start", "p_alive_end"]]
    return ValueMigration(
        customers=out, counts=counts, value_start=value_start, value_change=value_change,
        new_customers=new, decomposition=decomposition, fallers=fallers, start=start, end=end,
        tiers=tiers, boundaries=boundaries, cutoffs=cutoffs.rename("clv_cutoff"),
        refit=bool(refit), lapsed_after=float(lapsed_after), time_unit=time_unit,
        fits=_fits(fit_end, fit_start))


def _fits(fit_end, fit_start) -> dict:
    """Name the fitted models a migration rests on, for :func:`crmstats.clv.fit_problem`."""
    starts = fit_start.models if fit_start is not None else {}
    return {**fit_end.models, **{f"{name} at the start": m for name, m in starts.items()}}
