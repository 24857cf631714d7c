"""Data overview: what a CRM data source holds, whether it is valid, and its activity.

Computations are in :mod:`crmstats.overview.summaries` (run in-database through
Ibis), figures in :mod:`crmstats.overview.plotting`, the page's narrow tables in
:mod:`crmstats.overview.page_tables`.
"""

from typing import TYPE_CHECKING

from crmstats._lazy import lazy_exports

if TYPE_CHECKING:  # the lazy exports (crmstats._lazy reads this block)
    from crmstats.overview.page_tables import source_table
    from crmstats.overview.plotting import (
        plot_monthly_activity,
        plot_orders_per_customer,
        plot_spend_by_channel,
        plot_stage_counts,
    )
    from crmstats.overview.summaries import (
        customer_revenue,
        monthly_activity,
        orders_per_customer,
        spend_by_channel,
        stage_counts,
        table_overview,
        top_revenue_share,
    )

__all__ = [
    "customer_revenue",
    "monthly_activity",
    "orders_per_customer",
    "plot_monthly_activity",
    "plot_orders_per_customer",
    "plot_spend_by_channel",
    "plot_stage_counts",
    "source_table",
    "spend_by_channel",
    "stage_counts",
    "table_overview",
    "top_revenue_share",
]

__getattr__, __dir__ = lazy_exports(__name__, __file__)
