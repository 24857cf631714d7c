"""Customer segments by value: the value pyramid, Pareto analysis and RFM segments.

Split from :mod:`crmstats.clv.value` (which re-exports every name here): these
functions rank and group customers by a value or an RFM summary; they fit
nothing.

References
----------
.. [1] Zeithaml, V. A., Rust, R. T. and Lemon, K. N. (2001). The customer
   pyramid: creating and serving profitable customers. California Management
   Review 43(4), 118-142.
.. [2] Hughes, A. M. (1994). Strategic Database Marketing. Probus (RFM scoring).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crmstats.exceptions import DataError

__all__ = ["DEFAULT_TIERS", "RFM_SEGMENTS", "ParetoResult", "pareto_analysis", "rfm_segments",
           "value_tiers"]

#: Default customer pyramid: share of customers in each tier, from the top.
DEFAULT_TIERS: dict[str, float] = {"platinum": 0.01, "gold": 0.04, "iron": 0.15, "base": 0.80}


def _require_summary(summary: pd.DataFrame, columns: Sequence[str]) -> None:
    if not isinstance(summary, pd.DataFrame):
        raise DataError(
            "summary: expected the DataFrame returned by rfm_summary, got "
            f"{type(summary).__name__}",
            table="summary",
        )
    missing = [c for c in columns if c not in summary.columns]
    if missing:
        raise DataError(
            f"summary table: missing column(s) {', '.join(missing)} (make it with rfm_summary)",
            table="summary",
            column=missing[0],
        )
    if summary.empty:
        raise DataError("summary table is empty", table="summary")


def _values(values, name: str = "values") -> pd.Series:
    if isinstance(values, pd.DataFrame):
        if "clv" not in values.columns:
            raise DataError(f"{name}: a DataFrame must have a 'clv' column", table=name,
                            column="clv")
        values = values["clv"]
    s = pd.Series(values, copy=True).astype("float64")
    bad = ~np.isfinite(s.to_numpy())
    if bad.any():
        rows = list(s.index[bad][:5])
        raise DataError(f"{name}: {int(bad.sum())} non-finite value(s), e.g. rows {rows}",
                        table=name, rows=rows)
    if s.empty:
        raise DataError(f"{name} is empty", table=name)
    return s


def value_tiers(values, tiers: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Place customers in the tiers of the customer value pyramid.

    Parameters
    ----------
    values : pandas.Series or DataFrame
        Value per customer (a Series, or the frame of
        :func:`customer_lifetime_value`, whose ``clv`` column is used).
    tiers : mapping of str to float, optional
        Tier name → share of customers, from the top; shares must sum to 1.
        Default: platinum 1 %, gold 4 %, iron 15 %, base 80 % (the pyramid
        of [1]_, whose bottom tier Zeithaml et al. call "lead"; renamed here
        because a lead is a prospect in CRM).

    Returns
    -------
    pandas.DataFrame
        Index like ``values``; columns ``value``, ``rank`` (1 = most valuable)
        and ``tier`` (ordered categorical, top tier first). Ties are broken by
        the order of the index, so tier sizes follow the shares exactly.
    """
    s = _values(values)
    tiers = dict(tiers or DEFAULT_TIERS)
    shares = np.array(list(tiers.values()), dtype=float)
    if (shares <= 0).any() or not np.isclose(shares.sum(), 1.0):
        raise ValueError(f"tier shares must be positive and sum to 1, got {tiers}")
    rank = s.rank(ascending=False, method="first").astype("int64")
    bounds = np.ceil(np.cumsum(shares) * len(s) - 1e-9).astype(int)
    codes = np.searchsorted(bounds, rank.to_numpy(), side="left")
    names = list(tiers)
    tier = pd.Categorical.from_codes(codes, categories=names, ordered=True)
    return pd.DataFrame({"value": s, "rank": rank, "tier": tier}, index=s.index)


@dataclass(frozen=True)
class ParetoResult:
    """Result of :func:`pareto_analysis`.

    Attributes
    ----------
    top_share : float
        Share of total value from the top ``top_fraction`` of customers.
    top_fraction : float
        The fraction used (0.2 for the 80/20 rule).
    gini : float
        Gini coefficient of value across customers (0 = equal, 1 = one customer has all).
    lorenz : pandas.DataFrame
        Columns ``customer_share`` and ``value_share``: the Lorenz curve from
        the least to the most valuable customer, starting at (0, 0).
    abc : pandas.Series
        ABC class per customer: A — the most valuable customers making up the
        first 80 % of value, B — the next 15 %, C — the rest.
    values : pandas.Series
        The values analysed.
    """

    top_share: float
    top_fraction: float
    gini: float
    lorenz: pd.DataFrame
    abc: pd.Series
    values: pd.Series

    def summary(self) -> pd.DataFrame:
        """Return customers, customer share and value share per ABC class."""
        grouped = self.values.groupby(self.abc)
        out = pd.DataFrame({"customers": grouped.size(), "value": grouped.sum()})
        out["customer_share"] = out["customers"] / out["customers"].sum()
        out["value_share"] = out["value"] / out["value"].sum()
        out.index.name = "class"
        return out


def pareto_analysis(values, *, top_fraction: float = 0.2,
                    abc_cuts: tuple[float, float] = (0.8, 0.95)) -> ParetoResult:
    """Concentration of value: the top-20 % share, Lorenz curve, Gini and ABC classes.

    Parameters
    ----------
    values : pandas.Series or DataFrame
        Value per customer (revenue or CLV); must be non-negative.
    top_fraction : float
        Fraction of customers whose share is reported (0.2: the Pareto customers).
    abc_cuts : (float, float)
        Cumulative value shares closing classes A and B.

    Returns
    -------
    ParetoResult
    """
    s = _values(values)
    if (s < 0).any():
        rows = list(s.index[s < 0][:5])
        raise DataError(f"values: negative value(s) at rows {rows}; Pareto analysis needs "
                        "non-negative values", table="values", rows=rows)
    if not 0 < top_fraction < 1:
        raise ValueError(f"top_fraction must be in (0, 1), got {top_fraction}")
    total = s.sum()
    if total <= 0:
        raise DataError("values: total value is zero", table="values")
    desc = s.sort_values(ascending=False, kind="mergesort")
    n = len(s)
    k = int(np.ceil(top_fraction * n - 1e-9))
    top_share = float(desc.iloc[:k].sum() / total)
    asc = np.sort(s.to_numpy())
    cum = np.concatenate([[0.0], np.cumsum(asc) / total])
    lorenz = pd.DataFrame({"customer_share": np.arange(n + 1) / n, "value_share": cum})
    # Gini = 1 - 2 × area under the Lorenz curve (trapezoids)
    gini = float(1.0 - np.sum((cum[1:] + cum[:-1]) / n))
    share_before = (desc.cumsum() - desc) / total
    a_cut, b_cut = abc_cuts
    abc = pd.Series(np.where(share_before < a_cut, "A", np.where(share_before < b_cut, "B", "C")),
                    index=desc.index).reindex(s.index)
    return ParetoResult(top_share=top_share, top_fraction=float(top_fraction), gini=gini,
                        lorenz=lorenz, abc=abc, values=s)


#: Named RFM segments on the (R, F) score grid, in matching order (first match wins).
RFM_SEGMENTS: tuple[tuple[str, tuple[int, int], tuple[int, int]], ...] = (
    ("champions", (5, 5), (4, 5)),
    ("loyal customers", (3, 5), (4, 5)),
    ("potential loyalists", (4, 5), (2, 3)),
    ("new customers", (5, 5), (1, 1)),
    ("promising", (4, 4), (1, 1)),
    ("need attention", (3, 3), (3, 3)),
    ("about to sleep", (3, 3), (1, 2)),
    ("cannot lose them", (1, 2), (5, 5)),
    ("at risk", (1, 2), (3, 4)),
    ("hibernating", (2, 2), (1, 2)),
    ("lost", (1, 1), (1, 2)),
)


def _quintile_score(values: pd.Series, ascending: bool = True) -> pd.Series:
    ranks = values.rank(method="first", ascending=ascending)
    return np.ceil(ranks / len(values) * 5).clip(1, 5).astype("int64")


def rfm_segments(summary: pd.DataFrame) -> pd.DataFrame:
    """Quintile R, F and M scores and named RFM segments.

    Parameters
    ----------
    summary : pandas.DataFrame
        Output of :func:`~crmstats.clv.rfm_summary` with ``monetary_value``.

    Returns
    -------
    pandas.DataFrame
        Index ``customer_id``; ``R`` (5 = bought most recently: smallest
        ``T - recency``), ``F`` (5 = most repeat purchases), ``M`` (5 = highest
        average repeat spend; one-time buyers score 1), ``rfm`` (e.g. "545")
        and ``segment``, from the (R, F) grid in :data:`RFM_SEGMENTS` [2]_.
        Quintiles are of customers, ties broken by order, so each score holds
        a fifth of the customers.
    """
    _require_summary(summary, ["frequency", "recency", "T", "monetary_value"])
    since_last = summary["T"] - summary["recency"]
    r = _quintile_score(-since_last)
    f = _quintile_score(summary["frequency"])
    m = _quintile_score(summary["monetary_value"])
    seg = pd.Series("others", index=summary.index, dtype=object)
    unassigned = pd.Series(True, index=summary.index)
    for name, (r_lo, r_hi), (f_lo, f_hi) in RFM_SEGMENTS:
        hit = unassigned & r.between(r_lo, r_hi) & f.between(f_lo, f_hi)
        seg[hit] = name
        unassigned &= ~hit
    return pd.DataFrame(
        {"R": r, "F": f, "M": m,
         "rfm": r.astype(str) + f.astype(str) + m.astype(str), "segment": seg},
        index=summary.index,
    )
