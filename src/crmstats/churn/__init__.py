"""Cohort churn and retention, key-account KPIs and service.

Computations on transaction-scale tables are Ibis expressions, run where the
data lives, one module per topic: acquisition cohorts, retention and
inactivity churn (:mod:`crmstats.churn.cohorts`), key-account revenue — MRR
bridge, NRR/GRR, cross-sell (:mod:`crmstats.churn.revenue`), service KPIs
(:mod:`crmstats.churn.service`) and account tenure for survival analysis
(:mod:`crmstats.churn.tenure`); survival analysis on per-customer
frames in :mod:`crmstats.churn.survival` (statsmodels) and
:mod:`crmstats.churn.cox` and :mod:`crmstats.churn.hazard` (two sibling estimators of churn
drivers: Cox, and the sBG model with drivers); figures in
:mod:`crmstats.churn.plotting`.
"""

from typing import TYPE_CHECKING

from crmstats._lazy import lazy_exports

if TYPE_CHECKING:  # the lazy exports (crmstats._lazy reads this block)
    from crmstats.churn.cohorts import churn_rate, cohort_table, retention_matrix
    from crmstats.churn.cox import CoxModel
    from crmstats.churn.hazard import ShiftedBetaGeoHazardModel
    from crmstats.churn.page_tables import bridge_table, hazard_table, retention_table
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
    from crmstats.churn.revenue import cross_sell, grr_by_cohort, mrr_bridge, nrr_by_cohort
    from crmstats.churn.service import service_kpis
    from crmstats.churn.survival import SurvivalCurves, project_retention, survival_curves
    from crmstats.churn.tenure import account_lifetimes, account_months

__all__ = [
    "CoxModel",
    "ShiftedBetaGeoHazardModel",
    "SurvivalCurves",
    "account_lifetimes",
    "account_months",
    "bridge_table",
    "churn_rate",
    "cohort_table",
    "cross_sell",
    "grr_by_cohort",
    "hazard_table",
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
    "retention_table",
    "service_kpis",
    "survival_curves",
]

__getattr__, __dir__ = lazy_exports(__name__, __file__)
