"""Customers by value tier and lifecycle stage: the part of the customer 360 a figure needs.

:func:`value_by_stage` gives the value and lifecycle columns of
:func:`crmstats.scores.customer_360` from the same code (its helpers in
:mod:`crmstats.scores.customer360`), without the lead scores, key accounts and
service tickets it does not need.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from crmstats.scores.customer360 import _customer_values, _open_and_cut, _ordered, _with_stages
from crmstats.validation import reuse_validated

__all__ = ["value_by_stage"]


@reuse_validated()
def value_by_stage(
    crm: Any,
    as_of=None,
    *,
    period: str = "D",
    time_unit: str = "W",
    horizon_months: int = 12,
    discount_rate: float = 0.01,
    tiers: Mapping[str, float] | None = None,
    lapsed_after: float | None = None,
    high_priority_share: float = 0.2,
    allow_unconverged: bool = False,
) -> pd.DataFrame:
    """Return the value and lifecycle columns of :func:`customer_360`, without the rest.

    The same rows and values as ``customer_360(crm, as_of, n_bootstrap=0, ...)``
    in the columns ``kind``, ``clv``, ``value_tier``, ``value_rank`` and
    ``lifecycle_stage`` (what :func:`crmstats.scores.plot_tier_by_stage`
    draws), for customers and open leads; it skips what those columns do not
    need (lead scores, key accounts, service tickets), whose models grow with
    the data (the lead-scoring fit over every lead, the churn model over every
    account-month).

    Parameters
    ----------
    crm : CRMData or data source
        As for :func:`customer_360`.
    as_of, period, time_unit, horizon_months, discount_rate, tiers, lapsed_after, \
high_priority_share, allow_unconverged
        As for :func:`customer_360`.

    Returns
    -------
    pandas.DataFrame
        Index ``id``; columns ``kind``, ``clv``, ``value_tier``, ``value_rank``,
        ``lifecycle_stage`` and ``as_of``, as :func:`customer_360` has them.
    """
    from crmstats.sources import load_crm

    crm = load_crm(crm)
    crm.require("transactions")
    crm, as_of = _open_and_cut(crm, as_of, ("transactions", "customers", "stage_events",
                                            "contacts"))
    cust, tier = _customer_values(
        crm, as_of, period=period, time_unit=time_unit, horizon_months=horizon_months,
        discount_rate=discount_rate, n_bootstrap=0, level=0.9, seed=0, tiers=tiers,
        allow_unconverged=allow_unconverged, transaction_model=None, spend_model=None,
        given=False)
    out, _ = _with_stages(crm, cust, as_of, lapsed_after=lapsed_after, time_unit=time_unit,
                          high_priority_share=high_priority_share,
                          horizon_months=horizon_months)
    if "lifecycle_stage" not in out.columns:
        out["lifecycle_stage"] = np.nan
    out["as_of"] = pd.to_datetime(pd.Series(as_of, index=out.index)).astype("datetime64[us]")
    out["value_rank"] = out["value_rank"].astype("Int64")
    out["lifecycle_stage"] = _ordered(out["lifecycle_stage"])
    out["value_tier"] = pd.Categorical(out["value_tier"].astype(object),
                                       categories=list(tier["tier"].cat.categories),
                                       ordered=True)
    out.index.name = "id"
    return out[["kind", "clv", "value_tier", "value_rank", "lifecycle_stage", "as_of"]]

