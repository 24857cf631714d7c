"""Customer lifetime value: RFM summaries, BTYD models, CLV, value tiers and win-back.

Summaries from raw transactions run in-database (:mod:`crmstats.clv.summaries`);
models in :mod:`crmstats.clv.models`; the whole chain in one call
(:func:`fit_value`); units carried by summaries in :mod:`crmstats.clv.units`;
valuation and segmentation in :mod:`crmstats.clv.value`; how value moves
between two dates in :mod:`crmstats.clv.migration`; model checks in
:mod:`crmstats.clv.diagnostics`;
figures in :mod:`crmstats.clv.plotting`.
"""

from typing import TYPE_CHECKING

from crmstats._lazy import lazy_exports

if TYPE_CHECKING:  # the lazy exports (crmstats._lazy reads this block)
    from crmstats.clv.channel_fit import ChannelValue, fit_channel_value
    from crmstats.clv.channels import channel_value, customer_effects
    from crmstats.clv.covariate_frame import covariate_frame
    from crmstats.clv.covariate_keywords import covariates_for
    from crmstats.clv.diagnostics import (
        compare_models,
        frequency_recency_grid,
        holdout_comparison,
        holdout_error,
        tracking,
    )
    from crmstats.clv.migration import ValueMigration, value_migration
    from crmstats.clv.models import (
        BetaGeoBetaBinomModel,
        BetaGeoModel,
        GammaGammaModel,
        ModifiedBetaGeoModel,
        ParetoNBDModel,
        ShiftedBetaGeoModel,
    )
    from crmstats.clv.page_tables import channel_value_table, comparison_table
    from crmstats.clv.plotting import (
        plot_channel_value,
        plot_clv_distribution,
        plot_customer_effects,
        plot_frequency_recency,
        plot_holdout_comparison,
        plot_lorenz,
        plot_tracking,
        plot_value_bridge,
        plot_value_migration,
        plot_value_pyramid,
    )
    from crmstats.clv.summaries import calibration_holdout_split, holdout_period, rfm_summary
    from crmstats.clv.units import RFMSummary, SummaryUnits, summary_units, with_units
    from crmstats.clv.valuation import ValueFit, fit_value
    from crmstats.clv.value import (
        BootstrapCLV,
        bootstrap_clv,
        customer_lifetime_value,
        fit_problem,
        lapse_threshold,
        pareto_analysis,
        rfm_segments,
        value_by_group,
        value_tiers,
        winback_list,
    )

__all__ = [
    "BetaGeoBetaBinomModel",
    "BootstrapCLV",
    "BetaGeoModel",
    "ChannelValue",
    "GammaGammaModel",
    "ModifiedBetaGeoModel",
    "ParetoNBDModel",
    "ShiftedBetaGeoModel",
    "RFMSummary",
    "SummaryUnits",
    "ValueFit",
    "ValueMigration",
    "bootstrap_clv",
    "calibration_holdout_split",
    "channel_value",
    "compare_models",
    "channel_value_table",
    "comparison_table",
    "covariate_frame",
    "covariates_for",
    "customer_effects",
    "customer_lifetime_value",
    "fit_channel_value",
    "fit_problem",
    "fit_value",
    "frequency_recency_grid",
    "holdout_comparison",
    "holdout_error",
    "holdout_period",
    "lapse_threshold",
    "pareto_analysis",
    "plot_channel_value",
    "plot_clv_distribution",
    "plot_customer_effects",
    "plot_frequency_recency",
    "plot_holdout_comparison",
    "plot_lorenz",
    "plot_tracking",
    "plot_value_bridge",
    "plot_value_migration",
    "plot_value_pyramid",
    "rfm_segments",
    "rfm_summary",
    "summary_units",
    "tracking",
    "value_by_group",
    "value_migration",
    "value_tiers",
    "winback_list",
    "with_units",
]

__getattr__, __dir__ = lazy_exports(__name__, __file__)
