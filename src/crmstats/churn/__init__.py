"""Cohort churn and retention, key-account KPIs and service.

Computations on transaction-scale tables are in :mod:`crmstats.churn.summaries`
(Ibis expressions, run where the data lives); survival analysis on per-customer
frames in :mod:`crmstats.churn.survival` (statsmodels) and
:mod:`crmstats.churn.cox` and :mod:`crmstats.churn.hazard` (two sibling estimators of churn
drivers: Cox, and the sBG model with drivers); figures in
:mod:`crmstats.churn.plotting`.
"""

from crmstats.churn.cox import CoxModel
from crmstats.churn.hazard import ShiftedBetaGeoHazardModel
from crmstats.churn.plotting import (
    plot_churn_rate,
    plot_cohort_heatmap,
    plot_cross_sell,
    plot_hazard_ratios,
    plot_mrr_bridge,
    plot_retention_curves,
    plot_retention_projection,
    plot_retention_trend,
    plot_service_kpis,
    plot_survival,
)
from crmstats.churn.summaries import (
    account_lifetimes,
    account_months,
    churn_rate,
    cohort_table,
    cross_sell,
    grr_by_cohort,
    mrr_bridge,
    nrr_by_cohort,
    retention_matrix,
    service_kpis,
)
from crmstats.churn.survival import SurvivalCurves, project_retention, survival_curves

__all__ = [
    "CoxModel",
    "ShiftedBetaGeoHazardModel",
    "SurvivalCurves",
    "account_lifetimes",
    "account_months",
    "churn_rate",
    "cohort_table",
    "cross_sell",
    "grr_by_cohort",
    "mrr_bridge",
    "nrr_by_cohort",
    "plot_churn_rate",
    "plot_cohort_heatmap",
    "plot_cross_sell",
    "plot_hazard_ratios",
    "plot_mrr_bridge",
    "plot_retention_curves",
    "plot_retention_projection",
    "plot_retention_trend",
    "plot_service_kpis",
    "plot_survival",
    "project_retention",
    "retention_matrix",
    "service_kpis",
    "survival_curves",
]
