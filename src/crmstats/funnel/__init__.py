"""Lead generation, the sales funnel, lead scoring and lifecycle stages.

Funnel and lead KPIs are in :mod:`crmstats.funnel.summaries` (Ibis, run where
the data lives), the pipeline of deals or stage events in
:mod:`crmstats.funnel.pipeline`; lead scoring in :mod:`crmstats.funnel.scoring` and
look-alikes in :mod:`crmstats.funnel.lookalike` (statsmodels); contact lifecycle
stages in :mod:`crmstats.funnel.lifecycle`; figures in :mod:`crmstats.funnel.plotting`.
"""

from typing import TYPE_CHECKING

from crmstats._lazy import lazy_exports

if TYPE_CHECKING:  # the lazy exports (crmstats._lazy reads this block)
    from crmstats.funnel.lifecycle import (
        LIFECYCLE_STAGES,
        lifecycle_counts,
        lifecycle_stage,
        snapshot_date,
        stage_flows,
    )
    from crmstats.funnel.lookalike import (
        OPEN_STAGES,
        Lookalikes,
        lookalike_prospects,
        lookalike_scores,
    )
    from crmstats.funnel.page_tables import (
        band_table,
        lead_period_table,
        lead_quality_table,
        lead_volume_table,
        odds_table,
        open_leads,
        stage_rate_table,
    )
    from crmstats.funnel.pipeline import (
        BREAKDOWNS,
        Pipeline,
        deal_stages,
        has_tables,
        pipeline,
    )
    from crmstats.funnel.plotting import (
        plot_calibration,
        plot_days_in_stage,
        plot_funnel,
        plot_lead_kpis,
        plot_lifecycle,
        plot_lift,
        plot_pipeline,
        plot_stage_flows,
    )
    from crmstats.funnel.scoring import (
        COMPANY_SIZES,
        LeadScoringModel,
        auc,
        lead_features,
    )
    from crmstats.funnel.summaries import (
        FUNNEL_STAGES,
        lead_kpis,
        lead_stage_times,
        own_stages,
        stage_conversion,
        stage_durations,
    )

__all__ = [
    "BREAKDOWNS",
    "Pipeline",
    "COMPANY_SIZES",
    "FUNNEL_STAGES",
    "LIFECYCLE_STAGES",
    "LeadScoringModel",
    "Lookalikes",
    "OPEN_STAGES",
    "auc",
    "band_table",
    "deal_stages",
    "has_tables",
    "lead_features",
    "lead_kpis",
    "lead_period_table",
    "lead_quality_table",
    "lead_stage_times",
    "lead_volume_table",
    "lifecycle_counts",
    "lifecycle_stage",
    "lookalike_prospects",
    "lookalike_scores",
    "odds_table",
    "open_leads",
    "own_stages",
    "pipeline",
    "plot_calibration",
    "plot_days_in_stage",
    "plot_funnel",
    "plot_lead_kpis",
    "plot_lifecycle",
    "plot_lift",
    "plot_pipeline",
    "plot_stage_flows",
    "snapshot_date",
    "stage_conversion",
    "stage_durations",
    "stage_flows",
    "stage_rate_table",
]

__getattr__, __dir__ = lazy_exports(__name__, __file__)
