"""Customer 360 and scores out: one scored row per customer, written where the CRM can act on it.

The per-customer join of the domain functions is in
:mod:`crmstats.scores.customer360`; writing it to files and database tables
(atomically) in :mod:`crmstats.scores.export`; figures in
:mod:`crmstats.scores.plotting` (imported on first use).
"""

from crmstats.scores.customer360 import COLUMNS, OPEN_LEAD_STAGES, customer_360
from crmstats.scores.export import (
    ExportResult,
    export_customer_scores,
    export_scores,
    new_run_id,
)

__all__ = [
    "COLUMNS",
    "OPEN_LEAD_STAGES",
    "ExportResult",
    "customer_360",
    "export_customer_scores",
    "export_scores",
    "new_run_id",
    "plot_tier_by_stage",
]


def __getattr__(name: str):
    if name == "plot_tier_by_stage":
        from crmstats.scores.plotting import plot_tier_by_stage

        return plot_tier_by_stage
    raise AttributeError(f"module 'crmstats.scores' has no attribute {name!r}")
