"""Small Ibis helpers shared by the domain subpackages (backend-portable)."""

from __future__ import annotations

import ibis.expr.types as ir

__all__ = ["PERIODS", "truncate"]

#: pandas-style period codes accepted by crmstats and their Ibis truncation units.
PERIODS = {"D": "D", "W": "W", "M": "M", "MS": "M", "Q": "Q", "QS": "Q", "Y": "Y", "YS": "Y"}


def truncate(col: ir.TimestampValue, period: str) -> ir.TimestampValue:
    """Truncate timestamps to the start of their period: "D", "W", "M", "Q" or "Y".

    Weeks start on Monday (ISO weeks), as pandas' ``to_period("W")`` does.
    """
    try:
        unit = PERIODS[period.upper()]
    except (KeyError, AttributeError):
        raise ValueError(
            f"period must be one of {', '.join(sorted(set(PERIODS)))}; got {period!r}"
        ) from None
    return col.truncate(unit)
