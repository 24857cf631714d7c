"""The key-accounts study's tables for a book page: a few columns, short headers.

The MRR bridge holds twelve columns per period: the page shows them as two
tables, where the recurring revenue came from and went (:func:`bridge_table`)
and how much of it the accounts kept (:func:`retention_table`). A churn model's
drivers read as hazard ratios with their intervals in words
(:func:`hazard_table`). The results themselves are unchanged.
"""

from __future__ import annotations

import pandas as pd

from crmstats.page_tables import pick, ratio_table

__all__ = ["bridge_table", "hazard_table", "retention_table"]


def bridge_table(bridge: pd.DataFrame) -> pd.DataFrame:
    """Return the MRR bridge's money for a page: what moved the recurring revenue, and its end.

    Parameters
    ----------
    bridge : pandas.DataFrame
        :func:`~crmstats.churn.mrr_bridge`'s result.

    Returns
    -------
    pandas.DataFrame
        The same index (period); ``new``, ``expansion``, ``contraction``,
        ``churned``, ``reactivated`` and ``end`` (the start is the previous
        period's end, and stays in ``bridge``).
    """
    return pick(bridge, {c: c for c in ("new", "expansion", "contraction", "churned",
                                        "reactivated", "end")}, "mrr_bridge")


def retention_table(bridge: pd.DataFrame) -> pd.DataFrame:
    """Return the MRR bridge's retention for a page: accounts lost, NRR and GRR.

    Parameters
    ----------
    bridge : pandas.DataFrame
        :func:`~crmstats.churn.mrr_bridge`'s result.

    Returns
    -------
    pandas.DataFrame
        The same index (period); ``accounts`` (at the start), ``churned``
        (accounts), ``logo churn`` (their share), ``NRR`` and ``GRR`` (shares).
    """
    return pick(bridge, {"accounts_start": "accounts", "accounts_churned": "churned",
                         "logo_churn_rate": "logo churn", "nrr": "NRR", "grr": "GRR"},
                "mrr_bridge")


def hazard_table(model) -> pd.DataFrame:
    """Return a churn model's drivers for a page: hazard ratios with their intervals in words.

    Parameters
    ----------
    model : CoxModel or ShiftedBetaGeoHazardModel
        Fitted (its ``table``).

    Returns
    -------
    pandas.DataFrame
        One row per driver, named in words; ``hazard ratio`` (above 1: the
        accounts churn sooner), ``95 % interval`` (text) and ``p-value``. The
        model's other parameters stay in its ``summary_``.
    """
    return ratio_table(model.table, "hazard_ratio", f"{type(model).__name__}.table")
