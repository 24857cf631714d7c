"""Channel attribution and channel economics.

Customers hop from channel to channel before they buy, so credit must follow
the whole journey, and a channel's leads are worth what their customers pay
back. Journeys are counted in-database (:mod:`crmstats.attribution.paths`);
the models — rule-based (:func:`heuristic`), Markov removal effects solved
exactly (:class:`MarkovAttribution`) and exact Shapley values
(:class:`ShapleyAttribution`) — credit conversions and value to channels;
:func:`channel_economics` turns credit, spend and CLV into CAC, ROAS and
LTV:CAC. What a channel *adds* is measured by the counterfactual
:class:`IncrementalityModel` and by holdout experiments (:func:`lift_test`,
planned with :func:`holdout_size`); :func:`calibrate` moves model credit toward
the measured lifts and :func:`incremental_economics` prices it. What each
channel's *spend* returns, where it saturates and how to split a budget is the
media-mix model's (:func:`media_table`, :class:`MediaMixModel`,
:func:`optimize_budget`). Figures are in
:mod:`crmstats.attribution.plotting`.
"""

from typing import TYPE_CHECKING

from crmstats._lazy import lazy_exports

if TYPE_CHECKING:  # the lazy exports (crmstats._lazy reads this block)
    from crmstats.attribution.budget import BudgetPlan, optimize_budget
    from crmstats.attribution.calibration import calibrate
    from crmstats.attribution.compare import credit_shares, share_error
    from crmstats.attribution.economics import (
        channel_economics,
        incremental_economics,
        new_customer_economics,
    )
    from crmstats.attribution.experiments import (
        experiment_data,
        holdout_plan,
        holdout_size,
        lift_test,
        untouched_journeys,
    )
    from crmstats.attribution.heuristic import HEURISTIC_MODELS, heuristic
    from crmstats.attribution.incrementality import IncrementalityModel
    from crmstats.attribution.markov import MarkovAttribution
    from crmstats.attribution.media import media_table
    from crmstats.attribution.mmm import MediaMixModel
    from crmstats.attribution.page_tables import (
        CREDIT_MODELS,
        acquisition_table,
        calibration_table,
        cost_table,
        credit_note,
        credit_table,
        incremental_table,
        lift_table,
        new_customer_table,
        path_table,
        return_table,
    )
    from crmstats.attribution.paths import (
        build_paths,
        from_channelattribution,
        to_channelattribution,
    )
    from crmstats.attribution.plotting import (
        plot_cac_ltv,
        plot_credit_shares,
        plot_lift_tests,
        plot_new_customer_ltv_cac,
        plot_removal_effects,
        plot_transition_matrix,
    )
    from crmstats.attribution.shapley import ShapleyAttribution
    from crmstats.attribution.triangulation import (
        disagreements,
        media_data,
        triangulate,
        triangulate_crm,
        triangulation_finding,
        triangulation_view,
    )
    from crmstats.attribution.triangulation_plots import (
        budget_table,
        curve_table,
        fit_table,
        outcome_words,
        plot_budget_shift,
        plot_marginal_roas,
        plot_triangulation,
        returns_table,
        triangulation_returns,
        triangulation_shares,
    )

__all__ = [
    "BudgetPlan",
    "CREDIT_MODELS",
    "HEURISTIC_MODELS",
    "IncrementalityModel",
    "MarkovAttribution",
    "MediaMixModel",
    "ShapleyAttribution",
    "acquisition_table",
    "credit_note",
    "credit_table",
    "budget_table",
    "build_paths",
    "calibrate",
    "calibration_table",
    "channel_economics",
    "cost_table",
    "credit_shares",
    "curve_table",
    "disagreements",
    "experiment_data",
    "fit_table",
    "from_channelattribution",
    "heuristic",
    "holdout_plan",
    "holdout_size",
    "incremental_economics",
    "incremental_table",
    "lift_table",
    "lift_test",
    "media_data",
    "media_table",
    "new_customer_economics",
    "new_customer_table",
    "optimize_budget",
    "outcome_words",
    "path_table",
    "plot_budget_shift",
    "plot_cac_ltv",
    "plot_credit_shares",
    "plot_lift_tests",
    "plot_marginal_roas",
    "plot_new_customer_ltv_cac",
    "plot_removal_effects",
    "plot_transition_matrix",
    "plot_triangulation",
    "return_table",
    "returns_table",
    "share_error",
    "to_channelattribution",
    "triangulate",
    "triangulate_crm",
    "triangulation_finding",
    "triangulation_returns",
    "triangulation_shares",
    "triangulation_view",
    "untouched_journeys",
]

__getattr__, __dir__ = lazy_exports(__name__, __file__)
