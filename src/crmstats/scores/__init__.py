"""Customer 360 and scores out: one scored row per customer, written where the CRM can act on it.

The per-customer join of the domain functions is in
:mod:`crmstats.scores.customer360`; writing it to files and database tables
(atomically) in :mod:`crmstats.scores.export`; figures in
:mod:`crmstats.scores.plotting` (imported on first use).
"""

from typing import TYPE_CHECKING

from crmstats._lazy import lazy_exports

if TYPE_CHECKING:  # the lazy exports (crmstats._lazy reads this block)
    from crmstats.scores.customer360 import COLUMNS, OPEN_LEAD_STAGES, customer_360
    from crmstats.scores.export import (
        ExportResult,
        export_customer_scores,
        export_scores,
        new_run_id,
    )
    from crmstats.scores.plotting import plot_tier_by_stage
    from crmstats.scores.value_stage import value_by_stage

__all__ = [
    "COLUMNS",
    "OPEN_LEAD_STAGES",
    "ExportResult",
    "customer_360",
    "export_customer_scores",
    "export_scores",
    "new_run_id",
    "plot_tier_by_stage",
    "value_by_stage",
]


__getattr__, __dir__ = lazy_exports(__name__, __file__)
