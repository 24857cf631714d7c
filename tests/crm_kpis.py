"""KPI figures of a CRMData, computed as the studies do, to compare data sources.

Every ``CRMData``-taking public function and the figures the book's summary
records, reduced to plain numbers (sums over the result frames) so that the
same data behind different sources must give equal dictionaries.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

import crmstats
from crmstats import attribution, churn, clv, funnel, overview


def _num(frame: pd.DataFrame) -> dict:
    """Column sums of the numeric columns (NaN skipped), rounded for comparison."""
    num = frame.select_dtypes("number")
    return {str(k): round(float(v), 6) for k, v in num.sum().items()}


def crm_kpis(crm) -> dict:
    """Return the KPIs and every CRMData-taking function's result, as numbers."""
    out: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # CRMData-taking functions
        out["table_overview"] = {
            n: int(r) for n, r in overview.table_overview(crm)["rows"].dropna().items()}
        quality = crmstats.data_quality(crm)
        out["data_quality"] = quality[["rows_used", "ids"]].astype("float").sum().to_dict()
        leads = funnel.lead_features(crm)
        out["lead_features"] = (len(leads), int(leads["qualified"].sum()),
                                int(leads["won"].sum()),
                                round(float(leads["engagement_score"].sum()), 6))
        life = funnel.lifecycle_stage(crm)
        out["lifecycle_stage"] = life["stage"].value_counts().sort_index().to_dict()
        out["stage_flows"] = _num(funnel.stage_flows(crm, start="2025-06-01"))
        scores = crmstats.customer_360(crm, n_bootstrap=0)
        out["customer_360"] = (len(scores), _num(scores),
                               scores["lifecycle_stage"].value_counts().sort_index().to_dict())
        migration = clv.value_migration(crm, 6)
        out["value_migration"] = {k: round(float(v), 6)
                                  for k, v in migration.decomposition.items()}
        # the book's KPI figures
        revenue = overview.customer_revenue(crm.transactions)
        out["customers"] = len(revenue)
        out["revenue"] = round(float(revenue.sum()), 6)
        fit = clv.fit_value(crm.transactions, time_unit="W")
        out["average_clv"] = round(float(fit.values["clv"].mean()), 4)
        rates = churn.churn_rate(crm.transactions, period="M")
        out["churn"] = _num(rates)
        out["mrr_bridge"] = _num(churn.mrr_bridge(crm.subscriptions))
        out["lead_kpis"] = _num(funnel.lead_kpis(crm.stage_events, crm.spend, period=None))
        out["stage_conversion"] = _num(funnel.stage_conversion(crm.stage_events))
        out["by_channel"] = _num(funnel.stage_conversion(crm.stage_events, by="channel"))
        out["by_industry"] = _num(funnel.stage_conversion(crm.stage_events, by="industry",
                                                          contacts=crm.contacts))
        paths = attribution.build_paths(crm.touchpoints, crm.conversions)
        out["paths"] = (len(paths), _num(paths))
        out["service"] = _num(churn.service_kpis(crm.tickets))
        out["cross_sell"] = _num(churn.cross_sell(crm.subscriptions))
        out["retention_by_channel"] = round(float(np.nansum(churn.retention_matrix(
            crm.transactions, by="acquisition_channel", customers=crm.customers
        ).to_numpy(dtype=float))), 6)
        out["spend"] = _num(overview.spend_by_channel(crm.spend, period="M"))
    return out


def assert_same_kpis(got: dict, expected: dict) -> None:
    """Assert two :func:`crm_kpis` results agree (relative 1e-9 on numbers)."""
    assert got.keys() == expected.keys()
    for key in expected:
        _same(got[key], expected[key], key)


def _same(a, b, where):
    if isinstance(b, dict):
        assert set(a) == set(b), f"{where}: keys {sorted(set(a) ^ set(b))}"
        for k in b:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(b, (tuple, list)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(b, float) and np.isnan(b):
        assert np.isnan(a), where
    else:
        assert a == b or abs(float(a) - float(b)) <= 1e-9 * max(1.0, abs(float(b))), \
            f"{where}: {a!r} != {b!r}"
