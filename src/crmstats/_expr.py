"""Small Ibis helpers shared by the domain subpackages (backend-portable)."""

from __future__ import annotations

import warnings

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from crmstats.backend import execute
from crmstats.exceptions import DataError, DataWarning

__all__ = ["PERIODS", "observation_end", "period_index", "period_start", "period_unit",
           "truncate", "up_to"]

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


def parse_date(value, name: str) -> pd.Timestamp:
    """Return ``value`` as a naive UTC timestamp, or a DataError naming the parameter."""
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise DataError(f"{name} {value!r} is not a date (use e.g. '2025-06-30')") from None
    if stamp is pd.NaT:
        raise DataError(f"{name} {value!r} is not a date (use e.g. '2025-06-30')")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp


def observation_end(t: ir.Table, value, *, column: str = "timestamp",
                    table: str = "transactions") -> pd.Timestamp:
    """Return the end of observation of table ``t``: ``value`` or the last ``column`` value.

    Callers compare at period granularity (``period_index(ts) <= period_index(end)``),
    so an ``observation_end`` given as a date includes that whole day, as
    lifetimes does. An end more than 30 days and more than a tenth of the data's
    span after the last row gets a :class:`~crmstats.DataWarning`: every customer
    then looks long inactive.
    """
    if value is None:
        return pd.Timestamp(execute(t[column].max()))
    end = parse_date(value, "observation_end")
    span = execute(t.aggregate(first=t[column].min(), last=t[column].max()))
    first, last = pd.Timestamp(span["first"].iloc[0]), pd.Timestamp(span["last"].iloc[0])
    if pd.notna(last):
        gap = end.normalize() - last.normalize()
        if gap > pd.Timedelta(days=30) and gap > (last - first) / 10:
            warnings.warn(
                f"{table} table: observation_end {end:%Y-%m-%d} is {gap.days:,} days after "
                f"the last {column} ({last:%Y-%m-%d}); every customer looks inactive that "
                "long: check the date", DataWarning, stacklevel=3)
    return end



def up_to(col: ir.TimestampValue, end: pd.Timestamp) -> ir.BooleanValue:
    """Return ``col`` on or before ``end``; an ``end`` at midnight (a date) includes that day.

    ``observation_end="2024-03-02"`` keeps a purchase at 15:00 that day, as
    lifetimes does; an end with a time of day (``"2024-03-02 12:00"``) cuts there.
    """
    end = pd.Timestamp(end)
    if end == end.normalize():
        return col < ibis.literal((end + pd.Timedelta(days=1)).to_pydatetime())
    return col <= ibis.literal(end.to_pydatetime())
