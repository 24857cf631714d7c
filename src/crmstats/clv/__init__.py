"""Customer lifetime value: RFM summaries, BTYD models, CLV, value tiers and win-back.

Summaries from raw transactions run in-database (:mod:`crmstats.clv.summaries`).
"""

from crmstats.clv.summaries import calibration_holdout_split, rfm_summary

__all__ = ["calibration_holdout_split", "rfm_summary"]
