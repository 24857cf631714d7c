"""Look-alike prospects: who among the open leads resembles the customers' top value tier.

A :class:`~crmstats.funnel.scoring.LeadScoringModel` learns the top tier of
existing customers (e.g. the customer value pyramid of
:func:`crmstats.clv.value_tiers` on CLV) from features the prospects share,
and ranks the prospects by it (:func:`lookalike_scores`).
:func:`lookalike_prospects` does the whole study step from the leads of
:func:`~crmstats.funnel.lead_features` and the transactions: customers valued
by their expected CLV, the top share of them as the top tier, the won leads as
customers and the open ones as prospects.

References
----------
.. [1] Hosmer, D. W., Lemeshow, S. and Sturdivant, R. X. (2013). Applied
   Logistic Regression, 3rd ed. Wiley.
.. [2] Zeithaml, V. A., Rust, R. T. and Lemon, K. N. (2001). The customer
   pyramid: creating and serving profitable customers. California Management
   Review 43(4), 118-142.
.. [3] Fader, P. S., Hardie, B. G. S. and Lee, K. L. (2005). "Counting your
   customers" the easy way: an alternative to the Pareto/NBD model. Marketing
   Science 24(2), 275-284.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from crmstats.exceptions import DataError
from crmstats.funnel.scoring import LeadScoringModel
from crmstats.funnel.summaries import FUNNEL_STAGES

__all__ = ["OPEN_STAGES", "Lookalikes", "lookalike_prospects", "lookalike_scores"]

#: The stage of a lead that became a customer: the funnel's last.
_WON_STAGE: str = FUNNEL_STAGES[-1]

#: The stages of a lead still in the pipeline (a prospect): the funnel's stages
#: after its entry (a subscriber is not a lead yet) and before won; the exits
#: (``unqualified``, ``lost``) are not in the funnel.
OPEN_STAGES: tuple[str, ...] = FUNNEL_STAGES[1:-1]


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


def lookalike_prospects(
    leads: pd.DataFrame,
    transactions: Any,
    *,
    features: Sequence[str],
    top_share: float = 0.2,
    penalty: float = 1.0,
    horizon_months: int = 12,
) -> Lookalikes:
    """Rank the open leads by their likeness to the customers worth the most.

    The steps of the lead-scoring study's look-alike section, in one call:
    every customer is valued by its expected CLV over ``horizon_months``
    (BG/NBD × Gamma-Gamma [3]_, :func:`crmstats.clv.fit_value`); the
    ``top_share`` of customers by that value forms the top tier of the value
    pyramid [2]_ (:func:`crmstats.clv.value_tiers`, tiers ``top tier`` and
    ``others``); the leads that were won are the customers and those still in
    :data:`OPEN_STAGES` the prospects; :func:`lookalike_scores` fits a
    logistic regression with an L2 ``penalty`` [1]_ on the customers and
    ranks the prospects.

    Parameters
    ----------
    leads : pandas.DataFrame
        :func:`~crmstats.funnel.lead_features`' result (its ``stage`` and the
        ``features``), indexed by lead id; a won lead's id is its customer id
        in ``transactions``. Not modified.
    transactions : DataFrame, path or ibis.Table
        Canonical transactions table (the customers' purchases).
    features : sequence of str
        Columns of ``leads`` the look-alike model learns from (known when a
        lead arrives: channel, industry, company size...).
    top_share : float
        Share of the valued customers in the top tier, in (0, 1).
    penalty : float
        L2 penalty of the look-alike model (keeps few top-tier customers
        stable); 0 for none.
    horizon_months : int
        Horizon of the CLV the customers are ranked by.

    Returns
    -------
    Lookalikes
        As :func:`lookalike_scores`: ``scores`` (the open leads, best first:
        ``score``, ``band``, ``lift``; ids only) and ``model`` (the fitted
        :class:`LeadScoringModel`).

    Raises
    ------
    DataError
        When ``leads`` has no ``stage`` column or lacks a feature, no lead was
        won or none is open, or the won leads' ids are not in
        ``transactions`` (no value for any customer); errors of
        :func:`~crmstats.clv.fit_value` on the transactions.
    ValueError
        When ``top_share`` is not a number strictly between 0 and 1.
    """
    from crmstats.clv import fit_value, value_tiers

    try:
        share = float(top_share)
    except (TypeError, ValueError):
        share = float("nan")
    if not 0 < share < 1:
        raise ValueError(f"top_share must be a share strictly between 0 and 1, got {top_share!r}")
    LeadScoringModel._check_columns(leads, ["stage", *features], "leads")
    stage = leads["stage"]
    customers, prospects = leads[stage == _WON_STAGE], leads[stage.isin(OPEN_STAGES)]
    for what, rows, stages in (("won", customers, [_WON_STAGE]),
                               ("open", prospects, list(OPEN_STAGES))):
        if rows.empty:
            raise DataError(f"leads: no {what} lead (stage {' or '.join(stages)}) to "
                            "find look-alikes with", table="leads", column="stage")
    value = fit_value(transactions, horizon_months=horizon_months)
    tiers = value_tiers(value.values, {"top tier": share, "others": 1 - share})
    return lookalike_scores(customers, prospects, value_tier=tiers, features=features,
                            model=LeadScoringModel(penalty=penalty))
