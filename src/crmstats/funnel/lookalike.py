"""Look-alike prospects: who among the open leads resembles the customers' top value tier.

A :class:`~crmstats.funnel.scoring.LeadScoringModel` learns the top tier of
existing customers (e.g. the customer value pyramid of
:func:`crmstats.clv.value_tiers` on CLV) from features the prospects share,
and ranks the prospects by it.

References
----------
.. [1] Hosmer, D. W., Lemeshow, S. and Sturdivant, R. X. (2013). Applied
   Logistic Regression, 3rd ed. Wiley.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from crmstats.exceptions import DataError
from crmstats.funnel.scoring import LeadScoringModel

__all__ = ["Lookalikes", "lookalike_scores"]


@dataclass(frozen=True)
class Lookalikes:
    """Result of :func:`lookalike_scores`.

    Attributes
    ----------
    scores : pandas.DataFrame
        Prospects, best first: ``score``, ``band``, ``lift``.
    model : LeadScoringModel
        The fitted look-alike model (``coefficients_``, ``auc_``...).
    """

    scores: pd.DataFrame
    model: LeadScoringModel


def lookalike_scores(
    customers: pd.DataFrame,
    prospects: pd.DataFrame,
    *,
    value_tier: Any,
    features: Sequence[str],
    top_tier: Any = None,
    model: LeadScoringModel | None = None,
) -> Lookalikes:
    """Rank prospects by their modelled likelihood of belonging to the customers' top value tier.

    Existing customers are labelled 1 when their value tier is the top tier
    (e.g. the customer value pyramid of :func:`crmstats.clv.value_tiers` on
    CLV) and 0 otherwise; a :class:`LeadScoringModel` learns that label from
    ``features`` the prospects share; prospects are scored and ranked —
    a look-alike model [1]_.

    Parameters
    ----------
    customers : pandas.DataFrame
        One row per existing customer, indexed by id, with the ``features``.
    prospects : pandas.DataFrame
        Open leads / prospects to rank, with the same ``features``.
    value_tier : str, pandas.Series or DataFrame
        Each customer's value tier: a column of ``customers``, a Series
        indexed like ``customers``, or the frame of ``clv.value_tiers``
        (its ``tier`` column). Customers without a tier are left out.
    features : sequence of str
        Columns used to find look-alikes.
    top_tier : label or list of labels, optional
        The tier(s) counting as top; default the first category of an
        ordered categorical (the top of the pyramid).
    model : LeadScoringModel, optional
        An unfitted model with the settings to use (``test_size``, ``seed``,
        ``reference``, ``penalty``); default ``LeadScoringModel()``. A copy
        is fitted.

    Returns
    -------
    Lookalikes
        ``scores``: prospects, best first, with ``score`` (modelled
        probability of the top tier), ``band`` (A-D by the customers' score
        quartiles) and ``lift`` (score ÷ the top tier's share of customers),
        ids only, no personal data; ``model``: the fitted look-alike model.
    """
    if isinstance(value_tier, str):
        LeadScoringModel._check_columns(customers, [value_tier], "customers")
        tier = customers[value_tier]
    elif isinstance(value_tier, pd.DataFrame):
        if "tier" not in value_tier.columns:
            raise DataError("value_tier: a DataFrame must have a 'tier' column (as "
                            "clv.value_tiers returns)", table="value_tier", column="tier")
        tier = value_tier["tier"]
    else:
        tier = pd.Series(value_tier)
    LeadScoringModel._check_columns(customers, list(features), "customers")
    LeadScoringModel._check_columns(prospects, list(features), "prospects")
    tier = tier.reindex(customers.index)
    if tier.isna().all():
        raise DataError("value_tier: no tier for any customer (its index must match the "
                        "customers' index)", table="value_tier")
    if top_tier is None:
        if not (isinstance(tier.dtype, pd.CategoricalDtype) and tier.cat.ordered):
            raise ValueError("top_tier: name the top tier(s); value_tier is not an ordered "
                             "categorical whose first category is the top")
        top_tier = tier.cat.categories[0]
    tops = list(top_tier) if isinstance(top_tier, list | tuple | set) else [top_tier]
    unknown = [t for t in tops if not (tier == t).any()]
    if unknown:
        raise DataError(f"value_tier: no customer in top tier(s) {unknown}; tiers: "
                        f"{sorted(map(str, tier.dropna().unique()))}", table="value_tier")
    known = customers.loc[tier.notna()].assign(_top=tier.dropna().isin(tops).astype(int))
    fitted = (LeadScoringModel() if model is None else copy.deepcopy(model)).fit(
        known, features=list(features), target="_top")
    out = fitted.score_bands(prospects)
    out["lift"] = out["score"] / known["_top"].mean()
    out = out.sort_values("score", ascending=False, kind="mergesort")
    return Lookalikes(scores=out, model=fitted)
