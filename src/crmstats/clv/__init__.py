"""Customer lifetime value: RFM summaries, BTYD models, CLV, value tiers and win-back.

Summaries from raw transactions run in-database (:mod:`crmstats.clv.summaries`).
"""

from crmstats.clv.summaries import calibration_holdout_split, rfm_summary
from crmstats.clv.value import (
    customer_lifetime_value,
    pareto_analysis,
    rfm_segments,
    value_tiers,
    winback_list,
)

__all__ = [
    "calibration_holdout_split",
    "customer_lifetime_value",
    "pareto_analysis",
    "rfm_segments",
    "rfm_summary",
    "value_tiers",
    "winback_list",
]
