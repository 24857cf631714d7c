"""Small Ibis helpers shared by the domain subpackages (backend-portable)."""

from __future__ import annotations

import ibis.expr.types as ir
import numpy as np
import pandas as pd

__all__ = ["PERIODS", "period_index", "period_start", "period_unit", "truncate"]

#: pandas-style period codes accepted by crmstats and their Ibis truncation units.
PERIODS = {"D": "D", "W": "W", "M": "M", "MS": "M", "Q": "Q", "QS": "Q", "Y": "Y", "YS": "Y"}


def truncate(col: ir.TimestampValue, period: str) -> ir.TimestampValue:
    """Truncate timestamps to the start of their period: "D", "W", "M", "Q" or "Y".

    Weeks start on Monday (ISO weeks), as pandas' ``to_period("W")`` does.
    """
    return col.truncate(period_unit(period))


def period_unit(period: str) -> str:
    """Return the canonical unit ("D", "W", "M", "Q" or "Y") of a period code, or raise."""
    try:
        return PERIODS[period.upper()]
    except (KeyError, AttributeError):
        raise ValueError(
            f"period must be one of {', '.join(sorted(set(PERIODS)))}; got {period!r}"
        ) from None


def period_index(col: ir.TimestampValue, period: str) -> ir.IntegerValue:
    """Return consecutive integer period numbers of timestamps (portable across backends).

    Days and weeks count from the Unix epoch (weeks start on Monday), months
    are ``year * 12 + month - 1``, quarters ``year * 4 + quarter - 1``, years
    the year. Differences of indexes are whole periods elapsed, which is what
    cohort ages and churn windows need; :func:`period_start` maps back.
    """
    unit = period_unit(period)
    if unit in ("D", "W"):
        days = (col.epoch_seconds() / 86400.0).floor()
        return days if unit == "D" else ((days + 3) / 7.0).floor()
    if unit == "M":
        return col.year() * 12 + col.month() - 1
    if unit == "Q":
        return col.year() * 4 + col.quarter() - 1
    return col.year()


def period_start(index, period: str) -> pd.DatetimeIndex:
    """Map integer period numbers of :func:`period_index` to their start timestamps."""
    unit = period_unit(period)
    idx = np.asarray(index, dtype="int64")
    if unit == "D":
        return pd.DatetimeIndex(pd.to_datetime(idx, unit="D"))
    if unit == "W":
        return pd.DatetimeIndex(pd.to_datetime(idx * 7 - 3, unit="D"))
    if unit == "M":
        years, months = np.divmod(idx, 12)
    elif unit == "Q":
        years, quarters = np.divmod(idx, 4)
        months = quarters * 3
    else:
        years, months = idx, np.zeros_like(idx)
    return pd.DatetimeIndex(pd.to_datetime({"year": years, "month": months + 1, "day": 1}))
