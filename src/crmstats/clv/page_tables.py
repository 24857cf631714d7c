"""The CLV study's tables for a book page: a few columns, short headers.

:func:`~crmstats.clv.compare_models` holds nine columns per model (likelihood,
BIC, the holdout errors, the fit's problem in a sentence): the page shows what
ranks the models and whether each fit is ranked (:func:`comparison_table`);
why a fit is not, or sits at its model's limit, the findings say in words.
"""

from __future__ import annotations

import pandas as pd

from crmstats.clv.models.limits import is_one_dropout_limit
from crmstats.page_tables import pick

__all__ = ["channel_value_table", "comparison_table"]


def _fit_note(problem) -> str:
    if not isinstance(problem, str) or not problem:
        return ""
    if is_one_dropout_limit(problem):
        return "one dropout rate for all"
    return "not ranked"


def comparison_table(comparison: pd.DataFrame) -> pd.DataFrame:
    """Return a holdout comparison of transaction models for a page.

    Parameters
    ----------
    comparison : pandas.DataFrame
        :func:`~crmstats.clv.compare_models`'s result.

    Returns
    -------
    pandas.DataFrame
        The same rows (best first); ``error per customer`` (the holdout's
        mean absolute error, in purchases: it ranks the models),
        ``predicted`` and ``actual`` purchases in the holdout period, ``total
        error`` (a share) and ``fit``: empty for a fit to trust, "one dropout
        rate for all" for a fit at its model's limit (ranked), "not ranked"
        for one that did not converge or sits at the edge of its parameter
        space. The likelihoods, BIC, RMSE and the problem's sentence stay in
        ``comparison``.
    """
    out = pick(comparison, {"mae": "error per customer", "predicted": "predicted",
                            "actual": "actual", "total_error": "total error"},
               "compare_models")
    out["fit"] = [_fit_note(p) for p in comparison.get("fit_problem",
                                                       pd.Series("", index=out.index))]
    return out


def channel_value_table(values: pd.DataFrame) -> pd.DataFrame:
    """Return what a new customer of each channel is worth, for a page.

    Parameters
    ----------
    values : pandas.DataFrame
        :attr:`ChannelValue.values <crmstats.clv.ChannelValue>` (from
        :func:`~crmstats.clv.fit_channel_value`, or
        :func:`~crmstats.clv.channel_value`'s result); not modified.

    Returns
    -------
    pandas.DataFrame
        Index ``channel`` (the groups of ``values``); ``new CLV`` (the
        expected value of a new customer's repeat purchases, discounted),
        ``95 % interval`` (text, money), ``purchases`` (expected repeat
        purchases) and ``per purchase`` (expected spend). The customers the
        models learned each channel from and the interval's bounds stay in
        ``values`` (four columns and the channel fit a laptop's page column).
    """
    out = pick(values, {"clv": "new CLV", "expected_purchases": "purchases",
                        "expected_spend": "per purchase"},
               "fit_channel_value(...).values", interval=("clv_lower_95", "clv_upper_95", "money"))
    out.index.name = "channel"
    return out
