"""Findings on what a channel's next customer is worth and pays back (the covariate models)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from crmstats.book.findings._common import (
    _counted,
    _date,
    _finite,
    _keep,
    _label,
    _new_customer_worth,
    _untrusted,
    _worth,
)
from crmstats.book.report import fmt_number, fmt_ratio

__all__ = ["new_customer_value"]

#: Names readers know, by model class.
_MODEL_NAMES = {"BetaGeoModel": "BG/NBD", "ModifiedBetaGeoModel": "MBG/NBD",
                "ParetoNBDModel": "Pareto/NBD", "GammaGammaModel": "Gamma-Gamma"}


def new_customer_value(channel_fit: Any, economics: pd.DataFrame | None = None,
                       horizon_months: int = 12) -> list[str]:
    """Write what a channel's next customer is worth and pays back, in plain words.

    Parameters
    ----------
    channel_fit : ChannelValue
        :func:`crmstats.clv.fit_channel_value` (``values``, ``problem``, the fits).
    economics : pandas.DataFrame, optional
        :func:`crmstats.attribution.channel_economics` with
        ``new_customer_value=channel_fit.values`` (``new_ltv_cac`` with its
        interval, ``ltv_cac``, ``new_payback_months``).
    horizon_months : int
        The horizon of the values.

    Returns
    -------
    list of str
        At most five sentences; one saying why, when the data could not be
        valued by channel.
    """
    problem = getattr(channel_fit, "problem", None)
    if problem:
        return [f"What a channel's next customer is worth could not be estimated on this data: "
                f"{problem}. The channel figures above rest on the customers' own histories "
                "only."]
    fits = {_MODEL_NAMES.get(type(m).__name__, type(m).__name__): m
            for m in (channel_fit.transaction_model, channel_fit.spend_model) if m is not None}
    out = [f"The {name} fit with the customers' attributes {why}: read the next customer's "
           "figures with care." for name, why in _untrusted(fits).items()]
    left_out = int(getattr(channel_fit, "left_out", 0) or 0)
    if left_out:
        since = channel_fit.acquired_since
        day = f"{since.day} {_date(since)}"
        out.append(f"{_counted(left_out, 'customer')} acquired before {day}, when "
                   "the transactions start, are left out of these figures: the data hold only "
                   "the later part of their histories, and these long-standing customers would "
                   "make a new customer look more valuable than one is.")
    out.append(_new_customer_worth(channel_fit.values, horizon_months))
    if economics is None or "new_ltv_cac" not in economics.columns:
        return _keep(out)
    per = economics.drop(index="total", errors="ignore")
    ratio = per["new_ltv_cac"].replace([np.inf, -np.inf], np.nan).dropna()
    ratio = ratio[per.loc[ratio.index, "customers"] > 0]
    if len(ratio):
        top, low = ratio.idxmax(), ratio.idxmin()

        def compared(name):
            row = per.loc[name]
            text = _worth(row, "new_ltv_cac", fmt_ratio, parens=False)
            if _finite(row.get("ltv_cac")):
                text += f"; its customers so far {fmt_ratio(row['ltv_cac'])}"
            return text

        line = (f"Counting the first order, a new customer from {_label(top)} is expected to "
                f"bring the most for what it costs to acquire: LTV:CAC {compared(top)}")
        if low != top:
            line += f". The least, from {_label(low)}: {compared(low)}"
        out.append(line + ".")
        hi = per.loc[ratio.index, "new_ltv_cac_upper_95"]
        short = [c for c in ratio.index if _finite(hi[c]) and hi[c] < 1]
        unsure = [c for c in ratio.index if ratio[c] < 1 and c not in short]
        if short:
            out.append(f"A new customer from {', '.join(_label(c) for c in short)} does not pay "
                       f"back its acquisition cost within {horizon_months} months, even at the "
                       "upper end of its interval.")
        if unsure:
            out.append(f"From {', '.join(_label(c) for c in unsure)}, a new customer is "
                       "expected to return less than its cost, but the interval reaches above "
                       "1x: the data cannot yet tell.")
        out.append(_payback_sentence(per.loc[ratio.index], horizon_months))
    return _keep(out)


def _payback_sentence(per: pd.DataFrame, horizon_months: int) -> str | None:
    """Say which channels' new customers pay back with the first order, and the slowest."""
    pay = per["new_payback_months"].astype(float)
    at_once = [c for c in pay.index if pay[c] == 0]
    later = pay[pay > 0]
    parts = []
    if at_once:
        parts.append(f"The first order alone pays a new customer's acquisition cost back in "
                     f"{len(at_once)} of {len(pay)} channels")
    if len(later):
        slow = later.idxmax()
        row = per.loc[slow]
        if not _finite(row["new_payback_months"]):
            parts.append(f"from {_label(slow)} its expected purchases never pay it back")
        else:
            text = f"{fmt_number(float(row['new_payback_months']), 3)} months"
            lo, hi = row.get("new_payback_months_lower_95"), row.get("new_payback_months_upper_95")
            if _finite(lo) and _finite(hi):
                text += f" (95 % interval {fmt_number(lo, 3)} to {fmt_number(hi, 3)})"
            if float(row["new_payback_months"]) > horizon_months:
                text += (f", beyond the {horizon_months}-month horizon (counted at its average "
                         "monthly value)")
            parts.append(f"from {_label(slow)} it takes the longest: {text}")
    if not parts:
        return None
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."
